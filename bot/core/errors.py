"""Errors a user can fix. Their text is shown to the user as it is, so it must be friendly."""

from __future__ import annotations

import re

# Bidirectional embedding/override/isolate controls. Messages quote what the user typed; an unclosed
# override from the input would reverse the rest of our sentence (and the usage line) on screen.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


class UserError(Exception):
    """Something the user can correct; `str(error)` says what to do."""

    def __init__(self, text: str) -> None:
        text = _BIDI_CONTROLS.sub("", text)
        super().__init__(text)
        self.text = text


class UsageError(UserError):
    """Malformed arguments. Carries the usage line and an example."""

    def __init__(self, problem: str, *, usage: str, example: str) -> None:
        super().__init__(f"{problem}\nUsage: `{usage}`\nExample: `{example}`")


class NotAllowed(UserError):
    """The actor may not do this (staff-only command, someone else's ticket)."""
