"""Propensity diagnostics and inverse-propensity weighting at training time (issue 6)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cytoresp.errors import UsageError
from cytoresp.train.config import TrainConfig
from cytoresp.train.propensity import (
    AUC_WARN,
    SMD_WARN,
    assess_assignment,
    assignment_metrics,
    estimate_propensity,
    ipw_weights,
    standardised_mean_differences,
)


def _panel(n, seed, assignment="randomised", strength=1.0):
    from cytoresp.datasets import simulate_cohort
    from cytoresp.panels.read import read_panel

    cohort = simulate_cohort(n, seed=seed, assignment=assignment, confounding_strength=strength)
    return cohort, read_panel(cohort.panel)


@pytest.fixture(scope="module")
def randomised():
    return assess_assignment(_panel(600, 3)[1])


@pytest.fixture(scope="module")
def confounded():
    cohort, panel = _panel(600, 3, "confounded", 2.0)
    return cohort, assess_assignment(panel)


def test_randomised_cohort_raises_no_warning(randomised):
    r = randomised
    assert r.n_ifnb + r.n_ga == 600
    assert abs(r.auc - 0.5) < 0.07
    assert r.max_abs_smd < SMD_WARN
    assert r.imbalanced == [] and r.warnings == []
    assert r.outside_overlap == 0.0


def test_confounded_cohort_is_detected(confounded):
    cohort, r = confounded
    # the simulator assigns IFN-beta by prior relapses and EDSS
    assert r.auc > 0.72 and r.auc > AUC_WARN
    assert set(r.imbalanced[:2]) == {"relapses_prior_2y", "edss"}
    assert r.smd["relapses_prior_2y"] > 0.5 and r.smd["edss"] > 0.3
    assert any("propensity AUC" in w for w in r.warnings)
    assert any("relapses_prior_2y" in w for w in r.warnings)
    assert len(r.warnings) >= 2 and not any("--ipw" in w for w in r.warnings)
    # cross-fitted propensity tracks the true one
    true = cohort.truth["propensity_ifnb"].to_numpy()
    assert np.corrcoef(r.propensity.to_numpy(), true)[0, 1] > 0.85


def test_weighting_restores_balance(confounded):
    _, r = confounded
    assert r.max_abs_smd > 0.8
    assert r.max_abs_weighted_smd < 0.15
    table = r.balance_table()
    assert table.loc["relapses_prior_2y", "flagged"]
    assert abs(table.loc["relapses_prior_2y", "weighted_smd"]) < 0.15


def test_small_randomised_cohorts_do_not_cry_wolf():
    # |SMD| 0.3-0.45 happens by chance with 50 patients per arm: the chance floor absorbs it
    for seed in range(4):
        r = assess_assignment(_panel(100, seed)[1])
        assert r.smd_chance > 0.55
        assert r.warnings == [], (seed, r.warnings)


def test_metrics_and_summary_are_json_ready(confounded):
    import json

    _, r = confounded
    summary = json.loads(json.dumps(r.to_dict()))
    assert summary["thresholds"] == {"auc": AUC_WARN, "smd": SMD_WARN, "overlap": 0.1}
    metrics = assignment_metrics(summary)
    assert metrics == r.flat_metrics()
    assert metrics["assignment_warning"] == 1.0
    assert metrics["assignment_propensity_auc"] == pytest.approx(r.auc)


def test_smd_by_hand():
    Z = pd.DataFrame({"x": [1.0, 2.0, 3.0, 5.0, 7.0, np.nan], "const": 1.0})
    t = [1, 1, 1, 0, 0, 0]
    smd = standardised_mean_differences(Z, t)
    # mean 2 vs 6, variances 1 and 2 (NaN ignored)
    assert smd["x"] == pytest.approx(-4 / np.sqrt(1.5))
    assert smd["const"] == 0.0
    w = [1, 1, 1, 3, 1, 1]  # GA weighted mean (15 + 7) / 4 = 5.5
    assert standardised_mean_differences(Z, t, w)["x"] == pytest.approx(-3.5 / np.sqrt(1.5))


def test_ipw_weights_are_stabilised_clipped_and_normalised():
    e = np.array([0.99, 0.5, 0.25, 0.01, 0.5, 0.75])
    t = np.array([1, 1, 1, 0, 0, 0])
    w = ipw_weights(e, t, clip=0.05)
    assert w[t == 1].mean() == pytest.approx(1.0) and w[t == 0].mean() == pytest.approx(1.0)
    raw = np.array([0.5 / 0.95, 0.5 / 0.5, 0.5 / 0.25])  # 0.99 clipped to 0.95
    np.testing.assert_allclose(w[:3], raw / raw.mean())
    raw = np.array([0.5 / 0.95, 0.5 / 0.5, 0.5 / 0.25])  # 0.01 clipped to 0.05
    np.testing.assert_allclose(w[3:], raw / raw.mean())
    with pytest.raises(UsageError, match=r"clip must be in \[0, 0.5\)"):
        ipw_weights(e, t, clip=0.5)


def test_report_weights_follow_the_patients(confounded):
    _, r = confounded
    w = r.weights()
    assert w.index.equals(r.propensity.index)
    high = r.propensity > 0.8  # likely IFN-beta: the IFN-beta ones among them count less
    ifnb = r.therapy == "ifnb"
    assert w[high & ifnb].mean() < 1 < w[high & ~ifnb].mean()


def test_bad_inputs_are_refused():
    frame = pd.DataFrame({"IL10": np.arange(12.0) + 1})
    with pytest.raises(UsageError, match="therapy must be 'ifnb' or 'ga' on every row, got nat"):
        estimate_propensity(frame, ["ifnb"] * 6 + ["ga"] * 5 + ["nat"])
    with pytest.raises(UsageError, match="at least 5 patients per therapy"):
        estimate_propensity(frame, ["ifnb"] * 9 + ["ga"] * 3)
    with pytest.raises(UsageError, match="therapy has 3 values"):
        estimate_propensity(frame, ["ifnb"] * 3)


def test_config_fields():
    cfg = TrainConfig.from_dict({"ipw": True, "ipw_clip": 0.1, "n_ensemble": 10})
    assert (cfg.ipw, cfg.ipw_clip, cfg.n_ensemble, cfg.recommend_level) == (True, 0.1, 10, 0.9)
    with pytest.raises(UsageError, match="ipw must be true or false"):
        TrainConfig(ipw="yes")
    with pytest.raises(UsageError, match="n_ensemble must be an integer >= 0"):
        TrainConfig(n_ensemble=-1)
    with pytest.raises(UsageError, match=r"recommend_level must be in \(0, 1\)"):
        TrainConfig(recommend_level=1.0)


def test_ipw_needs_both_therapies():
    from cytoresp.datasets import simulate_cohort
    from cytoresp.train.fitting import fit_response_model

    table = simulate_cohort(120, seed=2).panel
    only_ifnb = table[table["therapy"] == "ifnb"]
    with pytest.raises(UsageError, match="needs labelled patients of both therapies"):
        fit_response_model(only_ifnb, therapy="ifnb", config=TrainConfig(ipw=True))


def test_ipw_training_end_to_end():
    """A small confounded cohort trained with --ipw: weighted heads and ensemble, metadata."""
    from cytoresp.train.cv import make_head
    from cytoresp.train.fitting import fit_response_model, therapy_rows

    _, panel = _panel(240, 8, "confounded", 2.0)
    config = TrainConfig(
        n_repeats=1,
        n_splits=3,
        inner_splits=2,
        n_boot=20,
        n_jobs=1,
        n_ensemble=4,
        ipw=True,
        # fast heads: fixed penalties, so the weights are the only difference from a refit
        model={"early_stopping": False, "n_estimators": 20, "C": 0.3, "C_ridge": 0.3},
    )
    lines: list[str] = []
    model, _ = fit_response_model(panel, config=config, log=lines.append)
    assert any(line.startswith("WARNING: therapy assignment is predictable") for line in lines)
    assert any("inverse-propensity weights" in line for line in lines)
    assert not any("consider inverse-propensity weighting" in line for line in lines)
    meta = model.metadata["assignment"]
    assert meta["ipw"] is True and meta["propensity_auc"] > AUC_WARN and meta["warnings"]
    assert model.ensemble.n_members == 4
    # the saved head is the weighted fit: an unweighted refit of the same head differs
    frame, y = therapy_rows(panel, "ga")
    unweighted = make_head(config).fit(frame, y)
    weighted = model.heads["ga"].pipeline.decision_function(frame)
    assert np.abs(weighted - unweighted.decision_function(frame)).max() > 0.05


def test_cli_offers_ipw(capsys):
    from cytoresp.cli import main

    assert main(["train", "--help"]) == 0
    assert "--ipw" in capsys.readouterr().out
