"""The super learner (cytoresp.models.superlearner): weights, combination, persistence, use."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from cytoresp.errors import UsageError
from cytoresp.models.default import default_classifier, make_classifier
from cytoresp.models.estimator import LinearBoostedClassifier, state_to_json
from cytoresp.models.persistence import classifier_from_dict
from cytoresp.models.superlearner import SuperLearnerClassifier, fit_stack_weights

#: Cheap candidates: fixed penalties (no inner search of C), few trees.
QUICK = {
    "ridge": {"C": 0.3},
    "xgb": {"n_estimators": 30},
    "boosted": {"C": 0.3, "C_ridge": 0.3, "n_estimators": 30, "early_stopping": False},
}


def data(n=240, seed=0, signal=1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    z = signal * (X[:, 0] - 0.5 * X[:, 1] + (X[:, 2] > 0.5))
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = data()
    X[::7, 1] = np.nan  # missing values are allowed
    return SuperLearnerClassifier(candidate_params=QUICK).fit(X, y), X, y


def test_combination_is_the_weighted_sum_of_the_refitted_candidates(fitted):
    sl, X, _ = fitted
    assert sl.candidates_ == ("ridge", "xgb", "boosted")
    assert (sl.weights_ >= 0).all() and sl.weights_.sum() > 0
    parts = [w * e.decision_function(X) for w, e in zip(sl.weights_, sl.estimators_, strict=True)]
    want = sl.stack_intercept_ + np.sum(parts, axis=0)
    got = sl.decision_function(X)
    assert np.isfinite(got).all()
    # one linear part + one merged booster; XGBoost sums the scaled leaves in float32
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)
    base, phi = sl.contributions(X)
    np.testing.assert_allclose(base + phi.sum(axis=1), got, rtol=0, atol=2e-5)
    assert sl.n_trees_ == sum(e.n_trees_ for w, e in zip(sl.weights_, sl.estimators_, strict=True)
                              if w > 0)


def test_stack_weights_fit_the_log_likelihood_with_non_negative_slopes():
    rng = np.random.default_rng(3)
    n = 4000
    a, b = rng.normal(size=n), rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.5 + 1.5 * a + 0.5 * b)))).astype(float)
    M = np.column_stack([a, b, rng.normal(size=n), -a])
    intercept, w = fit_stack_weights(M, y)
    assert abs(intercept - 0.5) < 0.15 and abs(w[0] - 1.5) < 0.2 and abs(w[1] - 0.5) < 0.15
    assert w[2] < 0.08 and w[3] == 0.0  # noise ~0; the reversed candidate cannot be used
    # the optimum: no non-negative direction improves the log-likelihood
    from cytoresp.models.superlearner import _stack_loss

    best = _stack_loss(np.r_[intercept, w], M, y, np.full(n, 1 / n))[0]
    for step in np.eye(5) * 0.02:
        trial = np.r_[intercept, w] + step
        assert _stack_loss(trial, M, y, np.full(n, 1 / n))[0] >= best - 1e-9


def test_out_of_fold_margins_carry_no_signal_when_the_labels_are_noise():
    X, _ = data(n=200, seed=5)
    y = np.random.default_rng(9).integers(0, 2, size=200)
    sl = SuperLearnerClassifier(candidates=("xgb", "ridge"), candidate_params=QUICK).fit(X, y)
    # the trees' fit to their own training rows is optimistic; the out-of-fold is not,
    # and the weights shrink the combination towards the prevalence
    assert roc_auc_score(y, sl.estimators_[0].decision_function(X)) > 0.75
    assert 0.35 < roc_auc_score(y, sl.oof_margin_) < 0.65
    assert sl.weights_.sum() < 0.5


def test_out_of_fold_margins_rank_a_real_signal(fitted):
    sl, _, y = fitted
    assert roc_auc_score(y, sl.oof_margin_) > 0.7
    assert sl.oof_logloss_ <= sl.candidate_logloss_.min() + 1e-9  # stacking never worse OOF


def test_json_round_trip_is_exact(fitted):
    sl, X, _ = fitted
    state = json.loads(state_to_json(sl.to_dict()))
    again = classifier_from_dict(state, sl.booster_bytes())
    assert isinstance(again, SuperLearnerClassifier)
    np.testing.assert_array_equal(again.decision_function(X), sl.decision_function(X))
    np.testing.assert_array_equal(again.weights_, sl.weights_)
    assert again.get_params() == {**sl.get_params(), "candidates": tuple(sl.candidates)}


def test_states_without_a_class_load_as_linear_boosted():
    X, y = data(n=120)
    clf = LinearBoostedClassifier(C=0.3, C_ridge=0.3, n_estimators=10, early_stopping=False)
    clf.fit(X, y)
    state = clf.to_dict()
    assert "class" not in state  # as every model saved so far
    again = classifier_from_dict(state, clf.booster_bytes())
    np.testing.assert_array_equal(again.decision_function(X), clf.decision_function(X))
    with pytest.raises(ValueError, match="unknown classifier 'Forest'"):
        classifier_from_dict({**state, "class": "Forest"}, None)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"candidates": ("ridge", "forest")}, "candidates must be distinct names"),
        ({"candidates": ("ridge", "ridge")}, "candidates must be distinct names"),
        ({"candidates": ()}, "candidates must be distinct names"),
        ({"candidate_params": {"forest": {}}}, "candidate_params must map"),
        ({"candidate_params": {"ridge": 0.3}}, "candidate_params must map"),
        ({"candidate_params": {"ridge": {"depth": 3}}}, "candidate 'ridge'"),
        ({"inner_splits": 1}, "inner_splits"),
    ],
)
def test_bad_parameters_are_refused(params, match):
    X, y = data(n=60)
    with pytest.raises(UsageError, match=match):
        SuperLearnerClassifier(**params).fit(X, y)


def test_clone_keeps_params_and_refuses_one_class():
    sl = SuperLearnerClassifier(candidates=("ridge",), candidate_params={"ridge": {"C": 1.0}})
    assert clone(sl).get_params() == sl.get_params()
    X, _ = data(n=40)
    with pytest.raises(UsageError, match="need both classes"):
        sl.fit(X, np.ones(40))


def test_sample_weights_reach_the_candidates_and_the_weights():
    X, y = data(n=160, seed=2)
    w = np.where(y == 1, 3.0, 1.0)
    sl = SuperLearnerClassifier(candidates=("ridge",), candidate_params=QUICK)
    plain, weighted = clone(sl).fit(X, y), clone(sl).fit(X, y, sample_weight=w)
    # up-weighting responders raises the mean predicted log-odds
    assert weighted.decision_function(X).mean() > plain.decision_function(X).mean() + 0.3


def test_make_classifier_names_the_classifier_and_checks_its_parameters():
    assert isinstance(make_classifier({"classifier": "superlearner"}), SuperLearnerClassifier)
    assert isinstance(make_classifier({"C": 0.3}), LinearBoostedClassifier)
    with pytest.raises(UsageError, match="unknown parameter.*'superlearner'"):
        make_classifier({"classifier": "superlearner", "C": 0.3})
    with pytest.raises(UsageError, match="unknown parameter.*'linear_boosted'"):
        make_classifier({"candidates": ["ridge"]})  # no classifier named: linear-boosted's
    from cytoresp.train.config import TrainConfig

    with pytest.raises(UsageError, match="unknown parameter.*C_ridge"):  # at config time
        TrainConfig.from_dict({"model": {"classifier": "superlearner", "C_ridge": 0.3}})


def test_default_classifier_is_what_the_default_head_ends_in():
    from cytoresp.train.config import TrainConfig
    from cytoresp.train.cv import make_head

    head_clf = make_head(TrainConfig()).named_steps["model"]
    mine = default_classifier(random_state=0)
    # the shipped default is the super learner (docs/methods.md, "Default model")
    assert type(mine) is SuperLearnerClassifier and type(head_clf) is SuperLearnerClassifier
    assert mine.get_params() == head_clf.get_params()


def test_a_superlearner_head_is_calibrated_on_its_own_out_of_fold_margins(monkeypatch):
    """No inner clones are refitted for the calibration: the stacking's out-of-fold
    log-odds are used (the CV's outer folds and the final fit alike)."""
    from cytoresp.datasets import simulate_cohort
    from cytoresp.panels.read import read_panel
    from cytoresp.train import cv as cv_module
    from cytoresp.train.config import TrainConfig

    cohort = simulate_cohort(160, seed=1)
    frame = read_panel(cohort.panel).to_model_frame()
    y = cohort.panel["responder"].to_numpy().astype(int)
    config = TrainConfig(
        n_repeats=1, n_splits=2, n_boot=0, n_jobs=1,
        model={"classifier": "superlearner", "candidates": ["ridge"],
               "candidate_params": {"ridge": {"C": 0.3}}, "inner_splits": 3},
    )

    def refuse(*args, **kwargs):
        raise AssertionError("inner clones refitted")

    monkeypatch.setattr(cv_module, "inner_oof_margins", refuse)
    head = cv_module.make_head(config).fit(frame, y)
    margins = cv_module.calibration_margins(head, frame, y, 3, 0)
    np.testing.assert_array_equal(margins, head.named_steps["model"].oof_margin_)
    result = cv_module.cross_validate(frame, y, config, with_baselines=False)
    assert len(result.oof) == len(y) and result.oof["p_default"].between(0, 1).all()
    # Platt on the stacking's own out-of-fold log-odds is the identity: the weights
    # already maximise the same likelihood with a free intercept and slope
    a, b = result.folds[0]["calibration"]
    assert abs(a) < 1e-3 and abs(b - 1) < 1e-3


@pytest.mark.parametrize(
    "params",
    [
        {"l1_ratio": 0.0, "n_estimators": 0},  # ridge, C searched
        {"n_estimators": 40, "inner_repeats": 1},  # lasso + ridge averaged, trees early-stopped
    ],
)
def test_chosen_params_refit_the_same_classifier_without_inner_folds(params):
    X, y = data(n=200, seed=4)
    clf = LinearBoostedClassifier(**params).fit(X, y)
    fixed = clone(clf).set_params(**clf.chosen_params())
    assert fixed.get_params()["early_stopping"] is False and fixed.C != "auto"
    np.testing.assert_allclose(
        fixed.fit(X, y).decision_function(X), clf.decision_function(X), rtol=0, atol=1e-6
    )


def test_fixed_and_nested_out_of_fold_choices_agree_when_nothing_is_chosen():
    X, y = data(n=150, seed=6)
    quick = {"ridge": {"C": 0.3}, "xgb": {"n_estimators": 20}}
    fixed = SuperLearnerClassifier(candidates=("ridge", "xgb"), candidate_params=quick).fit(X, y)
    nested = clone(fixed).set_params(oof_choices="nested").fit(X, y)
    np.testing.assert_allclose(fixed.oof_margin_, nested.oof_margin_, rtol=0, atol=1e-9)
    with pytest.raises(UsageError, match="oof_choices"):
        clone(fixed).set_params(oof_choices="both").fit(X, y)


def test_bootstrap_ensemble_refits_a_superlearner_with_its_choices_fixed(fitted):
    from cytoresp.models.recommend import BootstrapEnsemble
    from cytoresp.train.ensemble import _fit_members

    sl, X, y = fitted
    frozen = sl.frozen_params()["candidate_params"]
    assert frozen["boosted"]["early_stopping"] is False and "C" in frozen["ridge"]
    members = _fit_members(sl, X, y, None, [(1, 1), (2, 2)])
    assert all(isinstance(m, SuperLearnerClassifier) for m in members)
    ens = BootstrapEnsemble(members={"ifnb": members}, level=0.9, seed=0)
    state, files = ens.to_state()
    again = BootstrapEnsemble.from_state(json.loads(json.dumps(state)), files.__getitem__)
    for a, b in zip(members, again.members["ifnb"], strict=True):
        np.testing.assert_array_equal(a.decision_function(X), b.decision_function(X))


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"classifier": "superlearner", "candidates": ["ridg"]}, "candidates must be distinct"),
        ({"classifier": "superlearner", "oof_choices": "both"}, "'oof_choices' parameter"),
        ({"classifier": "superlearner", "candidate_params": {"ridge": {"depth": 3}}},
         "candidate 'ridge'.*depth"),
        ({"classifier": "superlearner", "candidate_params": {"xgb": {"max_depth": -1}}},
         "'max_depth' parameter"),
        ({"C": -1.0}, "'C' parameter"),
    ],
)
def test_a_bad_classifier_config_is_refused_when_the_config_is_read(model, message):
    from cytoresp.train.config import TrainConfig

    with pytest.raises(UsageError, match=message):
        TrainConfig.from_dict({"model": model})
