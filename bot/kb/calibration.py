"""Turns a matcher's raw scores into probabilities, learned from the knowledge base itself.

Each phrasing is asked twice against the rest of the KB: once with only that phrasing hidden (the
right entry is still there: a correct top answer is a success, a wrong one a failure) and once with
its whole entry hidden (there is nothing right to answer: every answer is a failure, as for an
out-of-scope question). A small logistic regression on the matcher's features (top score, margin
over the runner-up, ...) then says how often such features were right. No evaluation data is
involved, so the same probability thresholds carry over from one knowledge base to the next.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# Questions no entry can answer are assumed to be as common as answerable ones: a cautious prior
# that does not depend on any data set's mix.
OUT_OF_SCOPE_SHARE = 0.5
# Caps the number of phrasings asked while calibrating, so loading a 1,000-entry KB stays quick.
MAX_PROBES = 1500
_RIDGE = 1.0


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


@dataclass(frozen=True, slots=True)
class Probe:
    """One phrasing asked of the KB without itself (`hide_entry=False`) or without its entry."""

    entry: int
    phrasing: int
    hide_entry: bool


@dataclass(frozen=True, slots=True)
class Observation:
    """How the KB ranks one question: the best entry and the entries a "did you mean" would
    offer, each with the features its calibration reads."""

    best: int
    best_features: tuple[float, ...]
    choices: tuple[int, ...]
    choice_features: tuple[float, ...]


Ranker = Callable[[Probe], "Observation | None"]
"""Ranks the probe's phrasing with the hidden part removed; None when nothing is left."""


def probes(phrasing_entry: Sequence[int], *, seed: int = 0) -> list[Probe]:
    """A fixed sample of phrasings (the same KB always calibrates the same way)."""
    rng = np.random.default_rng(seed)
    indices = np.arange(len(phrasing_entry))
    if len(indices) > MAX_PROBES:
        indices = np.sort(rng.choice(indices, size=MAX_PROBES, replace=False))
    out = []
    for index in indices.tolist():
        out.append(Probe(entry=phrasing_entry[index], phrasing=index, hide_entry=False))
        out.append(Probe(entry=phrasing_entry[index], phrasing=index, hide_entry=True))
    return out


def fit(rank: Ranker, phrasing_entry: Sequence[int], prior: Calibration) -> tuple[Calibration, Calibration]:
    """Two calibrations from the same leave-one-out probes: P(the best entry is right) and
    P(the right entry is among the choices). Regularised towards `prior`, which wins for tiny KBs."""
    best_rows: list[tuple[float, ...]] = []
    choice_rows: list[tuple[float, ...]] = []
    best_right: list[float] = []
    choice_right: list[float] = []
    weights: list[float] = []
    counts = Counter(phrasing_entry)
    for probe in probes(phrasing_entry):
        if not probe.hide_entry and counts[probe.entry] < 2:  # nothing left to find
            continue
        seen = rank(probe)
        if seen is None:
            continue
        findable = not probe.hide_entry
        best_rows.append(seen.best_features)
        choice_rows.append(seen.choice_features)
        best_right.append(1.0 if findable and seen.best == probe.entry else 0.0)
        choice_right.append(1.0 if findable and probe.entry in seen.choices else 0.0)
        weights.append(OUT_OF_SCOPE_SHARE if probe.hide_entry else 1.0 - OUT_OF_SCOPE_SHARE)
    best = _logistic(best_rows, best_right, weights, prior)
    return best, _logistic(choice_rows, choice_right, weights, prior)


def _logistic(
    rows: list[tuple[float, ...]], labels: list[float], weights: list[float], prior: Calibration
) -> Calibration:
    """Weighted logistic regression, slopes shrunk towards the prior's and never negative: every
    feature is "higher is better" (a higher score or a wider margin never lowers confidence). A
    feature whose slope comes out negative is dropped and the rest refitted, so the bias still
    matches the data (clipping the slope alone would leave a bias fitted with it)."""
    if not rows or len(set(labels)) < 2:
        return prior
    features = np.asarray(rows, dtype=float)
    y = np.asarray(labels)
    w = np.asarray(weights)
    w = w / w.sum() * len(w)
    slopes = np.zeros(features.shape[1])
    free = list(range(features.shape[1]))
    while True:
        bias, fitted = _newton(features[:, free], y, w, prior.bias, np.asarray(prior.weights)[free])
        if (fitted >= 0).all():
            slopes[free] = fitted
            return Calibration(bias=bias, weights=tuple(float(v) for v in slopes))
        free = [f for f, v in zip(free, fitted, strict=True) if v >= 0]


def _newton(
    x_features: np.ndarray, y: np.ndarray, w: np.ndarray, bias0: float, slopes0: np.ndarray
) -> tuple[float, np.ndarray]:
    x = np.column_stack([np.ones(len(y)), x_features])
    theta0 = np.array([bias0, *slopes0])
    theta = theta0.copy()
    penalty = np.diag([0.0] + [_RIDGE] * len(slopes0))  # the bias is free; slopes shrink to the prior
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ theta, -40, 40)))
        gradient = x.T @ (w * (p - y)) + penalty @ (theta - theta0)
        hessian = (x * (w * p * (1 - p))[:, None]).T @ x + penalty + 1e-9 * np.eye(len(theta))
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(theta[0]), theta[1:]
