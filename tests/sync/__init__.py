"""Tests of sync/: the state store, the engine, channels, commands and CLI, daemon, reports, config."""
