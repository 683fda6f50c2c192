"""Shared test helpers and oracles (imported by the tests as `support`)."""
