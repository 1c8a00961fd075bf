"""Tests of cytoresp.train.calibration.LogisticCalibrator."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import expit
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from cytoresp.errors import ModelIntegrityError, UsageError
from cytoresp.train.calibration import LogisticCalibrator
from cytoresp.train.metrics import brier, calibration_intercept_slope


def miscalibrated(n: int, rng: np.random.Generator):
    """True log-odds z; the model reports 2.5 z + 1 (overconfident and shifted)."""
    z = rng.normal(0, 1.5, n)
    y = (rng.random(n) < expit(z)).astype(int)
    return 2.5 * z + 1, y


def test_recalibration_fixes_a_miscalibrated_score_on_held_out_data():
    rng = np.random.default_rng(0)
    m_cal, y_cal = miscalibrated(2000, rng)
    m_test, y_test = miscalibrated(2000, rng)
    cal = LogisticCalibrator().fit(m_cal, y_cal)
    # the inverse of the distortion: z = (m - 1) / 2.5 = 0.4 m - 0.4
    assert cal.slope_ == pytest.approx(0.4, abs=0.04)
    assert cal.intercept_ == pytest.approx(-0.4, abs=0.1)

    raw = expit(m_test)
    fixed = cal.predict_proba(m_test)[:, 1]
    _, raw_slope = calibration_intercept_slope(y_test, raw)
    intercept, slope = calibration_intercept_slope(y_test, fixed)
    assert raw_slope < 0.5
    assert slope == pytest.approx(1.0, abs=0.1)
    assert intercept == pytest.approx(0.0, abs=0.15)
    assert brier(y_test, fixed) < brier(y_test, raw) - 0.02


def test_logistic_beats_isotonic_on_small_calibration_sets():
    """With 60 calibration patients isotonic regression overfits (see docs/methods.md)."""
    rng = np.random.default_rng(1)
    m_test, y_test = miscalibrated(2000, rng)
    wins = 0
    for _ in range(20):
        m, y = miscalibrated(60, rng)
        logistic = LogisticCalibrator().fit(m, y).predict_proba(m_test)[:, 1]
        isotonic = IsotonicRegression(out_of_bounds="clip").fit(m, y).predict(m_test)
        wins += brier(y_test, logistic) < brier(y_test, isotonic)
    assert wins >= 17


@pytest.mark.parametrize("C", [1e4, 1.0, 0.01])
def test_matches_sklearn_logistic_regression(C):
    rng = np.random.default_rng(2)
    m, y = miscalibrated(300, rng)
    ref = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(m[:, None], y)
    cal = LogisticCalibrator(C=C).fit(m, y)
    assert cal.intercept_ == pytest.approx(ref.intercept_[0], abs=1e-6)
    assert cal.slope_ == pytest.approx(ref.coef_[0, 0], abs=1e-6)
    assert cal.predict_proba(m) == pytest.approx(ref.predict_proba(m[:, None]), abs=1e-7)


def test_separable_predictions_stay_finite():
    m = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
    y = np.array([0, 0, 0, 1, 1, 1])
    cal = LogisticCalibrator().fit(m, y)
    assert np.isfinite([cal.intercept_, cal.slope_]).all()
    assert 1 < cal.slope_ < 100
    # a stronger ridge shrinks the slope
    assert LogisticCalibrator(C=1.0).fit(m, y).slope_ < cal.slope_


def test_linear_in_log_odds_keeps_additive_explanations_exact():
    rng = np.random.default_rng(3)
    m, y = miscalibrated(500, rng)
    cal = LogisticCalibrator().fit(m, y)
    base = 0.3
    contributions = rng.normal(size=(4, 6))  # 4 samples, 6 features
    margin = base + contributions.sum(axis=1)
    recalibrated = cal.transform_margin(margin)
    new_base = cal.intercept_ + cal.slope_ * base
    new_contrib = cal.slope_ * contributions
    assert recalibrated == pytest.approx(new_base + new_contrib.sum(axis=1), abs=1e-12)


def test_predict_proba_shape_and_values():
    cal = LogisticCalibrator().fit([-1.0, 0.5, 0.0, 2.0, -0.3], [0, 1, 0, 1, 1])
    proba = cal.predict_proba(np.array([[0.0], [1.0], [-2.0]]))
    assert proba.shape == (3, 2)
    assert proba.sum(axis=1) == pytest.approx(1.0)
    expected = expit(cal.intercept_ + cal.slope_ * np.array([0.0, 1.0, -2.0]))
    assert proba[:, 1] == pytest.approx(expected)
    assert cal.classes_.tolist() == [0, 1]


def test_sample_weight_equals_repeating_rows():
    rng = np.random.default_rng(4)
    m, y = miscalibrated(100, rng)
    w = rng.integers(1, 4, size=100)
    weighted = LogisticCalibrator().fit(m, y, sample_weight=w)
    repeated = LogisticCalibrator().fit(np.repeat(m, w), np.repeat(y, w))
    assert weighted.slope_ == pytest.approx(repeated.slope_, abs=1e-9)
    assert weighted.intercept_ == pytest.approx(repeated.intercept_, abs=1e-9)


def test_json_round_trip():
    rng = np.random.default_rng(5)
    m, y = miscalibrated(200, rng)
    cal = LogisticCalibrator(C=50.0).fit(m, y)
    restored = LogisticCalibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert restored.C == 50.0
    assert restored.intercept_ == cal.intercept_ and restored.slope_ == cal.slope_
    assert np.array_equal(restored.predict_proba(m), cal.predict_proba(m))


def test_sklearn_conventions():
    cal = LogisticCalibrator(C=3.0)
    assert cal.get_params() == {"C": 3.0}
    assert clone(cal).C == 3.0
    with pytest.raises(NotFittedError):
        cal.transform_margin([0.0])
    with pytest.raises(NotFittedError):
        cal.to_dict()


GOOD = {"format": "cytoresp.LogisticCalibrator", "format_version": 1, "C": 1e4,
        "intercept": 0.1, "slope": 0.9}  # fmt: skip


@pytest.mark.parametrize(
    ("d", "match"),
    [
        ({**GOOD, "format": "something"}, "not a saved cytoresp LogisticCalibrator"),
        ([1, 2], "not a saved cytoresp LogisticCalibrator"),
        ({**GOOD, "format_version": 2}, "format_version 2 is not supported"),
        ({k: v for k, v in GOOD.items() if k != "slope"}, "'slope' is missing"),
        ({**GOOD, "intercept": "0.1"}, "'intercept' is missing or not a finite number"),
        ({**GOOD, "slope": float("nan")}, "'slope' is missing or not a finite number"),
    ],
)
def test_from_dict_rejects_bad_state(d, match):
    with pytest.raises(ModelIntegrityError, match=match):
        LogisticCalibrator.from_dict(d)


@pytest.mark.parametrize(
    ("kwargs", "margin", "y", "match"),
    [
        ({}, [0.1, 0.2, 0.3], [1, 1, 1], "both responders and non-responders"),
        ({"C": 0}, [0.1, 0.2], [0, 1], "C must be a positive finite number"),
        ({"C": float("inf")}, [0.1, 0.2], [0, 1], "C must be a positive finite number"),
        ({}, [0.1, np.nan], [0, 1], "1 NaN or infinite"),
        ({}, [[0.1, 0.2], [0.3, 0.4]], [0, 1], "1-D array of log-odds"),
        ({}, [0.1, 0.2, 0.3], [0, 1], "margin has 3 values but y has 2"),
        ({}, [0.1, 0.2], [0, 3], "only 0/1 labels"),
    ],
)
def test_fit_rejects_bad_input(kwargs, margin, y, match):
    with pytest.raises(UsageError, match=match):
        LogisticCalibrator(**kwargs).fit(margin, y)


def test_fit_rejects_bad_sample_weight():
    with pytest.raises(UsageError, match="non-negative weight per row"):
        LogisticCalibrator().fit([0.1, 0.2], [0, 1], sample_weight=[1.0, -1.0])
