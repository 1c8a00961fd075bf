"""The decision rule between therapies and what a model stores for it (issue 15)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from cytoresp.errors import ModelIntegrityError, UsageError
from cytoresp.models.choice import (
    RECOMMENDATION_COLUMNS,
    PairCalibration,
    TherapyChoice,
    describe_recommendation,
    recommend_table,
)
from cytoresp.models.persistence import load_model_dir


def pair(
    first="ifnb",
    second="ga",
    intercept=0.0,
    slope=1.0,
    v=(4e-4, 0.0, 1e-2),
    p=0.001,
    passed=True,
    center=0.0,
):
    return PairCalibration(
        first, second, intercept, slope, ((v[0], v[1]), (v[1], v[2])), center, 400, p, passed
    )


def proba(**cols):
    return pd.DataFrame({f"p_response_{k}": v for k, v in cols.items()})


# -- the rule ---------------------------------------------------------------------------------
def test_a_therapy_is_named_only_when_the_interval_excludes_zero():
    choice = TherapyChoice(["ifnb", "ga"], [pair()])
    p = proba(ifnb=[0.8, 0.5, 0.3, 0.45], ga=[0.4, 0.48, 0.6, 0.5])
    rec = recommend_table(p, choice)
    assert list(rec.columns) == [*p.columns, *RECOMMENDATION_COLUMNS]
    # calibrated difference = 0 + 1 * (p_ifnb - p_ga); se = sqrt(4e-4 + d^2 * 1e-2)
    d = np.array([0.4, 0.02, -0.3, -0.05])
    se = np.sqrt(4e-4 + d**2 * 1e-2)
    np.testing.assert_allclose(rec["difference"], np.abs(d))
    np.testing.assert_allclose(rec["difference_lower"], np.abs(d) - 1.6448536 * se, atol=1e-6)
    assert rec["leading_therapy"].tolist() == ["ifnb", "ifnb", "ga", "ga"]
    assert rec["runner_up"].tolist() == ["ga", "ga", "ifnb", "ifnb"]
    assert rec["recommended_therapy"].tolist() == ["ifnb", "either", "ga", "ga"]
    assert rec["recommendation_reason"].iloc[1] == (
        "the 90% interval of the calibrated difference includes 0"
    )


def test_the_calibration_can_reverse_the_heads_ranking():
    # the heads put IFN-beta slightly ahead, but the cohort's average difference favours GA
    choice = TherapyChoice(["ifnb", "ga"], [pair(intercept=-0.2, slope=0.5)])
    rec = recommend_table(proba(ifnb=[0.52], ga=[0.50]), choice)
    assert rec["leading_therapy"].iloc[0] == "ga"
    assert rec["difference"].iloc[0] == pytest.approx(0.19)
    assert rec["recommended_therapy"].iloc[0] == "ga"


@pytest.mark.parametrize(
    ("choice", "reason"),
    [
        (
            TherapyChoice(["ifnb", "ga"], [pair(p=0.4, passed=False)]),
            r"no evidence that the therapies' effects differ .*ifnb vs ga: "
            r"heterogeneity test p = 0\.4",
        ),
        (None, "holds no cohort-level heterogeneity test"),
    ],
)
def test_a_failed_or_missing_gate_makes_every_recommendation_either(choice, reason):
    rec = recommend_table(proba(ifnb=[0.9, 0.1], ga=[0.1, 0.9]), choice)
    assert (rec["recommended_therapy"] == "either").all()
    assert rec["recommendation_reason"].str.contains(reason).all()
    if choice is not None:  # the calibrated difference and its interval are still reported
        assert rec["difference_lower"].notna().all()


def test_more_than_two_therapies_compare_the_two_leading_ones():
    choice = TherapyChoice(
        ["ifnb", "ga", "dmf"],
        [pair("ifnb", "ga"), pair("ifnb", "dmf", p=0.3, passed=False), pair("ga", "dmf")],
    )
    p = proba(ifnb=[0.9, 0.7, 0.2], ga=[0.2, 0.1, 0.3], dmf=[0.3, 0.6, 0.8])
    rec = recommend_table(p, choice)
    assert rec["leading_therapy"].tolist() == ["ifnb", "ifnb", "dmf"]
    assert rec["runner_up"].tolist() == ["dmf", "dmf", "ga"]
    # ifnb vs dmf failed its test: either; ga vs dmf passed and its interval excludes 0
    assert rec["recommended_therapy"].tolist() == ["either", "either", "dmf"]
    assert "ifnb vs dmf" in rec["recommendation_reason"].iloc[0]


def test_missing_probability_gives_either_with_the_reason():
    choice = TherapyChoice(["ifnb", "ga"], [pair()])
    rec = recommend_table(proba(ifnb=[np.nan, 0.9], ga=[0.2, 0.1]), choice)
    assert rec["recommended_therapy"].tolist() == ["either", "ifnb"]
    assert rec["recommendation_reason"].iloc[0] == "a probability of response could not be computed"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"therapies": ["ifnb"], "pairs": []}, "at least two therapies"),
        ({"therapies": ["ifnb", "ga"], "pairs": [], "level": 90}, r"level must be a number in"),
        ({"therapies": ["ifnb", "ga"], "pairs": [], "alpha": 0}, r"alpha must be a number in"),
    ],
)
def test_choice_arguments_are_checked(kwargs, match):
    with pytest.raises(UsageError, match=match):
        TherapyChoice(**kwargs)


def test_one_probability_column_is_refused():
    with pytest.raises(UsageError, match="at least two therapies"):
        recommend_table(proba(ifnb=[0.5]), None)


def test_report_sentence_names_the_compared_therapies_and_the_reason():
    row = {
        "p_response_ifnb": 0.52,
        "p_response_ga": 0.49,
        "leading_therapy": "ifnb",
        "runner_up": "ga",
        "difference": 0.03,
        "difference_lower": -0.08,
        "difference_upper": 0.14,
        "recommended_therapy": "either",
        "recommendation_reason": "the 90% interval of the calibrated difference includes 0",
    }
    assert describe_recommendation(row) == (
        "P(response): IFN-β 0.52, GA 0.49; calibrated difference IFN-β − GA +0.03 "
        "(90% interval -0.08 to +0.14): either (the 90% interval of the calibrated "
        "difference includes 0)"
    )


def test_state_round_trips_and_bad_state_is_refused():
    choice = TherapyChoice(["ifnb", "ga"], [pair(intercept=0.03, slope=0.7)], info={"k": 1})
    again = TherapyChoice.from_dict(json.loads(json.dumps(choice.to_dict())))
    assert again == choice
    with pytest.raises(ModelIntegrityError, match="not a saved therapy choice"):
        TherapyChoice.from_dict({"format": "x"})
    bad = choice.to_dict()
    del bad["pairs"][0]["slope"]
    with pytest.raises(ModelIntegrityError, match="malformed"):
        TherapyChoice.from_dict(bad)


def test_final_scores_are_put_on_the_out_of_fold_scale():
    """score_center / score_scale map the final heads' difference onto the line's scale."""
    oof_line = pair(intercept=0.02, slope=0.8, center=0.01)
    # final heads spreading 1.5 times wider around another mean
    wide = dataclasses.replace(oof_line, score_center=0.05, score_scale=1 / 1.5)
    tau_oof = np.array([-0.2, 0.01, 0.3])
    tau_final = 0.05 + 1.5 * (tau_oof - 0.01)
    for got, want in zip(wide.calibrated(tau_final), oof_line.calibrated(tau_oof), strict=True):
        np.testing.assert_allclose(got, want)
    # unscaled, the same final scores would spread 1.5 times wider
    ratio = np.ptp(oof_line.calibrated(tau_final)[0]) / np.ptp(wide.calibrated(tau_final)[0])
    assert ratio == pytest.approx(1.5)


def test_a_version_1_choice_reads_without_rescaling_and_a_newer_one_is_refused():
    choice = TherapyChoice(["ifnb", "ga"], [pair(intercept=0.03, slope=0.7, center=0.02)])
    old = choice.to_dict()
    old["format_version"] = 1
    for k in ("score_center", "score_scale"):
        del old["pairs"][0][k]
    again = TherapyChoice.from_dict(old)
    assert again.pairs[0].score_scale == 1.0 and again.pairs[0].score_center is None
    np.testing.assert_allclose(
        again.pairs[0].calibrated([0.12])[0], 0.03 + 0.7 * (0.12 - 0.02)
    )
    newer = {**choice.to_dict(), "format_version": 3}
    with pytest.raises(ModelIntegrityError, match="newer cytoresp .*upgrade"):
        TherapyChoice.from_dict(newer)


# -- the trained session model -----------------------------------------------------------------
def test_trained_model_stores_the_gate_and_reports_it(trained):
    model, _ = trained
    choice = model.choice
    assert choice is not None and choice.therapies == ["ifnb", "ga"]
    (pc,) = choice.pairs
    assert (pc.first, pc.second, pc.n) == ("ifnb", "ga", 400)
    assert 0 <= pc.p_value <= 1 and pc.passed == (pc.p_value <= choice.alpha)
    assert f"p = {pc.p_value:.2g}" in model.summary()
    metrics = choice.metrics()
    assert metrics["choice_ifnb_ga_p_value"] == pc.p_value


def test_session_model_recommendation_follows_the_stored_rule(trained):
    """The session cohort has the simulator's large heterogeneity: the gate should pass."""
    from cytoresp.datasets import simulate_cohort
    from cytoresp.panels.read import read_panel

    model, _ = trained
    new = simulate_cohort(1000, seed=606)
    rec = model.recommend(read_panel(new.panel))
    assert model.choice.gate_passed
    confident = rec["recommended_therapy"] != "either"
    assert (rec.loc[confident, "difference_lower"] > 0).all()
    assert (rec.loc[~confident, "difference_lower"] <= 0).all()
    truth = new.truth.set_index("sample_id").loc[rec.index]
    chosen = rec.loc[confident, "recommended_therapy"]
    better = np.where(truth["p_response_ifnb"] >= truth["p_response_ga"], "ifnb", "ga")
    right = (chosen.to_numpy() == better[confident.to_numpy()]).mean()
    assert confident.mean() > 0.2 and right > 0.8, (confident.mean(), right)


def test_choice_survives_save_and_load(trained, tmp_path):
    model, _ = trained
    model.save(tmp_path / "m")
    again = load_model_dir(tmp_path / "m")
    assert again.choice == model.choice
    old = dataclasses.replace(model, choice=None)
    old.save(tmp_path / "old")
    assert load_model_dir(tmp_path / "old").choice is None
