import numpy as np
import pytest
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from cytoresp.errors import UsageError
from cytoresp.train.tuning import SEARCH_SPACE, TunedXGBClassifier, sample_candidates


def make_data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    logit = 1.5 * X[:, 0] + 2.0 * ((X[:, 1] > 0) & (X[:, 2] > 0)) - 1.0
    y = (rng.random(n) < expit(logit)).astype(int)
    X[rng.random(X.shape) < 0.03] = np.nan
    return X, y


def test_candidates_are_reproducible_and_inside_the_space():
    a, b = sample_candidates(30, seed=1), sample_candidates(30, seed=1)
    assert a == b and a != sample_candidates(30, seed=2)
    for c in a:
        assert 1 <= c.max_depth <= 6 and 50 <= c.n_estimators <= 600
        assert 0.01 <= c.learning_rate <= 0.3 and 0.5 <= c.subsample <= 1.0
        assert 0.4 <= c.colsample_bytree <= 1.0 and 0.5 <= c.min_child_weight <= 20
        assert c.gamma in SEARCH_SPACE["gamma"][1]


def test_space_override_and_unknown_parameter():
    cands = sample_candidates(10, seed=0, space={"max_depth": ("int", 1, 1)})
    assert {c.max_depth for c in cands} == {1}
    with pytest.raises(UsageError, match="unknown search-space"):
        sample_candidates(2, seed=0, space={"depth": ("int", 1, 2)})


def test_search_picks_the_best_inner_score_and_its_round():
    X, y = make_data()
    clf = TunedXGBClassifier(n_iter=6, random_state=3).fit(X, y)
    res = clf.cv_results_
    assert len(res) == 6
    best = res.loc[res["score"].idxmax()]
    assert clf.best_params_["max_depth"] == best["max_depth"]
    assert clf.best_params_["n_estimators"] == best["best_round"]
    assert (res["best_round"] <= res["n_estimators"]).all() and (res["best_round"] >= 1).all()
    assert clf.booster_.num_boosted_rounds() == clf.best_params_["n_estimators"]
    assert (res["score"] < 0).all()  # negative inner log-loss


def test_learns_held_out_signal():
    X, y = make_data(n=1200, seed=1)
    clf = TunedXGBClassifier(n_iter=4).fit(X[:800], y[:800])
    assert roc_auc_score(y[800:], clf.predict_proba(X[800:])[:, 1]) > 0.75
    # the probabilities are the margins' (float32) log-odds, and rows sum to one
    margin = clf.decision_function(X[800:])
    proba = clf.predict_proba(X[800:])
    np.testing.assert_allclose(proba[:, 1], expit(margin.astype(np.float64)), rtol=1e-6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert (clf.predict(X[800:]) == (margin > 0)).all()


def test_search_uses_only_the_rows_it_is_given():
    # Nested use: rows outside the training part must not change the choice.
    X, y = make_data(n=500, seed=2)
    a = TunedXGBClassifier(n_iter=4, random_state=0).fit(X[:300], y[:300])
    X2 = X.copy()
    X2[300:] = 0.0  # scramble what is not passed
    b = TunedXGBClassifier(n_iter=4, random_state=0).fit(X2[:300], y[:300])
    assert a.best_params_ == b.best_params_
    np.testing.assert_array_equal(a.decision_function(X[300:]), b.decision_function(X[300:]))


def test_auc_scoring():
    X, y = make_data(n=300, seed=4)
    clf = TunedXGBClassifier(n_iter=3, scoring="roc_auc").fit(X, y)
    assert (clf.cv_results_["score"] > 0.5).all() and (clf.cv_results_["score"] <= 1).all()


def test_too_few_of_a_class_uses_the_first_candidate():
    X, y = make_data(n=50, seed=5)
    y = np.zeros(50, dtype=int)
    y[0] = 1
    clf = TunedXGBClassifier(n_iter=3, random_state=0).fit(X, y)
    first = sample_candidates(3, seed=0)[0]
    assert clf.best_params_["max_depth"] == first.max_depth


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_iter": 0}, "n_iter"),
        ({"inner_splits": 1}, "inner_splits"),
        ({"scoring": "f1"}, "scoring"),
    ],
)
def test_bad_parameters_are_refused(params, match):
    X, y = make_data(n=60)
    with pytest.raises(UsageError, match=match):
        TunedXGBClassifier(**params).fit(X, y)


def test_single_class_and_feature_mismatch_are_refused():
    X, y = make_data(n=60)
    with pytest.raises(UsageError, match="both classes"):
        TunedXGBClassifier(n_iter=1).fit(X, np.zeros(60))
    clf = TunedXGBClassifier(n_iter=1).fit(X, y)
    with pytest.raises(UsageError, match="features"):
        clf.predict_proba(X[:, :3])
