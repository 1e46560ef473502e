"""What every matcher shares: the `Matcher` protocol, per-entry aggregation of phrasing scores,
calibration, and the choice between answering, clarifying and escalating."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from bot.kb import calibration, simulation
from bot.kb.calibration import OUT_OF_SCOPE_SHARE, Calibration, FitStatus
from bot.kb.model import Band, Candidate, Decision, KBEntry, Thresholds
from bot.kb.simulation import BoolArray, FloatArray, IntArray, Simulation

CLARIFY_CHOICES = 3
# In a "did you mean", an entry far less likely than the best one is noise, not a choice.
CLARIFY_RELATIVE_FLOOR = 0.25
# Scores this close to the best are a tie (float noise on identical phrasings).
TIE = 1e-6


@runtime_checkable
class Matcher(Protocol):
    """Ranks entries for a question; `confidence` is the calibrated probability of being right."""

    name: str
    default_thresholds: Thresholds
    entries: tuple[KBEntry, ...]
    calibration: Calibration
    choice_calibration: Calibration
    fit_status: FitStatus
    simulation: Simulation | None

    def rank(self, question: str, limit: int = 5) -> list[Candidate]: ...


def decide(candidates: Sequence[Candidate], thresholds: Thresholds) -> Decision:
    """Answer with the best entry when it is likely enough; offer up to three when the right one
    is likely enough among them (their confidences add up); otherwise escalate, keeping the
    guesses on record."""
    ranked = tuple(sorted(candidates, key=lambda c: c.confidence, reverse=True))
    if ranked and ranked[0].entry.declined:
        # Staff said questions like this are not the bot's to answer, however sure it is.
        articles = tuple(c for c in ranked if not c.entry.declined)
        return Decision(Band.ESCALATE, articles[:CLARIFY_CHOICES], declined=ranked[0].entry.id)
    ranked = tuple(c for c in ranked if not c.entry.declined)
    if ranked and not thresholds.close_enough(ranked[0]):
        # Farther from its best article than nearly all of the KB's own phrasings are: where most
        # questions have no entry, that is a near-twin of the article asking something else,
        # however sure the calibration, and offering its neighbours would be a guess as well.
        return Decision(Band.ESCALATE, ranked[:CLARIFY_CHOICES])
    if ranked and ranked[0].confidence >= thresholds.answer:
        return Decision(Band.ANSWER, ranked[:1])
    if ranked:
        floor = ranked[0].confidence * CLARIFY_RELATIVE_FLOOR
        offered = tuple(c for c in ranked[:CLARIFY_CHOICES] if c.confidence >= floor)
        if sum(c.confidence for c in offered) >= thresholds.clarify:
            return Decision(Band.CLARIFY, offered)
    return Decision(Band.ESCALATE, ranked[:CLARIFY_CHOICES])


def answer_confidence(candidates: Sequence[Candidate]) -> float:
    """How likely the best entry is a right answer, as the traffic estimate reads it: 0 when there
    is none, or when it is a declined topic (an unknown question, however close)."""
    return candidates[0].confidence if candidates and not candidates[0].entry.declined else 0.0


def features(scores: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Each row's calibration features from its best entries' scores (NaN where there is none,
    counted as 0): (best score, margin over the runner-up) says whether the best entry is right;
    (best score, margin of the choices over the next entry) whether the right one is among them."""
    padded = np.where(np.isnan(scores), 0.0, scores)
    top = padded[:, 0]
    best = np.column_stack([top, top - padded[:, 1]])
    choice = np.column_stack([top, top - padded[:, CLARIFY_CHOICES]])
    return best, choice


def confidences(scores: FloatArray, best: Calibration, choice: Calibration) -> FloatArray:
    """Confidences of each row's best entries (NaN where there is none). The first is P(it is
    right). The next two share what the choices add, P(right one among the choices) - P(best is
    right), in proportion to their own score and margin behind the best; later ones get their own
    P(right); none is ever above a better-ranked one."""
    present = ~np.isnan(scores)
    padded = np.where(present, scores, 0.0)
    best_features, choice_features = features(scores)
    first = best.many(best_features)
    among = np.maximum(choice.many(choice_features), first)
    shares = np.zeros_like(padded)
    for column in range(1, scores.shape[1]):
        own = np.column_stack([padded[:, column], padded[:, column] - padded[:, 0]])
        shares[:, column] = np.where(present[:, column], best.many(own), 0.0)
    total = shares[:, 1:CLARIFY_CHOICES].sum(axis=1)
    total = np.where(total > 0, total, 1.0)
    out = shares.copy()
    out[:, 0] = first
    out[:, 1:CLARIFY_CHOICES] = (among - first)[:, None] * shares[:, 1:CLARIFY_CHOICES] / total[:, None]
    out = np.minimum.accumulate(out, axis=1)
    # Entries that tie with the best (e.g. the same question written in two entries) cannot be told
    # apart: each is as likely as the others, and together they are as likely as the best alone was.
    tied = present & (padded >= padded[:, :1] - TIE)
    count = tied.sum(axis=1)
    shared = np.where(count > 1, first / np.maximum(count, 1), first)
    out = np.where(tied, shared[:, None], np.minimum(out, shared[:, None]))
    result: FloatArray = np.where(present, out, np.nan)
    return result


def offered(confidence: FloatArray) -> BoolArray:
    """Which of each row's best entries a "did you mean" would offer (as `decide` does)."""
    top = confidence[:, :CLARIFY_CHOICES]
    floor = confidence[:, :1] * CLARIFY_RELATIVE_FLOOR
    chosen: BoolArray = ~np.isnan(top) & (np.nan_to_num(top, nan=-1.0) >= floor)
    return chosen


class PhrasingMatcher:
    """Base for matchers that score every phrasing. An entry scores as its best phrasing; scores
    and margins are mapped to probabilities by calibrations learned on the KB itself."""

    # Each matcher sets these: its name, its thresholds, and the calibration small KBs lean on.
    name: str
    default_thresholds: Thresholds
    prior: Calibration
    # Phrasings asked of the KB while calibrating (a fixed sample above this).
    max_probes = simulation.MAX_PROBES

    def __init__(self, entries: Sequence[KBEntry]) -> None:
        self.entries = tuple(entries)
        self.phrasings = [q for entry in self.entries for q in entry.questions]
        self.phrasing_entry: IntArray = np.array(
            [i for i, entry in enumerate(self.entries) for _ in entry.questions], dtype=np.int64
        )
        # Phrasing scores are laid out as a grid, one row per entry, to aggregate without a loop.
        self._slot_col = np.array([j for e in self.entries for j in range(len(e.questions))], dtype=np.int64)
        width = max((len(e.questions) for e in self.entries), default=1)
        self._grid_shape = (len(self.entries), width)
        counts = [len(e.questions) for e in self.entries]
        self._entry_starts: IntArray | None = (
            np.cumsum([0, *counts[:-1]], dtype=np.int64) if counts and min(counts) > 0 else None
        )
        self.calibration = self.prior
        self.choice_calibration = self.prior
        self.fit_status = FitStatus.TOO_FEW
        self.simulation: Simulation | None = None

    def calibrate(self) -> None:
        """Ask the KB its own phrasings (see `bot.kb.simulation`) and learn from the answers how
        often features like these were right (call once the scoring is ready)."""
        sim = simulation.simulate(self, limit=self.max_probes)
        self.simulation = sim
        in_scope = sim.findable
        rows = np.concatenate([sim.in_scope.scores[in_scope], sim.out_of_scope.scores])
        own = sim.asked[in_scope]
        right = np.concatenate([sim.in_scope.entries[in_scope, 0] == own, np.zeros(sim.size, dtype=bool)])
        among = np.concatenate(
            [(sim.in_scope.entries[in_scope, :CLARIFY_CHOICES] == own[:, None]).any(axis=1),
             np.zeros(sim.size, dtype=bool)]
        )  # fmt: skip
        # In-scope and out-of-scope probes each weigh their assumed share of real questions.
        found = int(in_scope.sum())
        weights = np.concatenate(
            [np.full(found, (1.0 - OUT_OF_SCOPE_SHARE) / max(found, 1)),
             np.full(sim.size, OUT_OF_SCOPE_SHARE / max(sim.size, 1))]
        )  # fmt: skip
        groups = np.concatenate([own, sim.asked])
        best_features, choice_features = features(rows)
        best = calibration.fit(best_features, right, weights, self.prior, groups=groups)
        choice = calibration.fit(choice_features, among, weights, self.prior, groups=groups)
        self.calibration = best.calibration
        self.choice_calibration = choice.calibration
        self.fit_status = best.status

    def phrasing_scores(self, question: str) -> FloatArray:
        """The raw score of every phrasing: higher is closer, roughly within [0, 1]."""
        raise NotImplementedError

    def phrasing_scores_of(self, phrasing: int) -> FloatArray:
        """Scores for one of the KB's own phrasings asked as a question (calibration)."""
        return self.phrasing_scores(self.phrasings[phrasing])

    def probe_entry_scores(self, phrasings: IntArray) -> Iterator[FloatArray]:
        """Entry scores for each of these phrasings asked as a question with itself hidden, in
        blocks of rows. Matchers that can score many phrasings at once override it."""
        block: list[FloatArray] = []
        for phrasing in phrasings.tolist():
            scores = self.phrasing_scores_of(phrasing).astype(float, copy=True)
            scores[phrasing] = -np.inf
            block.append(self.entry_scores(scores))
            if len(block) == 256:
                yield np.vstack(block)
                block = []
        if block:
            yield np.vstack(block)

    def probe_out_of_scope_scores(self, phrasings: IntArray) -> Iterator[FloatArray] | None:
        """Hiding an entry only removes its own scores unless a matcher says otherwise."""
        return None

    def entry_scores(self, scores: FloatArray) -> FloatArray:
        """Best of phrasings: an entry is as close as its closest phrasing (-inf when all hidden).
        (Mixing in the mean of an entry's phrasings lowered coverage on the development folds.)"""
        if self._entry_starts is not None:
            # Each entry's phrasings are contiguous: one reduction per entry, no grid to fill.
            reduced: FloatArray = np.maximum.reduceat(scores, self._entry_starts)
            return reduced
        grid = np.full(self._grid_shape, -np.inf)
        grid[self.phrasing_entry, self._slot_col] = scores
        maxima: FloatArray = grid.max(axis=1)
        return maxima

    def _scored(self, scores: FloatArray, limit: int) -> list[tuple[int, float]]:
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

    def rank(self, question: str, limit: int = 5) -> list[Candidate]:
        """The best entries with their confidences (see `confidences`), best first."""
        if not self.entries or not question.strip():
            return []
        scored = self._scored(self.phrasing_scores(question), max(limit, CLARIFY_CHOICES + 1))
        if not scored:
            return []
        width = max(limit, CLARIFY_CHOICES + 1)
        row = np.full((1, width), np.nan)
        row[0, : len(scored)] = [score for _, score in scored]
        confidence = confidences(row, self.calibration, self.choice_calibration)[0]
        out = [
            Candidate(self.entries[index], float(value), closeness=score)
            for (index, score), value in zip(scored, confidence.tolist(), strict=False)
        ]
        return out[:limit]
