"""Fit the therapy choice: cross-fitted doubly robust pseudo-outcomes and the BLP gate.

What the fitted :class:`~cytoresp.models.choice.TherapyChoice` means, and the decision rule
that uses it, are in :mod:`cytoresp.models.choice`. Here:

1. **Cross-fitted outcome heads** ``mu_t(x)``, for every labelled patient and every
   therapy ``t``, from the heads fitted inside the outer cross-validation
   (:func:`cytoresp.train.cv.cross_validate` with ``score=``), with folds shared across
   therapies: a patient in fold ``k`` gets every therapy's fold-``k`` head (none of which
   saw them), averaged over repeats (:func:`crossfit_response`). Each fold's head carries
   its own calibration, fitted on inner folds. No patient's ``mu_t`` depends on their own
   therapy or outcome.
2. **Propensity** ``e_t(x)``: the cross-fitted model of assignment estimated at training
   time (:mod:`cytoresp.train.propensity`), clipped to ``[clip, 1 - clip]``; the observed
   therapy shares when no model of assignment was estimated (e.g. more than two
   therapies), which assumes randomisation.
3. **DR (AIPW) pseudo-outcomes** ``G_t = mu_t + 1[T = t] (Y - mu_t) / e_t`` (Robins,
   Rotnitzky and Zhao 1994; the DR-learner of Kennedy 2023, econml ``DRLearner``): for a
   pair ``(a, b)``, ``E[G_a - G_b | X] = P(response | a, X) - P(response | b, X)`` when
   either the outcome heads or the propensity are right.
4. **BLP** (Chernozhukov, Demirer, Duflo and Fernández-Val, GenericML; grf
   ``test_calibration`` and ``best_linear_projection``): ``G_a - G_b`` regressed by least
   squares on ``[1, tau_hat - center]``, ``tau_hat = mu_a - mu_b``, with HC3 standard
   errors, **separately in every cross-validation fold** (and repeat): the patients of
   fold ``k`` with the fold-``k`` heads, which never saw their outcomes, so that each
   fold's regression is valid inference conditional on the other folds (GenericML's
   sample splitting). The folds' estimates are not independent: each fold's heads were
   fitted on the other folds' outcomes, and on simulated null cohorts of 300 patients
   per therapy a single regression pooled over folds had slope z-statistics with standard
   deviation 1.40 instead of 1 (gate passed in 5 of 30 cohorts at a nominal 5%). The
   folds' coefficients are therefore averaged and their covariance bounded by the
   average of the folds' covariances, which holds whatever the dependence
   (:func:`combine_folds`; conservative). The one-sided test of the averaged slope
   against this bound is the gate; with more than two therapies the pairs' p-values are
   Holm-adjusted.
5. **Score scale** (:func:`score_rescaling`): the line is fitted on the out-of-fold
   predicted differences of the fold heads but applied at scoring to the final heads'
   (refitted on all patients, with their own calibration). Their spreads differ from one
   training cohort to the next (in simulated cohorts of 100 per therapy the ratio of
   standard deviations on the same new patients ranged from 0.7 to 1.4), which moved
   the line away from the one the final heads need. The final heads' predicted difference
   is therefore standardised onto the out-of-fold one: its mean and standard deviation
   on the training patients are matched to the out-of-fold mean and standard deviation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd

from cytoresp.errors import UsageError
from cytoresp.models.choice import (
    DEFAULT_ALPHA,
    DEFAULT_LEVEL,
    PairCalibration,
    TherapyChoice,
    pair_keys,
)
from cytoresp.train.cv import CVResult

__all__ = [
    "blp_regression",
    "combine_folds",
    "crossfit_by_repeat",
    "crossfit_response",
    "dr_pseudo_outcomes",
    "fit_therapy_choice",
    "holm_passed",
    "propensity_matrix",
    "score_rescaling",
]


def crossfit_response(cvs: Mapping[str, CVResult], given: pd.Series) -> pd.DataFrame:
    """Cross-fitted P(response | therapy, x), averaged over repeats (:func:`crossfit_by_repeat`).

    Parameters
    ----------
    cvs : mapping of str to CVResult
    given : Series

    Returns
    -------
    DataFrame
        Index ``given.index``, one column per therapy of ``cvs``.
    """
    per_repeat = crossfit_by_repeat(cvs, given)
    return sum(mu for mu, _ in per_repeat) / len(per_repeat)


def crossfit_by_repeat(
    cvs: Mapping[str, CVResult], given: pd.Series
) -> list[tuple[pd.DataFrame, np.ndarray]]:
    """Per repeat, cross-fitted P(response | therapy, x) of every labelled patient and
    every patient's fold.

    Folds are shared across therapies: a patient in fold ``k`` of their own therapy's
    cross-validation (repeat ``r``) gets, for *every* therapy ``t``, the prediction of
    ``t``'s fold-``k`` head of repeat ``r`` (fitted without fold ``k``, so never on this
    patient); the values are averaged over repeats. Which head scores a patient thus
    depends on their fold only, not on the therapy they were given: the nuisance is
    independent of the patient's own therapy and outcome, as cross-fitting requires. (Using
    the patient's own out-of-fold value for their therapy but the mean of all folds for the
    others would make the nuisance depend on the therapy given and bias the BLP slope
    downwards.)

    Parameters
    ----------
    cvs : mapping of str to CVResult
        Per therapy, the cross-validation of its head, run with ``score=`` the labelled
        patients of the other therapies (same ``n_splits`` and repeats for every therapy).
    given : Series
        Therapy given, index ``sample_id``: the labelled patients of every therapy.

    Returns
    -------
    list of (DataFrame, ndarray)
        One entry per repeat: the predictions (index ``given.index``, one column per
        therapy of ``cvs``) and each patient's fold (integer array, order of ``given``).
    """
    ids = pd.Index(given.index.astype(str))
    # each patient's fold label per repeat, from their own therapy's cross-validation
    labels = pd.concat(
        [cv.oof[["sample_id", "repeat", "fold"]] for cv in cvs.values()], ignore_index=True
    )
    repeats = sorted(labels["repeat"].unique())
    folds = [
        labels[labels["repeat"] == r].set_index("sample_id")["fold"].reindex(ids)
        for r in repeats
    ]
    if any(f.isna().any() for f in folds):
        raise UsageError("cross-fitted predictions are missing for some patients")
    outs = [pd.DataFrame(index=given.index, dtype=np.float64) for _ in repeats]
    for t, cv in cvs.items():
        mine = (given == t).to_numpy()
        per_repeat = np.full((len(repeats), len(ids)), np.nan)
        own = cv.oof.set_index(["repeat", "sample_id"])["p_default"]
        scored = None
        if cv.scored is not None:
            scored = cv.scored.copy()
            scored.index = scored.index.astype(str)
        for i, r in enumerate(repeats):
            fold = folds[i]
            per_repeat[i, mine] = own.loc[r].reindex(ids[mine]).to_numpy()
            if scored is not None and (~mine).any():
                other = ids[~mine]
                cols = [f"{r}:{int(k)}" for k in fold.loc[other].to_numpy()]
                table = scored.reindex(index=other)
                per_repeat[i, ~mine] = [
                    table.at[sid, c] if c in table.columns else np.nan
                    for sid, c in zip(other, cols, strict=True)
                ]
        for i in range(len(repeats)):
            outs[i][t] = per_repeat[i]
    if any(o.isna().any().any() for o in outs):
        raise UsageError("cross-fitted predictions are missing for some patients")
    return [(o, f.to_numpy(dtype=int)) for o, f in zip(outs, folds, strict=True)]


def propensity_matrix(
    given: pd.Series,
    therapies: Sequence[str],
    estimated: pd.DataFrame | None = None,
    clip: float = 0.05,
) -> pd.DataFrame:
    """P(therapy | x) per patient, clipped to ``[clip, 1 - clip]``, rows summing to 1.

    Parameters
    ----------
    given : Series
        Therapy given, index ``sample_id``.
    therapies : sequence of str
    estimated : DataFrame, optional
        Cross-fitted propensities, one column per therapy (index ``sample_id``). None:
        the observed share of each therapy for everyone (randomised assignment assumed).
    clip : float

    Examples
    --------
    >>> given = pd.Series(["a", "a", "b", "a"], index=list("wxyz"))
    >>> propensity_matrix(given, ["a", "b"])["a"].tolist()
    [0.75, 0.75, 0.75, 0.75]
    >>> est = pd.DataFrame({"a": [0.99, 0.5, 0.5, 0.5], "b": [0.01, 0.5, 0.5, 0.5]},
    ...                    index=list("wxyz"))
    >>> propensity_matrix(given, ["a", "b"], est, clip=0.05)["b"].round(3).tolist()
    [0.05, 0.5, 0.5, 0.5]
    """
    if not 0 <= clip < 1.0 / len(therapies):
        raise UsageError(f"the propensity clip must be in [0, 1/{len(therapies)}), got {clip!r}")
    if estimated is None:
        shares = given.value_counts(normalize=True).reindex(list(therapies)).fillna(0.0)
        e = np.tile(shares.to_numpy(dtype=np.float64), (len(given), 1))
    else:
        e = estimated.reindex(index=given.index, columns=list(therapies)).to_numpy(np.float64)
        if np.isnan(e).any():
            raise UsageError("the estimated propensity misses some patients or therapies")
    # clip then renormalise, repeated until stable (one pass for two therapies)
    for _ in range(10):
        e = np.clip(e, clip, 1.0 - clip)
        e = e / e.sum(axis=1, keepdims=True)
        if (e >= clip - 1e-12).all():
            break
    return pd.DataFrame(e, index=given.index, columns=list(therapies))


def dr_pseudo_outcomes(
    y, given: pd.Series, mu: pd.DataFrame, propensity: pd.DataFrame
) -> pd.DataFrame:
    """AIPW pseudo-outcomes ``G_t = mu_t + 1[T = t] (Y - mu_t) / e_t`` for every therapy.

    Examples
    --------
    >>> given = pd.Series(["a", "b"])
    >>> mu = pd.DataFrame({"a": [0.6, 0.6], "b": [0.4, 0.4]})
    >>> e = pd.DataFrame({"a": [0.5, 0.5], "b": [0.5, 0.5]})
    >>> dr_pseudo_outcomes([1, 0], given, mu, e).round(2).to_numpy().tolist()
    [[1.4, 0.4], [0.6, -0.4]]
    """
    y = np.asarray(y, dtype=np.float64)
    out = {}
    for t in mu.columns:
        m = mu[t].to_numpy(dtype=np.float64)
        on = (given == t).to_numpy()
        out[t] = m + on * (y - m) / propensity[t].to_numpy(dtype=np.float64)
    return pd.DataFrame(out, index=mu.index)


def blp_regression(pseudo, predicted) -> tuple[float, float, np.ndarray, float, float]:
    """Least squares of ``pseudo`` on ``[1, predicted - mean]`` with HC3 covariance.

    Returns
    -------
    intercept, slope : float
    cov : ndarray of shape (2, 2)
        HC3 (MacKinnon and White 1985) covariance of ``(intercept, slope)``.
    center : float
        Mean of ``predicted``.
    p_value : float
        One-sided p-value of H0: slope <= 0 (normal approximation); 1 when the
        predicted difference does not vary.

    Examples
    --------
    A pseudo-outcome that follows the prediction gives a slope near 1 and a small p:

    >>> rng = np.random.default_rng(0)
    >>> tau = rng.normal(0, 0.2, 400)
    >>> b0, b1, cov, c, p = blp_regression(tau + rng.normal(0, 1, 400), tau)
    >>> bool(abs(b1 - 1) < 2 * np.sqrt(cov[1, 1])), p < 0.01
    (True, True)
    """
    g = np.asarray(pseudo, dtype=np.float64)
    t = np.asarray(predicted, dtype=np.float64)
    if g.shape != t.shape or g.ndim != 1 or len(g) < 3:
        raise UsageError("the BLP needs one pseudo-outcome per predicted difference (n >= 3)")
    center = float(t.mean())
    x = t - center
    if float(np.sum(x * x)) <= 1e-12 * max(len(x), 1):
        mean = float(g.mean())
        var0 = float(np.var(g, ddof=1)) / len(g)
        return mean, 0.0, np.array([[var0, 0.0], [0.0, 0.0]]), center, 1.0
    X = np.column_stack([np.ones_like(x), x])
    XtX_inv = np.linalg.inv(X.T @ X)
    beta = XtX_inv @ (X.T @ g)
    resid = g - X @ beta
    h = np.einsum("ij,jk,ik->i", X, XtX_inv, X)
    w = (resid / np.maximum(1.0 - h, 1e-8)) ** 2
    cov = XtX_inv @ (X.T * w) @ X @ XtX_inv
    se = float(np.sqrt(max(cov[1, 1], 0.0)))
    p = 1.0 - NormalDist().cdf(beta[1] / se) if se > 0 else (0.0 if beta[1] > 0 else 1.0)
    return float(beta[0]), float(beta[1]), cov, center, float(p)


def combine_folds(
    fits: Sequence[tuple[float, float, np.ndarray]],
) -> tuple[float, float, np.ndarray, float]:
    """Average per-fold BLP coefficients, with a covariance bound valid under any dependence.

    The folds' estimates ``b_k`` are correlated (each fold's heads were fitted on the
    other folds' outcomes), by an amount the data cannot pin down. Whatever the
    correlation, for any linear combination ``c``, ``sd(mean_k c'b_k) <= mean_k
    sd(c'b_k)``, and the square of a mean is at most the mean of the squares, so the
    *average* of the folds' covariances bounds the covariance of the averaged
    coefficients. The bound is exact when the folds are completely dependent and ``K``
    times too large when they are independent: tests and intervals built on it are
    conservative.

    Parameters
    ----------
    fits : sequence of (intercept, slope, cov)
        One BLP per fold (and repeat), all centred at the same value.

    Returns
    -------
    intercept, slope : float
        The folds' averages.
    cov : ndarray of shape (2, 2)
        The average of the folds' covariances.
    p_value : float
        One-sided p-value of the averaged slope against this bound (H0: slope <= 0),
        normal approximation.

    Examples
    --------
    >>> v = np.array([[0.01, 0.0], [0.0, 0.04]])
    >>> b0, b1, cov, p = combine_folds([(0.1, 0.8, v), (0.0, 0.4, v)])
    >>> round(b0, 3), round(b1, 3), round(float(cov[1, 1]), 3), round(p, 4)
    (0.05, 0.6, 0.04, 0.0013)
    """
    if not fits:
        raise UsageError("no fold to combine")
    b0 = float(np.mean([f[0] for f in fits]))
    b1 = float(np.mean([f[1] for f in fits]))
    cov = np.mean([np.asarray(f[2], dtype=np.float64) for f in fits], axis=0)
    se = float(np.sqrt(max(cov[1, 1], 0.0)))
    p = 1.0 - NormalDist().cdf(b1 / se) if se > 0 else (0.0 if b1 > 0 else 1.0)
    return b0, b1, cov, float(p)


def fold_blp(pseudo, predicted, folds, center: float) -> tuple[float, float, np.ndarray, float]:
    """Per-fold BLPs of ``pseudo`` on ``[1, predicted - center]``, combined (:func:`combine_folds`).

    A fold with fewer than 3 patients is left out.
    """
    return combine_folds(fold_fits(pseudo, predicted, folds, center))


def fold_fits(pseudo, predicted, folds, center: float) -> list[tuple[float, float, np.ndarray]]:
    """One BLP ``(intercept at center, slope, covariance)`` per fold of 3 or more patients."""
    g = np.asarray(pseudo, dtype=np.float64)
    t = np.asarray(predicted, dtype=np.float64) - center
    folds = np.asarray(folds)
    fits = []
    for k in np.unique(folds):
        m = folds == k
        if m.sum() < 3:
            continue
        b0, b1, cov, c, _ = blp_regression(g[m], t[m])
        # blp_regression centres at the fold's own mean: move the intercept to ``center``
        shift = c  # predicted - center has mean c within the fold
        b0_at = b0 - b1 * shift
        J = np.array([[1.0, -shift], [0.0, 1.0]])
        fits.append((b0_at, b1, J @ cov @ J.T))
    return fits


def holm_passed(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Holm's step-down procedure: which hypotheses are rejected at family-wise ``alpha``.

    Examples
    --------
    >>> holm_passed([0.01, 0.04, 0.03], 0.05)
    [True, False, False]
    >>> holm_passed([0.01, 0.02, 0.03], 0.05)
    [True, True, True]
    """
    m = len(p_values)
    order = np.argsort(p_values, kind="stable")
    passed = [False] * m
    for k, i in enumerate(order):
        if p_values[i] <= alpha / (m - k):
            passed[i] = True
        else:
            break
    return passed


def score_rescaling(oof, final) -> tuple[float, float]:
    """``(score_center, score_scale)`` that put ``final`` on the scale of ``oof``.

    ``score_center`` is the mean of ``final`` and ``score_scale`` the ratio of standard
    deviations ``sd(oof) / sd(final)`` (1 when either does not vary), both over the same
    patients, so that ``mean(oof) + score_scale * (final - score_center)`` has the mean
    and standard deviation of ``oof``.

    Examples
    --------
    >>> center, scale = score_rescaling([0.1, 0.2, 0.3], [0.0, 0.2, 0.4])
    >>> round(center, 6), round(scale, 6)
    (0.2, 0.5)
    """
    oof = np.asarray(oof, dtype=np.float64)
    final = np.asarray(final, dtype=np.float64)
    if oof.shape != final.shape or oof.ndim != 1 or len(oof) < 2:
        raise UsageError("the score rescaling needs one final score per out-of-fold score")
    sd_oof, sd_final = float(np.std(oof)), float(np.std(final))
    scale = sd_oof / sd_final if sd_oof > 1e-12 and sd_final > 1e-12 else 1.0
    return float(np.mean(final)), float(scale)


def fit_therapy_choice(
    y,
    given: pd.Series,
    mu: pd.DataFrame,
    propensity: pd.DataFrame,
    *,
    folds: Sequence[tuple[pd.DataFrame, np.ndarray]] | None = None,
    final: pd.DataFrame | None = None,
    level: float = DEFAULT_LEVEL,
    alpha: float = DEFAULT_ALPHA,
    propensity_source: str = "cross-fitted",
    info: Mapping[str, object] | None = None,
) -> TherapyChoice:
    """The BLP calibration and gate of every pair of therapies.

    Parameters
    ----------
    y : array-like of 0/1
        Observed response of the labelled patients.
    given : Series
        Their therapy (index ``sample_id``).
    mu : DataFrame
        Cross-fitted P(response | therapy, x) (:func:`crossfit_response`), one column per
        therapy, in the model's order.
    propensity : DataFrame
        :func:`propensity_matrix`.
    folds : list of (DataFrame, ndarray), optional
        :func:`crossfit_by_repeat`: per repeat, the fold heads' predictions and every
        patient's fold. Given (as by the training job), the BLP is fitted per fold and
        repeat and combined by :func:`combine_folds`. None: one regression over all
        patients with ``mu``, valid only when ``mu`` was fitted without these patients'
        outcomes (e.g. heads from another cohort).
    final : DataFrame, optional
        The final heads' P(response | therapy, x) of the same patients, columns as ``mu``:
        the scores the calibration will be applied to (:func:`score_rescaling`). None:
        scoring uses ``mu``'s scale unchanged (the final heads are assumed to spread like
        the fold heads).
    level, alpha : float
        Interval level stored for scoring; family-wise level of the gate.
    propensity_source : str
        Recorded in the result.
    info : mapping, optional
        Recorded in the result.

    Returns
    -------
    TherapyChoice

    Examples
    --------
    Two therapies, no difference between them anywhere (the gate should not pass):

    >>> rng = np.random.default_rng(1)
    >>> n = 400
    >>> given = pd.Series(np.where(rng.random(n) < 0.5, "a", "b"))
    >>> p = rng.uniform(0.2, 0.8, n)
    >>> y = (rng.random(n) < p).astype(int)
    >>> mu = pd.DataFrame({"a": p + rng.normal(0, 0.1, n), "b": p + rng.normal(0, 0.1, n)})
    >>> e = propensity_matrix(given, ["a", "b"])
    >>> choice = fit_therapy_choice(y, given, mu, e)
    >>> choice.gate_passed
    False
    """
    therapies = list(mu.columns)
    pseudo = dr_pseudo_outcomes(y, given, mu, propensity)
    fits, rescale = [], []
    for a, b in pair_keys(therapies):
        tau = (mu[a] - mu[b]).to_numpy()
        if folds is None:
            g = (pseudo[a] - pseudo[b]).to_numpy()
            fits.append((a, b, *blp_regression(g, tau)))
            taus = [tau]
        else:
            center = float(tau.mean())
            per_fold, taus = [], []
            for mu_r, fold_r in folds:
                pseudo_r = dr_pseudo_outcomes(y, given, mu_r, propensity)
                tau_r = (mu_r[a] - mu_r[b]).to_numpy()
                g_r = (pseudo_r[a] - pseudo_r[b]).to_numpy()
                per_fold.append((g_r, tau_r, fold_r))
                taus.append(tau_r)
            g_all = np.concatenate([x[0] for x in per_fold])
            t_all = np.concatenate([x[1] for x in per_fold])
            # a (repeat, fold) group label that is unique across repeats
            f_all = np.concatenate(
                [r * 100_000 + np.asarray(x[2]) for r, x in enumerate(per_fold)]
            )
            b0, b1, cov, p = fold_blp(g_all, t_all, f_all, center)
            fits.append((a, b, b0, b1, cov, center, p))
        if final is not None:
            tau_final = (final[a] - final[b]).reindex(mu.index).to_numpy(dtype=np.float64)
            if np.isnan(tau_final).any():
                raise UsageError("the final heads' predictions miss some training patients")
            # the final heads are single fits: compare them with single repeats' fold heads
            rescale.append(
                score_rescaling(np.concatenate(taus), np.tile(tau_final, len(taus)))
            )
        else:
            rescale.append((None, 1.0))
    passed = holm_passed([f[-1] for f in fits], alpha)
    pairs = [
        PairCalibration(
            first=a,
            second=b,
            intercept=b0,
            slope=b1,
            cov=((float(cov[0, 0]), float(cov[0, 1])), (float(cov[1, 0]), float(cov[1, 1]))),
            center=c,
            n=len(given),
            p_value=p,
            passed=ok,
            score_center=sc,
            score_scale=ss,
        )
        for (a, b, b0, b1, cov, c, p), ok, (sc, ss) in zip(fits, passed, rescale, strict=True)
    ]
    return TherapyChoice(
        therapies=therapies,
        pairs=pairs,
        level=level,
        alpha=alpha,
        propensity=propensity_source,
        info=dict(info or {}),
    )
