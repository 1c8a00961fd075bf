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
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator, _fit_context
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.utils._param_validation import Interval, StrOptions

from cytoresp.errors import UsageError
from cytoresp.models.boosting import boost_in_lockstep, xgb_train_params
from cytoresp.models.classifier import MarginClassifierMixin

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
        return xgb_train_params(
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            min_child_weight=self.min_child_weight,
            reg_lambda=self.reg_lambda,
            gamma=self.gamma,
            n_jobs=n_jobs,
            seed=seed,
        )


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


class TunedXGBClassifier(MarginClassifierMixin, BaseEstimator):
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

    _fitted_attribute = "booster_"

    _parameter_constraints: dict[str, list] = {
        "n_iter": [Interval(Integral, 1, None, closed="left")],
        "inner_splits": [Interval(Integral, 2, None, closed="left")],
        "scoring": [StrOptions({"logloss", "roc_auc"})],
        "space": [Mapping, None],
        "n_jobs": [Integral],
        "random_state": [Interval(Integral, 0, None, closed="left")],
    }

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y) -> TunedXGBClassifier:
        """Search on inner folds of ``(X, y)``, then refit the best candidate on all rows.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Engineered features; NaN means missing.
        y : array of shape (n_samples,)
            Binary labels.
        """
        arr, _, y_enc = self._check_training_data(X, y)
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
            # All folds boosted in lockstep; a candidate stops once its pooled inner
            # log-loss has not improved for a while (its later rounds could only be worse
            # choices).
            matrices = [
                (
                    xgb.DMatrix(arr[train], label=y[train], missing=np.nan),
                    xgb.DMatrix(arr[test], label=y[test], missing=np.nan),
                )
                for train, test in folds
            ]
            sizes = np.asarray([len(test) for _, test in folds], dtype=np.float64)
            curves = boost_in_lockstep([params] * len(matrices), matrices, n, sizes)
            total = sizes @ curves  # column k: after k + 1 rounds
            k = int(np.argmin(total))
            return k + 1, float(-total[k] / len(y))
        # roc_auc: pooled out-of-fold AUC at a grid of rounds
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

    def _margin(self, arr: np.ndarray) -> np.ndarray:
        """Log-odds of the positive class."""
        return self.booster_.predict(xgb.DMatrix(arr, missing=np.nan), output_margin=True)
