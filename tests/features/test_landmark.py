"""landmark_table: one row per patient, baseline columns and the on-treatment sample."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from cytoresp.errors import UsageError
from cytoresp.features.landmark import DEFAULT_WINDOW, landmark_table, landmark_window
from cytoresp.panels import read_panel

CSV = (
    "sample_id,patient_id,month,TNF,IL10,age,plate,therapy\n"
    "a0,A,0,8,<1,30,P1,ifnb\n"
    "a3,A,3,4,2,,P2,\n"
    "a6,A,6.5,2,4,,P3,\n"
    "b0,B,0,5,1,40,P1,ga\n"
    "b12,B,12,5,1,,P4,\n"
    "c3,C,3.5,<0.5,1,50,P2,ga\n"
)


@pytest.fixture
def panel():
    return read_panel(io.StringIO(CSV))


def test_baseline_landmark_is_the_month_0_samples(panel):
    t = landmark_table(panel, 0)
    assert t.index.tolist() == ["A", "B"] and t.index.name == "patient_id"
    assert t.columns.tolist() == ["TNF", "IL10", "age"]  # no plate without asking for it
    assert t.loc["A"].tolist() == [8.0, -1.0, 30.0]   # censored below 1 stays -1
    assert t.attrs["dropped"] == ["C"] and t.attrs["without_baseline"] == []


@pytest.mark.parametrize(
    ("landmark", "window", "on_months", "dropped"),
    [
        (3, None, {"A": 3.0, "C": 3.5}, ["B"]),
        (6, None, {"A": 6.5, "C": 3.5}, ["B"]),        # the latest sample in (0, 7]
        (6, 0.0, {"A": 3.0, "C": 3.5}, ["B"]),         # 6.5 is outside (0, 6]
        (3, 0.0, {"A": 3.0}, ["B", "C"]),              # 3.5 is outside (0, 3]
        (12, None, {"A": 6.5, "B": 12.0, "C": 3.5}, []),
    ],
)
def test_on_treatment_sample_is_the_latest_in_the_window(panel, landmark, window, on_months,
                                                         dropped):
    t = landmark_table(panel, landmark, window)
    assert t["month_on"].to_dict() == on_months
    assert t.attrs["dropped"] == dropped
    assert t.attrs["window"] == (0.0, landmark + (DEFAULT_WINDOW if window is None else window))


def test_columns_values_and_patients_without_baseline(panel):
    t = landmark_table(panel, 3)
    assert t.columns.tolist() == ["TNF", "IL10", "age", "TNF@on", "IL10@on", "month_on"]
    assert t.loc["A", ["TNF", "TNF@on", "IL10", "IL10@on"]].tolist() == [8.0, 4.0, -1.0, 2.0]
    # C has no baseline: kept for scoring with NaN baseline values, and named
    assert np.isnan(t.loc["C", "TNF"]) and t.loc["C", "TNF@on"] == -0.5
    assert t.loc["C", "age"] == 50.0   # a per-patient covariate comes from any of its rows
    assert t.attrs["without_baseline"] == ["C"]


def test_plate_is_the_baseline_plate(panel):
    t = landmark_table(panel.to_model_frame(plate=True, visits=True), 3)
    assert "plate@on" not in t.columns and "plate" in t.columns
    a0 = panel.to_model_frame(plate=True).loc["a0", "plate"]
    assert t.loc["A", "plate"] == a0


def test_a_panel_without_visits_is_one_baseline_sample_per_patient():
    p = read_panel(io.StringIO("sample_id,IL10\ns1,1\ns2,2\n"))
    t = landmark_table(p, 0)
    assert t.index.tolist() == ["s1", "s2"] and t["IL10"].tolist() == [1.0, 2.0]
    t3 = landmark_table(p, 3)
    assert len(t3) == 0 and t3.attrs["dropped"] == ["s1", "s2"]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((-1,), "landmark must be a number of months >= 0"),
        (("3",), "landmark must be a number of months >= 0"),
        ((3, -0.5), "window must be a number of months >= 0"),
        ((float("nan"),), "landmark must be a number of months >= 0"),
    ],
)
def test_bad_landmark_or_window(panel, args, match):
    with pytest.raises(UsageError, match=match):
        landmark_table(panel, *args)


def test_bad_frames():
    with pytest.raises(UsageError, match="needs a frame with 'patient_id' and 'month'"):
        landmark_table(pd.DataFrame({"IL10": [1.0]}), 0)
    dup = pd.DataFrame({"patient_id": ["A", "A"], "month": [3.0, 3.0], "IL10": [1.0, 2.0]})
    with pytest.raises(UsageError, match="several samples of one patient at one month: A at "
                                         "month 3"):
        landmark_table(dup, 3)
    neg = pd.DataFrame({"patient_id": ["A"], "month": [-3.0], "IL10": [1.0]})
    with pytest.raises(UsageError, match="a month >= 0"):
        landmark_table(neg, 3)


def test_window_helper():
    assert landmark_window(0, 5) == (0.0, 0.0)
    assert landmark_window(3) == (0.0, 3.0 + DEFAULT_WINDOW)


def test_a_missing_value_at_the_latest_visit_stays_missing():
    """The latest sample is used whole: a value it lacks is not taken from an earlier visit."""
    frame = pd.DataFrame({"patient_id": ["A", "A", "A"], "month": [0.0, 3.0, 6.0],
                          "TNF": [8.0, 4.0, np.nan], "IL10": [1.0, 2.0, 3.0]})
    t = landmark_table(frame, 6)
    assert np.isnan(t.loc["A", "TNF@on"]) and t.loc["A", "IL10@on"] == 3.0
    assert t.loc["A", "month_on"] == 6.0
