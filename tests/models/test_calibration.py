"""Tests of cytoresp.models.calibration.LogisticCalibrator and of its use by every head."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.isotonic import IsotonicRegression

from cytoresp.errors import ModelIntegrityError, UsageError
from cytoresp.models.calibration import LogisticCalibrator
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


def test_recovers_a_known_miscalibration():
    """Labels drawn from expit(a + b * m) for a known (a, b): the fit finds them."""
    rng = np.random.default_rng(6)
    m = rng.normal(0.5, 2.0, 20_000)
    a, b = -0.7, 0.6
    y = (rng.random(m.size) < expit(a + b * m)).astype(int)
    cal = LogisticCalibrator().fit(m, y)
    # standard errors at this n are about 0.02 (a) and 0.01 (b)
    assert cal.intercept_ == pytest.approx(a, abs=0.06)
    assert cal.slope_ == pytest.approx(b, abs=0.03)
    assert cal.predict_proba(m)[:, 1] == pytest.approx(expit(a + b * m), abs=0.02)


@pytest.mark.parametrize("C", [1e4, 1.0, 0.01])
def test_penalty_follows_sklearn_convention(C):
    """``C`` as in scikit-learn: the fit minimises ``C * log-loss + b**2 / 2`` (the
    intercept is not penalised), checked against a direct minimisation of that objective."""
    rng = np.random.default_rng(2)
    m, y = miscalibrated(300, rng)

    def objective(ab):
        eta = ab[0] + ab[1] * m
        return C * np.sum(np.logaddexp(0.0, eta) - y * eta) + 0.5 * ab[1] ** 2

    ref = minimize(objective, [0.0, 1.0], method="BFGS", options={"gtol": 1e-10}).x
    cal = LogisticCalibrator(C=C).fit(m, y)
    assert cal.intercept_ == pytest.approx(ref[0], abs=1e-5)
    assert cal.slope_ == pytest.approx(ref[1], abs=1e-5)
    assert cal.predict_proba(m)[:, 1] == pytest.approx(expit(ref[0] + ref[1] * m), abs=1e-6)


def test_separable_predictions_stay_finite():
    m = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
    y = np.array([0, 0, 0, 1, 1, 1])
    cal = LogisticCalibrator().fit(m, y)
    assert np.isfinite([cal.intercept_, cal.slope_]).all()
    assert 1 < cal.slope_ < 100
    # a stronger ridge shrinks the slope
    assert LogisticCalibrator(C=1.0).fit(m, y).slope_ < cal.slope_


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


# ----------------------------------------------------------------------------------------
# Every path from margin to probability goes through the head's calibrator
# ----------------------------------------------------------------------------------------
A, B = -0.3, 0.7  # a known calibration, unlike the fitted ones


@pytest.fixture(scope="module")
def recalibrated(trained):
    """The session model and a copy whose heads hold the known calibrator (a, b) = (A, B)."""
    model, _ = trained
    known = LogisticCalibrator.from_coefficients(A, B)
    heads = {t: dataclasses.replace(h, calibrator=known) for t, h in model.heads.items()}
    return model, dataclasses.replace(model, heads=heads)


@pytest.fixture(scope="module")
def new_frame(recalibrated):
    from cytoresp.datasets import simulate_cohort

    model, _ = recalibrated
    return model.model_frame(simulate_cohort(40, seed=31).panel)


def _raw_margin(head, frame):
    return head.model.decision_function(head.engineered(frame))


def test_probabilities_use_the_heads_calibrator(recalibrated, new_frame):
    model, known = recalibrated
    proba = known.predict_proba(new_frame)
    for t, head in known.heads.items():
        expected = expit(A + B * _raw_margin(head, new_frame))
        assert proba[f"p_response_{t}"].to_numpy() == pytest.approx(expected, rel=1e-12)
        assert head.response_probability(new_frame) == pytest.approx(expected, rel=1e-12)
        # the fitted calibration differs, so the check above can tell them apart
        fitted = model.predict_proba(new_frame)[f"p_response_{t}"].to_numpy()
        assert np.abs(fitted - expected).max() > 0.01


def test_explanations_add_up_to_the_calibrators_log_odds(recalibrated, new_frame):
    _, known = recalibrated
    for head in known.heads.values():
        base, contrib = head.cytokine_contributions(new_frame)
        expected = A + B * _raw_margin(head, new_frame)
        assert base + contrib.sum(axis=1).to_numpy() == pytest.approx(expected, abs=1e-9)


def test_ensemble_draws_use_the_heads_calibrator(recalibrated, new_frame):
    _, known = recalibrated
    ensemble = known.ensemble
    draws = ensemble.probability_draws(known.heads, new_frame)
    for t in ensemble.therapies:
        margins = ensemble.margins(t, known.heads[t].engineered(new_frame))
        assert draws[t] == pytest.approx(expit(A + B * margins), rel=1e-12)


def test_saved_model_keeps_its_calibrator(recalibrated, new_frame, tmp_path):
    from cytoresp.models.persistence import load_model_dir

    _, known = recalibrated
    known.save(tmp_path / "m")
    spec = json.loads((tmp_path / "m" / "model.json").read_text())
    assert spec["heads"]["ifnb"]["calibration"]["format"] == "cytoresp.LogisticCalibrator"
    loaded = load_model_dir(tmp_path / "m")
    for head in loaded.heads.values():
        assert (head.calibrator.intercept_, head.calibrator.slope_) == (A, B)
    pd.testing.assert_frame_equal(loaded.predict_proba(new_frame), known.predict_proba(new_frame))


def _resave_spec(model_dir, edit) -> None:
    """Edit model.json and rewrite the manifest to match (as an older writer would have)."""
    from cytoresp.models.persistence import MANIFEST, SPEC, sha256_file

    spec = json.loads((model_dir / SPEC).read_text())
    edit(spec)
    (model_dir / SPEC).write_text(json.dumps(spec))
    manifest = json.loads((model_dir / MANIFEST).read_text())
    manifest["files"][SPEC] = sha256_file(model_dir / SPEC)
    (model_dir / MANIFEST).write_text(json.dumps(manifest))


def test_models_saved_with_the_old_calibration_pair_still_load(recalibrated, new_frame, tmp_path):
    """Before the calibrator was persisted, model.json held ``"calibration": [a, b]``."""
    from cytoresp.models.persistence import load_model_dir

    _, known = recalibrated
    known.save(tmp_path / "m")

    def to_pair(spec):
        for h in spec["heads"].values():
            h["calibration"] = [A, B]

    _resave_spec(tmp_path / "m", to_pair)
    loaded = load_model_dir(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.predict_proba(new_frame), known.predict_proba(new_frame))


@pytest.mark.parametrize(
    "value", [[0.1], [0.1, 0.2, 0.3], ["0.1", 0.9], [0.1, float("nan")], "0.1,0.9", None]
)
def test_malformed_calibration_is_refused(recalibrated, tmp_path, value):
    from cytoresp.models.persistence import load_model_dir

    _, known = recalibrated
    known.save(tmp_path / "m")

    def corrupt(spec):
        spec["heads"]["ga"]["calibration"] = value

    _resave_spec(tmp_path / "m", corrupt)
    with pytest.raises(ModelIntegrityError, match="calibration|LogisticCalibrator"):
        load_model_dir(tmp_path / "m")
