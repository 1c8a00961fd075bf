"""Landmark heads (issue 17): configuration, the alert threshold, training, storage, scoring."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cytoresp.errors import ModelIntegrityError, UsageError
from cytoresp.models.landmarks import is_change_feature, landmark_windows, score_visits
from cytoresp.panels import read_panel
from cytoresp.train.config import TrainConfig, check_landmarks
from cytoresp.train.threshold import choose_alert_threshold


# -- configuration ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("0,three", "whole months separated by commas"),
        ([0, 2.5], "list of whole months"),
        ([0, -3], r"landmark months must be in 0\.\.120"),
        ("x", "whole months"),
    ],
)
def test_bad_landmarks_are_refused(value, match):
    with pytest.raises(UsageError, match=match):
        check_landmarks(value)


def test_landmarks_are_sorted_with_baseline():
    assert check_landmarks([6, 3, 3]) == [0, 3, 6]
    assert check_landmarks(" 3 , 0 ") == [0, 3]


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [("alert_sensitivity", 1.0, r"alert_sensitivity must be in \(0, 1\)"),
     ("alert_sensitivity", 0, r"alert_sensitivity must be in \(0, 1\)"),
     ("landmark_window", -1, r"landmark_window must be a number of months in \[0, 12\)")],
)
def test_bad_landmark_settings_are_refused(key, value, match):
    with pytest.raises(UsageError, match=match):
        TrainConfig(**{key: value})


def test_a_baseline_only_config_stores_what_it_stored_before():
    # no landmark key in a baseline-only config: the stored model metadata is unchanged
    assert not {"landmarks", "landmark_window", "alert_sensitivity"} & set(TrainConfig().to_dict())
    d = TrainConfig(landmarks=[3]).to_dict()
    assert (d["landmarks"], d["alert_sensitivity"]) == ([0, 3], 0.8)


def test_windows_follow_the_previous_landmark():
    assert landmark_windows([0, 3, 6, 12], 0.5) == {3: (0.0, 3.5), 6: (3.0, 6.5),
                                                    12: (6.0, 12.5)}


def test_a_landmark_without_heads_still_bounds_the_next_window():
    from cytoresp.models.landmarks import LandmarkHeads

    stored = {"3": {"window": [0.0, 4.0]}, "6": {"window": [3.0, 7.0]}}
    assert LandmarkHeads(heads={6: {"ga": None}}, metadata=stored).windows() == {6: (3.0, 7.0)}


# -- alert threshold ----------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.floats(0, 1)), min_size=1, max_size=40),
    st.floats(0.05, 1.0),
)
def test_alert_threshold_flags_the_stated_share_and_no_more_than_needed(rows, s):
    y = np.array([r[0] for r in rows])
    p = np.array([r[1] for r in rows])
    if not (y == 0).any():
        with pytest.raises(UsageError, match="no non-responders"):
            choose_alert_threshold(y, p, s)
        return
    t = choose_alert_threshold(y, p, s)
    neg = p[y == 0]
    assert t in set(neg.tolist())
    assert np.mean(neg <= t) >= s - 1e-9  # the stated sensitivity is reached ...
    below = neg[neg < t]
    assert len(below) / len(neg) < s + 1e-9  # ... and any lower threshold misses it


@pytest.mark.parametrize("s", [0.0, 1.5, -0.1])
def test_alert_sensitivity_out_of_range(s):
    with pytest.raises(UsageError, match=r"alert sensitivity must be in \(0, 1\]"):
        choose_alert_threshold([0, 1], [0.2, 0.8], s)


# -- training ----------------------------------------------------------------------------
def test_landmarks_need_a_panel_with_visits():
    from cytoresp.datasets import simulate_cohort
    from cytoresp.train.fitting import fit_response_model

    with pytest.raises(UsageError, match="need a panel with visits: a 'patient_id' and a"):
        fit_response_model(simulate_cohort(40, seed=1).panel,
                           config=TrainConfig(n_splits=3, landmarks=[0, 3]))


def test_baseline_heads_are_the_heads_trained_without_landmarks(landmark_model, visits_cohort):
    """Landmark 0 is exactly today's head: the same model as one trained on the baseline rows."""
    from cytoresp.train.fitting import fit_response_model

    table = visits_cohort.panel
    baseline = table[table["month"] == 0].drop(columns=["patient_id", "month"])
    config = dict(landmark_model.metadata["config"])
    for key in ("landmarks", "landmark_window", "alert_sensitivity"):
        del config[key]
    plain, _ = fit_response_model(baseline, config=TrainConfig(**config))
    panel = read_panel(baseline)
    pd.testing.assert_frame_equal(landmark_model.predict_proba(panel),
                                  plain.predict_proba(panel), check_exact=True)
    assert plain.landmarks is None and landmark_model.landmarks.months == [3, 6]


def test_landmark_heads_read_changes_and_carry_an_alert(landmark_model):
    lm = landmark_model.landmarks
    for month in lm.months:
        info = landmark_model.metadata["landmarks"][str(month)]
        for t, head in lm.heads[month].items():
            changes = [c for c in head.input_columns if is_change_feature(c)]
            assert "IL10 Δ" in changes and "IL10" in head.input_columns
            assert 0 < head.alert_threshold < 1
            alert = info["alert"][t]
            assert 0 <= alert["sensitivity_lower"] <= alert["sensitivity"] <= 1
            assert info["cv_metrics"][t][f"{t}_roc_auc"] == pytest.approx(
                info["cv_metrics"][t][f"{t}_roc_auc"])
            versus = info["vs_baseline_head"][t]
            assert versus["lower"] <= versus["difference"] <= versus["upper"]
            assert info["scored_by"][t] == ("landmark" if versus["beats"] else "baseline")
            # a change input's arrow is its sign: its reference is "no change"
            j = head.features.input_names_.index("IL10 Δ")
            assert head.background[j] == 0.0
        assert info["window"] == list(lm.windows()[month])


# -- storage -----------------------------------------------------------------------------
def test_landmark_model_round_trips_and_is_format_5(landmark_model, tmp_path, visits_cohort):
    from cytoresp.models.response_model import ResponseModel

    landmark_model.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["format_version"] == 5
    spec = json.loads((tmp_path / "m" / "model.json").read_text())
    assert sorted(spec["landmarks"]["heads"]) == ["3", "6"]
    assert all(h["trees"] in manifest["files"] for hs in spec["landmarks"]["heads"].values()
               for h in hs.values() if h["trees"])
    again = ResponseModel.load(tmp_path / "m")
    panel = read_panel(visits_cohort.panel)
    pd.testing.assert_frame_equal(score_visits(again, panel, explain=2),
                                  score_visits(landmark_model, panel, explain=2))


def test_a_baseline_only_model_is_still_format_4(model_dir):
    assert json.loads((model_dir / "manifest.json").read_text())["format_version"] == 4


def test_an_older_cytoresp_refuses_a_landmark_model(landmark_model, tmp_path, monkeypatch):
    from cytoresp.models import persistence

    landmark_model.save(tmp_path / "m")
    monkeypatch.setattr(persistence, "FORMAT_VERSION", 4)
    with pytest.raises(ModelIntegrityError, match=r"written by a newer cytoresp \(format 5\)"):
        persistence.load_model_dir(tmp_path / "m")


# -- scoring -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def new_visits():
    """Patients of an independent cohort: all visits, baseline only, on-treatment only."""
    from cytoresp.datasets import simulate_longitudinal

    table = simulate_longitudinal(30, seed=99, visits=(0, 3, 6)).panel
    pid, month = table["patient_id"], table["month"]
    drop = ((pid == "P0002") & (month > 0)) | ((pid == "P0003") & (month == 0)) \
        | ((pid == "P0004") & (month == 6))
    return table[~drop.to_numpy()].reset_index(drop=True)


def test_each_patient_is_scored_at_its_latest_landmark(landmark_model, new_visits):
    out = score_visits(landmark_model, read_panel(new_visits), explain=3).set_index("patient_id")
    assert len(out) == new_visits["patient_id"].nunique()
    row = out.loc["P0001"]  # every visit: the 6-month head, with the change since baseline
    assert (row["landmark_month"], row["sample_id"]) == (6, "P0001-m6")
    assert row["p_response_change"] == pytest.approx(row["p_response"]
                                                     - row["p_response_baseline"])
    only_base = out.loc["P0002"]
    assert only_base["landmark_month"] == 0 and pd.isna(only_base["early_nonresponse_alert"])
    assert only_base["p_response"] == only_base["p_response_baseline"]
    assert math.isnan(only_base["p_response_change"])
    no_base = out.loc["P0003"]
    assert no_base["landmark_month"] == 6 and math.isnan(no_base["p_response_baseline"])
    assert "no baseline (month 0) sample" in no_base["warnings"]
    assert out.loc["P0004", "landmark_month"] == 3
    # the alert is the latest head's probability at or below its threshold
    lm = landmark_model.landmarks
    on = out[out["landmark_month"] > 0]
    thresholds = [lm.heads[m][t].alert_threshold
                  for m, t in zip(on["landmark_month"], on["therapy"], strict=True)]
    assert (on["early_nonresponse_alert"].astype(bool)
            == (on["p_response"].to_numpy() <= np.asarray(thresholds))).all()


def scored_by(model, kind: str):
    """A copy of ``model`` whose landmarks are all scored by ``kind`` heads."""
    import copy

    model = copy.deepcopy(model)
    for info in model.metadata["landmarks"].values():
        info["scored_by"] = dict.fromkeys(info["scored_by"], kind)
    model.landmarks.metadata = model.metadata["landmarks"]
    return model


def test_drivers_say_change_since_baseline(landmark_model, new_visits):
    from cytoresp.models.attribution import contributions_and_inputs
    from cytoresp.models.landmarks import landmark_probabilities
    from cytoresp.models.response_model import align_frame

    landmark_model = scored_by(landmark_model, "landmark")
    panel = read_panel(new_visits)
    out = score_visits(landmark_model, panel, explain=40).set_index("patient_id")
    text = out.loc["P0001", "drivers"]
    assert " Δ↑ " in text or " Δ↓ " in text
    # the arrow of a change is the sign of the change itself
    got = landmark_probabilities(landmark_model, panel)
    t = out.loc["P0001", "therapy"]
    head = landmark_model.landmarks.heads[6][t]
    frame = align_frame(got["inputs"][6].loc[["P0001"]], head.input_columns)
    _, _, Z = contributions_and_inputs(head, frame)
    for part in text.split("; "):
        name, _, _ = part.rpartition(" ")
        if name.endswith(" Δ↑") or name.endswith(" Δ↓"):
            value = float(Z.iloc[0][name[:-1]])
            assert (value >= 0) == name.endswith("↑"), (part, value)


# -- the landmark head against the baseline head ------------------------------------------
def _cv(ids, y, p, repeat=0):
    from cytoresp.train.cv import CVResult

    return CVResult(oof=pd.DataFrame({"sample_id": ids, "repeat": repeat, "y": y,
                                      "p_default": p}))


def test_a_landmark_head_scores_only_where_it_beats_the_baseline_head():
    from cytoresp.train.landmarks import baseline_comparison

    rng = np.random.default_rng(0)
    n = 120
    y = np.repeat([0, 1], n // 2)
    good = np.clip(y * 0.6 + rng.uniform(0, 0.4, n), 0, 1)  # separates the classes
    noise = rng.uniform(0, 1, n)
    patients = [f"p{i}" for i in range(n)]
    base_ids = pd.Series([f"s{i}" for i in range(n)], index=patients)
    config = TrainConfig(n_boot=200)
    better, paired = baseline_comparison(_cv(patients, y, good), _cv(list(base_ids), y, noise),
                                         base_ids, config)
    assert better["beats"] is True and better["lower"] > 0 and better["n"] == n
    worse, _ = baseline_comparison(_cv(patients, y, noise), _cv(list(base_ids), y, good),
                                   base_ids, config)
    assert worse["beats"] is False and worse["difference"] < 0
    # patients without a baseline sample are left out of the pairing
    partial, paired = baseline_comparison(_cv(patients, y, good), _cv(list(base_ids), y, noise),
                                          base_ids.iloc[: n // 2 + 10], config)
    assert partial["n"] == n // 2 + 10 and len(paired) == n // 2 + 10
    none, paired = baseline_comparison(_cv(patients, y, good), None, base_ids, config)
    assert none["beats"] is None and paired is None


def test_baseline_alert_is_chosen_on_other_patients():
    from cytoresp.train.landmarks import baseline_alert_metrics

    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 100)
    paired = pd.DataFrame({"sample_id": [f"p{i}" for i in range(200)], "repeat": 0, "y": y,
                           "p_baseline": np.clip(0.3 + 0.3 * y + rng.normal(0, 0.2, 200), 0, 1)})
    m = baseline_alert_metrics(paired, TrainConfig(n_boot=100, alert_sensitivity=0.8))
    # thresholds chosen on the other patients: the sensitivity is near its target
    assert 0.65 <= m["sensitivity"] <= 0.95
    assert 0.3 <= m["specificity"] <= 0.95
    assert m["sensitivity_lower"] <= m["sensitivity"] <= m["sensitivity_upper"]


def test_scoring_falls_back_to_the_baseline_head(landmark_model, new_visits):
    model = scored_by(landmark_model, "baseline")
    out = score_visits(model, read_panel(new_visits), explain=3).set_index("patient_id")
    on = out[(out["landmark_month"] > 0) & out["p_response_baseline"].notna()]
    assert len(on) and (on["p_response"] == on["p_response_baseline"]).all()
    assert (on["p_response_change"] == 0).all()
    assert on["warnings"].str.contains("did not beat the baseline head").all()
    assert not on["drivers"].str.contains(" Δ").any()  # the baseline head's drivers
    # a patient without a baseline sample is still scored by the landmark head
    assert out.loc["P0003", "landmark_month"] == 6 and np.isfinite(out.loc["P0003",
                                                                           "p_response"])


def test_a_patient_without_baseline_is_alerted_on_the_landmark_heads_threshold(
    landmark_model, new_visits
):
    # where the baseline head scores a landmark, head.alert_threshold was chosen on the
    # baseline head's probabilities; a patient without a baseline sample is scored by the
    # landmark head and must be compared with the landmark head's own threshold
    model = scored_by(landmark_model, "baseline")
    for month, by_therapy in model.landmarks.heads.items():
        for t, head in by_therapy.items():
            head.alert_threshold = 1.0  # as if chosen on the baseline head: flags everybody
            model.metadata["landmarks"][str(month)]["alert"][t]["landmark_threshold"] = 0.0
    out = score_visits(model, read_panel(new_visits)).set_index("patient_id")
    assert out.loc["P0003", "p_response"] > 0
    assert out.loc["P0003", "early_nonresponse_alert"] == False  # noqa: E712 (pd.NA-aware)
    with_base = out[(out["landmark_month"] > 0) & out["p_response_baseline"].notna()]
    assert with_base["early_nonresponse_alert"].astype(bool).all()
    # a model that does not store the landmark head's threshold gives no alert there
    for info in model.metadata["landmarks"].values():
        for alert in info["alert"].values():
            alert.pop("landmark_threshold", None)
    out = score_visits(model, read_panel(new_visits)).set_index("patient_id")
    assert pd.isna(out.loc["P0003", "early_nonresponse_alert"])


def test_the_report_alerts_a_patient_without_baseline_on_the_landmark_heads_threshold(
    landmark_model, new_visits
):
    from cytoresp.predict.report import build_trajectory

    model = scored_by(landmark_model, "baseline")
    for month, by_therapy in model.landmarks.heads.items():
        for t, head in by_therapy.items():
            head.alert_threshold = 1.0  # as if chosen on the baseline head's probabilities
            model.metadata["landmarks"][str(month)]["alert"][t]["landmark_threshold"] = 0.0
    panel = read_panel(new_visits)
    tr = build_trajectory(model, panel, "P0003")  # no baseline: the landmark head scores
    assert tr.alert is False and tr.alert_threshold == 0.0
    assert build_trajectory(model, panel, "P0001").alert is True  # baseline head, 1.0
