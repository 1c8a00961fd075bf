"""Boosting machinery shared by the default head and the tuned-XGBoost comparator.

One implementation of what both need: XGBoost's training parameters, the binary log-loss
of a margin, and early stopping by boosting every inner fold in lockstep, a few rounds at
a time, until the pooled validation log-loss has stopped improving.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xgboost as xgb
from scipy.special import expit

__all__ = [
    "EARLY_STOPPING_PATIENCE",
    "ROUNDS_PER_STEP",
    "binary_log_loss",
    "boost_in_lockstep",
    "xgb_train_params",
]

#: Early stopping: rounds boosted between checks of the pooled inner log-loss curve, and
#: how many rounds without improvement end the search.
ROUNDS_PER_STEP = 25
EARLY_STOPPING_PATIENCE = 50

#: Probabilities are clipped to [eps, 1 - eps] before taking logs.
_LOG_LOSS_EPS = 1e-12


def xgb_train_params(
    *,
    max_depth: int,
    learning_rate: float,
    subsample: float,
    colsample_bytree: float,
    min_child_weight: float,
    reg_lambda: float,
    gamma: float,
    n_jobs: int,
    seed: int,
    monotone: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Parameters for :func:`xgboost.train` (binary log-loss, histogram trees).

    Parameters
    ----------
    max_depth, learning_rate, subsample, colsample_bytree, min_child_weight, reg_lambda, \
gamma : XGBoost tree parameters (scikit-learn names)
    n_jobs : int
        Threads.
    seed : int
        Seed of the row and column subsampling.
    monotone : sequence of {-1, 0, 1}, optional
        Per-feature monotone constraints; none when absent or all zero.

    Returns
    -------
    dict

    Examples
    --------
    >>> p = xgb_train_params(max_depth=2, learning_rate=0.05, subsample=0.8,
    ...                      colsample_bytree=0.8, min_child_weight=1.0, reg_lambda=1.0,
    ...                      gamma=0.0, n_jobs=1, seed=0, monotone=(1, 0))
    >>> p["eta"], p["monotone_constraints"]
    (0.05, '(1,0)')
    """
    params: dict[str, Any] = {
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "tree_method": "hist",
        "max_depth": int(max_depth),
        "eta": float(learning_rate),
        "subsample": float(subsample),
        "colsample_bytree": float(colsample_bytree),
        "min_child_weight": float(min_child_weight),
        "lambda": float(reg_lambda),
        "gamma": float(gamma),
        "nthread": int(n_jobs),
        "seed": int(seed),
        "verbosity": 0,
    }
    if monotone is not None and any(monotone):
        params["monotone_constraints"] = "(" + ",".join(str(int(v)) for v in monotone) + ")"
    return params


def binary_log_loss(
    y: np.ndarray, margin: np.ndarray, sample_weight: np.ndarray | None = None
) -> float:
    """Summed (weighted) log-loss of log-odds ``margin`` for 0/1 labels ``y``.

    Probabilities are clipped to ``[1e-12, 1 - 1e-12]``, so one confident mistake costs
    at most about 27.6.

    Parameters
    ----------
    y : array of shape (n,)
        Labels 0/1.
    margin : array of shape (n,)
        Log-odds of the positive class.
    sample_weight : array of shape (n,), optional

    Returns
    -------
    float
        The sum over rows (divide by the total weight for the mean).

    Examples
    --------
    >>> round(binary_log_loss(np.array([1.0, 0.0]), np.zeros(2)), 6)  # 2 * log(2)
    1.386294
    """
    p = np.clip(expit(margin), _LOG_LOSS_EPS, 1 - _LOG_LOSS_EPS)
    w = np.ones(len(y)) if sample_weight is None else sample_weight
    return float(-np.sum(w * (y * np.log(p) + (1 - y) * np.log(1 - p))))


def boost_in_lockstep(
    params: Sequence[dict[str, Any]],
    matrices: Sequence[tuple[xgb.DMatrix, xgb.DMatrix]],
    n_max: int,
    weights: np.ndarray,
    initial: Sequence[float] | None = None,
) -> np.ndarray:
    """Boost every inner fold in lockstep and stop once the pooled log-loss stops improving.

    Each fold ``k`` is boosted with ``params[k]`` on ``matrices[k][0]``, recording the
    validation log-loss on ``matrices[k][1]`` after every round, :data:`ROUNDS_PER_STEP`
    rounds at a time. After each step the pooled curve ``weights @ curves`` is checked:
    boosting stops once its minimum lies :data:`EARLY_STOPPING_PATIENCE` or more rounds
    back (later rounds could only be worse choices), or at ``n_max`` rounds.

    Parameters
    ----------
    params : sequence of dict
        :func:`xgboost.train` parameters per fold (e.g. from :func:`xgb_train_params`).
    matrices : sequence of (DMatrix, DMatrix)
        Training and validation matrix per fold (labels, weights and base margins set).
    n_max : int
        Most rounds.
    weights : array of shape (n_folds,)
        Weight of each fold in the pooled curve (its rows or total sample weight).
    initial : sequence of float, optional
        Each fold's validation log-loss before any tree (its base margin alone). Given,
        column 0 of the result is this loss, so column ``j`` is the loss after ``j``
        trees; otherwise column ``j`` is the loss after ``j + 1`` trees.

    Returns
    -------
    ndarray of shape (n_folds, n_rounds [+ 1])
        Mean validation log-loss per fold and number of rounds boosted.
    """
    if initial is None:
        curves: list[list[float]] = [[] for _ in matrices]
    else:
        curves = [[float(v)] for v in initial]
    offset = 0 if initial is not None else 1  # trees at column 0
    boosters: list[xgb.Booster | None] = [None] * len(matrices)
    done = 0
    while done < n_max:
        step = min(ROUNDS_PER_STEP, n_max - done)
        for k, (dtrain, dvalid) in enumerate(matrices):
            record: dict[str, Any] = {}
            boosters[k] = xgb.train(
                params[k],
                dtrain,
                num_boost_round=step,
                evals=[(dvalid, "val")],
                evals_result=record,
                verbose_eval=False,
                xgb_model=boosters[k],
            )
            curves[k].extend(record["val"]["logloss"])
        done += step
        pooled = weights @ np.asarray(curves)
        if done - (int(np.argmin(pooled)) + offset) >= EARLY_STOPPING_PATIENCE:
            break
    return np.asarray(curves)
