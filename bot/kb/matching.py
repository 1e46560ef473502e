"""What every matcher shares: the `Matcher` protocol, per-entry aggregation of phrasing scores,
calibration, and the choice between answering, clarifying and escalating."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from bot.kb import calibration
from bot.kb.calibration import Calibration, Observation, Probe
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
    """Answer with the best entry when it is likely enough; offer up to three when the right one
    is likely enough among them (their confidences add up); otherwise escalate, keeping the
    guesses on record."""
    ranked = tuple(sorted(candidates, key=lambda c: c.confidence, reverse=True))
    if ranked and ranked[0].confidence >= thresholds.answer:
        return Decision(Band.ANSWER, ranked[:1])
    if ranked:
        floor = ranked[0].confidence * CLARIFY_RELATIVE_FLOOR
        offered = tuple(c for c in ranked[:CLARIFY_CHOICES] if c.confidence >= floor)
        if sum(c.confidence for c in offered) >= thresholds.clarify:
            return Decision(Band.CLARIFY, offered)
    return Decision(Band.ESCALATE, ranked[:CLARIFY_CHOICES])


class PhrasingMatcher:
    """Base for matchers that score every phrasing. An entry scores as its best phrasing; scores
    and margins are mapped to probabilities by calibrations learned on the KB itself."""

    # Each matcher sets these: its name, its thresholds, and the calibration small KBs lean on.
    name: str
    default_thresholds: Thresholds
    prior: Calibration

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
        counts = [len(e.questions) for e in self.entries]
        self._entry_starts = (
            np.cumsum([0, *counts[:-1]], dtype=np.int64) if counts and min(counts) > 0 else None
        )
        self.calibration = self.prior
        self.choice_calibration = self.prior

    def calibrate(self) -> None:
        """Learn the confidence mappings from this KB (call once the scoring is ready)."""
        self.calibration, self.choice_calibration = calibration.fit(
            self._probe, self.phrasing_entry.tolist(), self.prior
        )

    def phrasing_scores(self, question: str) -> np.ndarray:
        """The raw score of every phrasing: higher is closer, roughly within [0, 1]."""
        raise NotImplementedError

    def phrasing_scores_of(self, phrasing: int) -> np.ndarray:
        """Scores for one of the KB's own phrasings asked as a question (calibration)."""
        return self.phrasing_scores(self.phrasings[phrasing])

    def entry_scores(self, scores: np.ndarray) -> np.ndarray:
        """Best of phrasings: an entry is as close as its closest phrasing (-inf when all hidden).
        (Mixing in the mean of an entry's phrasings lowered coverage on the development folds.)"""
        if self._entry_starts is not None:
            # Each entry's phrasings are contiguous: one reduction per entry, no grid to fill.
            return np.maximum.reduceat(scores, self._entry_starts)
        grid = np.full(self._grid_shape, -np.inf)
        grid[self.phrasing_entry, self._slot_col] = scores
        return grid.max(axis=1)

    def _scored(self, scores: np.ndarray, limit: int) -> list[tuple[int, float]]:
        """The best entries and their scores, best first."""
        entry_scores = self.entry_scores(scores)
        count = min(limit, int(np.isfinite(entry_scores).sum()))
        if count <= 0:
            return []
        if count < len(entry_scores):
            best = np.argpartition(-entry_scores, count - 1)[:count]
        else:
            best = np.arange(len(entry_scores))
        best = best[np.argsort(-entry_scores[best], kind="stable")]
        return [(int(i), float(entry_scores[i])) for i in best]

    def _observe(self, scored: list[tuple[int, float]]) -> Observation:
        """Features: the best score and its margin over the runner-up (is the best one right?),
        and the best score and the margin of the choices over the next entry (is the right one
        among the choices?)."""
        padded = [score for _, score in scored] + [0.0] * (CLARIFY_CHOICES + 1)
        return Observation(
            best=scored[0][0],
            best_features=(padded[0], padded[0] - padded[1]),
            choices=tuple(index for index, _ in scored[:CLARIFY_CHOICES]),
            choice_features=(padded[0], padded[0] - padded[CLARIFY_CHOICES]),
        )

    def rank(self, question: str, limit: int = 5) -> list[Candidate]:
        """Confidences: the best entry's is P(it is right). The next entries share what the
        choices add, P(right one among the choices) - P(best is right), in proportion to their
        own score and margin behind the best; none is ever above a better-ranked one."""
        if not self.entries or not question.strip():
            return []
        scored = self._scored(self.phrasing_scores(question), max(limit, CLARIFY_CHOICES + 1))
        if not scored:
            return []
        seen = self._observe(scored)
        best = self.calibration(seen.best_features)
        among = max(self.choice_calibration(seen.choice_features), best)
        top_score = scored[0][1]
        shares = [self.calibration((score, score - top_score)) for _, score in scored[1:]]
        total = sum(shares[: CLARIFY_CHOICES - 1]) or 1.0
        out = [Candidate(self.entries[scored[0][0]], best)]
        for position, ((index, _), share) in enumerate(zip(scored[1:], shares, strict=True), start=1):
            confidence = (among - best) * share / total if position < CLARIFY_CHOICES else share
            out.append(Candidate(self.entries[index], min(confidence, out[-1].confidence)))
        return out[:limit]

    def _probe(self, probe: Probe) -> Observation | None:
        scores = self.phrasing_scores_of(probe.phrasing).astype(float, copy=True)
        scores[self.phrasing_entry == probe.entry if probe.hide_entry else probe.phrasing] = -np.inf
        scored = self._scored(scores, CLARIFY_CHOICES + 1)
        return self._observe(scored) if scored else None
