"""Tests of cytoresp.train.metrics: values against known answers, interval behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import expit, logit
from scipy.stats import norm
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from cytoresp.errors import UsageError
from cytoresp.train import metrics as M
from cytoresp.train.metrics import (
    Estimate,
    brier,
    calibration_intercept_slope,
    evaluate,
    paired_difference,
    paired_difference_pvalue,
    pr_auc,
    roc_auc,
    summarise_repeats,
    threshold_metrics,
)

KEYS = {
    "roc_auc",
    "pr_auc",
    "brier",
    "calibration_intercept",
    "calibration_slope",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
    "prevalence",
}


def binormal(n_neg: int, n_pos: int, d: float, rng: np.random.Generator):
    """Scores N(0,1) for non-responders, N(d,1) for responders: true AUC = Phi(d/sqrt 2)."""
    y = np.r_[np.zeros(n_neg), np.ones(n_pos)]
    z = rng.normal(size=y.size) + d * y
    return y, expit(z)


def width(e: Estimate) -> float:
    return e.upper - e.lower


# --------------------------------------------------------------------------- point values


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("decimals", [None, 1])  # continuous scores, and heavy ties
def test_point_metrics_match_sklearn(seed, decimals):
    rng = np.random.default_rng(seed)
    y = (rng.random(150) < 0.35).astype(int)
    p = expit(rng.normal(size=150) + 1.2 * y - 0.5)
    if decimals is not None:
        p = np.round(p, decimals)
    assert roc_auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert pr_auc(y, p) == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert brier(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-12)


def test_hand_computed_values():
    y = [0, 0, 1, 1]
    p = [0.1, 0.4, 0.35, 0.8]
    assert roc_auc(y, p) == 0.75  # 3 of 4 (pos, neg) pairs ordered correctly
    assert pr_auc(y, p) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert brier(y, p) == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    # ties count one half
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5


def test_threshold_metrics_hand_example():
    y = [1, 1, 1, 0, 0, 0, 0]
    p = [0.9, 0.6, 0.2, 0.7, 0.4, 0.1, 0.5]
    out = threshold_metrics(y, p, 0.5)  # called: 0.9, 0.6, 0.7, 0.5 (>= is positive)
    assert out == pytest.approx(
        {
            "sensitivity": 2 / 3,
            "specificity": 2 / 4,
            "balanced_accuracy": (2 / 3 + 2 / 4) / 2,
            "ppv": 2 / 4,
            "npv": 2 / 3,
        }
    )


def test_single_class_gives_nan_where_undefined():
    p = [0.2, 0.4, 0.9]
    assert math.isnan(roc_auc([1, 1, 1], p))
    assert math.isnan(roc_auc([0, 0, 0], p))
    assert math.isnan(pr_auc([0, 0, 0], p))
    assert pr_auc([1, 1, 1], p) == 1.0  # defined: every call is a true positive
    assert all(math.isnan(v) for v in calibration_intercept_slope([0, 0, 0], p))
    th = threshold_metrics([0, 0, 0], p, 0.5)
    assert math.isnan(th["sensitivity"]) and math.isnan(th["balanced_accuracy"])
    assert th["specificity"] == pytest.approx(2 / 3)
    assert brier([0, 0, 0], p) == pytest.approx((0.04 + 0.16 + 0.81) / 3)

    res = evaluate([0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4], n_boot=50)
    assert math.isnan(res["roc_auc"].value)
    assert math.isnan(res["roc_auc"].lower) and math.isnan(res["roc_auc"].upper)
    assert res["brier"].lower <= res["brier"].value <= res["brier"].upper
    assert res["prevalence"].value == 0.0


# --------------------------------------------------------------------------- calibration


def simulated_logits(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1.5, n)
    y = (rng.random(n) < expit(x)).astype(int)
    return x, y


def test_calibration_of_perfectly_calibrated_predictions():
    x, y = simulated_logits(20_000, seed=0)
    intercept, slope = calibration_intercept_slope(y, expit(x))
    assert slope == pytest.approx(1.0, abs=0.05)
    assert intercept == pytest.approx(0.0, abs=0.05)


@pytest.mark.parametrize(("scale", "expected"), [(2.0, 0.5), (0.5, 2.0)])
def test_calibration_slope_detects_over_and_underconfidence(scale, expected):
    x, y = simulated_logits(20_000, seed=1)
    _, slope = calibration_intercept_slope(y, expit(scale * x))
    assert slope == pytest.approx(expected, rel=0.06)
    assert (slope < 1) == (scale > 1)


def test_calibration_matches_unpenalised_logistic_regression():
    rng = np.random.default_rng(3)
    x = rng.normal(0.3, 1.2, 400)
    y = (rng.random(400) < expit(0.4 + 0.7 * x)).astype(int)
    intercept, slope = calibration_intercept_slope(y, expit(x))

    ref = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(x[:, None], y)
    assert slope == pytest.approx(ref.coef_[0, 0], abs=1e-5)

    # calibration-in-the-large: intercept with logit(p) as an offset
    def nll(a):
        eta = a + x
        return -np.sum(y * eta - np.logaddexp(0, eta))

    best = minimize_scalar(nll, bounds=(-5, 5), method="bounded", options={"xatol": 1e-9})
    assert intercept == pytest.approx(best.x, abs=1e-5)


def test_calibration_clips_extreme_probabilities():
    y = np.array([0, 1, 0, 1, 1, 0])
    p = np.array([0.0, 1.0, 0.3, 0.6, 0.2, 0.7])
    got = calibration_intercept_slope(y, p)
    expected = calibration_intercept_slope(y, np.clip(p, 1e-6, 1 - 1e-6))
    assert np.all(np.isfinite(got))
    assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("y", "p", "expected"),
    [
        ([0, 0, 1, 1], [0.1, 0.3, 0.3, 0.9], math.inf),  # separated (ties allowed)
        ([1, 1, 0, 0], [0.1, 0.3, 0.6, 0.9], -math.inf),  # separated the wrong way
        ([0, 1, 0, 1], [0.4, 0.4, 0.4, 0.4], math.nan),  # constant p: not identifiable
    ],
)
def test_calibration_slope_without_finite_estimate(y, p, expected):
    intercept, slope = calibration_intercept_slope(y, p)
    assert math.isfinite(intercept)
    if math.isnan(expected):
        assert math.isnan(slope)
    else:
        assert slope == expected


# --------------------------------------------------------------------------- bootstrap kernels


def test_weighted_kernels_equal_metrics_on_explicitly_resampled_rows():
    """A resample as a row of counts gives the metric of the rows repeated that often."""
    rng = np.random.default_rng(5)
    y = (rng.random(80) < 0.4).astype(float)
    p = np.round(expit(rng.normal(size=80) + y), 2)
    counts = rng.integers(0, 4, size=(6, 80)).astype(float)
    s = M._Scores.of(y, p)
    auc = M._k_roc_auc(counts, s)
    ap = M._k_pr_auc(counts, s)
    bs = M._k_brier(counts, s)
    intercept, slope = M._k_calibration(counts, s)
    for b, w in enumerate(counts.astype(int)):
        yr, pr = np.repeat(y, w), np.repeat(p, w)
        assert auc[b] == pytest.approx(roc_auc_score(yr, pr), abs=1e-12)
        assert ap[b] == pytest.approx(average_precision_score(yr, pr), abs=1e-12)
        assert bs[b] == pytest.approx(brier_score_loss(yr, pr), abs=1e-12)
        assert (intercept[b], slope[b]) == pytest.approx(
            calibration_intercept_slope(yr, pr), abs=1e-7
        )


def test_evaluate_keys_order_and_reproducibility():
    rng = np.random.default_rng(0)
    y, p = binormal(40, 30, 1.0, rng)
    res = evaluate(y, p, n_boot=200, seed=7)
    assert set(res) == KEYS
    assert res == evaluate(y, p, n_boot=200, seed=7)
    assert res["roc_auc"] != evaluate(y, p, n_boot=200, seed=8)["roc_auc"]
    assert res["roc_auc"].value == pytest.approx(roc_auc_score(y, p))
    assert res["brier"].value == pytest.approx(brier_score_loss(y, p))
    for k, e in res.items():
        assert e.lower <= e.value <= e.upper, k
    # prevalence: 30 of 70 with a Wilson interval
    assert res["prevalence"].value == pytest.approx(30 / 70)
    assert (res["prevalence"].lower, res["prevalence"].upper) == pytest.approx(
        (0.3194, 0.5452), abs=1e-4
    )


def test_evaluate_without_bootstrap_gives_point_estimates():
    y = [0, 1, 0, 1, 1]
    p = [0.2, 0.7, 0.4, 0.3, 0.9]
    res = evaluate(y, p, threshold=0.35, n_boot=0)
    assert res["roc_auc"].value == pytest.approx(roc_auc(y, p))
    assert res["sensitivity"].value == pytest.approx(2 / 3)
    assert math.isnan(res["roc_auc"].lower) and math.isnan(res["roc_auc"].upper)
    assert str(res["roc_auc"]) == f"{roc_auc(y, p):.3f}"


def test_bootstrap_interval_covers_true_auc_at_nominal_rate():
    d = 1.0
    true_auc = norm.cdf(d / math.sqrt(2))
    rng = np.random.default_rng(2024)
    covered = 0
    for run in range(100):
        y, p = binormal(30, 30, d, rng)
        est = evaluate(y, p, n_boot=400, seed=run)["roc_auc"]
        covered += est.lower <= true_auc <= est.upper
    assert covered >= 85


@pytest.mark.slow
def test_prevalence_dependent_intervals_cover_on_calibrated_predictions():
    """Calibration intercept 0, slope 1 and the expected Brier score are covered ~95%.

    Resampling within each class fixes the prevalence and covered the intercept's true
    value 0 for only about 62% of such samples; a plain patient bootstrap is needed.
    """
    rng = np.random.default_rng(11)
    p_of = lambda n: expit(rng.normal(-0.4, 1.2, size=n))  # noqa: E731
    big = p_of(2_000_000)  # drawn (not integrated) to keep the replicates' random stream
    true_brier = float(np.mean(big * (1 - big)))  # E[(y - p)^2] when y ~ Bernoulli(p)
    covered = {"calibration_intercept": 0, "calibration_slope": 0, "brier": 0}
    truth = {"calibration_intercept": 0.0, "calibration_slope": 1.0, "brier": true_brier}
    runs = 200
    for run in range(runs):
        p = p_of(150)
        y = (rng.random(150) < p).astype(int)
        res = evaluate(y, p, n_boot=300, seed=run)
        for k in covered:
            covered[k] += res[k].lower <= truth[k] <= res[k].upper
    # measured: intercept 190, slope 186, Brier 186 of 200. binomial(200, 0.95) stays in
    # [178, 196] (89%-98%) with probability > 0.99: too narrow and too wide both fail
    assert 178 <= covered["calibration_intercept"] <= 196, covered
    assert 178 <= covered["brier"] <= 196, covered
    assert 170 <= covered["calibration_slope"] <= 196, covered  # percentile slope intervals


def test_cluster_bootstrap_is_wider_when_rows_repeat_patients():
    rng = np.random.default_rng(11)
    y0, p0 = binormal(50, 30, 1.0, rng)
    repeats = 5
    patient = np.tile(np.arange(y0.size), repeats)
    y = y0[patient]
    # each CV repeat predicts the same patient slightly differently
    p = expit(logit(p0[patient]) + rng.normal(0, 0.1, patient.size))
    rows = evaluate(y, p, n_boot=500, seed=1)
    clustered = evaluate(y, p, n_boot=500, seed=1, groups=patient)
    assert clustered["roc_auc"].value == rows["roc_auc"].value
    # five copies of each patient look like 5x the data: sqrt(5) ~ 2.2x too narrow
    assert width(clustered["roc_auc"]) > 1.8 * width(rows["roc_auc"])
    assert width(clustered["brier"]) > 1.8 * width(rows["brier"])
    # and the clustered interval is close to the one from one row per patient
    single = evaluate(y0, p0, n_boot=500, seed=1)
    assert width(clustered["roc_auc"]) == pytest.approx(width(single["roc_auc"]), rel=0.3)
    # prevalence counts patients, not rows
    assert clustered["prevalence"].value == pytest.approx(30 / 80)
    assert clustered["prevalence"].upper - clustered["prevalence"].lower == pytest.approx(
        single["prevalence"].upper - single["prevalence"].lower
    )


def test_groups_with_string_ids():
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.2, 0.8, 0.7, 0.3, 0.6])
    g = np.array(["a", "a", "b", "b", "c", "d"])
    res = evaluate(y, p, n_boot=50, groups=g)
    assert res["prevalence"].value == pytest.approx(2 / 4)


# --------------------------------------------------------------------------- paired comparison


def correlated_pair(rng: np.random.Generator, n_neg=120, n_pos=80):
    y = np.r_[np.zeros(n_neg), np.ones(n_pos)]
    shared = rng.normal(size=y.size) + 1.0 * y
    p_a = expit(shared + rng.normal(0, 0.3, y.size))
    p_b = expit(shared + rng.normal(0, 0.3, y.size))
    return y, p_a, p_b


def test_paired_interval_is_narrower_than_unpaired():
    y, p_a, p_b = correlated_pair(np.random.default_rng(4))
    paired = paired_difference(y, p_a, p_b, n_boot=500, seed=0)
    assert paired.value == pytest.approx(roc_auc(y, p_a) - roc_auc(y, p_b))
    a = evaluate(y, p_a, n_boot=500, seed=1)["roc_auc"]
    b = evaluate(y, p_b, n_boot=500, seed=2)["roc_auc"]
    unpaired_width = math.hypot(width(a), width(b))
    assert width(paired) < 0.5 * unpaired_width


def test_identical_models_differ_by_zero():
    y, p_a, _ = correlated_pair(np.random.default_rng(0))
    assert paired_difference(y, p_a, p_a, n_boot=100) == Estimate(0.0, 0.0, 0.0)
    assert paired_difference_pvalue(y, p_a, p_a, n_boot=100) == 1.0


@pytest.mark.parametrize("metric", sorted(M.PAIRED_METRICS))
def test_paired_point_difference_for_every_metric(metric):
    y, p_a, p_b = correlated_pair(np.random.default_rng(9))
    single = {
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "brier": brier,
        "calibration_intercept": lambda y, p: calibration_intercept_slope(y, p)[0],
        "calibration_slope": lambda y, p: calibration_intercept_slope(y, p)[1],
    }[metric]
    est = paired_difference(y, p_a, p_b, metric, n_boot=100)
    assert est.value == pytest.approx(single(y, p_a) - single(y, p_b), abs=1e-9)
    assert est.lower <= est.value <= est.upper


def test_paired_pvalue_agrees_with_interval():
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(100), np.ones(100)]
    z = rng.normal(size=200) + y
    good = expit(z)
    noisy = expit(z + rng.normal(0, 4.0, 200))  # nearly uninformative
    d = paired_difference(y, good, noisy, n_boot=500)
    pval = paired_difference_pvalue(y, good, noisy, n_boot=500)
    assert d.lower > 0
    assert pval == pytest.approx(2 / 501)  # no resample at or below 0

    y2, p_a, p_b = correlated_pair(np.random.default_rng(4))
    d2 = paired_difference(y2, p_a, p_b, n_boot=500)
    p2 = paired_difference_pvalue(y2, p_a, p_b, n_boot=500)
    assert (d2.lower < 0 < d2.upper) == (p2 > 0.05)


def test_paired_bootstrap_respects_groups():
    rng = np.random.default_rng(12)
    y0, p_a0, p_b0 = correlated_pair(rng, 60, 40)
    patient = np.tile(np.arange(y0.size), 4)
    rows = paired_difference(y0[patient], p_a0[patient], p_b0[patient], n_boot=400)
    clustered = paired_difference(
        y0[patient], p_a0[patient], p_b0[patient], n_boot=400, groups=patient
    )
    assert width(clustered) > 1.6 * width(rows)


# --------------------------------------------------------------------------- misc API


def test_summarise_repeats():
    out = summarise_repeats(
        [
            {"roc_auc": 0.80, "brier": 0.20},
            {"roc_auc": 0.90, "brier": 0.18},
            {"roc_auc": 0.85, "brier": 0.19},
        ]
    )
    assert list(out) == ["roc_auc_mean", "roc_auc_sd", "brier_mean", "brier_sd"]
    assert out["roc_auc_mean"] == pytest.approx(0.85)
    assert out["roc_auc_sd"] == pytest.approx(0.05)
    assert out["brier_sd"] == pytest.approx(0.01)
    single = summarise_repeats([{"roc_auc": 0.7}])
    assert single["roc_auc_mean"] == 0.7 and math.isnan(single["roc_auc_sd"])
    assert math.isnan(summarise_repeats([{"a": 1.0}, {"a": math.nan}])["a_mean"])


@pytest.mark.parametrize(
    ("per_repeat", "match"),
    [
        ([], "at least one repeat"),
        ([{"roc_auc": 0.8}, {"brier": 0.2}], "repeat 1 has different metrics.*brier, roc_auc"),
    ],
)
def test_summarise_repeats_rejects_bad_input(per_repeat, match):
    with pytest.raises(UsageError, match=match):
        summarise_repeats(per_repeat)


@pytest.mark.parametrize(
    ("estimate", "text"),
    [
        (Estimate(0.8123, 0.7712, 0.8501), "0.812 (95% CI 0.771-0.850)"),
        (Estimate(-0.031, -0.0724, 0.012), "-0.031 (95% CI -0.072 to 0.012)"),
        (Estimate(0.5, math.nan, math.nan), "0.500"),
    ],
)
def test_estimate_str(estimate, text):
    assert str(estimate) == text


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: roc_auc([0, 2, 1], [0.1, 0.2, 0.3]), r"only 0/1 labels.*found 2"),
        (lambda: roc_auc([0, np.nan, 1], [0.1, 0.2, 0.3]), "only 0/1 labels"),
        (lambda: roc_auc(["no", "yes"], [0.1, 0.2]), "0/1 labels"),
        (lambda: roc_auc([], []), "y is empty"),
        (lambda: roc_auc([[0, 1]], [[0.1, 0.2]]), "one-dimensional"),
        (lambda: roc_auc([0, 1, 1], [0.1, 0.2]), "p has 2 values but y has 3"),
        (lambda: roc_auc([0, 1], [0.1, 1.2]), r"probabilities in \[0, 1\]"),
        (lambda: brier([0, 1], [0.1, np.nan]), "1 NaN or infinite"),
        (lambda: threshold_metrics([0, 1], [0.1, 0.9], 1.5), "threshold must be"),
        (lambda: evaluate([0, 1], [0.1, 0.9], n_boot=-1), "n_boot must be"),
        (lambda: evaluate([0, 1], [0.1, 0.9], n_boot=10.0), "n_boot must be"),
        (lambda: evaluate([0, 1], [0.1, 0.9], groups=[1]), "one id per row"),
        (lambda: evaluate([0, 1, 1], [0.1, 0.9, 0.8], groups=[1, 1, 2]), "both labels"),
        (lambda: evaluate([0, 1], [0.1, 0.9], groups=[1.0, np.nan]), "missing patient ids"),
        (
            lambda: evaluate([0, 1], [0.1, 0.9], groups=np.array([1, "a"], dtype=object)),
            "different types",
        ),
        (lambda: paired_difference([0, 1], [0.1, 0.9], [0.2], n_boot=10), "p_b has 1 values"),
        (lambda: paired_difference([0, 1], [0.1, 0.9], [0.2, 0.3], "f1"), "unknown metric 'f1'"),
        (lambda: paired_difference_pvalue([0, 1], [0.1, 0.9], [0.2, 0.3], n_boot=0), "n_boot >= 1"),
    ],
)
def test_bad_arguments_raise_usage_error(call, match):
    with pytest.raises(UsageError, match=match):
        call()
