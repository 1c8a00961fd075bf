"""Fitting the therapy choice: DR pseudo-outcomes, the BLP gate, and its error rates (issue 15)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from cytoresp.errors import UsageError
from cytoresp.train.choice import (
    blp_regression,
    combine_folds,
    crossfit_by_repeat,
    crossfit_response,
    dr_pseudo_outcomes,
    fit_therapy_choice,
    holm_passed,
    propensity_matrix,
)

# -- the pieces, against known truth --------------------------------------------------------------


def test_dr_pseudo_outcome_is_unbiased_when_only_the_propensity_is_right():
    """Double robustness: wrong outcome heads, right propensity, the mean is still the ATE."""
    rng = np.random.default_rng(0)
    n = 200_000
    x = rng.normal(size=n)
    e_a = expit(0.8 * x)  # confounded assignment
    given = pd.Series(np.where(rng.random(n) < e_a, "a", "b"))
    p_a, p_b = expit(0.3 + x), expit(-0.2 + 0.5 * x)
    y = np.where(given == "a", rng.random(n) < p_a, rng.random(n) < p_b).astype(float)
    wrong = pd.DataFrame({"a": np.full(n, 0.5), "b": np.full(n, 0.5)})
    e = pd.DataFrame({"a": e_a, "b": 1 - e_a})
    g = dr_pseudo_outcomes(y, given, wrong, e)
    ate = float(np.mean(p_a - p_b))
    se = float(np.std(g["a"] - g["b"]) / np.sqrt(n))
    assert abs(float(np.mean(g["a"] - g["b"])) - ate) < 4 * se
    # the naive difference in means is biased by the confounding
    naive = y[given == "a"].mean() - y[given == "b"].mean()
    assert abs(naive - ate) > 10 * se


def test_blp_gate_false_positive_rate_under_no_heterogeneity():
    """One-sided 5% test of the slope: 1,000 null data sets of 300 patients."""
    rng = np.random.default_rng(1)
    rejections = 0
    for _ in range(1000):
        tau_hat = rng.normal(0, 0.15, 300)  # a predicted difference that means nothing
        pseudo = 0.05 + rng.normal(0, 1.2, 300) * rng.choice([0.5, 1.5], 300)  # heteroscedastic
        rejections += blp_regression(pseudo, tau_hat)[-1] <= 0.05
    # binomial sd at 5% of 1,000 is 0.7 points
    assert 0.03 <= rejections / 1000 <= 0.07, rejections


def test_calibrated_difference_interval_covers_the_true_line():
    """90% interval of the calibrated difference: its coverage where the truth is linear."""
    from statistics import NormalDist

    rng = np.random.default_rng(2)
    z = NormalDist().inv_cdf(0.95)
    points = np.array([-0.3, 0.0, 0.25])
    hits = np.zeros(len(points))
    reps = 600
    for _ in range(reps):
        tau_hat = rng.normal(0, 0.2, 400)
        truth = 0.05 + 0.6 * (tau_hat - tau_hat.mean())
        pseudo = truth + rng.normal(0, 1.0, 400)
        b0, b1, cov, c, _ = blp_regression(pseudo, tau_hat)
        g = points - c
        d = b0 + b1 * g
        se = np.sqrt(cov[0, 0] + 2 * g * cov[0, 1] + g * g * cov[1, 1])
        true_at = 0.05 + 0.6 * g
        hits += np.abs(d - true_at) <= z * se
    coverage = hits / reps
    assert ((coverage > 0.86) & (coverage < 0.94)).all(), coverage


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.9, 1.0])
def test_combined_folds_never_exceed_the_gate_level_whatever_their_correlation(rho):
    """Five correlated per-fold slopes under H0 (each with its own correct variance): the
    averaged slope tested against combine_folds' bound rejects at most at the nominal 5%,
    about 5% when the folds are completely dependent, far less when they are not.

    The plain variance of an average of independent estimates (sigma^2 / K), which is
    what a regression pooled over folds assumes, rejects far more often once the folds
    are correlated (on null training cohorts the pooled slope's z had sd 1.40)."""
    from statistics import NormalDist

    rng = np.random.default_rng(7)
    n, k, sd = 2000, 5, 0.2
    v = np.eye(2) * sd**2
    rejected = naive = 0
    for _ in range(n):
        own = np.sqrt(1 - rho) * rng.normal(size=(k, 2))
        b = sd * (np.sqrt(rho) * rng.normal(size=2) + own)
        rejected += combine_folds([(x[0], x[1], v) for x in b])[-1] <= 0.05
        naive += b[:, 1].mean() / (sd / np.sqrt(k)) >= NormalDist().inv_cdf(0.95)
    if rho >= 0.3:
        assert naive / n > 0.12, naive
    # binomial sd at 5% of 2,000 is 0.5 points
    assert rejected / n <= 0.065, rejected
    if rho == 1.0:
        assert rejected / n >= 0.035, rejected


def test_crossfit_by_repeat_gives_each_repeat_and_the_folds(trained, cohort):
    from cytoresp.panels.read import read_panel
    from cytoresp.train.fitting import labelled_therapies

    model, reports = trained
    panel = read_panel(cohort.panel)
    given = labelled_therapies(panel, model.therapies)
    cvs = {t: reports[t].cv for t in model.therapies}
    per_repeat = crossfit_by_repeat(cvs, given)
    oof = pd.concat([cv.oof for cv in cvs.values()]).set_index(["repeat", "sample_id"])
    assert len(per_repeat) == oof.index.get_level_values("repeat").nunique()
    for r, (mu, fold) in enumerate(per_repeat):
        want = oof.loc[r, "fold"].reindex(given.index.astype(str)).to_numpy()
        np.testing.assert_array_equal(fold, want)
        assert list(mu.columns) == model.therapies and mu.notna().all().all()
    mean = sum(m for m, _ in per_repeat) / len(per_repeat)
    pd.testing.assert_frame_equal(mean, crossfit_response(cvs, given))


def test_blp_of_a_constant_prediction_cannot_pass():
    b0, b1, cov, c, p = blp_regression(np.array([1.0, -1.0, 0.5, 0.2]), np.full(4, 0.1))
    assert (b1, p, c) == (0.0, 1.0, 0.1) and b0 == pytest.approx(0.175)


@pytest.mark.parametrize(
    ("pseudo", "predicted", "match"),
    [
        (np.zeros(5), np.zeros(4), "one pseudo-outcome per predicted difference"),
        (np.zeros(2), np.zeros(2), r"n >= 3"),
    ],
)
def test_blp_arguments_are_checked(pseudo, predicted, match):
    with pytest.raises(UsageError, match=match):
        blp_regression(pseudo, predicted)


def test_holm_controls_the_family():
    assert holm_passed([0.04], 0.05) == [True]
    assert holm_passed([0.04, 0.04], 0.05) == [False, False]
    assert holm_passed([0.001, 0.04], 0.05) == [True, True]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"clip": 0.5}, r"clip must be in \[0, 1/2\)"),
        ({"estimated": pd.DataFrame({"a": [0.5]}, index=["w"])}, "misses some patients"),
    ],
)
def test_propensity_matrix_checks(kwargs, match):
    given = pd.Series(["a", "b"], index=["w", "x"])
    with pytest.raises(UsageError, match=match):
        propensity_matrix(given, ["a", "b"], **kwargs)


def test_null_choice_does_not_pass_on_noise_heads():
    """fit_therapy_choice on 50 null data sets of 300 patients: the gate passes rarely."""
    rng = np.random.default_rng(3)
    passed = 0
    for _ in range(50):
        n = 300
        given = pd.Series(np.where(rng.random(n) < 0.5, "a", "b"))
        p = rng.uniform(0.2, 0.8, n)
        y = (rng.random(n) < p).astype(int)
        mu = pd.DataFrame(
            {
                "a": np.clip(p + rng.normal(0, 0.15, n), 0.01, 0.99),
                "b": np.clip(p + rng.normal(0, 0.15, n), 0.01, 0.99),
            }
        )
        passed += fit_therapy_choice(y, given, mu, propensity_matrix(given, ["a", "b"])).gate_passed
    assert passed <= 7, passed  # 5% of 50 is 2.5; P(> 7 | 5%) < 0.2%


# -- cross-fitting inside training --------------------------------------------------------------


def test_crossfit_uses_out_of_fold_predictions_for_every_patient(trained, cohort):
    """Shared folds: a patient in fold k gets every therapy's fold-k head."""
    from cytoresp.panels.read import read_panel
    from cytoresp.train.fitting import labelled_therapies

    model, reports = trained
    panel = read_panel(cohort.panel)
    given = labelled_therapies(panel, model.therapies)
    cvs = {t: reports[t].cv for t in model.therapies}
    mu = crossfit_response(cvs, given)
    oof = reports["ifnb"].cv.oof.groupby("sample_id")["p_default"].mean()
    mine = given[given == "ifnb"].index.astype(str)
    np.testing.assert_allclose(mu.loc[given == "ifnb", "ifnb"], oof.loc[mine])
    # a GA patient in GA fold k gets the IFN-beta head of fold k (one repeat here)
    ga = given[given == "ga"].index.astype(str)
    fold = reports["ga"].cv.oof.set_index("sample_id")["fold"]
    scored = reports["ifnb"].cv.scored.rename(index=str)  # the session fixture stays as is
    expected = [scored.at[sid, f"0:{fold[sid]}"] for sid in ga]
    np.testing.assert_allclose(mu.loc[given == "ga", "ifnb"], expected)


def test_final_heads_scores_get_the_out_of_fold_mean_and_spread(trained, cohort):
    """The line is fitted on out-of-fold differences; the stored rescaling gives the final
    heads' differences on the training patients the same mean and standard deviation, so
    the line applied to them has the spread it has on the scores it was fitted on."""
    from cytoresp.panels.read import read_panel
    from cytoresp.train.fitting import labelled_therapies

    model, reports = trained
    panel = read_panel(cohort.panel)
    given = labelled_therapies(panel, model.therapies)
    mu = crossfit_response({t: reports[t].cv for t in model.therapies}, given)
    final = model.predict_proba(panel).loc[given.index]
    pc = model.choice.pairs[0]
    tau_oof = (mu[pc.first] - mu[pc.second]).to_numpy()
    tau_final = (final[f"p_response_{pc.first}"] - final[f"p_response_{pc.second}"]).to_numpy()
    assert pc.score_center == pytest.approx(tau_final.mean())
    assert pc.score_scale == pytest.approx(tau_oof.std() / tau_final.std())
    on_final = pc.calibrated(tau_final)[0]
    on_oof = pc.intercept + pc.slope * (tau_oof - pc.center)
    assert on_final.mean() == pytest.approx(on_oof.mean())
    assert on_final.std() == pytest.approx(on_oof.std())


# -- the issue-15 acceptance check: a small null cohort ------------------------------------------


#: Fast heads of each classifier: fixed penalties, fixed tree counts (the super learner's
#: candidates too; its weights are still fitted out of fold).
FAST_HEADS = {
    "linear_boosted": {"n_estimators": 30, "early_stopping": False, "C": 0.1, "C_ridge": 1.0},
    "superlearner": {
        "classifier": "superlearner",
        "inner_splits": 3,
        "candidate_params": {
            "ridge": {"C": 0.3},
            "xgb": {"n_estimators": 60},
            "boosted": {"n_estimators": 30, "early_stopping": False, "C": 0.1, "C_ridge": 1.0},
        },
    },
}


@pytest.fixture(scope="module", params=sorted(FAST_HEADS))
def null_model(request):
    """400 patients, both therapies one mechanism (true difference 0), fast heads of the
    default classifier (the super learner) and of the linear-boosted one."""
    from cytoresp.datasets import simulate_cohort
    from cytoresp.train.config import TrainConfig
    from cytoresp.train.fitting import fit_response_model

    train = simulate_cohort(
        400, seed=15, heterogeneity="none", prevalence_ifnb=0.6, prevalence_ga=0.6
    )
    config = TrainConfig(
        n_splits=3,
        n_repeats=1,
        inner_splits=2,
        n_boot=0,
        n_jobs=1,
        n_ensemble=0,
        model=FAST_HEADS[request.param],
    )
    return fit_response_model(train.panel, config=config)[0]


def test_null_cohort_gives_almost_no_confident_call(null_model):
    from cytoresp.datasets import simulate_cohort
    from cytoresp.panels.read import read_panel

    new = simulate_cohort(2000, seed=16, heterogeneity="none")
    assert (new.truth["p_response_ifnb"] == new.truth["p_response_ga"]).all()
    rec = null_model.recommend(read_panel(new.panel))
    confident = (rec["recommended_therapy"] != "either").mean()
    assert confident <= 0.05, (confident, null_model.choice.summary())
    if not null_model.choice.gate_passed:
        assert (
            rec["recommendation_reason"]
            .str.startswith("the training cohort shows no evidence")
            .all()
        )


def test_model_card_describes_the_calibration_each_classifier_gets(null_model):
    """A super-learner head is calibrated on its own stacked out-of-fold log-odds, a
    linear-boosted head on clones refitted on the config's inner folds: the card says which,
    and lists the super learner's weights."""
    from cytoresp.models.card import render_card

    card = render_card(null_model)
    stacked = type(null_model.heads["ifnb"].model).__name__ == "SuperLearnerClassifier"
    assert ("stacked out-of-fold log-odds" in card) is stacked
    assert ("inner folds of each outer training part" in card) is not stacked
    assert ("weights: ridge" in card) is stacked
