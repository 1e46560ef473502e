"""Errors a user can fix: their text is shown to the user as it is, so it must be friendly. And
`TooEarly`, which no user sees: the dispatcher handles the event again a moment later."""

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


class TooEarly(Exception):
    """The event is about something the bot is still writing down elsewhere (a staff card's thread,
    noted once the card is posted): handle it again shortly. Raised by a handler before it writes
    anything, since its transaction is rolled back; the dispatcher tries again after each of
    `dispatch.TOO_EARLY_DELAYS`, then claims it with nothing done. `str(error)` says what was
    missing, for the log; `finally_say`, if given, is said privately to the person when the last
    try gives up, so that what they sent is never dropped without a word."""

    def __init__(self, missing: str, *, finally_say: str | None = None) -> None:
        super().__init__(missing)
        self.finally_say = finally_say
