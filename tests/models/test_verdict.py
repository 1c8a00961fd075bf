"""The verdict against the baselines (models/verdict.py): the rule, its storage, its words."""

from __future__ import annotations

import math

import pytest

from cytoresp.models.verdict import (
    BaselineComparison,
    baseline_verdicts,
    caution,
    compare_with_baselines,
    status,
    summary_line,
    verdict_to_dict,
)

NAN = math.nan


def flat(therapy: str, **diffs: tuple[float, float, float]) -> dict[str, float]:
    """Flat cv metrics holding ``{therapy}_auc_diff_vs_{base}`` (value, lower, upper)."""
    out = {f"{therapy}_roc_auc": 0.7}
    for base, (v, lo, hi) in diffs.items():
        key = f"{therapy}_auc_diff_vs_{base}"
        out |= {key: v, f"{key}_lower": lo, f"{key}_upper": hi}
    return out


@pytest.mark.parametrize(
    "lower, beats",
    [(0.001, True), (0.0, False), (-0.001, False), (-0.2, False), (NAN, None)],
)
def test_clearly_above_means_the_lower_bound_is_above_zero(lower, beats):
    assert BaselineComparison("logistic", 0.05, lower, 0.1).beats is beats


@pytest.mark.parametrize(
    "logistic, prevalence, expected_status, expected_caution",
    [
        ((0.05, 0.01, 0.09), (0.2, 0.1, 0.3), "true", None),
        ((0.0, -0.13, 0.13), (0.2, 0.1, 0.3), "false",
         "this model did not beat a plain logistic regression in cross-validation; "
         "treat its numbers with caution"),
        ((0.05, 0.01, 0.09), (0.1, -0.01, 0.2), "false",
         "this model did not beat a constant prediction (the training prevalence for "
         "everyone) in cross-validation; treat its numbers with caution"),
        ((-0.1, -0.2, 0.0), (0.0, -0.1, 0.1), "false",
         "this model did not beat a constant prediction (the training prevalence for "
         "everyone) nor a plain logistic regression in cross-validation; treat its "
         "numbers with caution"),
        # no interval (n_boot = 0): untested, said as such, never a pass
        ((0.05, NAN, NAN), (0.2, NAN, NAN), "untested", "this model was not tested"),
        # one interval missing, the other passed: still untested
        ((0.05, 0.01, 0.09), (0.2, NAN, NAN), "untested", "this model was not tested"),
        # a loss is a loss even when the other comparison is untested
        ((0.0, -0.1, 0.1), (0.2, NAN, NAN), "false", "this model did not beat a plain logistic"),
    ],
)
def test_status_and_caution(logistic, prevalence, expected_status, expected_caution):
    comps = compare_with_baselines(flat("ga", logistic=logistic, prevalence=prevalence), "ga")
    assert list(comps) == ["logistic", "prevalence"]
    assert status(comps) == expected_status
    text = caution(comps)
    if expected_caution is None:
        assert text is None
    else:
        assert text is not None and text.startswith(expected_caution)


def test_other_baselines_are_listed_but_not_judged():
    comps = compare_with_baselines(
        flat("ga", clinical=(-0.2, -0.3, -0.1), prevalence=(0.2, 0.1, 0.3),
             logistic=(0.05, 0.01, 0.09)),
        "ga",
    )
    assert list(comps) == ["logistic", "prevalence", "clinical"]  # judged ones first
    assert comps["clinical"].beats is False
    assert status(comps) == "true"


def test_stored_verdict_wins_over_the_metrics_and_old_models_get_one_from_them():
    meta = {"cv_metrics": {"ifnb": flat("ifnb", logistic=(0.0, -0.1, 0.1))}}
    derived = baseline_verdicts(meta)
    assert status(derived["ifnb"]) == "false"
    stored = verdict_to_dict(meta)
    assert stored["therapies"]["ifnb"]["beats_baselines"] is False
    assert stored["therapies"]["ifnb"]["baselines"]["logistic"]["beats"] is False
    # what training stored is what is read back, even if the metrics say otherwise
    meta_changed = {"cv_metrics": {"ifnb": flat("ifnb", logistic=(0.2, 0.1, 0.3))},
                    "baseline_verdict": stored}
    assert status(baseline_verdicts(meta_changed)["ifnb"]) == "false"
    # a model without metrics has no comparison: untested, with its own sentence
    assert baseline_verdicts({}) == {}
    assert status({}) == "untested"
    assert caution({}).startswith("this model was not tested")


def test_stored_verdict_survives_json():
    import json

    meta = {"cv_metrics": {"ga": flat("ga", logistic=(0.05, NAN, NAN))}}
    stored = json.loads(json.dumps(verdict_to_dict(meta), allow_nan=True))
    assert stored["therapies"]["ga"]["baselines"]["logistic"]["beats"] is None
    assert status(baseline_verdicts({"baseline_verdict": stored})["ga"]) == "untested"


def test_summary_lines_name_the_numbers():
    lost = compare_with_baselines(flat("placebo", logistic=(0.0, -0.126, 0.128),
                                       prevalence=(0.17, -0.008, 0.351)), "placebo")
    line = summary_line("placebo", lost)
    assert line.startswith("WARNING placebo: this model did not beat a constant prediction")
    assert "nor a plain logistic regression" in line
    assert "vs prevalence: +0.170 (95% CI -0.008 to +0.351)" in line
    assert "vs logistic: +0.000 (95% CI -0.126 to +0.128)" in line
    assert summary_line("ga", {}).startswith("note ga: not tested")
