"""Tests of cytoresp.train.calibration.fit_calibration (calibrator + threshold in training)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit

from cytoresp.train.calibration import fit_calibration
from cytoresp.train.config import TrainConfig
from cytoresp.train.threshold import choose_threshold


def _data(n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, n)
    y = (rng.random(n) < expit(z)).astype(int)
    return 2.5 * z + 1, y  # overconfident and shifted log-odds


def test_youden_threshold_is_the_raw_one_carried_through_the_calibrator():
    """A positive-slope recalibration is monotone: it moves the threshold, not the split."""
    m, y = _data()
    cal, threshold = fit_calibration(m, y, TrainConfig())
    assert 0 < cal.slope_ < 1  # the scores were overconfident
    raw = choose_threshold(y, expit(m))
    assert threshold == pytest.approx(float(cal.response_probability(logit(raw))), rel=1e-9)
    p = cal.predict_proba(m)[:, 1]
    assert np.array_equal(p >= threshold, expit(m) >= raw)


def test_sensitivity_target_is_met_on_the_calibrated_scale():
    m, y = _data(seed=1)
    config = TrainConfig(threshold_method="sensitivity", target_sensitivity=0.9)
    cal, threshold = fit_calibration(m, y, config)
    p = cal.predict_proba(m)[:, 1]
    assert threshold in p
    assert np.mean(p[y == 1] >= threshold) >= 0.9
    higher = p[p > threshold]
    assert higher.size == 0 or np.mean(p[y == 1] >= higher.min()) < 0.9
