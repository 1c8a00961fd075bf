"""AxisScoreTransformer: centered means over present members, skipping, row-wise weights."""

from __future__ import annotations

import json
import sys
import types
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cytoresp.errors import ModelIntegrityError, UsageError
from cytoresp.features.axes import AxisScoreTransformer, axis_feature_name
from cytoresp.features.ratios import SkippedFeatureWarning

LOGS = pd.DataFrame(
    {
        "log2_IFNG": [1.0, 3.0, np.nan, 5.0],
        "log2_TNF": [6.0, 8.0, 9.0, np.nan],
        "log2_IL10": [2.0, 2.0, 4.0, 0.0],
    }
)
TH1 = {"Th1": ["IFNG", "TNF"]}


@pytest.fixture
def fake_registry(monkeypatch):
    """A registry stand-in so that these tests do not depend on the real table."""
    mod = types.ModuleType("cytoresp.panels.registry")
    mod.axis_members = lambda: {"Th1": ("IFNG", "TNF"), "Treg": ("IL10",), "Th2": ("IL4",)}
    mod.resolve_analyte = lambda name: name if name in {"IFNG", "TNF", "IL10", "IL4"} else None
    monkeypatch.setitem(sys.modules, "cytoresp.panels.registry", mod)
    return mod


def test_centered_score_is_mean_of_present_members_deviation_from_training_median():
    t = AxisScoreTransformer(axes=TH1).fit(LOGS)
    assert t.centers_ == {"IFNG": 3.0, "TNF": 8.0}
    # row 0: ((1-3) + (6-8)) / 2; row 2: TNF only; row 3: IFNG only
    np.testing.assert_array_equal(t.transform(LOGS).ravel(), [-2.0, 0.0, 1.0, 2.0])
    assert t.get_feature_names_out().tolist() == ["axis_Th1"]


def test_uncentered_score_is_plain_mean():
    t = AxisScoreTransformer(axes=TH1, center=False).fit(LOGS)
    assert t.centers_ == {"IFNG": 0.0, "TNF": 0.0}
    np.testing.assert_array_equal(t.transform(LOGS).ravel(), [3.5, 5.5, 9.0, 5.0])


def test_min_members_gives_nan_when_too_few_present():
    t = AxisScoreTransformer(axes={**TH1, "Treg": ["IL10"]}, min_members=2)
    with pytest.warns(SkippedFeatureWarning, match=r"Treg \(1 of 1 present\)"):
        t.fit(LOGS)
    out = t.transform(LOGS)
    assert out.shape == (4, 1)
    np.testing.assert_array_equal(out.ravel(), [-2.0, 0.0, np.nan, np.nan])


def test_absent_or_all_nan_members_are_dropped_and_empty_axes_skipped():
    X = LOGS.assign(log2_IL4=np.nan)
    axes = {"Th1": ["IFNG", "TNF", "IL12"], "Th2": ["IL4", "IL13"], "Treg": ["IL10"]}
    with pytest.warns(SkippedFeatureWarning, match=r"Th2 \(0 of 2 present\)"):
        t = AxisScoreTransformer(axes=axes).fit(X)
    assert t.axes_ == {"Th1": ("IFNG", "TNF"), "Treg": ("IL10",)}
    assert t.skipped_axes_ == ["Th2"]
    assert t.dropped_members_ == {"Th1": ("IL12",), "Th2": ("IL4", "IL13")}
    assert t.get_feature_names_out().tolist() == ["axis_Th1", "axis_Treg"]


def test_no_axis_usable_gives_zero_columns():
    with pytest.warns(SkippedFeatureWarning):
        t = AxisScoreTransformer(axes={"Th2": ["IL4"]}).fit(LOGS)
    assert t.transform(LOGS).shape == (4, 0)
    assert t.get_feature_names_out().shape == (0,)


def test_missing_row_all_members_gives_nan():
    t = AxisScoreTransformer(axes=TH1).fit(LOGS)
    row = pd.DataFrame({"log2_IFNG": [np.nan], "log2_TNF": [np.nan], "log2_IL10": [1.0]})
    assert np.isnan(t.transform(row)).all()


@pytest.mark.parametrize(
    ("axis", "name"),
    [("IFN-response", "axis_IFN_response"), ("Th1", "axis_Th1"), ("a b/c", "axis_a_b_c")],
)
def test_output_names_replace_non_alphanumerics(axis, name):
    assert axis_feature_name(axis) == name


def test_default_and_named_axes_come_from_the_registry(fake_registry):
    with pytest.warns(SkippedFeatureWarning, match="Th2"):
        t = AxisScoreTransformer().fit(LOGS)
    assert t.axes_ == {"Th1": ("IFNG", "TNF"), "Treg": ("IL10",)}
    t = AxisScoreTransformer(axes=["Treg"]).fit(LOGS)
    assert t.get_feature_names_out().tolist() == ["axis_Treg"]


def test_the_real_registry_default():
    registry = pytest.importorskip("cytoresp.panels.registry")
    members = registry.axis_members()
    X = pd.DataFrame({f"log2_{m}": [1.0, 2.0] for m in members["Th1"] + members["Treg"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedFeatureWarning)
        t = AxisScoreTransformer().fit(X)
    assert set(t.axes_) == {"Th1", "Treg"}
    assert t.axes_["Th1"] == tuple(members["Th1"])
    assert "IFN-response" in t.skipped_axes_


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"axes": ["Th1", "Th3"]}, "unknown axis name\\(s\\): 'Th3'; known axes: Th1, Treg, Th2"),
        ({"axes": ["Th1", "Th1"]}, "listed twice"),
        ({"axes": "Th1"}, "axes must be 'default', None"),
        ({"axes": 5}, "axes must be"),
        ({"axes": {"Th1": []}}, "needs at least one analyte"),
        ({"axes": {"Th1": "IFNG"}}, "members must be a list"),
        ({"axes": {"Th1": ["IFNG", "IFNG"]}}, "lists a member twice"),
        ({"axes": {"IFN-response": ["A"], "IFN response": ["B"]}}, "both be named"),
        ({"axes": TH1, "min_members": 0}, "min_members must be an integer >= 1"),
        ({"axes": TH1, "min_members": 1.5}, "min_members"),
        ({"axes": TH1, "center": "yes"}, "center must be True or False"),
    ],
)
def test_bad_parameters_raise_usage_error(fake_registry, params, match):
    with pytest.raises(UsageError, match=match):
        AxisScoreTransformer(**params).fit(LOGS)


def test_default_axes_without_a_registry_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cytoresp.panels.registry", None)
    with pytest.raises(UsageError, match="needs the analyte registry"):
        AxisScoreTransformer().fit(LOGS)
    for no_axes in (None, [], {}):  # no axes needs no registry
        assert AxisScoreTransformer(axes=no_axes).fit(LOGS).transform(LOGS).shape == (4, 0)


def test_wrong_columns_at_transform():
    t = AxisScoreTransformer(axes=TH1).fit(LOGS)
    with pytest.raises(UsageError, match="feature names should match"):
        t.transform(LOGS[["log2_TNF", "log2_IFNG", "log2_IL10"]])


logs_with_nan = arrays(
    np.float64,
    st.tuples(st.integers(2, 10), st.just(5)),
    elements=st.one_of(st.floats(-20, 20), st.just(np.nan)),
)


@settings(max_examples=60, deadline=None)
@given(X=logs_with_nan, order=st.permutations(["x0", "x1", "x2", "x3"]), center=st.booleans())
def test_property_scores_invariant_to_member_order(X, order, center):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedFeatureWarning)
        a = AxisScoreTransformer(axes={"A": ["x0", "x1", "x2", "x3"]}, center=center).fit(X)
        b = AxisScoreTransformer(axes={"A": order}, center=center).fit(X)
        np.testing.assert_allclose(a.transform(X), b.transform(X), rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    centers=arrays(np.float64, 4, elements=st.floats(-10, 10)),
    shift=st.floats(-5, 5),
    present=st.lists(st.booleans(), min_size=4, max_size=4).filter(any),
)
def test_property_centering_makes_the_score_independent_of_which_member_is_missing(
    centers, shift, present
):
    """Members at their training median + d score d, whichever members are present."""
    train = np.vstack([centers - 1, centers, centers + 1])  # medians are `centers`
    t = AxisScoreTransformer(axes={"A": ["x0", "x1", "x2", "x3"]}).fit(train)
    row = np.where(present, centers + shift, np.nan)[None, :]
    assert t.transform(row)[0, 0] == pytest.approx(shift, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(X=logs_with_nan, min_members=st.integers(1, 3), center=st.booleans())
def test_property_rowwise_weights_rebuild_every_score_exactly(X, min_members, center):
    axes = {"A": ["x0", "x1", "x2"], "B": ["x2", "x3", "x4"], "C": ["x4"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedFeatureWarning)
        t = AxisScoreTransformer(axes=axes, center=center, min_members=min_members).fit(X)
    out = t.transform(X)
    rw = t.rowwise_weights(X)
    n_slots = sum(len(m) for m in t.axes_.values())
    assert rw.weights.shape == (len(X), n_slots) and rw.offsets.shape == out.shape
    np.testing.assert_allclose(rw.apply(X), out, rtol=1e-12, atol=1e-12)  # NaN where NaN
    for a, name in enumerate(rw.features):
        inputs, w, off = rw.for_feature(name)
        scored = ~np.isnan(out[:, a])
        np.testing.assert_allclose(w[scored].sum(axis=1), 1.0)
        assert (w[~scored] == 0).all() and np.isnan(off[~scored]).all()
        assert (w[np.isnan(X[:, inputs])] == 0).all()


def test_rowwise_weights_example_values():
    t = AxisScoreTransformer(axes=TH1).fit(LOGS)
    rw = t.rowwise_weights(LOGS)
    assert rw.features == ("axis_Th1",)
    np.testing.assert_array_equal(rw.slot_input, [0, 1])
    np.testing.assert_array_equal(rw.weights, [[0.5, 0.5], [0.5, 0.5], [0, 1], [1, 0]])
    np.testing.assert_array_equal(rw.offsets.ravel(), [-5.5, -5.5, -8.0, -3.0])
    with pytest.raises(UsageError, match="not an axis score"):
        rw.for_feature("axis_Th2")


def test_to_dict_from_dict_round_trip():
    axes = {"Th1": ["IFNG", "TNF", "IL12"], "IFN-response": ["IL10"]}
    t = AxisScoreTransformer(axes=axes, min_members=1).fit(LOGS)
    d = json.loads(json.dumps(t.to_dict(), allow_nan=False))
    back = AxisScoreTransformer.from_dict(d)
    assert back.axes_ == t.axes_ and back.centers_ == t.centers_
    assert back.dropped_members_ == {"Th1": ("IL12",)}
    assert back.transform(LOGS).tobytes() == t.transform(LOGS).tobytes()
    d["fitted"]["centers_"].pop("TNF")
    with pytest.raises(ModelIntegrityError, match="do not agree"):
        AxisScoreTransformer.from_dict(d)
