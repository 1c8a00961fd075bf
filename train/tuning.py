"""A tuned-XGBoost comparator: random search over XGBoost settings in inner folds.

This is the model the default head is measured against (``benchmarks/quality.py``): plain
XGBoost (no linear base margin) on the same engineered features, its hyperparameters
chosen by random search scored on inner stratified cross-validation of the *training*
rows only. Used inside an outer split (or before scoring an independent test cohort),
that is nested tuning: no row that is scored ever informs the choice.

The search also chooses the number of trees for free: every candidate is boosted up to
its sampled ``n_estimators`` in each inner fold while the inner validation log-loss is
recorded after every round, and a candidate is scored at its best round. This makes the
comparator stronger than a grid over ``n_estimators`` at the same cost.

It is a comparator, not the shipped model: it costs ``n_iter x inner_splits`` XGBoost fits
per training, and on small cohorts the inner folds are too small for the choice to be
reliable (docs/methods.md, "Default model").
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from cytoresp.errors import UsageError

__all__ = ["SEARCH_SPACE", "Candidate", "TunedXGBClassifier", "sample_candidates"]


@dataclass(frozen=True)
class Candidate:
    """One point of the search space (XGBoost parameters)."""

    max_depth: int
    learning_rate: float
    n_estimators: int
    subsample: float
    colsample_bytree: float
    min_child_weight: float
    reg_lambda: float
    gamma: float

    def xgb_params(self, n_jobs: int, seed: int) -> dict[str, Any]:
        """Parameters for :func:`xgboost.train` (without the number of rounds)."""
        return {
            "objective": "binary:logistic",
            "eval_metric": "logloss",
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "lambda": self.reg_lambda,
            "gamma": self.gamma,
            "nthread": n_jobs,
            "seed": seed,
            "verbosity": 0,
        }


#: Rounds boosted between checks of a candidate's inner curve, and rounds without
#: improvement after which a candidate is not boosted further.
_STEP = 25
_PATIENCE = 50

#: The random-search space: (kind, low, high) per parameter. "int": uniform integer;
#: "uniform"/"loguniform": continuous; "choice": one of the listed values.
SEARCH_SPACE: dict[str, tuple] = {
    "max_depth": ("int", 1, 6),
    "learning_rate": ("loguniform", 0.01, 0.3),
    "n_estimators": ("int", 50, 600),
    "subsample": ("uniform", 0.5, 1.0),
    "colsample_bytree": ("uniform", 0.4, 1.0),
    "min_child_weight": ("loguniform", 0.5, 20.0),
    "reg_lambda": ("loguniform", 0.1, 30.0),
    "gamma": ("choice", (0.0, 0.0, 0.1, 0.3, 1.0)),
}


def _draw(rng: np.random.Generator, spec: tuple) -> Any:
    kind = spec[0]
    if kind == "int":
        return int(rng.integers(spec[1], spec[2] + 1))
    if kind == "uniform":
        return float(rng.uniform(spec[1], spec[2]))
    if kind == "loguniform":
        return float(math.exp(rng.uniform(math.log(spec[1]), math.log(spec[2]))))
    if kind == "choice":
        return spec[1][int(rng.integers(len(spec[1])))]
    raise UsageError(f"unknown search-space kind {kind!r}")


def sample_candidates(
    n_iter: int, seed: int, space: dict[str, tuple] | None = None
) -> list[Candidate]:
    """``n_iter`` random candidates from ``space`` (default :data:`SEARCH_SPACE`).

    Parameters
    ----------
    n_iter : int
        Number of candidates.
    seed : int
        Seed; the same seed gives the same candidates.
    space : dict, optional
        Overrides of :data:`SEARCH_SPACE` entries.

    Returns
    -------
    list of Candidate

    Examples
    --------
    >>> cands = sample_candidates(3, seed=0)
    >>> len(cands), all(1 <= c.max_depth <= 6 for c in cands)
    (3, True)
    """
    full = {**SEARCH_SPACE, **(space or {})}
    unknown = sorted(set(full) - set(Candidate.__dataclass_fields__))
    if unknown:
        raise UsageError(f"unknown search-space parameter(s): {', '.join(unknown)}")
    rng = np.random.default_rng(seed)
    return [
        Candidate(**{k: _draw(rng, full[k]) for k in Candidate.__dataclass_fields__})
        for _ in range(n_iter)
    ]


def _as_matrix(X) -> np.ndarray:
    if isinstance(X, pd.DataFrame):
        return X.to_numpy(dtype=np.float64)
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise UsageError(f"expected a 2-D feature matrix, got shape {arr.shape}")
    return arr


class TunedXGBClassifier(ClassifierMixin, BaseEstimator):
    """XGBoost with hyperparameters chosen by random search on inner folds.

    Parameters
    ----------
    n_iter : int, default=20
        Random candidates tried.
    inner_splits : int, default=3
        Stratified inner folds scoring each candidate (fewer when a class is smaller).
    scoring : {"logloss", "roc_auc"}, default="logloss"
        Pooled inner out-of-fold criterion. Log-loss is a proper scoring rule and far
        less noisy than AUC on small folds.
    space : dict, optional
        Overrides of :data:`SEARCH_SPACE` entries.
    n_jobs : int, default=1
        XGBoost threads.
    random_state : int, default=0
        Seed of the candidates, the inner folds and XGBoost's subsampling.

    Attributes
    ----------
    best_params_ : dict
        The chosen candidate's parameters, with ``n_estimators`` the chosen round.
    cv_results_ : DataFrame
        One row per candidate: its parameters, best round and inner score.
    booster_ : xgboost.Booster
        Trained on all rows with the chosen parameters.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(150, 4)); y = (X[:, 0] + rng.normal(size=150) > 0).astype(int)
    >>> clf = TunedXGBClassifier(n_iter=3).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """

    def __init__(
        self,
        n_iter: int = 20,
        inner_splits: int = 3,
        scoring: str = "logloss",
        space: dict[str, tuple] | None = None,
        n_jobs: int = 1,
        random_state: int = 0,
    ):
        self.n_iter = n_iter
        self.inner_splits = inner_splits
        self.scoring = scoring
        self.space = space
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _check_params(self) -> None:
        if not isinstance(self.n_iter, numbers.Integral) or self.n_iter < 1:
            raise UsageError(f"n_iter must be an integer >= 1, got {self.n_iter!r}")
        if not isinstance(self.inner_splits, numbers.Integral) or self.inner_splits < 2:
            raise UsageError(f"inner_splits must be an integer >= 2, got {self.inner_splits!r}")
        if self.scoring not in ("logloss", "roc_auc"):
            raise UsageError(f"scoring must be 'logloss' or 'roc_auc', got {self.scoring!r}")

    def fit(self, X, y) -> TunedXGBClassifier:
        """Search on inner folds of ``(X, y)``, then refit the best candidate on all rows.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Engineered features; NaN means missing.
        y : array of shape (n_samples,)
            Binary labels.
        """
        self._check_params()
        arr = _as_matrix(X)
        y = np.asarray(y)
        if arr.shape[0] != y.shape[0]:
            raise UsageError(f"X has {arr.shape[0]} rows but y has {y.shape[0]}")
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) != 2:
            raise UsageError(
                f"need both classes to train, got {len(self.classes_)} distinct label(s)"
            )
        y_enc = y_enc.astype(np.float64)
        self.n_features_in_ = arr.shape[1]
        seed = int(self.random_state)
        candidates = sample_candidates(int(self.n_iter), seed, self.space)

        n_minor = int(min(y_enc.sum(), len(y_enc) - y_enc.sum()))
        n_splits = min(int(self.inner_splits), n_minor)
        rows = []
        if n_splits >= 2:
            cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
            folds = list(cv.split(arr, y_enc))
            for i, cand in enumerate(candidates):
                best_round, score = self._score(cand, arr, y_enc, folds, seed)
                rows.append({**cand.__dict__, "best_round": best_round, "score": score, "i": i})
            results = pd.DataFrame(rows)
            best = int(results["score"].idxmax())
            chosen = candidates[best]
            n_rounds = int(results.loc[best, "best_round"])
        else:  # too few of a class to search: the first candidate, as sampled
            results = pd.DataFrame([{**candidates[0].__dict__, "best_round": None}])
            chosen, n_rounds = candidates[0], candidates[0].n_estimators
        self.cv_results_ = results
        self.best_params_ = {**chosen.__dict__, "n_estimators": n_rounds}
        dtrain = xgb.DMatrix(arr, label=y_enc, missing=np.nan)
        self.booster_ = xgb.train(
            chosen.xgb_params(int(self.n_jobs), seed), dtrain, num_boost_round=n_rounds
        )
        return self

    def _score(self, cand: Candidate, arr, y, folds, seed) -> tuple[int, float]:
        """(best number of rounds, score at it; higher is better) of one candidate."""
        params = cand.xgb_params(int(self.n_jobs), seed)
        n = cand.n_estimators
        if self.scoring == "logloss":
            # All folds boosted in lockstep, STEP rounds at a time; a candidate stops once
            # its pooled inner log-loss has not improved for PATIENCE rounds (its later
            # rounds could only be worse choices).
            mats = [
                (
                    xgb.DMatrix(arr[train], label=y[train], missing=np.nan),
                    xgb.DMatrix(arr[test], label=y[test], missing=np.nan),
                    len(test),
                )
                for train, test in folds
            ]
            boosters: list[xgb.Booster | None] = [None] * len(mats)
            curves: list[list[float]] = [[] for _ in mats]
            done = 0
            while done < n:
                step = min(_STEP, n - done)
                for k, (dtr, dte, _) in enumerate(mats):
                    record: dict[str, Any] = {}
                    boosters[k] = xgb.train(
                        params,
                        dtr,
                        num_boost_round=step,
                        evals=[(dte, "val")],
                        evals_result=record,
                        verbose_eval=False,
                        xgb_model=boosters[k],
                    )
                    curves[k].extend(record["val"]["logloss"])
                done += step
                total = np.asarray([m[2] for m in mats], dtype=np.float64) @ np.asarray(curves)
                if done - 1 - int(np.argmin(total)) >= _PATIENCE:
                    break
            k = int(np.argmin(total))
            return k + 1, float(-total[k] / len(y))
        # roc_auc: pooled out-of-fold AUC at a grid of rounds
        from sklearn.metrics import roc_auc_score

        grid = np.unique(np.linspace(1, n, num=min(n, 20)).astype(int))
        oof = np.zeros((len(grid), len(y)))
        for train, test in folds:
            booster = xgb.train(
                params, xgb.DMatrix(arr[train], label=y[train], missing=np.nan), num_boost_round=n
            )
            dtest = xgb.DMatrix(arr[test], missing=np.nan)
            for j, r in enumerate(grid):
                oof[j, test] = booster.predict(dtest, iteration_range=(0, int(r)))
        aucs = np.array([roc_auc_score(y, o) for o in oof])
        j = int(np.argmax(aucs))
        return int(grid[j]), float(aucs[j])

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of the positive class."""
        check_is_fitted(self, "booster_")
        arr = _as_matrix(X)
        if arr.shape[1] != self.n_features_in_:
            raise UsageError(
                f"X has {arr.shape[1]} features, the model was fitted with {self.n_features_in_}"
            )
        return self.booster_.predict(xgb.DMatrix(arr, missing=np.nan), output_margin=True)

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities of both classes, shape (n_samples, 2)."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        """Class labels at probability 0.5."""
        return self.classes_[(self.decision_function(X) > 0).astype(int)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
