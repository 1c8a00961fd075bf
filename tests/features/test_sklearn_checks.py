"""scikit-learn's estimator checks, on instances configured for generic x0..xN input.

sklearn feeds numpy arrays (columns x0..xN, 1 to ~10 of them, values of both signs: a
negative value is a censored-below cell for CensoredLog2Transformer) and DataFrames with
columns ``col_0..``; a ratio or axis naming x-columns that a check does not provide is
skipped with a SkippedFeatureWarning, which the checks tolerate.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.utils.estimator_checks import parametrize_with_checks

from cytoresp.features.axes import AxisScoreTransformer
from cytoresp.features.builder import PanelFeatures
from cytoresp.features.censoring import CensoredLog2Transformer
from cytoresp.features.change import ChangeFromBaseline
from cytoresp.features.covariates import CovariatePassthrough
from cytoresp.features.ratios import LogRatioTransformer, SkippedFeatureWarning

ESTIMATORS = [
    CensoredLog2Transformer(),
    CensoredLog2Transformer(below_factor=0.5, add_indicators=True),
    LogRatioTransformer(pairs=[("x0", "x1")]),
    AxisScoreTransformer(axes={"a": ["x0", "x1"], "b": ["x1", "x2"]}),
    AxisScoreTransformer(axes={"a": ["x0", "x1"]}, center=False, min_members=2),
    CovariatePassthrough(covariates=["x0", "x1"]),
    PanelFeatures(
        ratios=[("x0", "x1")],
        axes={"a": ["x0", "x1", "x2"]},
        covariates=None,
        add_indicators=True,
    ),
    ChangeFromBaseline(columns=[("x0", "x1"), ("x2", "x3")], ratios=None),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedFeatureWarning)
        check(estimator)


def test_checks_actually_exercise_the_features():
    """Guard against the checks passing on empty outputs: on x0..x2 every feature is built."""
    X = np.abs(np.random.default_rng(0).normal(size=(20, 3))) + 0.1
    for est in ESTIMATORS:
        n_out = est.fit(X).transform(X).shape[1]
        assert n_out >= 1, type(est).__name__
    pf = PanelFeatures(ratios=[("x0", "x1")], axes={"a": ["x0", "x1", "x2"]}).fit(X)
    assert pf.get_feature_names_out().tolist() == [
        "log2_x0", "log2_x1", "log2_x2", "x0/x1", "axis_a",
    ]
