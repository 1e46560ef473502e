"""The knowledge base's value types: entries, ranked candidates, confidence bands and decisions."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# Entry ids travel in button values; Discord's custom_id holds 100 characters, so keep ids short.
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class KBEntry:
    """One answer and the ways customers ask for it. `component` names a status component."""

    id: str
    title: str
    questions: tuple[str, ...]
    answer: str
    tags: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    component: str | None = None
    source: str = field(default="", compare=False)
    """`file:line` where the entry is written, for messages to the people who maintain the KB."""
    declined: bool = False
    """Not an article: questions staff marked as ones the bot must not answer (a gap that is "not
    ours"). Questions that find it first are escalated; the simulation asks them as real
    out-of-scope questions (`bot.kb.learned`)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """An entry and the calibrated probability that it is the right answer, in [0, 1]."""

    entry: KBEntry
    confidence: float
    closeness: float | None = None
    """The matcher's own score for the entry (higher is closer), before calibration: what a
    closeness floor (`Thresholds.closeness`) is judged on. None: built without one (no floor holds it)."""


MATCH_PREFIX = 1000
"""Only a question's first characters are matched: a pasted log must not cost more than a question."""


class Band(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    ESCALATE = "escalate"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Answer when the best entry's confidence is at or above `answer`; otherwise offer choices
    when the confidence that the right entry is among them is at or above `clarify`; otherwise
    escalate. Two different probabilities, so `clarify` may well be above `answer`.

    `closeness`: where most of the traffic has no entry, an answer or a "did you mean" also needs
    the best entry's own score (`Candidate.closeness`) at least this; a farther question is
    escalated, however sure (`KnowledgeBase.aimed_at`). None: no such floor."""

    answer: float
    clarify: float
    closeness: float | None = None

    def __post_init__(self) -> None:
        for name, value in (("answer", self.answer), ("clarify", self.clarify)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"the {name} threshold must be within [0, 1], not {value}")
        if self.closeness is not None and not math.isfinite(self.closeness):
            raise ValueError(f"the closeness floor must be a finite score, not {self.closeness}")

    def close_enough(self, candidate: Candidate) -> bool:
        """Whether `candidate` is close enough to answer with (always, without a floor)."""
        floor, closeness = self.closeness, candidate.closeness
        return floor is None or closeness is None or closeness >= floor


@dataclass(frozen=True, slots=True)
class Decision:
    """What the bot does with a question. `candidates` are best first: one to answer with, up to
    three to offer when clarifying, and the best guesses (for the record) when escalating."""

    band: Band
    candidates: tuple[Candidate, ...]
    declined: str | None = None
    """The declined topic the question found first (escalated for that reason), if any."""

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def record(self) -> dict[str, Any]:
        """The decision as plain data, for storing next to the question and, later, the outcome."""
        return {
            "band": self.band.value,
            "candidates": [
                {"entry_id": c.entry.id, "confidence": round(c.confidence, 4)} for c in self.candidates
            ],
        }
