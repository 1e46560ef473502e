"""What each figure of the report means, in one line, for readers who have no docs/REPORTS.md: the
HTML report shows them. The wording is REPORTS.md's, shortened; a test keeps the two in step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

QUESTIONS: Final[Mapping[str, str]] = {
    "Questions asked": "customers' questions in the window",
    "Answered by the bot": "the bot showed an article, at once or after a “did you mean” pick",
    "Confirmed solved": "the customer pressed “That solved it”",
    "Deflected": "answered, and no ticket from that person on that topic within 24 h",
    "Did you mean": "the bot asked “did you mean” (band clarify), and how each ended",
}
TICKETS: Final[Mapping[str, str]] = {
    "Escalations by reason": "tickets opened in the window, by why",
    "Tickets opened": "tickets opened in the window",
    "Tickets closed": "closed in the window and still closed",
    "Tickets reopened": "tickets reopened in the window, each once",
    "First response p50 / p90": (
        "per priority, for tickets opened in the window: from opening to the first line a person of "
        "the team wrote to the customer"
    ),
    "Not answered yet": "tickets opened in the window with no line from a person of the team",
    "SLA met": (
        "answered by the target, of the tickets whose answer is known: answered, or past their target "
        "without one"
    ),
    "Resolution p50 / p90": "opening to close, for tickets closed in the window",
}
SATISFACTION: Final[Mapping[str, str]] = {
    "CSAT average": (
        "mean rating of the tickets closed in the window whose close the customer confirmed "
        "(“Yes, it's solved”) and that were rated"
    ),
    "CSAT distribution": "how many 1★ … 5★ among them",
    "CSAT response rate": (
        "rated / asked, where asked is the tickets closed in the window whose close the customer confirmed"
    ),
}
INCIDENTS: Final[Mapping[str, str]] = {
    "Incidents on": "incidents open at some point in the window",
    "Questions per incident": "people and channels that asked about it in the window",
    "Settled by the status answer": (
        "of those, the ones whose person opened no ticket (on any topic) within 24 h of asking"
    ),
}

BY_SECTION: Final[Mapping[str, Mapping[str, str]]] = {
    "Questions and answers": QUESTIONS,
    "Tickets": TICKETS,
    "Satisfaction": SATISFACTION,
    "Incidents": INCIDENTS,
}
"""docs/REPORTS.md's sections that define figures in a table, by their heading there."""
