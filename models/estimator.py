"""The classifier at the end of each therapy head: boosted trees on a lasso-logistic base margin.

On small cohorts a regularised logistic regression captures the smooth, log-linear part of
the signal with few parameters, and shallow boosted trees capture thresholds and
interactions. Starting the boosting from the linear model's log-odds (XGBoost's
``base_margin``) lets the trees spend their capacity only on what the linear part misses.
How many trees is decided by early stopping on inner folds of the training rows (zero
trees is a legitimate answer: then the head is the linear model). Both parts have exact
additive explanations: linear SHAP for the linear part (features treated as independent,
background = training means) and TreeSHAP for the trees.

Why these defaults (L1 linear part averaged with a ridge fit, 3 to 1, penalties chosen on
three repetitions of the inner folds, a ridge fallback, early stopping with the
one-standard-error rule, no monotone constraints): docs/methods.md, "Default model", with
the simulated-cohort measurements behind each choice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

import numpy as np
import xgboost as xgb
from scipy.special import logit
from sklearn.base import BaseEstimator, _fit_context
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from cytoresp.errors import UsageError
from cytoresp.models.boosting import (
    EARLY_STOPPING_PATIENCE,
    ROUNDS_PER_STEP,
    binary_log_loss,
    boost_in_lockstep,
    xgb_train_params,
)
from cytoresp.models.classifier import MarginClassifierMixin

__all__ = [
    "DEFAULT_C_GRID",
    "EARLY_STOPPING_PATIENCE",
    "INNER_REPEATS_DEFAULT",
    "L1_PATH_POINTS",
    "RIDGE_WEIGHT_DEFAULT",
    "ROUNDS_PER_STEP",
    "LinearBoostedClassifier",
    "LinearTreesMixin",
    "state_to_json",
]

#: Candidate inverse regularisation strengths of the linear part (standardised features).
DEFAULT_C_GRID: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
#: Points on the L1 regularisation path (C0 .. 1000 C0, log-spaced) searched when
#: ``l1_ratio > 0``.
L1_PATH_POINTS = 13
#: Weight of the ridge fit averaged into an L1 linear part, and repetitions of the inner
#: folds for the choice of C (docs/methods.md, "Default model").
RIDGE_WEIGHT_DEFAULT = 0.25
INNER_REPEATS_DEFAULT = 3

#: Per inner fold: (margins of its training rows, margins of its validation rows,
#: coefficients of the linear part fitted on its training rows).
FoldMargins = tuple[np.ndarray, np.ndarray, np.ndarray]


def _prevalence_logit(y: np.ndarray, sw: np.ndarray | None) -> float:
    return float(logit(float(np.average(y, weights=sw))))


class LinearTreesMixin:
    """Scoring and exact contributions of a head of the shape *linear part + trees*.

    The log-odds are ``linear_intercept_ + sum_f linear_coef_f (x_f - linear_mean_f) /
    linear_scale_f`` (a missing ``x_f`` taken at its mean) plus the sum of the trees of
    ``booster_`` (None: no trees) evaluated with a zero base margin. Both
    :class:`LinearBoostedClassifier` and the super learner
    (:class:`cytoresp.models.superlearner.SuperLearnerClassifier`) are of this shape,
    which is what :mod:`cytoresp.models.attribution` explains exactly.
    """

    linear_intercept_: float
    linear_coef_: np.ndarray
    linear_mean_: np.ndarray
    linear_scale_: np.ndarray
    booster_: xgb.Booster | None

    @staticmethod
    def _standardise_raw(arr: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
        out = np.where(np.isfinite(arr), arr, mean)
        return (out - mean) / scale

    def _linear_terms(self, arr: np.ndarray) -> np.ndarray:
        """Per-feature linear contributions beta_k (x_k - mean_k) / scale_k (NaN -> 0)."""
        return self._standardise_raw(arr, self.linear_mean_, self.linear_scale_) * self.linear_coef_

    def _dmatrix(self, arr: np.ndarray) -> xgb.DMatrix:
        return xgb.DMatrix(
            arr,
            base_margin=np.zeros(arr.shape[0]),
            missing=np.nan,
            feature_names=[f"f{i}" for i in range(arr.shape[1])],
        )

    def _margin(self, arr: np.ndarray) -> np.ndarray:
        """Log-odds of the positive class (linear part + trees)."""
        margin = self.linear_intercept_ + self._linear_terms(arr).sum(axis=1)
        if self.booster_ is not None:
            margin = margin + self.booster_.predict(self._dmatrix(arr), output_margin=True)
        return margin

    def contributions(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Exact additive contributions in log-odds.

        Returns
        -------
        base : ndarray of shape (n_samples,)
            The expected log-odds (linear intercept + the trees' expected value).
        phi : ndarray of shape (n_samples, n_features)
            Linear SHAP of the linear part plus TreeSHAP of the trees, so that
            ``base + phi.sum(axis=1) == decision_function(X)`` (within float32 precision
            of XGBoost, about 1e-5).
        """
        arr = self._check_features(X)
        phi = self._linear_terms(arr)
        base = np.full(arr.shape[0], self.linear_intercept_)
        if self.booster_ is not None:
            contrib = self.booster_.predict(self._dmatrix(arr), pred_contribs=True)
            phi = phi + contrib[:, :-1]
            base = base + contrib[:, -1]
        return base, phi


    def booster_bytes(self) -> bytes | None:
        """The trees as XGBoost's native UBJSON (None without trees)."""
        if self.booster_ is None:
            return None
        return bytes(self.booster_.save_raw(raw_format="ubj"))



class LinearBoostedClassifier(LinearTreesMixin, MarginClassifierMixin, BaseEstimator):
    """Shallow gradient-boosted trees boosted from a regularised-logistic base margin.

    Parameters
    ----------
    linear : bool, default=True
        Fit a regularised logistic regression on standardised features first and boost
        from its log-odds. ``False`` gives a plain XGBoost classifier.
    C : float or "auto", default="auto"
        Inverse regularisation strength of the linear part. ``"auto"`` picks it by inner
        stratified cross-validated log-loss on the training rows only: from
        :data:`DEFAULT_C_GRID` for ridge, from a path of :data:`L1_PATH_POINTS` values
        relative to the cohort (glmnet-style) when ``l1_ratio > 0``.
    l1_ratio : float or "auto", default=1.0
        Mix of the linear part's penalty: 0 ridge (L2), 1 lasso (L1), in between elastic
        net (slower: SAGA solver). ``"auto"``: ridge and lasso both scored on the inner
        folds, the better kept (measured worse than the lasso, docs/methods.md).
    ridge_weight : float in [0, 1), default=RIDGE_WEIGHT_DEFAULT
        With an L1 penalty (``l1_ratio`` a number > 0): the linear part is the weighted
        average ``(1 - w) * L1 fit + w * ridge fit`` (coefficients and intercepts, so still
        one linear model with exact linear SHAP), each with its own ``C`` chosen on the
        inner folds (the ridge's is ``C_ridge_``). It hedges the L1 fit's noisy feature
        selection on small cohorts. 0: the L1 fit alone.
    C_ridge : float or "auto", default="auto"
        With ``ridge_weight > 0``: the ridge fit's inverse regularisation strength;
        ``"auto"`` picks it from :data:`DEFAULT_C_GRID` on the inner folds.
    inner_repeats : int, default=INNER_REPEATS_DEFAULT
        Repetitions of the ``inner_splits`` stratified inner folds (reshuffled) whose
        log-loss, averaged, chooses the linear part's ``C``; the number of trees is chosen
        on the first repetition. More repetitions make the choice less noisy on small
        cohorts.
    null_fallback : bool, default=True
        With an L1 penalty and ``C="auto"``: if the chosen penalty removes every feature
        (a constant score that ranks nobody, which the inner log-loss can prefer on tiny
        weak-signal cohorts), use the ridge fit with the best inner log-loss instead.
    n_estimators : int, default=500
        Most trees. With ``early_stopping`` the number used is chosen on inner folds.
    max_depth, learning_rate, subsample, colsample_bytree, min_child_weight, \
reg_lambda, gamma : XGBoost tree parameters
        Defaults are deliberately conservative (depth-2 trees, shrinkage 0.05, row and
        column subsampling) for cohorts of tens to hundreds of patients.
    early_stopping : bool, default=True
        Choose the number of trees (0 to ``n_estimators``) on ``inner_splits`` stratified
        inner folds: in each fold the linear part is refitted on the fold's training rows
        and the trees boosted from its margins, recording the fold's validation log-loss
        after every tree. Training stops once the pooled curve has not improved for
        :data:`EARLY_STOPPING_PATIENCE` trees. ``False``: always ``n_estimators`` trees.
    early_stopping_rule : {"1se", "min"}, default="1se"
        ``"min"``: the number of trees with the lowest pooled inner log-loss. ``"1se"``:
        the fewest trees whose loss is within one paired standard error (over folds) of
        that minimum, so trees are added only when they help beyond fold-to-fold noise.
    inner_splits : int, default=5
        Inner folds for the choice of ``C`` and of the number of trees (fewer when a
        class has fewer rows).
    monotone_constraints : None, "linear" or mapping, default=None
        Constraints on the trees: a mapping of feature name to -1/0/+1 (names not among
        the features are ignored), or ``"linear"`` to make the trees monotone in the
        direction of each feature's linear coefficient. Available for users with prior
        knowledge; off by default (no gain measured, see docs/methods.md).
    n_jobs : int, default=1
        XGBoost threads. One thread is fastest for small cohorts and leaves cores to
        cross-validation running in parallel.
    random_state : int, default=0
        Seed for subsampling and the inner folds.

    Attributes
    ----------
    feature_names_in_ : ndarray of str
    linear_mean_, linear_scale_ : ndarray
        Training means and standard deviations used to standardise (NaN -> mean).
    linear_coef_ : ndarray
        Coefficients of the standardised features (zeros when ``linear=False``).
    linear_intercept_ : float
    C_ : float or None
        The regularisation strength used (of the L1 fit when averaged with ridge).
    l1_ratio_ : float or None
        The L1 share of the penalty used (0.0 after a ridge fallback).
    C_ridge_ : float or None
        With ``ridge_weight > 0``: the C of the ridge fit averaged in (None when not
        averaged, e.g. after a ridge fallback).
    booster_ : xgboost.Booster or None
        The trees (None when no tree is used).
    n_trees_ : int
        Number of trees used (the early-stopping choice, or ``n_estimators``).
    inner_logloss_ : ndarray or None
        With early stopping: the pooled inner log-loss after 0, 1, 2, ... trees.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = (X[:, 0] + rng.normal(size=200) > 0).astype(int)
    >>> clf = LinearBoostedClassifier(n_estimators=20).fit(X, y)
    >>> base, phi = clf.contributions(X[:5])
    >>> bool(np.allclose(base + phi.sum(axis=1), clf.decision_function(X[:5]), atol=1e-4))
    True
    """

    def __init__(
        self,
        linear: bool = True,
        C: float | str = "auto",
        l1_ratio: float | str = 1.0,
        null_fallback: bool = True,
        ridge_weight: float = RIDGE_WEIGHT_DEFAULT,
        C_ridge: float | str = "auto",
        inner_repeats: int = INNER_REPEATS_DEFAULT,
        n_estimators: int = 500,
        max_depth: int = 2,
        learning_rate: float = 0.05,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        min_child_weight: float = 1.0,
        reg_lambda: float = 1.0,
        gamma: float = 0.0,
        early_stopping: bool = True,
        early_stopping_rule: str = "1se",
        inner_splits: int = 5,
        monotone_constraints: str | Mapping[str, int] | None = None,
        n_jobs: int = 1,
        random_state: int = 0,
    ):
        self.linear = linear
        self.C = C
        self.l1_ratio = l1_ratio
        self.null_fallback = null_fallback
        self.ridge_weight = ridge_weight
        self.C_ridge = C_ridge
        self.inner_repeats = inner_repeats
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.gamma = gamma
        self.early_stopping = early_stopping
        self.early_stopping_rule = early_stopping_rule
        self.inner_splits = inner_splits
        self.monotone_constraints = monotone_constraints
        self.n_jobs = n_jobs
        self.random_state = random_state

    _fitted_attribute = "linear_coef_"

    _parameter_constraints: dict[str, list] = {
        "linear": ["boolean"],
        "C": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "l1_ratio": [Interval(Real, 0, 1, closed="both"), StrOptions({"auto"})],
        "null_fallback": ["boolean"],
        "ridge_weight": [Interval(Real, 0, 1, closed="left")],
        "C_ridge": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "inner_repeats": [Interval(Integral, 1, None, closed="left")],
        "n_estimators": [Interval(Integral, 0, None, closed="left")],
        "max_depth": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "subsample": [Interval(Real, 0, 1, closed="right")],
        "colsample_bytree": [Interval(Real, 0, 1, closed="right")],
        "min_child_weight": [Interval(Real, 0, None, closed="left")],
        "reg_lambda": [Interval(Real, 0, None, closed="left")],
        "gamma": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "early_stopping_rule": [StrOptions({"min", "1se"})],
        "inner_splits": [Interval(Integral, 2, None, closed="left")],
        "monotone_constraints": [None, StrOptions({"linear"}), Mapping],
        "n_jobs": [Integral],
        "random_state": [Interval(Integral, 0, None, closed="left")],
    }

    # -- fitting ----------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None) -> LinearBoostedClassifier:
        """Fit the linear part, then boost trees from its log-odds.

        The steps: check the data, standardise the features, fit the linear part
        (choosing its penalty on inner folds), then choose the number of trees on the
        same inner folds and boost them on all rows.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Engineered features; NaN means missing.
        y : array of shape (n_samples,)
            Binary labels 0/1.
        sample_weight : array of shape (n_samples,), optional
            E.g. inverse-propensity weights.

        Returns
        -------
        LinearBoostedClassifier
            The fitted classifier.
        """
        self._check_monotone_mapping()
        arr, names, y_enc = self._check_training_data(X, y)
        sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        self.feature_names_in_ = np.asarray(names, dtype=object)
        Xs = self._fit_standardiser(arr)
        has_features = arr.shape[1] > 0
        boost = self.n_estimators > 0 and has_features
        need_rounds = boost and bool(self.early_stopping)
        # Inner folds, shared by the choice of C and of the number of trees. The linear
        # part is refitted in every inner fold, so the trees of an inner fold start from
        # margins that never saw the fold's validation rows.
        folds = self._inner_folds(y_enc)
        if bool(self.linear) and has_features:
            fold_margins = self._fit_linear_part(Xs, y_enc, sw, folds, need_rounds)
        else:
            fold_margins = self._fit_intercept_only(
                arr.shape[1], y_enc, sw, folds if need_rounds else None
            )
        self.booster_ = None
        self.n_trees_ = 0
        self.inner_logloss_ = None
        if boost:
            self._fit_trees(arr, Xs, y_enc, sw, folds, fold_margins, need_rounds)
        return self

    def _check_monotone_mapping(self) -> None:
        """A mapping of monotone constraints must map names to -1, 0 or +1."""
        mono = self.monotone_constraints
        if isinstance(mono, Mapping) and not all(
            isinstance(k, str) and v in (-1, 0, 1) for k, v in mono.items()
        ):
            raise UsageError(
                "monotone_constraints must be None, 'linear' or a mapping of feature name "
                f"to -1, 0 or +1, got {mono!r}"
            )

    def _fit_standardiser(self, arr: np.ndarray) -> np.ndarray:
        """Set ``linear_mean_``/``linear_scale_``; return the standardised features."""
        mean = np.nanmean(np.where(np.isfinite(arr), arr, np.nan), axis=0)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        std_in = self._standardise_raw(arr, mean, np.ones_like(mean))
        scale = std_in.std(axis=0)
        scale = np.where(scale > 1e-12, scale, 1.0)
        self.linear_mean_, self.linear_scale_ = mean, scale
        return std_in / scale

    def _fit_linear_part(
        self,
        Xs: np.ndarray,
        y: np.ndarray,
        sw: np.ndarray | None,
        folds: list[tuple[np.ndarray, np.ndarray]] | None,
        need_rounds: bool,
    ) -> list[FoldMargins] | None:
        """Choose and fit the linear part; return its margins in each inner fold.

        Sets ``linear_coef_``, ``linear_intercept_``, ``C_``, ``l1_ratio_`` and
        ``C_ridge_``. The fold margins (None without inner folds or when the number of
        trees is not chosen) are what the inner folds' trees start from.
        """
        average = self._averages()
        need_c = self.C == "auto" or (average and self.C_ridge == "auto")
        candidates = self._candidates(Xs, y, sw)
        losses, fits = None, None
        if folds is not None and (need_c or need_rounds):
            repeats = int(self.inner_repeats) if need_c else 1
            losses, fits = self._inner_linear(Xs, y, sw, folds, candidates, repeats)
        order = self._preference(candidates, losses)
        k, lr = self._first_kept(order, candidates, Xs, y, sw)
        l1, C = candidates[k]
        coef = lr.coef_.ravel().astype(np.float64)
        intercept = float(lr.intercept_[0])
        fold_margins = None if fits is None else fits[k]
        self.C_ridge_ = None
        if average and l1 > 0:
            # Average the kept L1 fit with the chosen ridge fit (the last in ``order``).
            w = float(self.ridge_weight)
            r = order[-1]
            ridge = self._logistic(candidates[r][1], 0.0).fit(Xs, y, sample_weight=sw)
            coef = (1 - w) * coef + w * ridge.coef_.ravel().astype(np.float64)
            intercept = (1 - w) * intercept + w * float(ridge.intercept_[0])
            self.C_ridge_ = float(candidates[r][1])
            if fold_margins is not None:
                fold_margins = [
                    tuple((1 - w) * a + w * b for a, b in zip(fa, fb, strict=True))
                    for fa, fb in zip(fold_margins, fits[r], strict=True)
                ]
        self.C_, self.l1_ratio_ = float(C), float(l1)
        self.linear_coef_ = coef
        self.linear_intercept_ = intercept
        return fold_margins

    def _first_kept(
        self,
        order: list[int],
        candidates: list[tuple[float, float]],
        Xs: np.ndarray,
        y: np.ndarray,
        sw: np.ndarray | None,
    ) -> tuple[int, LogisticRegression]:
        """The first candidate in ``order`` whose fit on all rows is kept, and that fit.

        With ``null_fallback`` and ``C="auto"``, an L1 fit that removes every feature is
        passed over for the next candidate (the ridge choice); the last is always kept.
        """
        for k in order:
            l1, C = candidates[k]
            lr = self._logistic(C, l1).fit(Xs, y, sample_weight=sw)
            empty = not lr.coef_.any()
            if not (l1 > 0 and self.null_fallback and empty and self.C == "auto"):
                break
        return k, lr

    def _fit_intercept_only(
        self,
        n_features: int,
        y: np.ndarray,
        sw: np.ndarray | None,
        folds: list[tuple[np.ndarray, np.ndarray]] | None,
    ) -> list[FoldMargins] | None:
        """No linear part: the prevalence's log-odds, in every inner fold too."""
        self.C_ = None
        self.l1_ratio_ = None
        self.C_ridge_ = None
        self.linear_coef_ = np.zeros(n_features)
        self.linear_intercept_ = _prevalence_logit(y, sw)
        if folds is None:
            return None
        zero = np.zeros(n_features)
        fold_margins = []
        for train, test in folds:
            b = _prevalence_logit(y[train], None if sw is None else sw[train])
            fold_margins.append((np.full(len(train), b), np.full(len(test), b), zero))
        return fold_margins

    def _fit_trees(
        self,
        arr: np.ndarray,
        Xs: np.ndarray,
        y: np.ndarray,
        sw: np.ndarray | None,
        folds: list[tuple[np.ndarray, np.ndarray]] | None,
        fold_margins: list[FoldMargins] | None,
        need_rounds: bool,
    ) -> None:
        """Choose the number of trees on the inner folds and boost them on all rows."""
        rounds = int(self.n_estimators)
        if need_rounds and folds is None:
            rounds = 0  # too few of a class for inner folds: trees cannot be validated
        elif need_rounds:
            rounds, self.inner_logloss_ = self._choose_rounds(arr, y, sw, folds, fold_margins)
        self.n_trees_ = rounds
        if rounds > 0:
            margin0 = self.linear_intercept_ + Xs @ self.linear_coef_
            dtrain = self._train_matrix(arr, y, sw, margin0)
            params = self._xgb_params(
                self._monotone_vector(list(self.feature_names_in_), self.linear_coef_)
            )
            self.booster_ = xgb.train(params, dtrain, num_boost_round=rounds)

    def _xgb_params(self, monotone: tuple[int, ...] | None = None) -> dict[str, Any]:
        return xgb_train_params(
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            min_child_weight=self.min_child_weight,
            reg_lambda=self.reg_lambda,
            gamma=self.gamma,
            n_jobs=self.n_jobs,
            seed=self.random_state,
            monotone=monotone,
        )

    def _monotone_vector(self, names: list[str], coef: np.ndarray) -> tuple[int, ...] | None:
        """Per-feature monotone constraint of the trees (None: unconstrained)."""
        mono = self.monotone_constraints
        if mono is None:
            return None
        if mono == "linear":
            return tuple(int(v) for v in np.sign(coef))
        return tuple(int(mono.get(n, 0)) for n in names)

    @staticmethod
    def _train_matrix(arr, y, sw, margin) -> xgb.DMatrix:
        return xgb.DMatrix(
            arr,
            label=y,
            weight=sw,
            base_margin=margin,
            missing=np.nan,
            feature_names=[f"f{i}" for i in range(arr.shape[1])],
        )

    def _inner_folds(
        self, y: np.ndarray, n_splits: int | None = None, repeat: int = 0
    ) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """Stratified inner folds of the training rows (None if a class has < 2 rows).

        ``repeat`` > 0 gives another shuffle of the same number of folds.
        """
        if n_splits is None:
            n_minor = int(min(y.sum(), len(y) - y.sum()))
            n_splits = min(int(self.inner_splits), n_minor)
        if n_splits < 2:
            return None
        seed = int(self.random_state) + 7919 * repeat
        cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        return list(cv.split(np.zeros(len(y)), y))

    @staticmethod
    def _logistic(C: float, l1: float) -> LogisticRegression:
        """The linear part's model at inverse regularisation ``C`` and L1 share ``l1``."""
        if l1 == 0.0:  # ridge: Newton steps converge in a handful of iterations
            return LogisticRegression(C=C, solver="newton-cholesky", max_iter=200)
        if l1 == 1.0:  # lasso: coordinate descent; a large intercept_scaling leaves the
            # intercept (liblinear penalises it as a feature) practically unpenalised
            return LogisticRegression(
                C=C,
                l1_ratio=1.0,
                solver="liblinear",
                intercept_scaling=100.0,
                max_iter=1000,
                random_state=0,
            )
        return LogisticRegression(C=C, l1_ratio=l1, solver="saga", max_iter=5000)

    @staticmethod
    def _l1_path(Xs: np.ndarray, y: np.ndarray, sw: np.ndarray | None, l1: float) -> list[float]:
        """C values from ``C0`` to ``1000 C0`` (log-spaced, :data:`L1_PATH_POINTS` points).

        ``C0`` is the largest C at which every coefficient is still zero
        (``1 / (l1 max_k |x_k . (y - ybar)|)`` on standardised features), so the path scales
        with the cohort as glmnet's lambda path does.
        """
        w = np.ones(len(y)) if sw is None else sw
        ybar = np.average(y, weights=w)
        top = float(np.max(np.abs(Xs.T @ (w * (y - ybar))))) if Xs.shape[1] else 0.0
        c0 = 1.0 / (l1 * top) if top > 0 else 1.0
        return [float(c) for c in c0 * np.geomspace(1.0, 1000.0, L1_PATH_POINTS)]

    def _candidates(
        self, Xs: np.ndarray, y: np.ndarray, sw: np.ndarray | None
    ) -> list[tuple[float, float]]:
        """The (l1_ratio, C) pairs the inner folds compare.

        A fixed ``C``: that one pair (plus the ridge candidates when averaging with ridge).
        ``C="auto"``: ridge over :data:`DEFAULT_C_GRID` (or the fixed ``C_ridge``), and for
        ``l1_ratio > 0`` (or ``"auto"``) the L1 path too; ridge is also scored for an L1
        penalty so that it can be averaged in, or stand in when the L1 choice removes every
        feature.
        """
        l1s = [0.0, 1.0] if self.l1_ratio == "auto" else [float(self.l1_ratio)]
        ridge_cs = DEFAULT_C_GRID
        if self._averages() and self.C_ridge != "auto":
            ridge_cs = (float(self.C_ridge),)
        if self.C != "auto":
            out = [(l1s[-1], float(self.C))]
            return out + ([(0.0, C) for C in ridge_cs] if self._averages() else [])
        out = [(0.0, C) for C in ridge_cs]
        for l1 in l1s:
            if l1 > 0:
                out += [(l1, C) for C in self._l1_path(Xs, y, sw, l1)]
        return out

    def _averages(self) -> bool:
        """Whether the linear part averages an L1 fit with a ridge fit."""
        return self.ridge_weight > 0 and self.l1_ratio != "auto" and float(self.l1_ratio) > 0.0

    def _preference(
        self, candidates: list[tuple[float, float]], losses: np.ndarray | None
    ) -> list[int]:
        """Candidate indices in the order they are tried (the first that is kept wins)."""
        if len(candidates) == 1:
            return [0]
        ridge = [k for k, (l1, _) in enumerate(candidates) if l1 == 0.0]
        other = [k for k, (l1, _) in enumerate(candidates) if l1 > 0.0]
        if losses is None:  # no inner folds: the middle of the grid
            pool = other or ridge
            return [pool[len(pool) // 2]] + ([ridge[len(ridge) // 2]] if other else [])
        if self.l1_ratio == "auto" or not other:
            return [int(np.argmin(losses))]
        best_other = other[int(np.argmin(losses[other]))]
        return [best_other, ridge[int(np.argmin(losses[ridge]))]]

    def _inner_linear(
        self,
        Xs: np.ndarray,
        y: np.ndarray,
        sw: np.ndarray | None,
        folds: list[tuple[np.ndarray, np.ndarray]],
        candidates: list[tuple[float, float]],
        repeats: int = 1,
    ) -> tuple[np.ndarray, list[list[FoldMargins]]]:
        """Inner out-of-fold log-loss of every candidate, and each candidate's fold fits.

        The loss is summed over ``repeats`` repetitions of the inner folds (the first is
        ``folds``, the others reshuffled). Per candidate and fold of the first repetition:
        (margins of the fold's training rows, margins of its test rows, coefficients).
        """
        losses = np.zeros(len(candidates))
        fits: list[list[FoldMargins]] = [[] for _ in candidates]
        for rep in range(repeats):
            rep_folds = folds if rep == 0 else self._inner_folds(y, len(folds), rep)
            for train, test in rep_folds:
                w_tr = None if sw is None else sw[train]
                w_te = np.ones(len(test)) if sw is None else sw[test]
                for i, (l1, C) in enumerate(candidates):
                    lr = self._logistic(C, l1).fit(Xs[train], y[train], sample_weight=w_tr)
                    m_te = lr.decision_function(Xs[test])
                    losses[i] += binary_log_loss(y[test], m_te, w_te)
                    if rep == 0:
                        fits[i].append((lr.decision_function(Xs[train]), m_te, lr.coef_.ravel()))
        return losses, fits

    def _choose_rounds(
        self,
        arr: np.ndarray,
        y: np.ndarray,
        sw: np.ndarray | None,
        folds: list[tuple[np.ndarray, np.ndarray]],
        margins: list[FoldMargins],
    ) -> tuple[int, np.ndarray]:
        """Number of trees minimising the pooled inner out-of-fold log-loss (0 allowed).

        Returns the number of trees and the pooled log-loss curve (index = trees).
        """
        feature_names = list(self.feature_names_in_)
        params, matrices, initial, weights = [], [], [], []
        for (train, test), (m_tr, m_te, coef) in zip(folds, margins, strict=True):
            w_tr = None if sw is None else sw[train]
            w_te = np.ones(len(test)) if sw is None else sw[test]
            params.append(self._xgb_params(self._monotone_vector(feature_names, coef)))
            matrices.append(
                (
                    self._train_matrix(arr[train], y[train], w_tr, m_tr),
                    self._train_matrix(arr[test], y[test], w_te, m_te),
                )
            )
            initial.append(binary_log_loss(y[test], m_te, w_te) / w_te.sum())
            weights.append(float(len(test) if sw is None else sw[test].sum()))
        w = np.asarray(weights) / np.sum(weights)
        # (folds, trees + 1): mean validation log-loss per fold after 0, 1, 2, ... trees
        per_fold = boost_in_lockstep(params, matrices, int(self.n_estimators), w, initial)
        curve = w @ per_fold
        best = int(np.argmin(curve))
        if self.early_stopping_rule == "1se" and len(per_fold) > 1:
            # The fewest trees whose loss is within one paired standard error of the best:
            # d_f(k) = loss_f(k) - loss_f(best) per fold, SE over folds.
            d = per_fold - per_fold[:, [best]]
            se = d.std(axis=0, ddof=1) / np.sqrt(len(per_fold))
            best = int(np.flatnonzero(w @ d <= se)[0])
        return best, curve

    # -- persistence (JSON + native XGBoost, no pickle) ------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Parameters and fitted state as JSON-serialisable data (the trees excluded)."""
        check_is_fitted(self, "linear_coef_")
        return {
            "params": self.get_params(),
            "classes": [int(c) for c in self.classes_],
            "feature_names": [str(n) for n in self.feature_names_in_],
            "linear_mean": self.linear_mean_.tolist(),
            "linear_scale": self.linear_scale_.tolist(),
            "linear_coef": self.linear_coef_.tolist(),
            "linear_intercept": self.linear_intercept_,
            "C": self.C_,
            "l1_ratio": self.l1_ratio_,
            "C_ridge": self.C_ridge_,
            "n_trees": int(self.n_trees_),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any], booster: bytes | None) -> LinearBoostedClassifier:
        """Rebuild a fitted classifier from :meth:`to_dict` and :meth:`booster_bytes`."""
        est = cls(**state["params"])
        est.classes_ = np.asarray(state["classes"])
        est.feature_names_in_ = np.asarray(state["feature_names"], dtype=object)
        est.n_features_in_ = len(est.feature_names_in_)
        est.linear_mean_ = np.asarray(state["linear_mean"], dtype=np.float64)
        est.linear_scale_ = np.asarray(state["linear_scale"], dtype=np.float64)
        est.linear_coef_ = np.asarray(state["linear_coef"], dtype=np.float64)
        est.linear_intercept_ = float(state["linear_intercept"])
        est.C_ = state["C"]
        est.l1_ratio_ = state.get("l1_ratio")
        est.C_ridge_ = state.get("C_ridge")
        est.inner_logloss_ = None
        est.booster_ = None
        if booster is not None:
            est.booster_ = xgb.Booster()
            est.booster_.load_model(bytearray(booster))
            est.booster_.set_param({"nthread": int(est.n_jobs)})
        est.n_trees_ = int(
            state.get("n_trees", 0 if est.booster_ is None else est.booster_.num_boosted_rounds())
        )
        return est


def state_to_json(state: dict[str, Any]) -> str:
    """Dump a state dict with float precision preserved."""
    return json.dumps(state, indent=1, allow_nan=True)
