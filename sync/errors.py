"""Errors of the application itself: relance.yaml, command-line values (channels keep their own)."""

from __future__ import annotations

from policies.model.errors import RelanceError


class ConfigError(RelanceError):
    """relance.yaml (or a command-line value) is missing or wrong."""
