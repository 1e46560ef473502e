"""Errors a user can fix. Their text is shown to the user as it is, so it must be friendly."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can correct; `str(error)` says what to do."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class UsageError(UserError):
    """Malformed arguments. Carries the usage line and an example."""

    def __init__(self, problem: str, *, usage: str, example: str) -> None:
        super().__init__(f"{problem}\nUsage: `{usage}`\nExample: `{example}`")


class NotAllowed(UserError):
    """The actor may not do this (staff-only command, someone else's ticket)."""
