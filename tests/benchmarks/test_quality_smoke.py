"""benchmarks/quality.py: its helpers worked by hand, and a tiny run of its code path
(seconds, not a measurement)."""

import doctest
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cytoresp.train.metrics import Estimate

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def quality(load_benchmark):
    return load_benchmark("quality")


@pytest.fixture(scope="module")
def tiny(quality):
    """One scenario, two models, 60 patients per therapy, two seeds."""
    settings = quality.Settings(
        scenarios=("threshold",),
        sizes=(60,),
        seeds=2,
        test_n=600,
        models=("logistic", "xgb"),
        n_jobs=1,
        real=False,
    )
    return quality.run(settings, log=lambda _m: None, command="smoke")


def _raw(rows):
    cols = ["scenario", "n", "seed", "therapy", "n_train", "oracle", "logistic", "xgb", "tuned",
            "default"]  # fmt: skip
    raw = pd.DataFrame(rows, columns=cols)
    for m in ("logistic", "xgb", "tuned", "default"):
        raw[f"{m}_sec"] = 1.0
    raw["default_trees"] = 3.0
    raw["null_se"] = 0.005  # 3 x 0.005 < 0.02: the fixed tolerance applies
    return raw


# the hand-worked example: two seeds of one cell, and one null cell
HAND = _raw(
    [
        ("dense", 300, 1, "ga", 300, 0.84, 0.78, 0.80, 0.79, 0.795),
        ("dense", 300, 2, "ga", 310, 0.84, 0.80, 0.78, 0.79, 0.775),
        ("null", 300, 1, "ga", 300, 0.50, 0.52, 0.49, 0.50, 0.51),
        ("null", 300, 2, "ga", 300, 0.50, 0.50, 0.48, 0.50, 0.52),
    ]
)


def test_null_auc_se_worked_by_hand_and_covers(quality):
    # (n + 1) / (12 n1 n0) with n1 = 60, n0 = 40: 101 / 28,800
    y = np.array([0] * 40 + [1] * 60)
    assert quality.null_auc_se(y) == pytest.approx(math.sqrt(101 / 28_800))
    # scores unrelated to the labels: the AUC's sd over 400 draws matches it
    rng = np.random.default_rng(0)
    aucs = [quality.roc_auc(y, rng.random(100)) for _ in range(400)]
    assert np.std(aucs) == pytest.approx(quality.null_auc_se(y), rel=0.15)


def test_null_tolerance_widens_with_a_small_test_cohort(quality):
    rows = [("null", 300, 1, "ga", 300, 0.5, 0.52, 0.47, 0.5, 0.5)]
    raw = _raw(rows)
    raw["null_se"] = 0.013  # a 2,000-patient test cohort: 3 se = 0.039
    names = ["logistic", "xgb", "tuned", "default"]
    out = quality.Outcome(simulated=quality.summarise_simulated(raw, names), names=names)
    line = next(x for x in quality.targets(out) if x.startswith("- `null`"))
    assert "within 0.039 of 0.5" in line and "largest |AUC − 0.5| 0.030" in line
    assert "**met**" in line


def test_examples_run(quality):
    failures, tried = doctest.testmod(quality)
    assert tried >= 2 and failures == 0


def test_gap_to_best_worked_by_hand(quality):
    means = {"logistic": 0.70, "xgb": 0.74, "tuned": 0.72, "default": 0.735}
    assert quality.gap_to_best(means, "default") == pytest.approx(-0.005, abs=1e-12)
    # a baseline that was not run does not count
    assert quality.gap_to_best({"logistic": 0.70, "default": 0.72}, "default") == pytest.approx(
        0.02, abs=1e-12
    )


def test_summary_means_gap_and_ratio_worked_by_hand(quality):
    names = ["logistic", "xgb", "tuned", "default"]
    summary = quality.summarise_simulated(HAND, names)
    assert list(summary["scenario"]) == ["dense", "null"]  # the simulator's order
    dense = summary.iloc[0]
    # means: logistic 0.79, xgb 0.79, tuned 0.79, default 0.785 -> gap -0.005
    assert dense["default"].value == pytest.approx(0.785)
    assert dense["default_gap"] == pytest.approx(-0.005, abs=1e-9)
    assert dense["default_ratio"] == pytest.approx(0.785 / 0.84)
    assert dense["n_train"] == 305 and dense["seeds"] == 2
    # t-interval over the two seeds: 0.785 +- t(0.975, 1) * sd(0.795, 0.775) / sqrt(2)
    half = 12.706204736174707 * np.std([0.795, 0.775], ddof=1) / math.sqrt(2)
    assert dense["default"].upper - 0.785 == pytest.approx(half)


@pytest.mark.parametrize(
    ("gap_default", "met"), [(-0.005, True), (-0.01, True), (-0.0101, False), (-0.05, False)]
)
def test_gap_target_met_or_missed(quality, gap_default, met):
    rows = [("dense", 300, 1, "ga", 300, 0.84, 0.78, 0.80, 0.79, 0.80 + gap_default)]
    out = quality.Outcome(
        simulated=quality.summarise_simulated(_raw(rows), ["logistic", "xgb", "tuned", "default"]),
        names=["logistic", "xgb", "tuned", "default"],
    )
    line = next(x for x in quality.targets(out) if "of the best baseline at every" in x)
    assert f"{0 if met else 1} of 1 cells below" in line
    assert f"worst {gap_default:+.3f}" in line
    assert ("**met**" in line) == met
    if not met:
        assert f"missed** by {-0.01 - gap_default:.3f}" in line


def test_targets_report_ratio_null_and_real_with_numbers(quality):
    names = ["logistic", "xgb", "tuned", "default"]
    out = quality.Outcome(
        simulated=quality.summarise_simulated(HAND, names),
        names=names,
        real=[{"dataset": "Septic shock (RACE), T0", "protocol": "cv", "default_gap": -0.037}],
    )
    lines = quality.targets(out)
    ratio = next(x for x in lines if "× oracle AUC" in x)
    # 0.785 / 0.84 = 0.9345: missed by 0.0155 (null excluded: it has no signal)
    assert "lowest 0.935" in ratio and "missed** by 0.015" in ratio and "`null`" not in ratio
    assert "[best model 0.940]" in ratio  # logistic, xgb and tuned: 0.79 / 0.84
    gap = next(x for x in lines if "of the best baseline at every" in x)
    # one cell: null (its default gap is +0.005 here) is judged by |AUC - 0.5| instead
    assert "0 of 1 cells below" in gap and "worst -0.005 (`dense`" in gap
    null = next(x for x in lines if x.startswith("- `null`"))
    # xgb 0.485 and default 0.515 are the farthest from 0.5: within the 0.02 tolerance
    assert "largest |AUC − 0.5| 0.015" in null and "**met**" in null
    assert "L2 logistic 0.010" in null
    real = next(x for x in lines if "real dataset" in x)
    assert "worst -0.037" in real and "missed** by 0.027" in real


def test_seed_sets_are_disjoint_and_named(quality):
    assert not set(quality.EXPLORATION_SEEDS) & set(quality.CONFIRMATION_SEEDS)
    assert quality.TEST_SEEDS["exploration"] != quality.TEST_SEEDS["confirmation"]
    assert not set(quality.TEST_SEEDS.values()) & set(quality.EXPLORATION_SEEDS)
    s = quality.Settings(seed_set="confirmation", seeds=3)
    assert s.training_seeds() == quality.CONFIRMATION_SEEDS[:3]
    assert quality.Settings.quick().training_seeds() == quality.EXPLORATION_SEEDS[:2]


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"models": ("default", "forest")}, r"unknown model\(s\) \['forest'\]"),
        ({"scenarios": ("sparse",)}, r"unknown scenario\(s\) \['sparse'\]"),
        ({"seeds": 9}, r"seeds must be 1..5 for the exploration set"),
    ],
)
def test_bad_settings_are_refused(quality, kw, match):
    with pytest.raises(ValueError, match=match):
        quality.run(quality.Settings(real=False, **kw), log=lambda _m: None)


def test_write_docs_needs_confirmation_seeds(quality, capsys):
    with pytest.raises(SystemExit) as err:
        quality.main(["--quick", "--write-docs"])
    assert err.value.code == 2
    assert "use --seeds confirmation" in capsys.readouterr().err


def test_every_baseline_of_issue_14_is_a_factory(quality):
    assert set(quality.BASELINES) | {"default"} <= set(quality.MODEL_FACTORIES)
    xgb = quality.MODEL_FACTORIES["xgb"](3, 1)
    params = xgb.get_params()
    assert (params["max_depth"], params["n_estimators"]) == (2, 200)
    assert (params["learning_rate"], params["subsample"]) == (0.05, 0.8)


def test_tiny_run_scores_every_model_on_the_scenario(quality, tiny):
    raw = tiny.raw
    assert len(raw) == 4 and set(raw["scenario"]) == {"threshold"}
    assert sorted(set(raw["seed"])) == list(quality.EXPLORATION_SEEDS[:2])
    for m in ("logistic", "xgb"):
        assert raw[m].between(0.3, 1.0).all() and (raw[f"{m}_sec"] > 0).all()
    # the oracle is the test cohort's, the same for both seeds, and beats both models
    assert raw.groupby("therapy")["oracle"].nunique().eq(1).all()
    assert (raw["oracle"] > raw[["logistic", "xgb"]].max(axis=1)).all()
    text = quality.render(tiny)
    assert "| `threshold` | 60 (" in text and "| L2 logistic | XGBoost (untuned) |" in text


def test_write_section_replaces_only_its_own_section(quality, tmp_path):
    path = tmp_path / "results.md"
    path.write_text("# Results\n\n## Speed\n\nfast\n\n## Quality\n\nold\n\n## Other\n\nkeep\n")
    quality.write_section("new table\n", path)
    text = path.read_text()
    assert "old" not in text and "new table" in text
    assert "## Speed\n\nfast" in text and "## Other\n\nkeep" in text
    quality.write_section("again\n", tmp_path / "fresh.md")
    assert (tmp_path / "fresh.md").read_text().startswith("# Results\n\n## Quality\n\nagain")


def test_t_interval(quality):
    est = quality.t_interval([1.0, 2.0, 3.0])
    assert est.value == 2.0
    assert math.isclose(est.upper - 2.0, 4.302652729911275 * 1.0 / math.sqrt(3))
    assert math.isnan(quality.t_interval([0.5]).lower)
    assert quality._fmt(Estimate(0.8, 0.79, 0.83)) == "0.800 ±0.020"


def test_real_loaders_skip_gracefully_when_the_data_are_absent(quality, tmp_path):
    found, skipped = quality.load_real(tmp_path)
    assert found == [] and len(skipped) == 3


def test_real_loaders_on_the_shared_data(quality):
    if not quality.DATA_ROOT.exists():
        pytest.skip("shared data not available")
    found, _ = quality.load_real()
    by_name = {ds.name.split(" ")[0]: ds for ds in found}
    if "IFN-β" in by_name:
        ds = by_name["IFN-β"]
        assert ds.X.shape == (52, 76) and ds.y.sum() == 33 and ds.protocols == ("loo", "cv")
        assert ds.X.isna().to_numpy().any()  # publishers' mean-imputed zeros -> missing
    if "Septic" in by_name:
        ds = by_name["Septic"]
        assert ds.X.shape == (69, 10) and ds.y.sum() == 29
        assert {"IL1B", "TNF", "IL12B", "ANGPT2", "CXCL8"} <= set(ds.X.columns)
    if "COVID-19" in by_name:
        ds = by_name["COVID-19"]
        assert ds.X.shape == (207, 64) and ds.y.sum() == 59
        assert ds.X_valid.shape == (142, 64) and ds.y_valid.sum() == 37
