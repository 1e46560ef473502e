"""Turns a matcher's raw features into probabilities, learned from the knowledge base itself.

The KB's own phrasings are the training data (see `bot.kb.simulation`): each phrasing asked with
only itself hidden (its entry is still there: a right top answer is a success) and asked with its
whole entry hidden (nothing is right to answer: an out-of-scope stand-in). A small logistic
regression on the matcher's features (top score, margin over the runner-up, ...) then says how
often such features were right.

The fit cannot degenerate: it is a penalised (MAP) fit pulled towards the matcher's documented
prior, solved by damped Newton steps on a strictly convex objective, and its result is checked
(finite, within `BIAS_BOUND` / `SLOPE_BOUND`, never lower confidence for a higher score). A KB too
small to say anything, or so separable that only the bounds would stop the fit, keeps the prior.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

# Questions no entry can answer are assumed to be as common as answerable ones: a cautious prior
# that does not depend on any data set's mix (real support traffic is often mostly out of scope).
OUT_OF_SCOPE_SHARE = 0.5
# Below these, a fit says more about chance than about the KB: keep the prior.
MIN_RIGHT = 10
MIN_WRONG = 10
MIN_ENTRIES = 3
# Features are scores and margins within about [-1, 1]: a slope of 100 already turns a 0.05 score
# difference into 5 logits. A fit that wants more than these is reading separation, not rates.
BIAS_BOUND = 60.0
SLOPE_BOUND = 100.0
# Strength of the pull towards the prior, in probes' worth of evidence: a KB of a few dozen
# phrasings moves the calibration a little, one of hundreds is ruled by its own data.
PRIOR_STRENGTH = 2.0


class FitStatus(StrEnum):
    FITTED = "fitted"
    TOO_FEW = "too_few"
    SEPARABLE = "separable"
    UNSTABLE = "unstable"


FIT_NOTES = {
    FitStatus.FITTED: "",
    FitStatus.TOO_FEW: "too few phrasings to calibrate: using the default prior; expect to escalate more",
    FitStatus.SEPARABLE: (
        "the KB's entries never answer each other's phrasings, so how fast confidence rises cannot be "
        "learned from it: using the default prior's slopes, placed on this KB"
    ),
    FitStatus.UNSTABLE: "the calibration did not settle: using the default prior",
}


@dataclass(frozen=True, slots=True)
class Calibration:
    """P(right) = sigmoid(bias + weights · features)."""

    bias: float
    weights: tuple[float, ...]

    def __call__(self, features: Sequence[float]) -> float:
        # Plain floats: called several times per question, and numpy's per-call overhead on two
        # numbers cost more than the arithmetic.
        z = self.bias + sum(w * f for w, f in zip(self.weights, features, strict=True))
        return 1.0 / (1.0 + math.exp(-min(40.0, max(-40.0, z))))

    def many(self, features: FloatArray) -> FloatArray:
        """The same for many rows of features at once (one row per question)."""
        z = self.bias + features @ np.asarray(self.weights, dtype=float)
        out: FloatArray = 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))
        return out

    def sane(self) -> bool:
        """Finite, within the bounds, and monotone: a higher score never lowers confidence."""
        values = (self.bias, *self.weights)
        return (
            all(math.isfinite(v) for v in values)
            and abs(self.bias) <= BIAS_BOUND
            and all(0.0 <= w <= SLOPE_BOUND for w in self.weights)
        )


@dataclass(frozen=True, slots=True)
class Fit:
    calibration: Calibration
    status: FitStatus

    @property
    def note(self) -> str:
        return FIT_NOTES[self.status]


def fit(
    features: FloatArray,
    right: NDArray[np.bool_],
    weights: FloatArray,
    prior: Calibration,
    *,
    groups: NDArray[np.int64] | None = None,
) -> Fit:
    """P(right | features) by weighted logistic regression, pulled towards `prior`, checked.
    `groups` (one per row, e.g. the probe's entry) only serves the "too few" test."""
    features = np.asarray(features, dtype=float).reshape(len(right), -1)
    y = np.asarray(right, dtype=float)
    w = np.asarray(weights, dtype=float)
    keep = w > 0
    features, y, w = features[keep], y[keep], w[keep]
    entries = len(np.unique(groups[keep])) if groups is not None else len(y)
    if int(y.sum()) < MIN_RIGHT or int((1 - y).sum()) < MIN_WRONG or entries < MIN_ENTRIES:
        return Fit(prior, FitStatus.TOO_FEW)
    w = w / w.sum() * len(w)
    prior_slopes = np.asarray(prior.weights, dtype=float)
    slopes = np.zeros(features.shape[1])
    free = list(range(features.shape[1]))
    # A feature whose slope comes out negative is dropped and the rest refitted, so the bias still
    # matches the data (clipping the slope alone would leave a bias fitted with it).
    while True:
        theta = _map(features[:, free], y, w, prior.bias, prior_slopes[free])
        if theta is None:
            return Fit(prior, FitStatus.UNSTABLE)
        if (theta[1:] >= 0).all():
            slopes[free] = theta[1:]
            bias = float(theta[0])
            break
        free = [f for f, v in zip(free, theta[1:], strict=True) if v >= 0]
    result = Calibration(bias=bias, weights=tuple(float(v) for v in slopes))
    if any(_separable(column, y) for column in (features @ slopes, *features.T)):
        # Slopes say how fast confidence rises, and separable probes cannot tell: the prior's are
        # kept. Where it rises can still be learned (a bias alone always has an optimum).
        shifted = _map(features @ prior_slopes[:, None], y, w, prior.bias, np.ones(1), free_slopes=False)
        placed = Calibration(
            bias=float(shifted[0]) if shifted is not None else prior.bias, weights=prior.weights
        )
        return Fit(placed if placed.sane() else prior, FitStatus.SEPARABLE)
    if not result.sane():
        return Fit(prior, FitStatus.UNSTABLE)
    return Fit(result, FitStatus.FITTED)


def _separable(score: FloatArray, y: FloatArray) -> bool:
    """Every right probe scores above every wrong one (on the fitted score, or on one feature
    alone): the likelihood alone has no optimum, and the fit would only say where the prior
    stopped it."""
    return bool(score[y == 1].min() > score[y == 0].max())


def _map(
    x_features: FloatArray,
    y: FloatArray,
    w: FloatArray,
    bias0: float,
    slopes0: FloatArray,
    *,
    free_slopes: bool = True,
) -> FloatArray | None:
    """The penalised maximum-likelihood parameters (bias first), or None if they did not settle.
    The objective is strictly convex, and every Newton step is halved until it lowers the
    objective, so the iterates cannot run away the way a plain Newton iteration can."""
    x = np.column_stack([np.ones(len(y)), x_features])
    theta0 = np.array([bias0, *slopes0], dtype=float)
    # The slopes are pulled towards the prior's; the bias is (almost) free, as usual for an
    # intercept: it only runs away on separable probes, which `fit` catches before they get here.
    penalty = PRIOR_STRENGTH * np.eye(len(theta0))
    penalty[0, 0] = 1e-6
    if not free_slopes:
        penalty[1:, 1:] *= 1e9  # held where they are: only the bias moves

    def objective(theta: FloatArray) -> float:
        z = x @ theta
        # log(1 + e^z) - y z, computed without overflow.
        loss = np.logaddexp(0.0, z) - y * z
        diff = theta - theta0
        return float(w @ loss + 0.5 * diff @ penalty @ diff)

    theta = theta0.copy()
    current = objective(theta)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ theta, -500, 500)))
        gradient = x.T @ (w * (p - y)) + penalty @ (theta - theta0)
        hessian = (x * (w * p * (1 - p))[:, None]).T @ x + penalty
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while scale > 1e-6:
            candidate = theta - scale * step
            value = objective(candidate)
            if value <= current:
                break
            scale /= 2
        else:
            break
        theta, previous, current = candidate, current, value
        if np.abs(scale * step).max() < 1e-9 or previous - current < 1e-12:
            break
    return theta if np.isfinite(theta).all() else None
