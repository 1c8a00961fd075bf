"""Tests of cytoresp.train.threshold.choose_threshold."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from cytoresp.errors import UsageError
from cytoresp.train.metrics import threshold_metrics
from cytoresp.train.threshold import choose_threshold

# Responders and non-responders overlap around 0.55-0.65.
Y = np.array([0] * 6 + [1] * 5)
P = np.array([0.10, 0.20, 0.30, 0.40, 0.60, 0.65, 0.55, 0.70, 0.80, 0.90, 0.95])


def test_youden_picks_the_known_optimum():
    # t=0.70: sensitivity 4/5, specificity 6/6 -> J = 0.80 (unique maximum);
    # t=0.55: sensitivity 5/5, specificity 4/6 -> J = 0.67.
    assert choose_threshold(Y, P) == 0.70
    m = threshold_metrics(Y, P, 0.70)
    assert (m["sensitivity"], m["specificity"]) == (0.8, 1.0)


def test_youden_breaks_ties_towards_the_larger_threshold():
    y = [0, 0, 0, 1, 0, 1, 1, 1]
    p = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    assert choose_threshold(y, p) == 0.6  # J = 0.75 at both 0.4 and 0.6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_youden_agrees_with_roc_curve(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(200) < 0.4).astype(int)
    p = np.round(1 / (1 + np.exp(-(rng.normal(size=200) + y))), 2)  # many ties
    fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=False)
    j = tpr - fpr
    expected = thresholds[np.flatnonzero(j == j.max())].max()
    assert choose_threshold(y, p) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("target", "expected"),
    [(1.0, 0.55), (0.9, 0.55), (0.8, 0.70), (0.6, 0.80), (0.2, 0.95), (0.01, 0.95)],
)
def test_sensitivity_target(target, expected):
    assert choose_threshold(Y, P, "sensitivity", target_sensitivity=target) == expected


def test_sensitivity_target_is_not_fooled_by_rounding():
    y = np.r_[np.zeros(5), np.ones(10)]
    p = np.r_[np.linspace(0.0, 0.2, 5), np.linspace(0.1, 1.0, 10)]
    # 0.9 * 10 = 9.000000000000002 must still mean 9 responders, not 10
    t = choose_threshold(y, p, "sensitivity", target_sensitivity=0.9)
    assert t == pytest.approx(0.2)
    assert threshold_metrics(y, p, t)["sensitivity"] == pytest.approx(0.9)


@pytest.mark.parametrize("seed", range(5))
def test_sensitivity_threshold_is_the_largest_reaching_the_target(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(120) < 0.5).astype(int)
    p = np.round(rng.random(120), 2)
    target = 0.85
    t = choose_threshold(y, p, "sensitivity", target_sensitivity=target)
    assert threshold_metrics(y, p, t)["sensitivity"] >= target
    higher = p[p > t]
    if higher.size:
        assert threshold_metrics(y, p, higher.min())["sensitivity"] < target


@pytest.mark.parametrize(
    ("y", "kwargs", "match"),
    [
        (Y, {"method": "f1"}, "unknown threshold method 'f1'; choose one of youden, sensitivity"),
        (Y, {"method": "sensitivity"}, "needs target_sensitivity"),
        (Y, {"method": "sensitivity", "target_sensitivity": 0.0}, r"must be in \(0, 1\]"),
        (Y, {"method": "sensitivity", "target_sensitivity": 1.5}, r"must be in \(0, 1\]"),
        (Y, {"target_sensitivity": 0.9}, "only used with method='sensitivity'"),
        (np.zeros(11), {}, "no responders"),
        (np.ones(11), {}, "no non-responders"),
        (np.zeros(11), {"method": "sensitivity", "target_sensitivity": 0.9}, "no responders"),
    ],
)
def test_bad_arguments(y, kwargs, match):
    with pytest.raises(UsageError, match=match):
        choose_threshold(y, P, **kwargs)


def test_sensitivity_method_needs_no_non_responders():
    assert choose_threshold(np.ones(4), [0.2, 0.4, 0.6, 0.8], "sensitivity", 0.75) == 0.4
