"""A super learner: candidate heads combined in log-odds, weights fitted out of fold.

Every candidate is a :class:`~cytoresp.models.estimator.LinearBoostedClassifier` in one of
a few configurations (:data:`CANDIDATES`): an L2 (ridge) logistic regression, an L1
logistic regression, an untuned shallow XGBoost, and the linear-boosted recipe (a lasso /
ridge linear part with early-stopped trees boosted from its margin). Each candidate's
log-odds ``m_k`` on the training rows are computed **out of fold** (``inner_splits``
stratified folds). By default (``oof_choices="fixed"``) each candidate first makes its
inner choices (penalty, number of trees) on all rows, and the fold fits reuse them, which
keeps the cost near one candidate fit per fold; ``"nested"`` lets every fold's clone make
its own choices on the fold's training rows only. The combination is

    g(x) = a + sum_k w_k m_k(x),    w_k >= 0,

with ``(a, w)`` maximising the out-of-fold log-likelihood (a logistic regression of the
outcome on the candidates' out-of-fold log-odds with non-negative slopes; van der Laan,
Polley & Hubbard 2007, the ``NNloglik`` method of the R ``SuperLearner`` package). The
weights are not forced to sum to one: their sum is a calibration slope. The combined
head uses every candidate fitted on all rows.

Why L-BFGS-B on the log-likelihood and not ``scipy.optimize.nnls``: NNLS minimises squared
error, the wrong loss for a binary outcome and a poor one on the log-odds scale (a few
confident candidates' margins dominate it); the log-likelihood with bounds is a smooth,
convex problem that L-BFGS-B solves directly, with an analytic gradient.

The combination stays **one head of the same shape** as each candidate: all candidates
standardise the same features with the same means and scales, so the weighted sum of
their linear parts is one linear part (``linear_coef_``, ``linear_intercept_``), and the
weighted sum of their trees is one set of trees whose leaf values are multiplied by the
candidate's weight (``booster_``, one XGBoost booster). Linear SHAP of the one linear part
and TreeSHAP / the exact Shapley values of :mod:`cytoresp.models.shapley` of the merged
trees explain it exactly, as they explain a single candidate.

The out-of-fold combined log-odds (``oof_margin_``) are kept: the training job calibrates
the head on them (``train/cv.py``), instead of refitting the whole head on further inner
folds (docs/methods.md, "Default model").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from numbers import Integral
from typing import Any

import numpy as np
import xgboost as xgb
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.model_selection import StratifiedKFold
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from cytoresp.errors import UsageError
from cytoresp.models.classifier import MarginClassifierMixin
from cytoresp.models.estimator import LinearBoostedClassifier, LinearTreesMixin

__all__ = ["CANDIDATES", "DEFAULT_CANDIDATES", "SuperLearnerClassifier", "merge_weighted_trees"]

#: The candidate heads by name: parameters of a LinearBoostedClassifier.
CANDIDATES: dict[str, dict[str, Any]] = {
    # L2 logistic regression, C chosen on inner folds (one repetition)
    "ridge": {"l1_ratio": 0.0, "n_estimators": 0, "inner_repeats": 1},
    # L1 logistic regression (glmnet-style path), no ridge averaged in, no trees
    "lasso": {"l1_ratio": 1.0, "ridge_weight": 0.0, "n_estimators": 0, "inner_repeats": 1},
    # untuned shallow XGBoost from the prevalence (issue 14's comparator)
    "xgb": {
        "linear": False,
        "n_estimators": 200,
        "early_stopping": False,
        "max_depth": 2,
        "learning_rate": 0.05,
        "subsample": 0.8,
        "colsample_bytree": 1.0,
    },
    # the linear-boosted recipe (lasso/ridge margin + early-stopped trees), one repetition
    # of its inner folds
    "boosted": {"inner_repeats": 1},
}
#: Candidates of the default super learner.
DEFAULT_CANDIDATES: tuple[str, ...] = ("ridge", "xgb", "boosted")


def _check_candidates(names: Any, overrides: Any) -> tuple[str, ...]:
    names = tuple(names)
    unknown = [n for n in names if n not in CANDIDATES]
    if not names or unknown or len(set(names)) != len(names):
        raise UsageError(
            f"candidates must be distinct names among {', '.join(CANDIDATES)}; got {list(names)!r}"
        )
    if overrides is not None:
        extra = sorted(set(overrides) - set(CANDIDATES))
        if extra or not all(isinstance(v, Mapping) for v in overrides.values()):
            raise UsageError(
                "candidate_params must map candidate names to parameter "
                f"tables; got {dict(overrides)!r}"
            )
    return names


def merge_weighted_trees(
    boosters: Sequence[xgb.Booster | None], weights: Sequence[float]
) -> xgb.Booster | None:
    """One booster whose trees sum to ``sum_k weights[k] * trees_k`` (zero base margin).

    The trees of every booster with a positive weight are put one after the other, their
    leaf values (and node weights) multiplied by the booster's weight. Predictions are
    meant with a zero ``base_margin`` (the booster's ``base_score`` is not used).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 2)); y = (X[:, 0] > 0).astype(float)
    >>> p = {"objective": "binary:logistic", "max_depth": 2, "verbosity": 0}
    >>> b1 = xgb.train(p, xgb.DMatrix(X, label=y), 5)
    >>> b2 = xgb.train({**p, "eta": 0.1}, xgb.DMatrix(X, label=y), 3)
    >>> merged = merge_weighted_trees([b1, b2], [0.5, 2.0])
    >>> d = xgb.DMatrix(X, base_margin=np.zeros(100))
    >>> want = 0.5 * b1.predict(d, output_margin=True) + 2.0 * b2.predict(d, output_margin=True)
    >>> got = merged.predict(d, output_margin=True)
    >>> merged.num_boosted_rounds(), bool(np.allclose(got, want, atol=1e-5))
    (8, True)
    """
    template, trees = None, []
    for booster, w in zip(boosters, weights, strict=True):
        if booster is None or not w > 0:
            continue
        model = json.loads(bytes(booster.save_raw(raw_format="json")))
        template = template or model
        for tree in model["learner"]["gradient_booster"]["model"]["trees"]:
            leaf = np.asarray(tree["left_children"]) < 0
            cond = np.asarray(tree["split_conditions"], dtype=np.float64)
            tree["split_conditions"] = np.where(leaf, cond * float(w), cond).tolist()
            tree["base_weights"] = (np.asarray(tree["base_weights"]) * float(w)).tolist()
            tree["id"] = len(trees)
            trees.append(tree)
    if template is None or not trees:
        return None
    gb = template["learner"]["gradient_booster"]["model"]
    gb.update(
        trees=trees,
        tree_info=[0] * len(trees),
        iteration_indptr=list(range(len(trees) + 1)),
    )
    gb["gbtree_model_param"]["num_trees"] = str(len(trees))
    template["learner"]["attributes"] = {}
    merged = xgb.Booster()
    merged.load_model(bytearray(json.dumps(template).encode("utf-8")))
    return merged


def _stack_loss(theta: np.ndarray, M: np.ndarray, y: np.ndarray, w: np.ndarray):
    """Mean weighted log-loss of ``a + M @ v`` (``theta = (a, v)``) and its gradient."""
    z = theta[0] + M @ theta[1:]
    loss = float(w @ (np.logaddexp(0.0, z) - y * z))
    r = w * (expit(z) - y)
    return loss, np.concatenate([[r.sum()], M.T @ r])


def fit_stack_weights(
    M: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Intercept and non-negative weights maximising the log-likelihood of ``a + M w``.

    Parameters
    ----------
    M : array of shape (n, K)
        Out-of-fold log-odds of the K candidates.
    y : array of shape (n,)
        0/1 labels.
    sample_weight : array of shape (n,), optional

    Returns
    -------
    intercept : float
    weights : ndarray of shape (K,), all >= 0

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> good = rng.normal(size=2000); y = (rng.random(2000) < expit(2 * good)).astype(float)
    >>> noise = rng.normal(size=2000)
    >>> a, w = fit_stack_weights(np.column_stack([good, noise, -good]), y)
    >>> bool(abs(w[0] - 2) < 0.3 and w[1] < 0.1 and w[2] == 0.0)
    True
    """
    M = np.asarray(M, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    w = w / w.sum()
    K = M.shape[1]
    start = np.concatenate([[0.0], np.full(K, 1.0 / K)])
    res = minimize(
        _stack_loss,
        start,
        args=(M, y, w),
        jac=True,
        method="L-BFGS-B",
        bounds=[(None, None)] + [(0.0, None)] * K,
        options={"maxiter": 500, "ftol": 1e-12, "gtol": 1e-9},
    )
    theta = res.x
    return float(theta[0]), np.maximum(theta[1:], 0.0)


class SuperLearnerClassifier(LinearTreesMixin, MarginClassifierMixin, BaseEstimator):
    """Candidate heads combined in log-odds with non-negative out-of-fold weights.

    Parameters
    ----------
    candidates : tuple of str, default=DEFAULT_CANDIDATES
        Names in :data:`CANDIDATES` (``"ridge"``, ``"lasso"``, ``"xgb"``, ``"boosted"``).
    candidate_params : dict, optional
        Per candidate name, parameters of its LinearBoostedClassifier that replace the
        defaults of :data:`CANDIDATES` (e.g. fixed penalties: ``{"ridge": {"C": 0.3}}``);
        entries of candidates not in ``candidates`` are ignored.
    inner_splits : int, default=5
        Stratified folds for the candidates' out-of-fold log-odds (fewer when a class
        has fewer rows).
    oof_choices : {"fixed", "nested"}, default="fixed"
        ``"fixed"``: each candidate makes its inner choices (penalty, number of trees) once,
        on all rows, and its out-of-fold fits reuse them (one fit per fold, no inner
        folds inside folds). ``"nested"``: every out-of-fold fit makes its own choices on
        its fold's training rows (about five times the cost; docs/methods.md measures
        both).
    n_jobs : int, default=1
        XGBoost threads of each candidate.
    random_state : int, default=0
        Seed of the folds and of the candidates.

    Attributes
    ----------
    candidates_ : tuple of str
    weights_ : ndarray of shape (n_candidates,)
        Non-negative weights of the candidates' log-odds.
    stack_intercept_ : float
        The combination's own intercept ``a``.
    oof_margin_ : ndarray of shape (n_samples,)
        Out-of-fold combined log-odds of the training rows (``a + M w``).
    candidate_logloss_ : ndarray of shape (n_candidates,)
        Mean out-of-fold log-loss of each candidate (the combination's is
        ``oof_logloss_``).
    estimators_ : list of LinearBoostedClassifier
        The candidates refitted on all rows (not stored by ``to_dict``).
    linear_mean_, linear_scale_, linear_coef_, linear_intercept_, booster_, n_trees_
        The combination as one linear part plus one set of trees
        (:class:`~cytoresp.models.estimator.LinearTreesMixin`).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = (X[:, 0] + rng.normal(size=200) > 0).astype(int)
    >>> sl = SuperLearnerClassifier(candidate_params={"boosted": {"n_estimators": 20}}).fit(X, y)
    >>> sl.candidates_, bool((sl.weights_ >= 0).all())
    (('ridge', 'xgb', 'boosted'), True)
    >>> parts = sum(w * e.decision_function(X[:5]) for w, e in zip(sl.weights_, sl.estimators_))
    >>> bool(np.allclose(sl.stack_intercept_ + parts, sl.decision_function(X[:5]), atol=1e-5))
    True
    >>> base, phi = sl.contributions(X[:5])
    >>> bool(np.allclose(base + phi.sum(axis=1), sl.decision_function(X[:5]), atol=1e-4))
    True
    """

    def __init__(
        self,
        candidates: Sequence[str] = DEFAULT_CANDIDATES,
        candidate_params: Mapping[str, Mapping[str, Any]] | None = None,
        inner_splits: int = 5,
        oof_choices: str = "fixed",
        n_jobs: int = 1,
        random_state: int = 0,
    ):
        self.candidates = candidates
        self.candidate_params = candidate_params
        self.inner_splits = inner_splits
        self.oof_choices = oof_choices
        self.n_jobs = n_jobs
        self.random_state = random_state

    _fitted_attribute = "weights_"

    _parameter_constraints: dict[str, list] = {
        "candidates": [list, tuple],
        "candidate_params": [None, Mapping],
        "inner_splits": [Interval(Integral, 2, None, closed="left")],
        "oof_choices": [StrOptions({"fixed", "nested"})],
        "n_jobs": [Integral],
        "random_state": [Interval(Integral, 0, None, closed="left")],
    }

    def check_candidates(self) -> None:
        """Refuse unknown candidates and their bad parameters before any fit.

        Raises
        ------
        UsageError
            If a candidate name, a candidate parameter or its value is not accepted.

        Examples
        --------
        >>> SuperLearnerClassifier(candidates=["ridg"]).check_candidates()
        Traceback (most recent call last):
        ...
        cytoresp.errors.UsageError: candidates must be distinct names among ...
        """
        for name in _check_candidates(self.candidates, self.candidate_params):
            self._candidate(name)._validate_params()

    def _candidate(self, name: str) -> LinearBoostedClassifier:
        params = {**CANDIDATES[name], **dict((self.candidate_params or {}).get(name, {}))}
        params.update(n_jobs=self.n_jobs, random_state=self.random_state)
        try:
            return LinearBoostedClassifier(**params)
        except TypeError as exc:
            raise UsageError(f"candidate {name!r}: {exc}") from None

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None) -> SuperLearnerClassifier:
        """Fit every candidate out of fold, the weights, then every candidate on all rows.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Engineered features; NaN means missing.
        y : array of shape (n_samples,)
            Binary labels 0/1.
        sample_weight : array of shape (n_samples,), optional
            Passed to every candidate and to the weights' log-likelihood.

        Returns
        -------
        SuperLearnerClassifier
        """
        names = _check_candidates(self.candidates, self.candidate_params)
        arr, feature_names, y_enc = self._check_training_data(X, y)
        sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        self.feature_names_in_ = np.asarray(feature_names, dtype=object)
        protos = [self._candidate(n) for n in names]
        # every candidate on all rows first (its inner choices made there) ...
        self.estimators_ = [clone(p).fit(arr, y_enc, sample_weight=sw) for p in protos]
        if self.oof_choices == "fixed":
            # ... then out of fold with those choices fixed: no inner folds inside folds
            protos = [
                clone(p).set_params(**e.chosen_params())
                for p, e in zip(protos, self.estimators_, strict=True)
            ]
        M = self._out_of_fold(protos, arr, y_enc, sw)
        a, w = fit_stack_weights(M, y_enc, sw)
        self.candidates_ = names
        self.stack_intercept_, self.weights_ = a, w
        self.oof_margin_ = a + M @ w
        ww = np.ones(len(y_enc)) if sw is None else sw
        ww = ww / ww.sum()
        self.candidate_logloss_ = np.array(
            [_stack_loss(np.r_[0.0, 1.0], M[:, [k]], y_enc, ww)[0] for k in range(len(names))]
        )
        self.oof_logloss_ = _stack_loss(np.r_[a, w], M, y_enc, ww)[0]
        self._combine()
        return self

    def _out_of_fold(self, protos, arr, y, sw) -> np.ndarray:
        """Out-of-fold log-odds of every candidate, shape (n, K)."""
        n_splits = max(2, min(int(self.inner_splits), int(np.bincount(y.astype(int)).min())))
        cv = StratifiedKFold(n_splits, shuffle=True, random_state=self.random_state)
        M = np.empty((len(y), len(protos)))
        for train, test in cv.split(arr, y):
            w_tr = None if sw is None else sw[train]
            for k, proto in enumerate(protos):
                est = clone(proto).fit(arr[train], y[train], sample_weight=w_tr)
                M[test, k] = est.decision_function(arr[test])
        return M

    def _combine(self) -> None:
        """The weighted candidates as one linear part plus one set of trees."""
        ests, w = self.estimators_, self.weights_
        mean, scale = ests[0].linear_mean_, ests[0].linear_scale_
        if not all(
            np.array_equal(e.linear_mean_, mean) and np.array_equal(e.linear_scale_, scale)
            for e in ests
        ):  # pragma: no cover - the candidates standardise the same rows identically
            raise RuntimeError("candidates standardised the features differently")
        self.linear_mean_, self.linear_scale_ = mean.copy(), scale.copy()
        self.linear_coef_ = sum(wk * e.linear_coef_ for wk, e in zip(w, ests, strict=True))
        self.linear_coef_ = np.asarray(self.linear_coef_, dtype=np.float64)
        intercepts = np.array([e.linear_intercept_ for e in ests])
        self.linear_intercept_ = float(self.stack_intercept_ + w @ intercepts)
        self.booster_ = merge_weighted_trees([e.booster_ for e in ests], w)
        if self.booster_ is not None:
            self.booster_.set_param({"nthread": int(self.n_jobs)})
        self.n_trees_ = 0 if self.booster_ is None else int(self.booster_.num_boosted_rounds())

    def frozen_params(self) -> dict[str, Any]:
        """Parameters that refit this learner with every candidate's inner choices fixed.

        ``candidate_params`` holding each candidate's
        :meth:`~cytoresp.models.estimator.LinearBoostedClassifier.chosen_params`: a refit
        (the bootstrap ensemble's, ``train/ensemble.py``) runs no inner search, only the
        out-of-fold fits and the weights.
        """
        check_is_fitted(self, "weights_")
        if self.estimators_ is None:
            raise UsageError("a loaded super learner keeps no candidates to refit from")
        given = dict(self.candidate_params or {})
        return {
            "candidate_params": {
                name: {**dict(given.get(name, {})), **est.chosen_params()}
                for name, est in zip(self.candidates_, self.estimators_, strict=True)
            }
        }

    # -- persistence (JSON + native XGBoost, no pickle) ------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Parameters and fitted state as JSON-serialisable data (the trees excluded)."""
        check_is_fitted(self, "weights_")
        params = self.get_params()
        params["candidates"] = list(params["candidates"])
        if params["candidate_params"] is not None:
            params["candidate_params"] = {k: dict(v) for k, v in params["candidate_params"].items()}
        return {
            "class": "SuperLearnerClassifier",
            "params": params,
            "classes": [int(c) for c in self.classes_],
            "feature_names": [str(n) for n in self.feature_names_in_],
            "linear_mean": self.linear_mean_.tolist(),
            "linear_scale": self.linear_scale_.tolist(),
            "linear_coef": self.linear_coef_.tolist(),
            "linear_intercept": self.linear_intercept_,
            "candidates": list(self.candidates_),
            "weights": self.weights_.tolist(),
            "stack_intercept": self.stack_intercept_,
            "candidate_logloss": self.candidate_logloss_.tolist(),
            "oof_logloss": float(self.oof_logloss_),
            "n_trees": int(self.n_trees_),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any], booster: bytes | None) -> SuperLearnerClassifier:
        """Rebuild a fitted learner from :meth:`to_dict` and :meth:`booster_bytes`.

        The refitted candidates (``estimators_``) are not stored: the combination is.
        """
        params = dict(state["params"])
        params["candidates"] = tuple(params["candidates"])
        est = cls(**params)
        est.classes_ = np.asarray(state["classes"])
        est.feature_names_in_ = np.asarray(state["feature_names"], dtype=object)
        est.n_features_in_ = len(est.feature_names_in_)
        est.linear_mean_ = np.asarray(state["linear_mean"], dtype=np.float64)
        est.linear_scale_ = np.asarray(state["linear_scale"], dtype=np.float64)
        est.linear_coef_ = np.asarray(state["linear_coef"], dtype=np.float64)
        est.linear_intercept_ = float(state["linear_intercept"])
        est.candidates_ = tuple(state["candidates"])
        est.weights_ = np.asarray(state["weights"], dtype=np.float64)
        est.stack_intercept_ = float(state["stack_intercept"])
        est.candidate_logloss_ = np.asarray(state["candidate_logloss"], dtype=np.float64)
        est.oof_logloss_ = float(state["oof_logloss"])
        est.estimators_ = None
        est.booster_ = None
        if booster is not None:
            est.booster_ = xgb.Booster()
            est.booster_.load_model(bytearray(booster))
            est.booster_.set_param({"nthread": int(est.n_jobs)})
        est.n_trees_ = int(state.get("n_trees", 0))
        return est
