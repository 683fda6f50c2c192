"""Shared test helpers and oracles, imported as `tests.support.<module>` (bench/ uses them too)."""
