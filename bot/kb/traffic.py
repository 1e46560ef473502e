"""How much of a KB's real traffic has no entry, estimated from the questions alone (no labels).

Answered precision depends on it: the same out-of-scope leak costs little when a quarter of the
questions have no entry and a lot when most have none, which is what real support traffic brings.
The KB's own simulation gives the confidence a question gets when it has an entry and when it has
none; the traffic's confidences are a mixture of the two, and the mixture's weight is the share
(expectation-maximisation over a histogram of the best entry's confidence, the two shapes fixed).

Real out-of-scope questions need not look like the simulated ones (off-topic chatter scores lower
than a hidden entry's phrasings), so a second figure leans on the in-scope shape alone, which the
simulation tracks well: a question with an entry reaches confidence c with probability P_in(>= c),
so traffic that reaches it less often must hold at least 1 - P_traffic(>= c) / P_in(>= c) questions
without one, whatever those look like.

Traffic only ever makes the operating point stricter: the share assumed is never below
`UNKNOWN_SHARE`, the figure the constants were chosen with (research/notes/kb_operating_point.md),
and the estimate is replaced by its upper bound, as an underestimate is what costs precision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.kb.simulation import FloatArray

# Answered precision is estimated for traffic where at least a third of the questions have no
# entry: more than our development sets' quarter, as real support traffic often brings more.
UNKNOWN_SHARE = 1 / 3
# Never assume more than this: at a share near 1 no threshold is precise and the bot would answer
# nothing at all; that is a knowledge base to extend, which `kb check` says.
MAX_SHARE = 0.9
# Fewer questions (or probes of either kind) than this say too little: the floor stays. (Below 40
# probes the operating point keeps the matcher's defaults anyway; the share then only changes the
# precision `kb check` expects there.)
MIN_QUESTIONS = 100
MIN_PROBES = 20
# When the two shapes are too alike to tell apart (the estimate's standard error above this), the
# mixture says nothing and only the in-scope bound counts.
MAX_SPREAD = 0.15
# Traffic where more than this share likely has no entry is mostly unknown questions, in the KB's own
# domain: their near-twins of an article get confidences as high as its own questions (the KB's
# simulation cannot show it, lacking the twins), so an answer there also needs the question to be
# closer to its article than CLOSENESS_QUANTILE of the KB's own phrasings are to their siblings
# (`operating_point.closeness_floor`): a question that close is a rephrasing, not a twin. Chosen on
# Banking77's mostly-unknown stand-ins (both matchers), measured on HWU64's:
# research/notes/kb_operating_point.md.
MOSTLY_UNKNOWN = 0.5
CLOSENESS_QUANTILE = 0.9
# One-sided bound on the estimate, in standard errors (95%).
BOUND_Z = 1.645
_BINS = np.linspace(0.0, 1.0, 21)
_ROUNDS = 500


@dataclass(frozen=True, slots=True)
class TrafficShare:
    """The share of `questions` recent questions estimated to have no entry (`estimate`), its
    upper bound, and the share the operating point is chosen for (`assumed`)."""

    questions: int
    estimate: float
    upper: float
    at_least: float
    """The bound from the in-scope shape alone (see the module)."""
    telling: bool = True
    """False when the two shapes are too alike for the mixture to say anything: only `at_least`
    counts then."""

    @property
    def assumed(self) -> float:
        upper = self.upper if self.telling else 0.0
        return max(UNKNOWN_SHARE, min(max(upper, self.at_least), MAX_SHARE))

    @property
    def mostly_unknown(self) -> bool:
        """Whether most of the traffic likely has no entry and looks like the KB's own unknowns, its
        hidden entries' phrasings: near-twins, which the closeness floor is for (`MOSTLY_UNKNOWN`).
        By the mixture's estimate itself, not its upper bound, since the floor costs a KB most of its
        answers, and traffic with a third or so unknown should keep them (its bound alone can pass a
        half). Not by the in-scope lower bound when the mixture can tell: unknowns it does not see
        as the KB's own (off-topic chatter) are far from every article anyway, and the stricter
        threshold their share brings already holds them. When the two shapes are too alike to tell,
        the lower bound is all there is."""
        return (self.estimate if self.telling else self.at_least) > MOSTLY_UNKNOWN

    def describe(self) -> str:
        mixture = (
            f"about {self.estimate:.0%} with no entry"
            f" (at least {self.at_least:.0%}, at most {self.upper:.0%})"
            if self.telling
            else f"at least {self.at_least:.0%} with no entry (the KB's own probes cannot tell more)"
        )
        return (
            f"recent traffic: {self.questions} questions, {mixture};"
            f" precision aimed at {self.assumed:.0%} without one"
        )


def _shape(confidence: FloatArray) -> FloatArray:
    """A histogram of confidences as a distribution; half a count spread over the bins keeps every
    bin possible without flattening the shape of a small KB's few probes."""
    counts = np.histogram(np.clip(np.nan_to_num(confidence), 0.0, 1.0), bins=_BINS)[0] + 0.5 / (
        len(_BINS) - 1
    )
    shape: FloatArray = counts / counts.sum()
    return shape


def estimate(
    in_scope: FloatArray, out_of_scope: FloatArray, observed: Sequence[float] | FloatArray
) -> TrafficShare | None:
    """The share of `observed` best-entry confidences that look like the out-of-scope probes'
    rather than the in-scope ones'. None with too few questions or probes to tell."""
    seen = np.asarray(observed, dtype=float)
    if len(seen) < MIN_QUESTIONS or min(len(in_scope), len(out_of_scope)) < MIN_PROBES:
        return None
    inside, outside = _shape(in_scope), _shape(out_of_scope)
    counts = np.histogram(np.clip(np.nan_to_num(seen), 0.0, 1.0), bins=_BINS)[0].astype(float)
    share = 0.5
    for _ in range(_ROUNDS):
        mixture = share * outside + (1 - share) * inside
        updated = float((counts * share * outside / mixture).sum() / counts.sum())
        if abs(updated - share) < 1e-7:
            share = updated
            break
        share = updated
    # Fisher information of the mixture weight, per question: sum over bins of (f_out - f_in)^2 / m.
    # The shapes are samples too: their probes count as a second sample of the same information
    # (fewer independent ones than it seems, as an entry's phrasings go together).
    mixture = share * outside + (1 - share) * inside
    information = float(((outside - inside) ** 2 / mixture).sum())
    probes = min(len(in_scope), len(out_of_scope))
    spread = math.sqrt(1 / len(seen) + 1 / probes) / math.sqrt(information) if information > 0 else 1.0
    return TrafficShare(
        questions=len(seen),
        estimate=share,
        upper=min(share + BOUND_Z * spread, 1.0),
        at_least=_at_least(np.nan_to_num(in_scope), np.nan_to_num(seen)),
        telling=spread <= MAX_SPREAD,
    )


def _at_least(in_scope: FloatArray, seen: FloatArray) -> float:
    """The lower bound at the confidence three in four in-scope probes reach, with both rates'
    sampling error taken against it. Higher levels would give tighter bounds on paper, but real
    questions with an entry are a little less sure than the probes there, and the bound would count
    them as unknown."""
    level = float(np.quantile(in_scope, 0.25))
    if level >= float(in_scope.max()):
        return 0.0  # a quarter of the probes tie at the top: questions just below it prove nothing
    p_in, p_seen = float((in_scope >= level).mean()), float((seen >= level).mean())
    error = math.sqrt(p_seen * (1 - p_seen) / len(seen)) + p_seen / p_in * math.sqrt(
        p_in * (1 - p_in) / len(in_scope)
    )
    return max(0.0, 1 - (p_seen + BOUND_Z * error) / p_in)
