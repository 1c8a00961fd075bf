"""PanelFeatures (and CovariatePassthrough): composition, exact affine map, persistence."""

from __future__ import annotations

import json
import math
import sys
import types
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import clone
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from cytoresp.errors import ModelIntegrityError, UsageError
from cytoresp.features.builder import PanelFeatures
from cytoresp.features.covariates import CovariatePassthrough
from cytoresp.features.ratios import SkippedFeatureWarning
from cytoresp.panels.panel import BELOW, OBSERVED, Panel

KNOWN = {"IFNG", "TNF", "IL10", "IL4", "IL17A", "IL6"}


@pytest.fixture(autouse=True)
def fake_registry(monkeypatch):
    """Deterministic registry stand-in (the real one is exercised in one test below)."""
    mod = types.ModuleType("cytoresp.panels.registry")
    mod.axis_members = lambda: {"Th1": ("IFNG", "TNF"), "Treg": ("IL10",), "Th2": ("IL4",)}
    mod.resolve_analyte = lambda name: (
        "IFNG" if name == "IFN-gamma" else name if name in KNOWN else None
    )
    monkeypatch.setitem(sys.modules, "cytoresp.panels.registry", mod)
    return mod


def model_frame() -> pd.DataFrame:
    """A small model frame built the way the models get it: Panel.to_model_frame()."""
    idx = pd.Index(["s1", "s2", "s3", "s4"], name="sample_id")
    values = pd.DataFrame(
        {
            "IFNG": [8.0, 2.0, 4.0, np.nan],
            "TNF": [16.0, 32.0, np.nan, 8.0],
            "IL10": [2.0, 4.0, 1.0, 2.0],
            "IL4": [1.0, 0.5, 2.0, 4.0],
        },
        index=idx,
    )
    censoring = pd.DataFrame(OBSERVED, index=idx, columns=values.columns, dtype="int8")
    censoring.loc["s2", "IFNG"] = BELOW  # "<2"
    covariates = pd.DataFrame({"age": [30.0, 41.0, np.nan, 25.0], "edss": [2.0, 3.5, 1, 0]}, idx)
    return Panel(values, censoring, covariates).to_model_frame()


PARAMS = {"ratios": [("IFNG", "IL10"), ("TNF", "IL4")], "below_factor": 0.5}


def test_outputs_in_order_with_hand_computed_values():
    X = model_frame()
    pf = PanelFeatures(**PARAMS).fit(X)
    assert pf.get_feature_names_out().tolist() == [
        "log2_IFNG", "log2_TNF", "log2_IL10", "log2_IL4", "IFNG/IL10", "TNF/IL4",
        "axis_Th1", "axis_Treg", "axis_Th2", "age", "edss",
    ]
    out = pf.transform(X)
    assert out.dtype == np.float64 and out.shape == (4, 11)
    # s2: IFNG "<2" -> log2(1) = 0; TNF 32 -> 5; medians: IFNG 2 (of 3, 0, 2), TNF 4, IL10 1
    assert pf.axes_.centers_["IFNG"] == 2.0 and pf.axes_.centers_["TNF"] == 4.0
    np.testing.assert_array_equal(
        out[1], [0.0, 5.0, 2.0, -1.0, -2.0, 6.0, (0 - 2 + 5 - 4) / 2, 2 - 1, -1 - 0.5, 41, 3.5]
    )
    assert np.isnan(out[2, 1]) and np.isnan(out[2, 5]) and out[2, 6] == 0.0  # Th1 = IFNG only


def test_split_into_analytes_and_covariates_with_the_registry():
    X = model_frame().assign(foo=1.0, **{"IFN-gamma": 1.0}).drop(columns="IFNG")
    with pytest.warns(SkippedFeatureWarning, match="neither a known analyte nor .*: foo"):
        pf = PanelFeatures(ratios=[("IFNG", "IL10")], axes=None).fit(X)
    assert pf.input_names_ == ["TNF", "IL10", "IL4", "IFN-gamma", "age", "edss"]
    assert pf.analytes_ == ["TNF", "IL10", "IL4", "IFNG"]
    assert pf.ignored_columns_ == ["foo"]
    assert "IFNG/IL10" in pf.get_feature_names_out()
    assert pf.feature_sources_["IFNG/IL10"] == ["IFN-gamma", "IL10"]
    Z = pf.transform_inputs(X)
    assert list(Z.columns) == pf.input_names_


def test_without_registry_every_non_covariate_column_is_an_analyte(monkeypatch):
    monkeypatch.setitem(sys.modules, "cytoresp.panels.registry", None)
    X = model_frame().assign(foo=1.0)
    pf = PanelFeatures(ratios=None, axes=None).fit(X)
    assert pf.input_names_ == ["IFNG", "TNF", "IL10", "IL4", "foo", "age", "edss"]


def test_generic_numpy_input():
    X = np.abs(np.random.default_rng(1).normal(size=(6, 3))) + 0.5
    pf = PanelFeatures(ratios=[("x0", "x2")], axes={"a": ["x0", "x1"]}).fit(X)
    assert pf.input_names_ == ["x0", "x1", "x2"]
    assert pf.get_feature_names_out().tolist() == [
        "log2_x0", "log2_x1", "log2_x2", "x0/x2", "axis_a",
    ]
    np.testing.assert_allclose(pf.transform(X)[:, 3], np.log2(X[:, 0] / X[:, 2]))


def test_explicit_analytes_and_covariates():
    X = model_frame()
    pf = PanelFeatures(
        ratios=None, axes=None, covariates=["edss"], analytes=["IL10", "IFNG"], include_log=True
    ).fit(X)
    assert pf.input_names_ == ["IL10", "IFNG", "edss"]
    assert pf.ignored_columns_ == ["TNF", "IL4", "age"]
    assert pf.get_feature_names_out().tolist() == ["log2_IL10", "log2_IFNG", "edss"]


def test_include_log_false_and_indicators():
    X = model_frame()
    pf = PanelFeatures(**PARAMS, include_log=False, add_indicators=True).fit(X)
    names = pf.get_feature_names_out().tolist()
    assert names[:2] == ["IFNG/IL10", "TNF/IL4"] and names[-1] == "IFNG_below_lloq"
    assert pf.nonlinear_features_ == ["IFNG_below_lloq"]
    assert pf.feature_sources_["IFNG_below_lloq"] == ["IFNG"]
    assert (pf.input_weights_.loc["IFNG_below_lloq"] == 0).all()
    np.testing.assert_array_equal(pf.transform(X)[:, -1], [0.0, 1.0, 0.0, np.nan])


def test_affine_map_structure():
    pf = PanelFeatures(**PARAMS).fit(model_frame())
    W, off = pf.input_weights_, pf.feature_offsets_
    assert list(W.columns) == pf.input_names_
    assert list(W.index) == list(off.index) == pf.get_feature_names_out().tolist()
    assert W.loc["TNF/IL4"].tolist() == [0, 1, 0, -1, 0, 0]
    assert W.loc["axis_Th1"].tolist() == [0.5, 0.5, 0, 0, 0, 0]
    assert off["axis_Th1"] == -(2.0 + 4.0) / 2
    assert off.drop(["axis_Th1", "axis_Treg", "axis_Th2"]).eq(0).all()
    assert pf.feature_sources_["axis_Th1"] == ["IFNG", "TNF"]
    assert pf.feature_sources_["age"] == ["age"] and pf.nonlinear_features_ == []


def reconstruct(pf: PanelFeatures, Z: np.ndarray) -> np.ndarray:
    """Every affine feature rebuilt from Z alone, row by row (what the explainer does)."""
    W = pf.input_weights_.to_numpy()
    off = pf.feature_offsets_.to_numpy()
    out = np.full((len(Z), len(W)), np.nan)
    for f in range(len(W)):
        cols = np.flatnonzero(W[f])
        out[:, f] = Z[:, cols] @ W[f, cols] + off[f]  # NaN if any source is NaN
    rw = pf.rowwise_weights(Z)
    out[:, rw.feature_index] = rw.apply(Z)
    return out


conc = st.one_of(
    st.floats(1e-3, 1e5),  # observed
    st.floats(-1e3, -1e-2),  # censored below |x|
    st.just(0.0),  # undetectable
    st.just(np.nan),  # missing
)


@settings(max_examples=40, deadline=None)
@given(
    X=arrays(np.float64, st.tuples(st.integers(3, 12), st.just(6)), elements=conc),
    factor=st.sampled_from([1 / math.sqrt(2), 0.5, 1.0]),
)
def test_property_affine_map_rebuilds_transform(X, factor):
    X[:, 4:] = np.abs(X[:, 4:])  # covariates: any value
    X[0, :4] = [3.0, 5.0, 7.0, 11.0]  # every analyte observed once (a floor for zeros)
    frame = pd.DataFrame(X, columns=["IFNG", "TNF", "IL10", "IL4", "age", "edss"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedFeatureWarning)
        pf = PanelFeatures(
            ratios=[("IFNG", "IL10"), ("TNF", "IL4")],
            axes={"A": ["IFNG", "TNF", "IL10"], "B": ["IL4", "IL10"]},
            below_factor=factor,
            add_indicators=True,
        ).fit(frame)
    out = pf.transform(frame)
    Z = pf.transform_inputs(frame).to_numpy()
    affine = [f not in pf.nonlinear_features_ for f in pf.get_feature_names_out()]
    complete = ~np.isnan(Z).any(axis=1)
    # complete rows: features = Z @ W.T + offsets
    W, off = pf.input_weights_.to_numpy(), pf.feature_offsets_.to_numpy()
    np.testing.assert_allclose(
        (Z[complete] @ W.T + off)[:, affine], out[complete][:, affine], rtol=1e-12, atol=1e-12
    )
    # every row, missing members included: sources via W, axis scores via rowwise weights
    rebuilt = reconstruct(pf, Z)
    np.testing.assert_allclose(rebuilt[:, affine], out[:, affine], rtol=1e-12, atol=1e-12)


def test_transform_inputs_are_log2_after_censoring_and_covariates():
    X = model_frame()
    pf = PanelFeatures(**PARAMS).fit(X)
    Z = pf.transform_inputs(X)
    assert list(Z.index) == list(X.index) and list(Z.columns) == pf.input_names_
    assert Z.loc["s2"].tolist() == [0.0, 5.0, 2.0, -1.0, 41.0, 3.5]
    assert np.isnan(Z.loc["s4", "IFNG"])


def test_rowwise_weights_refuse_other_columns():
    X = model_frame()
    pf = PanelFeatures(**PARAMS).fit(X)
    Z = pf.transform_inputs(X)
    with pytest.raises(UsageError, match="Z must have the columns input_names_"):
        pf.rowwise_weights(Z[Z.columns[::-1]])
    with pytest.raises(UsageError, match="Z must have shape"):
        pf.rowwise_weights(Z.to_numpy()[:, :3])
    rw = pf.rowwise_weights(Z)
    assert rw.feature_index.tolist() == [6, 7, 8]
    assert rw.weights.shape == (4, 4)  # n_rows x (2 + 1 + 1 members)


def test_set_output_pipeline_and_clone():
    X = model_frame()
    pf = PanelFeatures(**PARAMS)
    out = clone(pf).set_output(transform="pandas").fit_transform(X)
    assert list(out.columns) == pf.fit(X).get_feature_names_out().tolist()
    assert list(out.index) == list(X.index)
    y = np.arange(4.0)
    pipe = Pipeline([("features", PanelFeatures(**PARAMS, axes=None)), ("lm", LinearRegression())])
    Xc = X.fillna(1.0)
    pipe.fit(Xc, y)
    assert pipe.get_feature_names_out is not None
    assert pipe[:-1].get_feature_names_out().tolist()[:2] == ["log2_IFNG", "log2_TNF"]
    cloned = clone(pipe)
    assert cloned.get_params()["features__ratios"] == PARAMS["ratios"]
    assert not hasattr(cloned.named_steps["features"], "input_names_")


def test_to_dict_from_dict_round_trip_is_bit_identical():
    X = model_frame()
    pf = PanelFeatures(**PARAMS, add_indicators=True).fit(X)
    text = json.dumps(pf.to_dict(), allow_nan=False)
    back = PanelFeatures.from_dict(json.loads(text))
    assert back.get_params() == pf.get_params()
    assert back.transform(X).tobytes() == pf.transform(X).tobytes()
    assert back.transform_inputs(X).equals(pf.transform_inputs(X))
    assert back.input_weights_.equals(pf.input_weights_)
    assert back.feature_offsets_.equals(pf.feature_offsets_)
    assert back.feature_sources_ == pf.feature_sources_
    assert back.nonlinear_features_ == pf.nonlinear_features_
    Z = pf.transform_inputs(X)
    assert back.rowwise_weights(Z).weights.tobytes() == pf.rowwise_weights(Z).weights.tobytes()


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d["fitted"]["input_weights_"][0].__setitem__(0, 2.0), "affine map"),
        (lambda d: d["fitted"]["axes_"]["fitted"]["centers_"].update(IFNG=9.0), "affine map"),
        (lambda d: d["fitted"]["input_names_"].reverse(), "do not match"),
        (lambda d: d["fitted"].update({"log_": {"class": "Nope"}}), "CensoredLog2"),
        (lambda d: d.update({"class": "AxisScoreTransformer"}), "expected a saved PanelF"),
    ],
)
def test_from_dict_detects_tampering(mutate, match):
    d = json.loads(json.dumps(PanelFeatures(**PARAMS).fit(model_frame()).to_dict()))
    mutate(d)
    with pytest.raises(ModelIntegrityError, match=match):
        PanelFeatures.from_dict(d)


@pytest.mark.parametrize(
    ("params", "X", "match"),
    [
        ({"ratios": [("IL10", "IL10")]}, None, "same analyte twice"),
        ({"axes": ["Th9"]}, None, "unknown axis name"),
        ({"below_factor": -1.0}, None, "below_factor"),
        ({"include_log": 1}, None, "include_log must be True or False"),
        ({"analytes": "IFNG"}, None, "analytes must be 'auto'"),
        ({"analytes": ["age"], "covariates": ["age"]}, None, "both analyte and covariate"),
        ({"covariates": "age"}, None, "covariates must be 'default'"),
        ({}, pd.DataFrame({"age": [1.0, 2.0]}), "no analyte column"),
        ({}, pd.DataFrame({"IFN-gamma": [1.0], "IFNG": [2.0]}), "are the same analyte IFNG"),
        ({"ratios": None, "axes": None, "covariates": ["IFNG_below_lloq"], "add_indicators": True},
         pd.DataFrame({"IFNG": [-1.0, 2.0], "IFNG_below_lloq": [0.0, 1.0]}), "collide"),
    ],
)
def test_bad_configuration_raises_usage_error(params, X, match):
    with pytest.raises(UsageError, match=match):
        PanelFeatures(**params).fit(model_frame() if X is None else X)


def test_wrong_columns_at_transform():
    X = model_frame()
    pf = PanelFeatures(**PARAMS).fit(X)
    with pytest.raises(UsageError, match="seen at fit time, yet now missing:\n- edss"):
        pf.transform(X.drop(columns="edss"))


def test_default_configuration_with_the_real_registry(monkeypatch):
    monkeypatch.delitem(sys.modules, "cytoresp.panels.registry")
    registry = pytest.importorskip("cytoresp.panels.registry")
    X = model_frame().rename(columns={"IFNG": "IFN-gamma"})
    with pytest.warns(SkippedFeatureWarning):
        pf = PanelFeatures().fit(X)
    assert registry.resolve_analyte("IFN-gamma") == "IFNG"
    names = pf.get_feature_names_out().tolist()
    assert {"IFNG/IL10", "TNF/IL4", "axis_Th1", "axis_Treg", "axis_Th2"} <= set(names)
    assert pf.feature_sources_["axis_Th1"] == ["IFN-gamma", "TNF"]


# -- CovariatePassthrough -----------------------------------------------------------------


def test_covariates_default_are_clinical_ones_in_canonical_order():
    X = pd.DataFrame({"edss": [1.0], "IL10": [2.0], "sex": [1.0], "age": [40.0]})
    t = CovariatePassthrough().fit(X)
    assert t.covariates_ == ["age", "sex", "edss"]
    assert t.transform(X).tolist() == [[40.0, 1.0, 1.0]]


def test_covariates_explicit_absent_one_is_skipped_with_warning():
    X = pd.DataFrame({"edss": [1.0, np.nan], "bmi": [22.0, 30.0]})
    with pytest.warns(SkippedFeatureWarning, match="absent from the input: age"):
        t = CovariatePassthrough(covariates=["bmi", "age", "edss"]).fit(X)
    np.testing.assert_array_equal(t.transform(X), [[22.0, 1.0], [30.0, np.nan]])
    back = CovariatePassthrough.from_dict(json.loads(json.dumps(t.to_dict())))
    assert back.get_feature_names_out().tolist() == ["bmi", "edss"]
    assert back.transform(X).tobytes() == t.transform(X).tobytes()


@pytest.mark.parametrize("covariates", [["age", "age"], [3], "age", 7])
def test_covariates_bad_parameter(covariates):
    with pytest.raises(UsageError, match="covariates must be|listed twice"):
        CovariatePassthrough(covariates=covariates).fit(pd.DataFrame({"age": [1.0]}))
