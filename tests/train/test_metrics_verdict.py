"""The verdict against the baselines where the truth is known (models/verdict.py's rule on
the paired bootstrap of train/metrics.py, as train.fitting.evaluate_cv computes it).

A "false pass" is a head declared clearly above a baseline that is in truth as good: under
that null the rule (lower bound of the paired 95% interval above 0) should pass about 2.5%
of cohorts. A head with a real advantage should pass nearly always.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.model_selection import StratifiedKFold

from cytoresp.models.verdict import baseline_verdicts, status
from cytoresp.train.config import TrainConfig
from cytoresp.train.cv import CVResult
from cytoresp.train.fitting import evaluate_cv
from cytoresp.train.metrics import paired_difference

REPLICATES = 200
N = 120
N_BOOT = 200


def _cohort(rng: np.random.Generator, n: int = N):
    """Labels from a known risk score ``z`` (true AUC about 0.8)."""
    z = rng.normal(0.0, 1.5, n)
    y = (rng.random(n) < expit(z)).astype(int)
    return z, y


def _prevalence_oof(y: np.ndarray, seed: int) -> np.ndarray:
    """The prevalence baseline as cross-validation scores it: the training part's share."""
    p = np.empty(y.size)
    for train, test in StratifiedKFold(3, shuffle=True, random_state=seed).split(y, y):
        p[test] = y[train].mean()
    return p


def _passes(y, p_model, p_base, seed) -> bool:
    return paired_difference(y, p_model, p_base, n_boot=N_BOOT, seed=seed).lower > 0


def test_equally_good_model_rarely_passes_and_a_better_one_nearly_always():
    rng = np.random.default_rng(20261205)
    false_pass = true_pass = 0
    for r in range(REPLICATES):
        z, y = _cohort(rng)
        base = expit(z + rng.normal(0, 2.0, N))  # the logistic baseline's information
        same = expit(z + rng.normal(0, 2.0, N))  # a model exactly as informative
        better = expit(z)  # a model that knows the true risk
        false_pass += _passes(y, same, base, r)
        true_pass += _passes(y, better, base, r)
    # binomial(200, 0.025): mean 5, P(> 12) < 0.003; measured 5 with this seed
    assert false_pass <= 12, false_pass
    # an AUC advantage of +0.135 on average at 120 patients: measured 172 / 200 (86%)
    assert true_pass >= 155, true_pass


def test_uninformative_model_rarely_passes_the_prevalence_baseline():
    """Pooled over folds, the prevalence baseline is a per-fold constant whose AUC sits a
    little below 0.5 (a fold's training share is anti-correlated with its test share):
    the paired rule must still not let a pure-noise model pass it often."""
    rng = np.random.default_rng(7)
    false_pass = 0
    for r in range(REPLICATES):
        _, y = _cohort(rng, 69)
        false_pass += _passes(y, rng.random(y.size), _prevalence_oof(y, r), r)
    assert false_pass <= 12, false_pass  # measured 6 with this seed


@pytest.mark.parametrize("signal, expected", [(True, "true"), (False, "false")])
def test_evaluate_cv_verdict_follows_the_interval(signal, expected):
    """Through evaluate_cv (what training runs): a head with a real advantage over both
    baselines is not flagged; a head that is noise is (fixed seeds, wide margins)."""
    rng = np.random.default_rng(3)
    n = 200
    z, y = _cohort(rng, n)
    p_model = expit(z + rng.normal(0, 0.3, n)) if signal else rng.random(n)
    oof = pd.DataFrame({
        "sample_id": [f"P{i:03d}" for i in range(n)], "repeat": 0, "fold": 0, "y": y,
        "margin": np.log(p_model / (1 - p_model)), "p_default": p_model,
        "decision": (p_model >= 0.5).astype(int),
        "p_logistic": expit(0.5 * z + rng.normal(0, 1.5, n)),
        "p_prevalence": _prevalence_oof(y, 0),
    })
    config = TrainConfig(n_boot=300, seed=0)
    report = evaluate_cv(CVResult(oof=oof), "ga", config)
    diffs = report.differences
    # the margins the assertions rest on (not luck): far from 0 either way
    if signal:
        assert diffs["logistic"].lower > 0.05 and diffs["prevalence"].lower > 0.2
    else:
        assert diffs["logistic"].upper < -0.05 and diffs["prevalence"].lower < -0.05
    verdict = baseline_verdicts({"cv_metrics": {"ga": report.flat_metrics()}})
    assert status(verdict["ga"]) == expected
