import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from cytoresp.errors import UsageError
from cytoresp.models.estimator import LinearBoostedClassifier


def make_data(n=300, p=6, seed=0, missing=0.05):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    logit = 1.2 * X[:, 0] - 0.8 * X[:, 1] + 1.5 * (X[:, 2] > 0.8)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X[rng.random(X.shape) < missing] = np.nan
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(p)]), y


@pytest.mark.parametrize("linear, n_estimators", [(True, 0), (True, 50), (False, 50)])
def test_contributions_add_up_to_the_margin(linear, n_estimators):
    X, y = make_data()
    clf = LinearBoostedClassifier(linear=linear, n_estimators=n_estimators).fit(X, y)
    base, phi = clf.contributions(X)
    np.testing.assert_allclose(base + phi.sum(axis=1), clf.decision_function(X), atol=1e-4)


def test_linear_contribution_is_zero_for_missing_and_mean_values():
    X, y = make_data(missing=0.0)
    clf = LinearBoostedClassifier(n_estimators=0).fit(X, y)
    row = X.iloc[[0]].copy()
    row.iloc[0, 0] = np.nan
    row.iloc[0, 1] = clf.linear_mean_[1]
    _, phi = clf.contributions(row)
    assert phi[0, 0] == 0.0 and abs(phi[0, 1]) < 1e-12


def test_learns_signal_on_held_out_data():
    X, y = make_data(n=1200, seed=1)
    clf = LinearBoostedClassifier().fit(X.iloc[:800], y[:800])
    auc = roc_auc_score(y[800:], clf.predict_proba(X.iloc[800:])[:, 1])
    assert auc > 0.75


def test_json_round_trip_is_exact():
    X, y = make_data()
    clf = LinearBoostedClassifier(n_estimators=30).fit(X, y)
    again = LinearBoostedClassifier.from_dict(clf.to_dict(), clf.booster_bytes())
    np.testing.assert_array_equal(again.decision_function(X), clf.decision_function(X))


def test_clone_keeps_params():
    clf = LinearBoostedClassifier(max_depth=3, C=0.5)
    assert clone(clf).get_params() == clf.get_params()


@pytest.mark.parametrize(
    "params, match",
    [
        ({"C": -1}, "C must be"),
        ({"n_estimators": -2}, "n_estimators"),
        ({"max_depth": 0}, "max_depth"),
        ({"subsample": 1.5}, "subsample"),
        ({"learning_rate": 0}, "learning_rate"),
    ],
)
def test_bad_parameters_are_refused(params, match):
    X, y = make_data(n=50)
    with pytest.raises(UsageError, match=match):
        LinearBoostedClassifier(**params).fit(X, y)


def test_single_class_is_refused():
    X, _ = make_data(n=40)
    with pytest.raises(UsageError, match="both classes"):
        LinearBoostedClassifier().fit(X, np.ones(40))


def test_feature_mismatch_at_predict_is_refused():
    X, y = make_data()
    clf = LinearBoostedClassifier(n_estimators=5).fit(X, y)
    with pytest.raises(UsageError, match="features"):
        clf.decision_function(X.iloc[:, :3])
