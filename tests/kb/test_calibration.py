"""Calibration turns matcher features into probabilities that match how often the KB was right, and
cannot degenerate: its result is finite, bounded and monotone, or it is the documented prior."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bot.kb.calibration import BIAS_BOUND, SLOPE_BOUND, Calibration, FitStatus, fit

PRIOR = Calibration(bias=0.0, weights=(1.0, 1.0))


def _fit(
    rows: list[tuple[float, float]], right: list[float], groups: int = 50
) -> tuple[Calibration, FitStatus]:
    features = np.asarray(rows, dtype=float)
    labels = np.asarray(right, dtype=bool)
    result = fit(
        features,
        labels,
        np.ones(len(rows)),
        PRIOR,
        groups=np.arange(len(rows), dtype=np.int64) % groups,
    )
    return result.calibration, result.status


def _probes(seed: int = 3) -> tuple[list[tuple[float, float]], list[float]]:
    """A score that predicts being right, and a second feature that (in this sample) runs the other
    way: wider "margins" on wrong answers, as correlated features sometimes do."""
    rng = np.random.default_rng(seed)
    score = rng.uniform(0, 1, 2000)
    right = (rng.uniform(0, 1, 2000) < score).astype(float)
    margin = 0.6 * (1 - right) + rng.normal(0, 0.2, 2000)
    return [(float(s), float(m)) for s, m in zip(score, margin, strict=True)], right.tolist()


def test_a_feature_that_would_lower_confidence_is_dropped_and_the_rest_refitted() -> None:
    rows, right = _probes()

    fitted, status = _fit(rows, right)

    assert status is FitStatus.FITTED
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

    fitted, status = _fit(rows, right.tolist())

    assert status is FitStatus.FITTED
    assert all(weight > 0 for weight in fitted.weights)
    assert abs(np.mean([fitted(row) for row in rows]) - right.mean()) < 0.01


def test_probes_that_are_perfectly_separable_keep_the_prior_slopes() -> None:
    """Every right probe scores above every wrong one: the likelihood alone would push the slopes
    (and the bias with them) without end, as it did on HWU64 (bias -2.1e11). The prior's slopes
    stay; only where confidence rises is learned, between the right and the wrong probes."""
    rng = np.random.default_rng(1)
    right = rng.uniform(0, 1, 400) < 0.5
    score = np.where(right, rng.uniform(0.82, 0.95, 400), rng.uniform(0.2, 0.8, 400))
    margin = np.where(right, rng.uniform(0.1, 0.3, 400), rng.uniform(0.0, 0.2, 400))
    rows = list(zip(score.tolist(), margin.tolist(), strict=True))

    fitted, status = _fit(rows, right.tolist())

    assert status is FitStatus.SEPARABLE
    assert fitted.weights == PRIOR.weights and fitted.sane()
    confidence = fitted.many(np.asarray(rows))
    assert confidence[right].mean() > confidence[~right].mean()


def test_nearly_separable_probes_give_a_bounded_monotone_fit() -> None:
    """One wrong probe among the right ones is enough for the likelihood to have an optimum, far
    out: the fit must stay finite and within its bounds, and still rank a higher score higher."""
    rng = np.random.default_rng(2)
    right = rng.uniform(0, 1, 960) < 0.4
    score = np.where(right, rng.uniform(0.80, 0.95, 960), rng.uniform(0.3, 0.805, 960))
    margin = np.where(right, rng.uniform(0.05, 0.3, 960), rng.uniform(0.0, 0.1, 960))
    rows = list(zip(score.tolist(), margin.tolist(), strict=True))

    fitted, status = _fit(rows, right.tolist())

    assert fitted.sane()
    assert abs(fitted.bias) <= BIAS_BOUND and all(0 <= w <= SLOPE_BOUND for w in fitted.weights)
    if status is FitStatus.FITTED:
        assert fitted((0.9, 0.2)) > fitted((0.5, 0.05)) > 0.0


def test_a_handful_of_probes_keeps_the_prior() -> None:
    rows = [(0.9, 0.3), (0.8, 0.1), (0.4, 0.0), (0.3, 0.0)] * 3
    right = [1.0, 1.0, 0.0, 0.0] * 3

    assert _fit(rows, right) == (PRIOR, FitStatus.TOO_FEW)
    # Many probes, but from two entries only: still too few to say anything about a KB.
    rows_many, right_many = _probes()
    assert _fit(rows_many, right_many, groups=2)[1] is FitStatus.TOO_FEW


def test_probes_that_are_all_right_or_all_wrong_keep_the_prior() -> None:
    rows, _ = _probes()
    assert _fit(rows, [0.0] * len(rows))[1] is FitStatus.TOO_FEW
    assert _fit(rows, [1.0] * len(rows))[1] is FitStatus.TOO_FEW


@pytest.mark.parametrize("seed", range(20))
def test_any_fit_is_sane_or_the_prior(seed: int) -> None:
    """Random scales, separations and label rates: whatever comes back is finite, bounded and
    monotone, and probabilities stay within (0, 1)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 800))
    scale = float(rng.choice([0.01, 0.1, 1.0, 10.0]))
    right = rng.uniform(0, 1, n) < rng.uniform(0.05, 0.95)
    shift = float(rng.uniform(0, 3)) * scale
    score = rng.normal(0, scale, n) + np.where(right, shift, 0.0)
    margin = rng.normal(0, scale, n) + np.where(right, shift * rng.uniform(-1, 1), 0.0)

    fitted, status = _fit(list(zip(score.tolist(), margin.tolist(), strict=True)), right.tolist())

    assert fitted.sane(), (status, fitted)
    probabilities = fitted.many(np.column_stack([score, margin]))
    assert np.isfinite(probabilities).all() and ((probabilities >= 0) & (probabilities <= 1)).all()


def test_the_vectorised_and_the_scalar_calibration_agree() -> None:
    calibration = Calibration(bias=-6.0, weights=(8.0, 10.0))
    rows = np.array([[0.1, 0.0], [0.7, 0.05], [0.95, 0.4], [5.0, 5.0]])
    assert calibration.many(rows) == pytest.approx([calibration(row) for row in rows.tolist()])
    assert not Calibration(bias=math.inf, weights=(1.0,)).sane()
    assert not Calibration(bias=0.0, weights=(-1.0,)).sane()
    assert not Calibration(bias=-2.1e11, weights=(245.6, 76.0)).sane()
