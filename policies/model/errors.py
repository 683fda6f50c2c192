"""User-facing errors. Every error a user can cause or fix is a RelanceError: the CLI prints its
one-line message (and hint) and exits non-zero, never a traceback."""

from __future__ import annotations


class RelanceError(Exception):
    """An error with a message fit for the user: where it happened and what to do about it."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class PolicyError(RelanceError):
    """A policy file is invalid. `problems` holds one 'file:line: path: what was expected' each."""

    def __init__(self, problems: list[str], *, hint: str | None = None) -> None:
        super().__init__("\n".join(problems), hint=hint)
        self.problems = problems

