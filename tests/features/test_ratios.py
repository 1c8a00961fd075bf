"""LogRatioTransformer: log2(A/B) = log2 A - log2 B, pair validation, skipping, persistence."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cytoresp.errors import ModelIntegrityError, UsageError
from cytoresp.features.ratios import (
    DEFAULT_RATIO_PAIRS,
    LogRatioTransformer,
    SkippedFeatureWarning,
)

LOGS = pd.DataFrame(
    {
        "log2_IFNG": [3.0, 1.0, np.nan],
        "log2_IL10": [1.0, 2.0, 0.5],
        "log2_IL4": [0.0, -1.0, 2.0],
    }
)


def test_default_pairs_are_the_ones_in_design():
    assert [f"{a}/{b}" for a, b in DEFAULT_RATIO_PAIRS] == [
        "IFNG/IL10", "IFNG/IL4", "IL17A/IL10", "IL17F/IL10", "TNF/IL10",
        "TNF/IL4", "IL6/IL10", "IL12/IL10", "IL17A/IFNG",
    ]


def test_ratio_is_difference_of_logs_and_nan_propagates():
    t = LogRatioTransformer(pairs=[("IFNG", "IL10"), "IL4/IFNG"]).fit(LOGS)
    assert t.get_feature_names_out().tolist() == ["IFNG/IL10", "IL4/IFNG"]
    np.testing.assert_array_equal(
        t.transform(LOGS), [[2.0, -3.0], [-1.0, -2.0], [np.nan, np.nan]]
    )
    assert t.pairs_ == [("IFNG", "IL10"), ("IL4", "IFNG")]
    np.testing.assert_array_equal(t.pair_indices_, [[0, 1], [2, 0]])


def test_bare_analyte_columns_work_and_log2_columns_win():
    X = pd.DataFrame({"IFNG": [100.0], "log2_IFNG": [5.0], "IL10": [1.0]})
    out = LogRatioTransformer(pairs=[("IFNG", "IL10")]).fit_transform(X)
    assert out.tolist() == [[4.0]]


def test_default_pairs_skip_absent_analytes_with_a_dedicated_warning():
    with pytest.warns(SkippedFeatureWarning, match=r"skipped 7 of 9 .*IL17A/IL10 \(no IL17A\)"):
        t = LogRatioTransformer().fit(LOGS)
    assert issubclass(SkippedFeatureWarning, UserWarning)
    assert t.get_feature_names_out().tolist() == ["IFNG/IL10", "IFNG/IL4"]
    assert ("TNF", "IL4") in t.skipped_pairs_ and len(t.skipped_pairs_) == 7


def test_no_usable_pair_gives_zero_columns():
    X = pd.DataFrame({"log2_CCL2": [1.0, 2.0]})
    with pytest.warns(SkippedFeatureWarning, match="skipped 9 of 9"):
        t = LogRatioTransformer().fit(X)
    assert t.transform(X).shape == (2, 0)
    names = t.get_feature_names_out()
    assert isinstance(names, np.ndarray) and names.shape == (0,)
    pdf = t.set_output(transform="pandas").transform(X)
    assert pdf.shape == (2, 0)


def test_no_pairs_at_all_gives_zero_columns_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = LogRatioTransformer(pairs=None).fit(LOGS)
    assert t.transform(LOGS).shape == (3, 0)


@pytest.mark.parametrize(
    ("pairs", "match"),
    [
        ([("IL10", "IL10")], "IL10/IL10 names the same analyte twice"),
        (["TNF/TNF"], "same analyte twice"),
        ([("IFNG", "IL10"), ("IFNG", "IL10")], "listed twice"),
        ([("IFNG", "IL10"), ("IL10", "IFNG")], "listed twice \\(possibly as its inverse\\)"),
        ([("IFNG",)], "pair of analyte ids"),
        (["IFNG"], "pair of analyte ids"),
        ([("IFNG", 3)], "pair of analyte ids"),
        ([("IFNG", "")], "pair of analyte ids"),
        ("IFNG/IL10", "pairs must be 'default', None or a list"),
        (42, "pairs must be"),
    ],
)
def test_bad_pairs_raise_usage_error_at_fit(pairs, match):
    with pytest.raises(UsageError, match=match):
        LogRatioTransformer(pairs=pairs).fit(LOGS)


def test_wrong_columns_at_transform():
    t = LogRatioTransformer(pairs=[("IFNG", "IL10")]).fit(LOGS)
    with pytest.raises(UsageError, match="Feature names seen at fit time, yet now missing"):
        t.transform(LOGS.drop(columns="log2_IL4"))


finite_or_nan = st.one_of(st.floats(-30, 30), st.just(np.nan))


@settings(max_examples=60, deadline=None)
@given(X=arrays(np.float64, st.tuples(st.integers(1, 8), st.just(4)), elements=finite_or_nan))
def test_property_ratio_equals_difference_of_logs(X):
    pairs = [("x0", "x1"), ("x3", "x0"), ("x2", "x3")]
    out = LogRatioTransformer(pairs=pairs).fit_transform(X)
    for k, (a, b) in enumerate([(0, 1), (3, 0), (2, 3)]):
        np.testing.assert_array_equal(out[:, k], X[:, a] - X[:, b])


def test_to_dict_from_dict_round_trip():
    with pytest.warns(SkippedFeatureWarning):
        t = LogRatioTransformer(pairs=[("IFNG", "IL10"), ("IL4", "IFNG"), ("IL17A", "IL10")])
        t.fit(LOGS)
    d = json.loads(json.dumps(t.to_dict(), allow_nan=False))
    back = LogRatioTransformer.from_dict(d)
    assert back.pairs == t.pairs  # tuples restored
    assert back.pairs_ == t.pairs_ and back.skipped_pairs_ == [("IL17A", "IL10")]
    assert back.transform(LOGS).tobytes() == t.transform(LOGS).tobytes()
    d["fitted"]["pair_indices_"] = [[0, 7], [2, 0]]
    with pytest.raises(ModelIntegrityError, match="pair_indices_ do not match"):
        LogRatioTransformer.from_dict(d)
