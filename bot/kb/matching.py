"""What every matcher shares: the `Matcher` protocol, per-entry aggregation of phrasing scores,
calibration, and the choice between answering, clarifying and escalating."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from bot.kb import calibration
from bot.kb.calibration import Calibration, Probe
from bot.kb.model import Band, Candidate, Decision, KBEntry, Thresholds

CLARIFY_CHOICES = 3
# In a "did you mean", an entry far less likely than the best one is noise, not a choice.
CLARIFY_RELATIVE_FLOOR = 0.25
# How much the mean over an entry's phrasings counts beside the best one: the best phrasing finds
# the entry, the mean says whether the question fits the entry as a whole.
MEAN_WEIGHT = 0.5


@runtime_checkable
class Matcher(Protocol):
    """Ranks entries for a question; `confidence` is the calibrated probability of being right."""

    name: str
    default_thresholds: Thresholds
    entries: tuple[KBEntry, ...]

    def rank(self, question: str, limit: int = 5) -> list[Candidate]: ...


def decide(candidates: Sequence[Candidate], thresholds: Thresholds) -> Decision:
    """Answer with the best entry, offer up to three, or escalate (keeping the guesses on record)."""
    ranked = tuple(sorted(candidates, key=lambda c: c.confidence, reverse=True))
    if not ranked or ranked[0].confidence < thresholds.clarify:
        return Decision(Band.ESCALATE, ranked[:CLARIFY_CHOICES])
    if ranked[0].confidence >= thresholds.answer:
        return Decision(Band.ANSWER, ranked[:1])
    floor = ranked[0].confidence * CLARIFY_RELATIVE_FLOOR
    return Decision(Band.CLARIFY, tuple(c for c in ranked[:CLARIFY_CHOICES] if c.confidence >= floor))


class PhrasingMatcher:
    """Base for matchers that score every phrasing. An entry scores as its best phrasing; that
    score and its margin over the best other entry are mapped to a probability by a calibration
    learned on the KB itself."""

    name = "base"
    default_thresholds = Thresholds(answer=0.9, clarify=0.5)
    prior = Calibration(bias=-6.0, weights=(8.0, 8.0))

    def __init__(self, entries: Sequence[KBEntry]) -> None:
        self.entries = tuple(entries)
        self.phrasings = [q for entry in self.entries for q in entry.questions]
        self.phrasing_entry = np.array(
            [i for i, entry in enumerate(self.entries) for _ in entry.questions], dtype=np.int64
        )
        # Phrasing scores are laid out as a grid, one row per entry, to aggregate without a loop.
        self._slot_col = np.array([j for e in self.entries for j in range(len(e.questions))], dtype=np.int64)
        width = max((len(e.questions) for e in self.entries), default=1)
        self._grid_shape = (len(self.entries), width)
        self.calibration = self.prior

    def calibrate(self) -> None:
        """Learn the confidence mapping from this KB (call once the scoring is ready)."""
        self.calibration = calibration.fit(self._probe, self.phrasing_entry.tolist(), self.prior)

    def phrasing_scores(self, question: str) -> np.ndarray:
        """The raw score of every phrasing: higher is closer, roughly within [0, 1]."""
        raise NotImplementedError

    def phrasing_scores_of(self, phrasing: int) -> np.ndarray:
        """Scores for one of the KB's own phrasings asked as a question (calibration)."""
        return self.phrasing_scores(self.phrasings[phrasing])

    def entry_scores(self, scores: np.ndarray) -> np.ndarray:
        """Best of phrasings: an entry is as close as its closest phrasing (-inf when all hidden).
        (Mixing in the mean of an entry's phrasings lowered coverage on the development folds.)"""
        grid = np.full(self._grid_shape, -np.inf)
        grid[self.phrasing_entry, self._slot_col] = scores
        return grid.max(axis=1)

    def _scored(self, scores: np.ndarray, limit: int) -> list[tuple[int, tuple[float, ...]]]:
        """The best entries, best first, with their features: score and margin over the best
        other entry (a near tie gives both a middling confidence, a clear winner a high one)."""
        entry_scores = self.entry_scores(scores)
        count = min(max(limit, 2), int(np.isfinite(entry_scores).sum()))
        if count <= 0:
            return []
        if count < len(entry_scores):
            best = np.argpartition(-entry_scores, count - 1)[:count]
        else:
            best = np.arange(len(entry_scores))
        best = best[np.argsort(-entry_scores[best], kind="stable")]
        top = [float(entry_scores[i]) for i in best]
        out = []
        for position, index in enumerate(best.tolist()[:limit]):
            rival = (top[1] if count > 1 else 0.0) if position == 0 else top[0]
            out.append((index, (top[position], top[position] - rival)))
        return out

    def rank(self, question: str, limit: int = 5) -> list[Candidate]:
        if not self.entries or not question.strip():
            return []
        out: list[Candidate] = []
        previous = 1.0
        for index, features in self._scored(self.phrasing_scores(question), limit):
            # Never above a better-ranked entry's confidence, whatever the fit did.
            confidence = min(self.calibration(features), previous)
            previous = confidence
            out.append(Candidate(self.entries[index], confidence))
        return out

    def _probe(self, probe: Probe) -> tuple[int, tuple[float, ...]] | None:
        scores = self.phrasing_scores_of(probe.phrasing).astype(float, copy=True)
        scores[self.phrasing_entry == probe.entry if probe.hide_entry else probe.phrasing] = -np.inf
        scored = self._scored(scores, 1)
        return scored[0] if scored else None
