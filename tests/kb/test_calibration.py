"""Calibration turns matcher features into probabilities that match how often the KB was right."""

from __future__ import annotations

import numpy as np

from bot.kb.calibration import Calibration, _logistic

PRIOR = Calibration(bias=0.0, weights=(1.0, 1.0))


def _probes(seed: int = 3) -> tuple[list[tuple[float, ...]], list[float], list[float]]:
    """A score that predicts being right, and a second feature that (in this sample) runs the other
    way: wider "margins" on wrong answers, as correlated features sometimes do."""
    rng = np.random.default_rng(seed)
    score = rng.uniform(0, 1, 2000)
    right = (rng.uniform(0, 1, 2000) < score).astype(float)
    margin = 0.6 * (1 - right) + rng.normal(0, 0.2, 2000)
    rows = [(float(s), float(m)) for s, m in zip(score, margin, strict=True)]
    return rows, right.tolist(), [1.0] * len(rows)


def test_a_feature_that_would_lower_confidence_is_dropped_and_the_rest_refitted() -> None:
    rows, right, weights = _probes()

    fitted = _logistic(rows, right, weights, PRIOR)

    assert fitted.weights[1] == 0.0, "a wider margin never lowers confidence"
    assert fitted.weights[0] > 1.0, "the score still carries the signal"
    # Refitted without the dropped feature, the probabilities still average to how often the KB
    # was right (clipping the slope after fitting both would leave the bias off by a lot).
    mean_confidence = np.mean([fitted(row) for row in rows])
    assert abs(mean_confidence - np.mean(right)) < 0.01


def test_features_that_all_help_are_kept_as_fitted() -> None:
    rng = np.random.default_rng(5)
    score = rng.uniform(0, 1, 2000)
    right = (rng.uniform(0, 1, 2000) < score).astype(float)
    margin = 0.5 * right + rng.normal(0, 0.2, 2000)
    rows = [(float(s), float(m)) for s, m in zip(score, margin, strict=True)]

    fitted = _logistic(rows, right.tolist(), [1.0] * len(rows), PRIOR)

    assert all(weight > 0 for weight in fitted.weights)
    assert abs(np.mean([fitted(row) for row in rows]) - right.mean()) < 0.01
