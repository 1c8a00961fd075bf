"""ChangeFromBaseline: log2 fold changes, the censoring rule, pairing, ratios, persistence."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cytoresp.errors import ModelIntegrityError, UsageError
from cytoresp.features.builder import PanelFeatures
from cytoresp.features.change import ChangeFromBaseline
from cytoresp.features.ratios import SkippedFeatureWarning


def _frame(base, on, analyte="TNF"):
    return pd.DataFrame({analyte: base, f"{analyte}@on": on}, dtype=np.float64)


@pytest.mark.parametrize(
    ("base", "on", "change", "undetectable"),
    [
        (8.0, 2.0, -2.0, 0.0),     # both observed: exact
        (-2.0, 8.0, 2.0, 0.0),     # <2 -> 8: at least x4
        (-4.0, 2.0, 0.0, 0.0),     # <4 -> 2: any change above -1 is possible, 0 among them
        (4.0, -1.0, -2.0, 0.0),    # 4 -> <1: at most /4
        (1.0, -2.0, 0.0, 0.0),     # 1 -> <2: consistent with no change
        (-2.0, -1.0, 0.0, 1.0),    # below the limit at both visits: no measurable change
        (-1.0, -8.0, 0.0, 1.0),    # ... whatever the two limits
        (np.nan, 4.0, np.nan, np.nan),
        (4.0, np.nan, np.nan, np.nan),
    ],
)
def test_censoring_rule(base, on, change, undetectable):
    X = _frame([base, -1.0, 3.0], [on, -1.0, 3.0])  # row 2 makes the indicator exist
    t = ChangeFromBaseline(ratios=None).fit(X)
    assert t.get_feature_names_out().tolist() == ["TNF Δ", "TNF Δ undetectable"]
    out = t.transform(X)[0]
    np.testing.assert_equal(out, [change, undetectable])


@settings(max_examples=200, deadline=None)
@given(
    true_b=st.floats(0.01, 1000.0), true_o=st.floats(0.01, 1000.0),
    lim_b=st.floats(0.05, 50.0), lim_o=st.floats(0.05, 50.0),
)
def test_output_is_the_smallest_change_the_measurements_prove(true_b, true_o, lim_b, lim_o):
    """Censor true values at their limits; the output lies in the interval of changes
    consistent with the measurements, at its point nearest 0, and the true change lies
    in that interval too (so the output never overstates the change)."""
    b = -lim_b if true_b < lim_b else true_b
    o = -lim_o if true_o < lim_o else true_o
    X = _frame([b, 5.0], [o, 5.0])
    d = ChangeFromBaseline(ratios=None, add_indicators=False).fit(X).transform(X)[0, 0]
    lo = -np.inf if o < 0 else np.log2(o) - (np.log2(b) if b > 0 else np.log2(lim_b))
    hi = np.inf if b < 0 else (np.log2(o) if o > 0 else np.log2(lim_o)) - np.log2(b)
    if b < 0 and o < 0:
        lo, hi = -np.inf, np.inf
    truth = np.log2(true_o) - np.log2(true_b)
    assert lo - 1e-9 <= truth <= hi + 1e-9
    assert d == pytest.approx(min(max(0.0, lo), hi), abs=1e-12)
    assert abs(d) <= abs(truth) + 1e-9 and (d == 0 or np.sign(d) == np.sign(truth))


def test_zero_is_censored_at_the_floor():
    X = _frame([0.0, 2.0, 4.0], [8.0, 2.0, 0.0])
    t = ChangeFromBaseline(ratios=None).fit(X)
    assert t.floor_.tolist() == [2.0]
    # 0 -> 8 is "<2 -> 8": at least x4; 4 -> 0 is "4 -> <2": at most /2
    assert t.transform(X)[:, 0].tolist() == [2.0, 0.0, -1.0]


def test_auto_pairs_only_registry_analytes_with_both_columns():
    X = pd.DataFrame({"IFN-gamma": [2.0], "IFN-gamma@on": [4.0], "IL10": [1.0],
                      "age": [30.0], "age@on": [31.0], "month_on": [3.0], "IL6@on": [2.0]})
    t = ChangeFromBaseline().fit(X)
    assert t.pairs_ == [("IFN-gamma", "IFN-gamma@on")]
    assert t.get_feature_names_out().tolist() == ["IFNG Δ"]  # named by canonical id
    assert t.feature_sources_ == {"IFNG Δ": ["IFN-gamma", "IFN-gamma@on"]}


def test_ratio_change_is_the_difference_of_the_changes():
    X = pd.DataFrame({"IFNG": [2.0, 8.0], "IFNG@on": [8.0, 8.0],
                      "IL10": [4.0, 1.0], "IL10@on": [2.0, 4.0]})
    t = ChangeFromBaseline(add_indicators=False).fit(X)
    names = t.get_feature_names_out().tolist()
    assert names == ["IFNG Δ", "IL10 Δ", "IFNG/IL10 Δ"]  # the default pair present
    out = t.transform(X)
    np.testing.assert_allclose(out[:, 2], out[:, 0] - out[:, 1])
    assert out[:, 2].tolist() == [3.0, -2.0]
    assert t.feature_sources_["IFNG/IL10 Δ"] == ["IFNG", "IFNG@on", "IL10", "IL10@on"]


def test_explicit_pairs_absent_are_skipped_with_a_warning():
    X = _frame([1.0, 2.0], [2.0, 2.0])
    with pytest.warns(SkippedFeatureWarning, match="skipped 1 pair.*IL10/IL10@on"):
        t = ChangeFromBaseline(columns=[("TNF", "TNF@on"), ("IL10", "IL10@on")]).fit(X)
    assert t.get_feature_names_out().tolist() == ["TNF Δ"]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"columns": "all"}, "columns must be 'auto' or a list"),
        ({"columns": [("TNF",)]}, "columns must be 'auto' or a list"),
        ({"columns": [("TNF", "a"), ("TNF", "b")]}, "paired twice"),
        ({"ratios": "some"}, "pairs must be 'default'"),
        ({"add_indicators": 1}, "add_indicators must be True or False"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises(UsageError, match=match):
        ChangeFromBaseline(**params).fit(_frame([1.0], [2.0]))


def test_round_trip_is_bit_identical_and_tampering_is_refused():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"TNF": rng.lognormal(size=30), "TNF@on": rng.lognormal(size=30),
                      "IL10": -rng.uniform(size=30), "IL10@on": -rng.uniform(size=30)})
    t = ChangeFromBaseline().fit(X)
    d = json.loads(json.dumps(t.to_dict()))
    t2 = ChangeFromBaseline.from_dict(d)
    np.testing.assert_array_equal(t.transform(X), t2.transform(X))
    assert t2.feature_sources_ == t.feature_sources_
    d["fitted"]["ratio_pairs_"] = [[0, 7]]
    with pytest.raises(ModelIntegrityError, match="cannot rebuild ChangeFromBaseline"):
        ChangeFromBaseline.from_dict(d)


def test_combines_with_panel_features_on_a_landmark_table():
    """The baseline features and the changes side by side, as a landmark head uses them."""
    from sklearn.pipeline import FeatureUnion

    X = pd.DataFrame({"TNF": [8.0, 4.0, 2.0], "IL10": [1.0, 2.0, 4.0], "age": [30.0, 40, 50],
                      "TNF@on": [4.0, 4.0, 4.0], "IL10@on": [2.0, 2.0, 2.0],
                      "month_on": [3.0, 3.0, 3.0]})
    union = FeatureUnion([
        ("baseline", PanelFeatures(analytes=["TNF", "IL10"], axes=None)),
        ("change", ChangeFromBaseline()),
    ], verbose_feature_names_out=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedFeatureWarning)
        out = union.fit(X).set_output(transform="pandas").transform(X)
    assert out.columns.tolist() == ["log2_TNF", "log2_IL10", "TNF/IL10", "age",
                                    "TNF Δ", "IL10 Δ", "TNF/IL10 Δ"]
    assert out["TNF Δ"].tolist() == [-1.0, 0.0, 1.0]
