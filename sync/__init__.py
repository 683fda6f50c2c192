"""State store, planning, exactly-once apply, CLI and daemon."""
