import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from cytoresp.errors import UsageError
from cytoresp.models.estimator import DEFAULT_C_GRID, LinearBoostedClassifier

#: A fixed penalty for the linear part (and for the ridge fit averaged into it): no inner
#: search over C, for tests of properties that do not depend on the penalty.
FIXED_PENALTY = {"C": 0.1, "C_ridge": 0.1}


def make_data(n=300, p=6, seed=0, missing=0.05):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    logit = 1.2 * X[:, 0] - 0.8 * X[:, 1] + 1.5 * (X[:, 2] > 0.8)
    y = (rng.random(n) < expit(logit)).astype(int)
    X[rng.random(X.shape) < missing] = np.nan
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(p)]), y


@pytest.mark.parametrize("linear, n_estimators", [(True, 0), (True, 50), (False, 50)])
def test_contributions_add_up_to_the_margin(linear, n_estimators):
    X, y = make_data()
    clf = LinearBoostedClassifier(linear=linear, n_estimators=n_estimators, **FIXED_PENALTY)
    clf.fit(X, y)
    base, phi = clf.contributions(X)
    np.testing.assert_allclose(base + phi.sum(axis=1), clf.decision_function(X), atol=1e-4)


def test_linear_contribution_is_zero_for_missing_and_mean_values():
    X, y = make_data(missing=0.0)
    clf = LinearBoostedClassifier(n_estimators=0, **FIXED_PENALTY).fit(X, y)
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
    clf = LinearBoostedClassifier(n_estimators=30, **FIXED_PENALTY).fit(X, y)
    again = LinearBoostedClassifier.from_dict(clf.to_dict(), clf.booster_bytes())
    np.testing.assert_array_equal(again.decision_function(X), clf.decision_function(X))


def test_clone_keeps_params():
    clf = LinearBoostedClassifier(max_depth=3, C=0.5)
    assert clone(clf).get_params() == clf.get_params()


@pytest.mark.parametrize(
    "params, match",
    [
        ({"C": -1}, "'C' parameter"),
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
    clf = LinearBoostedClassifier(n_estimators=5, **FIXED_PENALTY).fit(X, y)
    with pytest.raises(UsageError, match="features"):
        clf.decision_function(X.iloc[:, :3])


# -- the default: lasso linear part, trees chosen by early stopping ---------------------


def make_threshold_data(n=1500, seed=0):
    """A strong interaction the linear part cannot represent (trees must be kept)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    logit = 2.5 * ((X[:, 0] > 0) == (X[:, 1] > 0)) - 1.25 + 0.5 * X[:, 2]
    y = (rng.random(n) < expit(logit)).astype(int)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(5)]), y


def test_defaults_are_lasso_with_early_stopped_trees():
    clf = LinearBoostedClassifier()
    assert clf.l1_ratio == 1.0 and clf.early_stopping is True
    assert clf.ridge_weight == 0.25 and clf.inner_repeats == 3
    assert clf.early_stopping_rule == "1se" and clf.n_estimators == 500


def test_early_stopping_keeps_no_trees_for_a_purely_linear_signal():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 6))
    y = (rng.random(400) < expit(1.5 * X[:, 0] - X[:, 1])).astype(int)
    clf = LinearBoostedClassifier(**FIXED_PENALTY).fit(X, y)
    assert clf.n_trees_ <= 10
    assert clf.inner_logloss_[0] <= clf.inner_logloss_.min() + 0.01


def test_early_stopping_keeps_trees_for_an_interaction_and_they_help():
    X, y = make_threshold_data()
    Xtr, ytr, Xte, yte = X.iloc[:1000], y[:1000], X.iloc[1000:], y[1000:]
    boosted = LinearBoostedClassifier(**FIXED_PENALTY).fit(Xtr, ytr)
    linear = LinearBoostedClassifier(n_estimators=0, **FIXED_PENALTY).fit(Xtr, ytr)
    assert boosted.n_trees_ >= 20
    auc_boosted = roc_auc_score(yte, boosted.predict_proba(Xte)[:, 1])
    auc_linear = roc_auc_score(yte, linear.predict_proba(Xte)[:, 1])
    assert auc_boosted > auc_linear + 0.1


def test_one_se_rule_never_keeps_more_trees_than_the_minimum():
    X, y = make_threshold_data(n=600, seed=4)
    at_min = LinearBoostedClassifier(early_stopping_rule="min", **FIXED_PENALTY).fit(X, y)
    one_se = LinearBoostedClassifier(early_stopping_rule="1se", **FIXED_PENALTY).fit(X, y)
    np.testing.assert_allclose(at_min.inner_logloss_, one_se.inner_logloss_)
    assert at_min.n_trees_ == int(np.argmin(at_min.inner_logloss_))
    assert one_se.n_trees_ <= at_min.n_trees_


def test_early_stopping_stops_boosting_long_before_the_cap():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 4))
    y = (rng.random(300) < 0.5).astype(int)  # no signal: the curve only rises
    clf = LinearBoostedClassifier(n_estimators=2000, **FIXED_PENALTY).fit(X, y)
    assert len(clf.inner_logloss_) <= 101  # 0 trees + at most 4 steps of 25
    assert clf.booster_ is None or clf.n_trees_ == clf.booster_.num_boosted_rounds()


def test_without_early_stopping_all_trees_are_kept():
    X, y = make_data()
    clf = LinearBoostedClassifier(n_estimators=40, early_stopping=False, **FIXED_PENALTY)
    clf.fit(X, y)
    assert clf.n_trees_ == 40 == clf.booster_.num_boosted_rounds()
    assert clf.inner_logloss_ is None


def test_lasso_sets_noise_coefficients_to_exactly_zero_and_ridge_does_not():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 12))
    y = (rng.random(300) < expit(2 * X[:, 0])).astype(int)
    lasso = LinearBoostedClassifier(n_estimators=0, ridge_weight=0.0).fit(X, y)
    ridge = LinearBoostedClassifier(n_estimators=0, l1_ratio=0.0).fit(X, y)
    assert np.sum(lasso.linear_coef_ == 0) >= 6
    assert np.all(ridge.linear_coef_ != 0)
    assert np.argmax(np.abs(lasso.linear_coef_)) == 0


def test_lasso_path_is_relative_to_the_cohort():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 5))
    y = (rng.random(200) < expit(X[:, 0])).astype(int)
    clf = LinearBoostedClassifier(n_estimators=0).fit(X, y)
    Xs = (X - X.mean(0)) / X.std(0)
    c0 = 1.0 / np.max(np.abs(Xs.T @ (y - y.mean())))
    assert c0 * (1 - 1e-9) <= clf.C_ <= 1000 * c0 * (1 + 1e-9)
    # At C0 itself every coefficient is zero: the path starts where the lasso does.
    at_c0 = LinearBoostedClassifier(n_estimators=0, C=c0 * 0.999, ridge_weight=0.0).fit(X, y)
    np.testing.assert_allclose(at_c0.linear_coef_, 0.0, atol=1e-6)


def test_elastic_net_is_between_lasso_and_ridge_in_sparsity():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(250, 10))
    y = (rng.random(250) < expit(1.5 * X[:, 0])).astype(int)
    nonzero = {}
    for l1_ratio in (1.0, 0.5, 0.0):  # at the same penalty, without the ridge average
        fit = LinearBoostedClassifier(n_estimators=0, C=0.1, ridge_weight=0.0, l1_ratio=l1_ratio)
        fit.fit(X, y)
        assert fit.l1_ratio_ == l1_ratio and abs(fit.linear_coef_[0]) > 0.3  # the signal
        nonzero[l1_ratio] = int(np.count_nonzero(fit.linear_coef_))
    assert nonzero[1.0] < nonzero[0.5] < nonzero[0.0] == 10, nonzero


@pytest.mark.parametrize("l1_ratio", [0.0, 1.0])
def test_contributions_stay_exact_with_early_stopped_trees(l1_ratio):
    X, y = make_threshold_data(n=800, seed=9)
    clf = LinearBoostedClassifier(l1_ratio=l1_ratio, **FIXED_PENALTY).fit(X, y)
    assert clf.n_trees_ > 0
    base, phi = clf.contributions(X)
    np.testing.assert_allclose(base + phi.sum(axis=1), clf.decision_function(X), atol=1e-4)


def test_monotone_constraint_mapping_makes_the_trees_monotone():
    rng = np.random.default_rng(10)
    X = rng.normal(size=(600, 3))
    # Non-monotone truth in f0 (a bump); constrained trees must still be increasing in f0.
    y = (rng.random(600) < expit(2.0 - 2.0 * X[:, 0] ** 2)).astype(int)
    frame = pd.DataFrame(X, columns=["f0", "f1", "f2"])
    clf = LinearBoostedClassifier(
        linear=False, n_estimators=100, early_stopping=False, monotone_constraints={"f0": 1}
    ).fit(frame, y)
    grid = pd.DataFrame({"f0": np.linspace(-3, 3, 61), "f1": 0.0, "f2": 0.0})
    assert np.all(np.diff(clf.decision_function(grid)) >= -1e-6)
    free = LinearBoostedClassifier(linear=False, n_estimators=100, early_stopping=False)
    assert np.any(np.diff(free.fit(frame, y).decision_function(grid)) < -1e-3)


def test_linear_monotone_constraints_follow_the_linear_coefficients():
    X, y = make_data(n=600, seed=11, missing=0.0)
    clf = LinearBoostedClassifier(
        n_estimators=60, early_stopping=False, monotone_constraints="linear", **FIXED_PENALTY
    ).fit(X, y)
    signs = np.sign(clf.linear_coef_)
    for k in np.flatnonzero(signs != 0):
        grid = pd.DataFrame(np.zeros((41, X.shape[1])), columns=X.columns)
        grid.iloc[:, k] = np.linspace(-3, 3, 41)
        trees = clf.decision_function(grid) - (
            clf.linear_intercept_ + clf._linear_terms(grid.to_numpy()).sum(axis=1)
        )
        assert np.all(signs[k] * np.diff(trees) >= -1e-5)


def test_sample_weights_are_used_in_early_stopping():
    X, y = make_threshold_data(n=600, seed=12)
    w = np.where(y == 1, 2.0, 1.0)
    a = LinearBoostedClassifier(**FIXED_PENALTY).fit(X, y, sample_weight=w)
    b = LinearBoostedClassifier(**FIXED_PENALTY).fit(X, y)
    ones = LinearBoostedClassifier(**FIXED_PENALTY).fit(X, y, sample_weight=np.ones(len(y)))
    # unit weights are no weights: the weights are the only thing that moves the curve
    np.testing.assert_allclose(ones.inner_logloss_, b.inner_logloss_, rtol=1e-9)
    assert ones.n_trees_ == b.n_trees_
    # the weighted curve differs from its first point on (the linear part alone) ...
    assert not np.allclose(a.inner_logloss_[:5], b.inner_logloss_[:5])
    # ... and the fit follows the weights: responders counted twice are predicted more often
    assert a.predict_proba(X)[:, 1].mean() > b.predict_proba(X)[:, 1].mean() + 0.02


def test_fit_is_reproducible():
    X, y = make_threshold_data(n=500, seed=13)
    a = LinearBoostedClassifier(random_state=3).fit(X, y)
    b = LinearBoostedClassifier(random_state=3).fit(X, y)
    assert a.n_trees_ == b.n_trees_ and a.C_ == b.C_
    np.testing.assert_array_equal(a.decision_function(X), b.decision_function(X))


def test_json_round_trip_keeps_the_number_of_trees():
    X, y = make_threshold_data(n=600, seed=14)
    clf = LinearBoostedClassifier(**FIXED_PENALTY).fit(X, y)
    state = clf.to_dict()
    assert state["n_trees"] == clf.n_trees_
    again = LinearBoostedClassifier.from_dict(state, clf.booster_bytes())
    assert again.n_trees_ == clf.n_trees_
    np.testing.assert_array_equal(again.decision_function(X), clf.decision_function(X))
    del state["n_trees"]  # a model saved before the field existed
    older = LinearBoostedClassifier.from_dict(state, clf.booster_bytes())
    assert older.n_trees_ == clf.n_trees_


@pytest.mark.parametrize(
    "params, match",
    [
        ({"l1_ratio": 1.5}, "l1_ratio"),
        ({"early_stopping": "yes"}, "'early_stopping' parameter"),
        ({"early_stopping_rule": "2se"}, "early_stopping_rule"),
        ({"inner_splits": 1}, "inner_splits"),
        ({"inner_repeats": 0}, "inner_repeats"),
        ({"ridge_weight": 1.0}, "ridge_weight"),
        ({"ridge_weight": -0.1}, "ridge_weight"),
        ({"C_ridge": 0.0}, "C_ridge"),
        ({"monotone_constraints": {"f0": 2}}, "monotone_constraints"),
        ({"monotone_constraints": "increasing"}, "monotone_constraints"),
    ],
)
def test_bad_new_parameters_are_refused(params, match):
    X, y = make_data(n=60)
    with pytest.raises(UsageError, match=match):
        LinearBoostedClassifier(**params).fit(X, y)


def test_tiny_minority_class_falls_back_without_inner_folds():
    X, y = make_data(n=40)
    y = np.zeros(40, dtype=int)
    y[0] = 1  # one responder: no inner folds possible
    clf = LinearBoostedClassifier().fit(X, y)
    assert clf.inner_logloss_ is None and clf.n_trees_ == 0 and clf.booster_ is None
    assert np.isfinite(clf.decision_function(X)).all()


def test_null_lasso_falls_back_to_ridge():
    rng = np.random.default_rng(16)
    X = rng.normal(size=(50, 20))
    y = (rng.random(50) < expit(0.4 * X[:, 0])).astype(int)  # weak signal
    lasso_only = {"n_estimators": 0, "ridge_weight": 0.0}
    no_fallback = LinearBoostedClassifier(null_fallback=False, **lasso_only).fit(X, y)
    assert not no_fallback.linear_coef_.any()  # the lasso keeps nothing: a constant score
    clf = LinearBoostedClassifier(**lasso_only).fit(X, y)
    assert clf.l1_ratio_ == 0.0 and clf.C_ in DEFAULT_C_GRID
    assert np.all(clf.linear_coef_ != 0)
    assert np.unique(clf.decision_function(X)).size == 50


def test_lasso_that_keeps_features_is_not_replaced():
    X, y = make_data(n=400, seed=16)
    clf = LinearBoostedClassifier(n_estimators=0).fit(X, y)
    assert clf.l1_ratio_ == 1.0 and clf.linear_coef_.any()


def test_auto_penalty_picks_one_of_ridge_and_lasso():
    X, y = make_data(n=300, seed=17)
    clf = LinearBoostedClassifier(n_estimators=0, l1_ratio="auto").fit(X, y)
    assert clf.l1_ratio_ in (0.0, 1.0)
    state = clf.to_dict()
    assert state["l1_ratio"] == clf.l1_ratio_
    assert LinearBoostedClassifier.from_dict(state, None).l1_ratio_ == clf.l1_ratio_


def test_ridge_weight_averages_the_lasso_and_ridge_fits():
    X, y = make_data(n=300, seed=18)
    clf = LinearBoostedClassifier(n_estimators=0, ridge_weight=0.25).fit(X, y)
    assert clf.l1_ratio_ == 1.0 and clf.C_ridge_ in DEFAULT_C_GRID
    lasso = LinearBoostedClassifier(n_estimators=0, ridge_weight=0.0, C=clf.C_).fit(X, y)
    ridge = LinearBoostedClassifier(n_estimators=0, l1_ratio=0.0, C=clf.C_ridge_).fit(X, y)
    np.testing.assert_allclose(
        clf.linear_coef_, 0.75 * lasso.linear_coef_ + 0.25 * ridge.linear_coef_, atol=1e-8
    )
    np.testing.assert_allclose(
        clf.linear_intercept_,
        0.75 * lasso.linear_intercept_ + 0.25 * ridge.linear_intercept_,
        atol=1e-8,
    )
    # Fixed penalties reproduce the fit, and the state round-trips.
    fixed = LinearBoostedClassifier(n_estimators=0, C=clf.C_, C_ridge=clf.C_ridge_).fit(X, y)
    np.testing.assert_allclose(fixed.linear_coef_, clf.linear_coef_, atol=1e-8)
    again = LinearBoostedClassifier.from_dict(clf.to_dict(), None)
    assert again.C_ridge_ == clf.C_ridge_
    assert LinearBoostedClassifier(n_estimators=0, ridge_weight=0.0).fit(X, y).C_ridge_ is None


def test_inner_repeats_only_change_the_choice_of_the_penalty():
    X, y = make_threshold_data(n=400, seed=19)
    one = LinearBoostedClassifier(C=0.1, ridge_weight=0.0, inner_repeats=1).fit(X, y)
    three = LinearBoostedClassifier(C=0.1, ridge_weight=0.0, inner_repeats=3).fit(X, y)
    assert one.n_trees_ == three.n_trees_
    np.testing.assert_array_equal(one.decision_function(X), three.decision_function(X))
    np.testing.assert_allclose(one.inner_logloss_, three.inner_logloss_)
