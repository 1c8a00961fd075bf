"""CensoredLog2Transformer: substitution of censored cells, zeros, indicators, persistence."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cytoresp.errors import ModelIntegrityError, UsageError
from cytoresp.features.censoring import CensoredLog2Transformer


def frame(**cols):
    return pd.DataFrame({k: np.asarray(v, dtype=np.float64) for k, v in cols.items()})


@pytest.mark.parametrize("factor", [1 / math.sqrt(2), 0.5, 1.0, 0.1])
def test_observed_is_log2_and_censored_below_is_log2_of_limit_times_factor(factor):
    X = frame(IL10=[8.0, -4.0, 0.5], IFNG=[-1.0, 2.0, np.nan])
    out = CensoredLog2Transformer(below_factor=factor).fit_transform(X)
    expected = [
        [3.0, math.log2(1.0 * factor)],
        [math.log2(4.0 * factor), 1.0],
        [-1.0, np.nan],
    ]
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.float64


def test_default_factor_is_lloq_over_sqrt2():
    out = CensoredLog2Transformer().fit_transform(frame(IL6=[-2.0, 4.0]))
    assert out[0, 0] == pytest.approx(0.5)  # log2(2 / sqrt(2))


def test_zero_is_censored_below_the_smallest_positive_value_or_limit_at_fit():
    X = frame(IL4=[0.0, 3.0, -0.8, 5.0, np.nan], IL5=[6.0, 0.0, 2.0, 9.0, 1.5])
    t = CensoredLog2Transformer(below_factor=0.5).fit(X)
    np.testing.assert_array_equal(t.floor_, [0.8, 1.5])
    out = t.transform(X)
    assert out[0, 0] == math.log2(0.8 * 0.5)
    assert out[1, 1] == math.log2(1.5 * 0.5)
    # at transform time a zero uses the fitted floor, not the new data's
    new = t.transform(frame(IL4=[0.0, 0.1], IL5=[0.0, 100.0]))
    np.testing.assert_array_equal(new[0], [math.log2(0.4), math.log2(0.75)])


def test_zero_without_any_floor_becomes_missing_with_a_warning():
    X = frame(IL4=[0.0, np.nan, 0.0], IL5=[1.0, 2.0, 4.0])
    with pytest.warns(UserWarning, match="IL4 hold zeros but no positive value"):
        t = CensoredLog2Transformer().fit(X)
    out = t.transform(X)
    assert np.isnan(out[:, 0]).all()
    np.testing.assert_array_equal(out[:, 1], [0.0, 1.0, 2.0])


def test_nan_propagates_and_input_is_not_modified():
    X = np.array([[np.nan, -2.0], [0.0, 4.0], [1.0, 0.5]])
    before = X.copy()
    out = CensoredLog2Transformer(add_indicators=True).fit_transform(X)
    np.testing.assert_array_equal(X, before)
    assert np.isnan(out[0, 0]) and np.isnan(out[0, 2])  # the value and its indicator


def test_indicators_only_for_columns_censored_at_fit():
    X = frame(IL10=[4.0, -2.0, 0.0, np.nan], IFNG=[1.0, 2.0, 3.0, 4.0], TNF=[-1.0, 2, 3, 4])
    t = CensoredLog2Transformer(add_indicators=True).fit(X)
    assert t.get_feature_names_out().tolist() == [
        "log2_IL10", "log2_IFNG", "log2_TNF", "IL10_below_lloq", "TNF_below_lloq",
    ]
    out = t.transform(X)
    np.testing.assert_array_equal(out[:, 3], [0.0, 1.0, 1.0, np.nan])
    np.testing.assert_array_equal(out[:, 4], [1.0, 0.0, 0.0, 0.0])
    # a censored IFNG at transform time gets no column: the layout is fixed at fit
    assert t.transform(frame(IL10=[1.0], IFNG=[-1.0], TNF=[1.0])).shape == (1, 5)


def test_without_indicators_output_has_one_column_per_analyte():
    t = CensoredLog2Transformer().fit(frame(IL10=[-1.0, 2.0]))
    assert t.get_feature_names_out().tolist() == ["log2_IL10"]
    assert not t.indicator_mask_.any()


def test_numpy_input_names_are_x0_xn():
    t = CensoredLog2Transformer(add_indicators=True).fit(np.array([[1.0, -1.0], [2.0, 3.0]]))
    assert t.get_feature_names_out().tolist() == ["log2_x0", "log2_x1", "x1_below_lloq"]
    assert t.get_feature_names_out(["a", "b"]).tolist() == ["log2_a", "log2_b", "b_below_lloq"]


def test_set_output_pandas_keeps_index_and_names():
    X = frame(IL10=[4.0, -2.0]).set_axis(["s1", "s2"])
    out = CensoredLog2Transformer(below_factor=0.5).set_output(transform="pandas").fit_transform(X)
    assert list(out.columns) == ["log2_IL10"] and list(out.index) == ["s1", "s2"]
    assert out["log2_IL10"].tolist() == [2.0, 0.0]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"below_factor": 0}, "below_factor must be a number in \\(0, 1\\]"),
        ({"below_factor": -0.5}, "below_factor"),
        ({"below_factor": 1.5}, "below_factor"),
        ({"below_factor": float("nan")}, "below_factor"),
        ({"below_factor": "half"}, "below_factor"),
        ({"below_factor": True}, "below_factor"),
        ({"add_indicators": "yes"}, "add_indicators must be True or False"),
    ],
)
def test_bad_parameters_raise_usage_error_at_fit(params, match):
    t = CensoredLog2Transformer(**params)  # no validation in __init__
    with pytest.raises(UsageError, match=match):
        t.fit(frame(IL10=[1.0, 2.0]))


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (frame(IL10=[1.0], IL6=[1.0]), "IL6"),
        (frame(IL6=[1.0], IL10=[1.0]), "feature names should match"),
        (np.ones((2, 3)), "X has 3 features, but CensoredLog2Transformer is expecting 2"),
        (frame(IL10=[1.0], IFNG=[np.inf]), "infinity"),
    ],
)
@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_wrong_input_at_transform_is_a_usage_error(X, match):
    t = CensoredLog2Transformer().fit(frame(IL10=[1.0, 2.0], IFNG=[1.0, 2.0]))
    with pytest.raises(UsageError, match=match):
        t.transform(X)


@settings(max_examples=60, deadline=None)
@given(
    limit=st.floats(1e-6, 1e6),
    factor=st.floats(1e-3, 1.0),
    observed=st.floats(1e-6, 1e6),
)
def test_property_censored_minus_l_maps_to_log2_of_l_times_factor(limit, factor, observed):
    X = np.array([[-limit], [observed], [np.nan]])
    out = CensoredLog2Transformer(below_factor=factor).fit_transform(X)
    assert out[0, 0] == np.log2(limit * factor)
    assert out[1, 0] == np.log2(observed)
    assert np.isnan(out[2, 0])


@pytest.mark.parametrize("add_indicators", [False, True])
def test_to_dict_from_dict_round_trip_is_bit_identical(add_indicators):
    X = frame(IL10=[4.0, -2.0, 0.0, np.nan], IL4=[0.0, np.nan, np.nan, 0.0], IL6=[1e-3, 3, 7, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        t = CensoredLog2Transformer(below_factor=0.3, add_indicators=add_indicators).fit(X)
    text = json.dumps(t.to_dict(), allow_nan=False)  # strict JSON: NaN floor stored as null
    back = CensoredLog2Transformer.from_dict(json.loads(text))
    assert back.get_params() == t.get_params()
    assert back.get_feature_names_out().tolist() == t.get_feature_names_out().tolist()
    np.testing.assert_array_equal(back.transform(X), t.transform(X))
    assert back.transform(X).tobytes() == t.transform(X).tobytes()


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.update({"class": "LogRatioTransformer"}), "expected a saved Censored"),
        (lambda d: d.update({"format": 99}), "format 99"),
        (lambda d: d["fitted"].update({"floor_": [1.0, 2.0]}), "one entry per input column"),
        (lambda d: d["params"].update({"below_factor": -1}), "below_factor"),
        (lambda d: d["fitted"].pop("indicator_mask_"), "indicator_mask_"),
    ],
)
def test_from_dict_refuses_a_malformed_dict(mutate, match):
    d = CensoredLog2Transformer().fit(frame(IL10=[1.0, -2.0])).to_dict()
    mutate(d)
    with pytest.raises(ModelIntegrityError, match=match):
        CensoredLog2Transformer.from_dict(d)
