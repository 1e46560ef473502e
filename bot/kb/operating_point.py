"""Where a knowledge base answers, offers choices, or escalates: chosen per KB, at load, from the
KB's own simulation (`bot.kb.simulation`), for the targets a team states rather than raw scores.

Among a grid of (answer, clarify) thresholds, the chosen pair answers as many simulated in-scope
questions right as it can (a right entry among offered choices counts `CLARIFY_VALUE` of a right
answer), while:
- answered precision is at least ANSWER_PRECISION on traffic where `unknown_share` of the
  questions have no entry (`UNKNOWN_SHARE`, or more when the KB's real traffic shows more:
  `bot.kb.traffic`);
- out-of-scope questions are escalated (neither answered nor offered choices) at least
  ESCALATE_UNKNOWN of the time, with a safety margin;
- a "did you mean" holds the right entry at least `CLARIFY_HIT` of the time.

The margin: the simulated escape rate comes from a finite number of probes, and the probes of one
entry escape together (a near-twin entry leaks all its phrasings), so it is replaced by the end of
a one-sided `CONFIDENCE_Z` interval whose variance is taken between entries. When no pair meets the
targets the KB gets the answer threshold that comes closest, offers no choices, and says so; a KB
too small to simulate keeps the matcher's default thresholds. How the constants were chosen (on
Banking77's training phrasings only): research/notes/kb_operating_point.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from bot.kb.calibration import Calibration
from bot.kb.matching import CLARIFY_CHOICES, TIE, confidences, offered
from bot.kb.model import Thresholds
from bot.kb.simulation import BoolArray, FloatArray, IntArray, Simulation
from bot.kb.traffic import CLOSENESS_QUANTILE, UNKNOWN_SHARE

# One-sided margin on the simulated escape rate, in standard errors (between entries): 95%.
CONFIDENCE_Z = 1.645
# A "did you mean" must hold the right entry this often (the product's target).
CLARIFY_HIT = 0.8
# A right entry among choices is worth a quarter of a right answer: the customer still has to read
# and pick, so offering choices never wins over answering what can be answered.
CLARIFY_VALUE = 0.25
# Bounds: never answer what is more likely wrong than right, and never demand more than 0.99 (the
# simulation cannot tell finer confidences apart). Choices are offered on the same scale.
ANSWER_GRID = tuple(round(0.5 + 0.01 * i, 2) for i in range(50))
CLARIFY_GRID = ANSWER_GRID
NO_CLARIFY = 1.0
# With fewer probes or entries than these, no rate can be vouched for: the defaults stay.
MIN_PROBES = 40
MIN_ENTRIES = 10
# A "closest" point must still be right more often than wrong, and escalate most unknowns.
CLOSEST_FLOOR = 0.5


@dataclass(frozen=True, slots=True)
class Targets:
    """What a team asks of its bot: ANSWER_PRECISION and ESCALATE_UNKNOWN."""

    answer_precision: float = 0.95
    escalate_unknown: float = 0.95


class Source(StrEnum):
    SIMULATED = "simulated"
    """Chosen for the targets, which the simulation meets there."""
    CLOSEST = "closest"
    """No pair meets the targets on this KB; the answer threshold that comes closest."""
    DEFAULT = "default"
    """Too few phrasings or entries to simulate: the matcher's default thresholds."""
    SETTING = "setting"
    """ANSWER_THRESHOLD / CLARIFY_THRESHOLD."""


NOTES = {
    Source.SIMULATED: "",
    Source.CLOSEST: (
        "no threshold meets the targets on this KB's own phrasings: answering only where it comes "
        "closest; expect more wrong answers or escalations (see the confusable pairs)"
    ),
    Source.DEFAULT: (
        "too few entries or phrasings to simulate: using the default thresholds; expect to escalate more"
    ),
    Source.SETTING: "",
}


@dataclass(frozen=True, slots=True)
class Expected:
    """Simulated figures at an operating point, over the KB's own probes. `precision` is None when
    nothing is answered, `clarify_hit` when nothing is clarified."""

    precision: float | None
    coverage: float
    oos_escalated: float
    clarified: float
    clarify_hit: float | None


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    thresholds: Thresholds
    source: Source
    expected: Expected | None
    unknown_share: float = UNKNOWN_SHARE
    """The share of questions with no entry that precision was estimated for."""

    @property
    def note(self) -> str:
        return NOTES[self.source]

    def describe(self) -> str:
        """One line for `kb check`, the load log and the reload summary."""
        t = self.thresholds
        clarify = "no choices offered" if t.clarify >= NO_CLARIFY else f"clarify >= {t.clarify:.2f}"
        close = (
            ""
            if t.closeness is None
            else f", either only for a question closer to its article than {CLOSENESS_QUANTILE:.0%}"
            " of the articles' own phrasings"
        )
        head = f"answer >= {t.answer:.2f}, {clarify}{close} ({self.source.value})"
        e = self.expected
        if e is None:
            return head
        precision = "n/a (nothing answered)" if e.precision is None else f"{e.precision:.2f}"
        hit = "" if e.clarify_hit is None else f" (right entry among them {e.clarify_hit:.2f})"
        return (
            f"{head}; on its own phrasings: answered precision {precision}"
            f" (if {self.unknown_share:.0%} of questions have no entry), coverage {e.coverage:.2f},"
            f" out-of-scope escalated {e.oos_escalated:.2f}, clarified {e.clarified:.2f}{hit}"
        )


@dataclass(frozen=True, slots=True)
class Outcomes:
    """For each probe: the best entry's confidence, the summed confidence of the choices a "did
    you mean" would offer, whether the best entry is right and whether the right one is offered
    (both False out of scope), and the probe's entry (its cluster)."""

    confidence: FloatArray
    offered: FloatArray
    right: BoolArray
    hit: BoolArray
    cluster: IntArray
    closeness: FloatArray | None = None
    """The best entry's own score (before calibration; -inf where there is none), which a
    closeness floor is judged on; None: not kept (no floor applies)."""

    def answered(self, thresholds: Thresholds) -> tuple[BoolArray, BoolArray]:
        """Which probes `decide` answers at `thresholds`, and which the closeness floor holds back
        (those it escalates, however sure: no choices are offered for them either)."""
        sure = self.confidence >= thresholds.answer
        if thresholds.closeness is None or self.closeness is None:
            return sure, np.zeros_like(sure)
        close = self.closeness >= thresholds.closeness
        return sure & close, ~close

    @classmethod
    def of(
        cls,
        scores: FloatArray,
        entries: IntArray,
        own: IntArray,
        best: Calibration,
        choice: Calibration,
        cluster: IntArray | None = None,
        declined: BoolArray | None = None,
    ) -> Outcomes:
        """From each question's best entries and scores (as `Ranked` holds them); `own` is the
        right entry (-1: none). A question whose best entry is `declined` is escalated, and a
        declined topic further down is never offered (as `decide` does)."""
        confidence = confidences(scores, best, choice)
        if declined is not None and declined.any():
            blocked = (entries >= 0) & declined[np.maximum(entries, 0)]
            confidence = np.where(blocked | blocked[:, :1], 0.0, confidence)
        chosen = offered(confidence)
        top = np.nan_to_num(confidence[:, :CLARIFY_CHOICES])
        return cls(
            confidence=np.nan_to_num(confidence[:, 0], nan=0.0),
            offered=np.where(chosen, top, 0.0).sum(axis=1),
            right=(entries[:, 0] == own) & (own >= 0),
            hit=(chosen & (entries[:, :CLARIFY_CHOICES] == own[:, None])).any(axis=1) & (own >= 0),
            cluster=own if cluster is None else cluster,
            closeness=np.where(np.isnan(scores[:, 0]), -np.inf, scores[:, 0]),
        )


def outcomes(simulation: Simulation, best: Calibration, choice: Calibration) -> tuple[Outcomes, Outcomes]:
    """In-scope outcomes (probes whose entry has something left to find) and out-of-scope ones."""
    found = simulation.findable
    own = simulation.asked
    declined = simulation.declined
    in_scope = Outcomes.of(
        simulation.in_scope.scores[found],
        simulation.in_scope.entries[found],
        own[found],
        best,
        choice,
        declined=declined,
    )
    nobody = np.full(len(own), -1, dtype=np.int64)
    out_of_scope = Outcomes.of(
        simulation.out_of_scope.scores,
        simulation.out_of_scope.entries,
        nobody,
        best,
        choice,
        cluster=own,
        declined=declined,
    )
    return in_scope, out_of_scope


def closeness_floor(in_scope: Outcomes) -> float | None:
    """The score above `CLOSENESS_QUANTILE` of the right in-scope probes' (each phrasing asked
    with itself hidden, answered by its own entry): a question whose best entry scores at least
    this is closer to it than nearly all of the KB's phrasings are to their siblings. None with too
    few right probes to place it."""
    if in_scope.closeness is None or int(in_scope.right.sum()) < MIN_PROBES:
        return None
    # Lowered by a tie's width: a probe's score (its phrasing hidden by arithmetic) and a live
    # question's (scored afresh) differ in the last digits, and where phrasings written twice put the
    # quantile at the top score, a question asked word for word would otherwise fall below it.
    return float(np.quantile(in_scope.closeness[in_scope.right], CLOSENESS_QUANTILE)) - TIE


def expected_at(
    in_scope: Outcomes, out_of_scope: Outcomes, thresholds: Thresholds, unknown_share: float = UNKNOWN_SHARE
) -> Expected:
    c = thresholds.clarify
    answered, held = in_scope.answered(thresholds)
    clarified = ~answered & ~held & (in_scope.offered >= c)
    oos_answered, oos_held = out_of_scope.answered(thresholds)
    oos_clarified = ~oos_answered & ~oos_held & (out_of_scope.offered >= c)
    n_in, n_out = max(len(answered), 1), max(len(oos_answered), 1)
    right = float((answered & in_scope.right).sum() / n_in)
    wrong = float((answered & ~in_scope.right).sum() / n_in)
    return Expected(
        precision=_precision(right, wrong, float(oos_answered.sum() / n_out), unknown_share),
        coverage=right,
        oos_escalated=float(1 - (oos_answered | oos_clarified).sum() / n_out),
        clarified=float(clarified.sum() / n_in),
        clarify_hit=float((clarified & in_scope.hit).sum() / clarified.sum()) if clarified.any() else None,
    )


def _precision(right: float, wrong: float, leak: float, unknown_share: float) -> float | None:
    answered = (1 - unknown_share) * (right + wrong) + unknown_share * leak
    return (1 - unknown_share) * right / answered if answered > 0 else None


def choose(
    simulation: Simulation | None,
    best: Calibration,
    choice: Calibration,
    targets: Targets,
    default: Thresholds,
    *,
    unknown_share: float = UNKNOWN_SHARE,
) -> OperatingPoint:
    """The operating point for a KB whose matcher simulated itself as `simulation`, for traffic
    where `unknown_share` of the questions have no entry."""
    if simulation is None:
        return OperatingPoint(default, Source.DEFAULT, None, unknown_share)
    in_scope, out_of_scope = outcomes(simulation, best, choice)
    if (
        len(in_scope.confidence) < MIN_PROBES
        or len(out_of_scope.confidence) < MIN_PROBES
        or len(np.unique(out_of_scope.cluster)) < MIN_ENTRIES
    ):
        expected = expected_at(in_scope, out_of_scope, default, unknown_share)
        return OperatingPoint(default, Source.DEFAULT, expected, unknown_share)
    picked, met = _search(in_scope, out_of_scope, targets, unknown_share)
    source = Source.SIMULATED if met else Source.CLOSEST
    return OperatingPoint(
        picked, source, expected_at(in_scope, out_of_scope, picked, unknown_share), unknown_share
    )


def at_setting(
    simulation: Simulation | None,
    best: Calibration,
    choice: Calibration,
    thresholds: Thresholds,
    *,
    unknown_share: float = UNKNOWN_SHARE,
) -> OperatingPoint:
    """A fixed pair (ANSWER_THRESHOLD / CLARIFY_THRESHOLD), with what the simulation expects there."""
    if simulation is None or not simulation.findable.any():
        return OperatingPoint(thresholds, Source.SETTING, None, unknown_share)
    in_scope, out_of_scope = outcomes(simulation, best, choice)
    expected = expected_at(in_scope, out_of_scope, thresholds, unknown_share)
    return OperatingPoint(thresholds, Source.SETTING, expected, unknown_share)


def _search(
    in_scope: Outcomes, out_of_scope: Outcomes, targets: Targets, unknown_share: float = UNKNOWN_SHARE
) -> tuple[Thresholds, bool]:
    """The best pair meeting the targets (True), else the answer threshold closest to them."""
    clarify = np.array([*CLARIFY_GRID, NO_CLARIFY])
    escape = _EscapeBound(out_of_scope.cluster)
    n_in, n_out = len(in_scope.confidence), len(out_of_scope.confidence)
    best: tuple[float, Thresholds] | None = None
    closest: tuple[float, float] | None = None
    for answer in ANSWER_GRID:
        answered_in = in_scope.confidence >= answer
        answered_out = out_of_scope.confidence >= answer
        coverage = float((answered_in & in_scope.right).sum() / n_in)
        precision = _precision(
            coverage,
            float((answered_in & ~in_scope.right).sum() / n_in),
            float(answered_out.sum() / n_out),
            unknown_share,
        )
        # Every clarify threshold at once: one column each (the last offers no choices).
        asked_in = (~answered_in)[:, None] & (in_scope.offered[:, None] >= clarify[None, :])
        asked_out = (~answered_out)[:, None] & (out_of_scope.offered[:, None] >= clarify[None, :])
        escalated = 1 - escape.upper(answered_out[:, None] | asked_out)
        precise = precision is not None and precision >= targets.answer_precision
        if coverage > 0 and precision is not None and min(precision, escalated[-1]) >= CLOSEST_FLOOR:
            slack = min(precision - targets.answer_precision, escalated[-1] - targets.escalate_unknown)
            if closest is None or slack > closest[0]:
                closest = (slack, answer)
        if not precise:
            continue
        hits = asked_in & in_scope.hit[:, None]
        clarified = asked_in.sum(axis=0)
        hit_share = np.divide(hits.sum(axis=0), clarified, out=np.ones(len(clarify)), where=clarified > 0)
        ok = (escalated >= targets.escalate_unknown) & (hit_share >= CLARIFY_HIT)
        if not ok.any():
            continue
        value = np.where(ok, coverage + CLARIFY_VALUE * hits.sum(axis=0) / n_in, -1.0)
        pick = int(np.argmax(value))  # the first of equals: the loosest clarify threshold
        if best is None or value[pick] > best[0] + 1e-12:
            best = (float(value[pick]), Thresholds(answer=answer, clarify=float(clarify[pick])))
    if best is not None:
        return best[1], True
    answer = closest[1] if closest is not None else ANSWER_GRID[-1]
    return Thresholds(answer=answer, clarify=NO_CLARIFY), False


class _EscapeBound:
    """Upper bounds on the share of out-of-scope probes that get through, for many thresholds at
    once. The probes of one entry get through together, so the variance is taken between entries;
    it is never below the binomial one with `CONFIDENCE_Z`²/2 added to each side (Agresti-Coull),
    so a handful of probes cannot vouch for a rate of zero."""

    def __init__(self, cluster: IntArray) -> None:
        self.order = np.argsort(cluster, kind="stable")
        ordered = cluster[self.order]
        self.starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        self.n = len(cluster)
        self.groups = len(self.starts)

    def upper(self, through: BoolArray) -> FloatArray:
        y = through.reshape(self.n, -1).astype(float)
        share = y.mean(axis=0)
        residual = np.add.reduceat((y - share)[self.order], self.starts, axis=0)
        between = (residual**2).sum(axis=0) / self.n**2 * self.groups / max(self.groups - 1, 1)
        z2 = CONFIDENCE_Z**2
        smoothed = (y.sum(axis=0) + z2 / 2) / (self.n + z2)
        floor = smoothed * (1 - smoothed) / (self.n + z2)
        upper: FloatArray = np.minimum(share + CONFIDENCE_Z * np.sqrt(np.maximum(between, floor)), 1.0)
        return upper
