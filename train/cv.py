"""Repeated stratified nested cross-validation of a therapy head and its baselines.

Per outer fold, everything is fitted on the outer training part only: the feature
transformers, the linear part's regularisation (inner folds), the trees, and the
calibration and decision threshold (from out-of-fold predictions of *inner* folds). The
outer test fold is touched once, to score. Baselines are scored on the same folds so the
comparison is paired.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from cytoresp.errors import InputError, Problem
from cytoresp.features.builder import PanelFeatures
from cytoresp.models.default import make_classifier
from cytoresp.models.estimator import LinearBoostedClassifier
from cytoresp.panels.panel import CLINICAL_COVARIATES
from cytoresp.train.calibration import fit_calibration
from cytoresp.train.config import TrainConfig

#: The model every head uses unless the configuration overrides its parameters.
DEFAULT_MODEL = "default"


def plate_params(config: TrainConfig) -> dict[str, Any]:
    """PanelFeatures parameters of the per-plate normalisation (empty when it is off)."""
    if not config.plate_normalisation:
        return {}
    out: dict[str, Any] = {"plate_normalisation": True}
    if "plate_min_samples" in config.features:
        out["plate_min_samples"] = config.features["plate_min_samples"]
    return out


def make_head(config: TrainConfig, seed: int | None = None) -> Pipeline:
    """A therapy head: panel features -> the configured classifier.

    The classifier is ``config.model``'s (:func:`cytoresp.models.default.make_classifier`;
    by default :func:`cytoresp.models.default_classifier`). With
    ``config.plate_normalisation`` the features step holds the per-plate normaliser, so it
    is fitted wherever the head is: on each outer and inner training part.
    """
    model = dict(config.model)
    seed = model.pop("random_state", config.seed if seed is None else seed)
    return Pipeline(
        [
            ("features", PanelFeatures(**{**config.features, **plate_params(config)})),
            ("model", make_classifier(model, seed)),
        ]
    )


def calibration_margins(
    head: Pipeline, X: pd.DataFrame, y: np.ndarray, n_splits: int, seed: int
) -> np.ndarray:
    """Out-of-fold log-odds of a fitted head on its training rows, for its calibration.

    A classifier that computes its own out-of-fold log-odds while fitting (the super
    learner's ``oof_margin_``: its combination on the candidates' out-of-fold log-odds)
    gives them; otherwise clones of the head are fitted on inner folds
    (:func:`inner_oof_margins`).
    """
    own = getattr(head.named_steps["model"], "oof_margin_", None)
    if own is not None:
        return np.asarray(own, dtype=np.float64)
    return inner_oof_margins(head, X, y, n_splits, seed)


class PrevalenceClassifier:
    """Predicts the training prevalence for everyone (the no-information baseline)."""

    def fit(self, X, y):
        self.p_ = float(np.mean(y))
        return self

    def predict_proba(self, X):
        p = np.full(len(X), self.p_)
        return np.column_stack([1 - p, p])


def make_baselines(
    config: TrainConfig, columns: list[str], covariates: list[str] | None = None
) -> dict[str, Callable[[], Any]]:
    """Baselines scored on the same folds as the default model.

    ``covariates``: numeric inputs the logistic baseline reads beside the log cytokines
    (a landmark head's changes from baseline, :mod:`cytoresp.train.landmarks`).
    """
    seed = config.seed
    inputs: dict[str, Any] = {"covariates": list(covariates or [])}
    if config.columns:
        # declared columns: the baseline is a logistic regression on the registered
        # analytes and the declared measurements (never a declared covariate, and never
        # a log-scale measurement read as a concentration)
        from cytoresp.panels.declared import declared_columns, match_declared
        from cytoresp.panels.registry import resolve_analyte

        measured = declared_columns(measurements=config.measurements)
        inputs = {
            "analytes": [c for c in columns if c not in CLINICAL_COVARIATES and c != "plate"
                         and resolve_analyte(c)],
            "covariates": [c for c in columns
                           if (d := match_declared(c, measured)) and d.kind != "concentration"]
            + list(covariates or []),
        }
    baselines: dict[str, Callable[[], Any]] = {
        "logistic": lambda: Pipeline(
            [
                # the same plate normalisation as the default head: a paired comparison
                ("features", PanelFeatures(axes=[], **inputs, **plate_params(config))),
                ("model", LinearBoostedClassifier(n_estimators=0, l1_ratio=0.0, random_state=seed)),
            ]
        ),
        "prevalence": PrevalenceClassifier,
    }
    if not inputs.get("analytes", True) and not inputs["covariates"]:
        del baselines["logistic"]
    if any(c in CLINICAL_COVARIATES for c in columns):
        # with extra inputs (a landmark head's changes), the clinical covariates are named
        # and no analyte is read (the changes would be ignored columns, with a warning)
        clinical = ({"covariates": [c for c in columns if c in CLINICAL_COVARIATES],
                     "analytes": []} if covariates else {})
        baselines["clinical"] = lambda: Pipeline(
            [
                ("features", PanelFeatures(include_log=False, ratios=[], axes=[],
                                           **clinical)),
                ("model", LinearBoostedClassifier(n_estimators=0, l1_ratio=0.0, random_state=seed)),
            ]
        )
    return baselines


@dataclass
class CVResult:
    """Out-of-fold predictions of every repeat and fold.

    Attributes
    ----------
    oof : DataFrame
        One row per patient per repeat: ``sample_id``, ``repeat``, ``fold``, ``y``,
        ``margin`` (uncalibrated log-odds of the default model), ``p_default``
        (calibrated), ``decision`` (at the fold's threshold), ``p_<baseline>``.
    folds : list of dict
        Per outer fold: repeat, fold, n_train, n_test, threshold, calibration.
    scored : DataFrame or None
        With ``cross_validate(..., score=frame)``: per row of that frame (index kept),
        each outer fold head's calibrated probability, one column per fold named
        ``"<repeat>:<fold>"`` (the cross-fitted outcome model of
        :mod:`cytoresp.train.choice`).
    """

    oof: pd.DataFrame
    folds: list[dict[str, Any]] = field(default_factory=list)
    scored: pd.DataFrame | None = None

    @property
    def models(self) -> list[str]:
        return [c[2:] for c in self.oof.columns if c.startswith("p_")]


def check_trainable(y: np.ndarray, n_splits: int, therapy: str, source: str) -> None:
    """Refuse cohorts too small for the requested cross-validation, with the reason."""
    n_pos, n_neg = int(np.sum(y == 1)), int(np.sum(y == 0))
    if min(n_pos, n_neg) < n_splits:
        raise InputError(
            [
                Problem(
                    source,
                    None,
                    "responder",
                    f"therapy {therapy!r}: {n_pos} responders and {n_neg} non-responders; "
                    f"{n_splits}-fold cross-validation needs at least {n_splits} of each",
                )
            ]
        )


def cross_validate(
    frame: pd.DataFrame,
    y: np.ndarray,
    config: TrainConfig,
    with_baselines: bool = True,
    score: pd.DataFrame | None = None,
    alert_sensitivity: float | None = None,
    baseline_covariates: list[str] | None = None,
) -> CVResult:
    """Repeated stratified nested cross-validation of the default head.

    Parameters
    ----------
    frame : DataFrame
        Model frame (index ``sample_id``) of one therapy's patients.
    y : ndarray of 0/1
        Response labels.
    config : TrainConfig
    with_baselines : bool
        Also score the baselines on the same folds.
    score : DataFrame, optional
        Other patients (e.g. those given another therapy) that every fold's head also
        scores; :attr:`CVResult.scored` holds each fold head's calibrated probability of
        them, one column per fold (``"<repeat>:<fold>"``).
    alert_sensitivity : float, optional
        Also choose, in each outer fold from the inner out-of-fold probabilities, the
        threshold of the early non-response alert for this sensitivity
        (:func:`~cytoresp.train.threshold.choose_alert_threshold`), and record in
        :attr:`CVResult.oof` whether each test patient is flagged (column ``alert``; the
        fold's threshold in ``folds[i]["alert_threshold"]``).
    baseline_covariates : list of str, optional
        Numeric inputs the logistic baseline also reads (:func:`make_baselines`).
    """
    y = np.asarray(y, dtype=int)
    baselines = (make_baselines(config, list(frame.columns), baseline_covariates)
                 if with_baselines else {})
    jobs = []
    for r in range(config.n_repeats):
        cv = StratifiedKFold(config.n_splits, shuffle=True, random_state=config.seed + r)
        for f, (train, test) in enumerate(cv.split(frame, y)):
            jobs.append((r, f, train, test))
    results = Parallel(n_jobs=min(config.n_jobs, len(jobs)), prefer="processes")(
        delayed(_fit_outer_fold_recorded)(
            frame, y, r, f, train, test, config, baselines, score, alert_sensitivity
        )
        for r, f, train, test in jobs
    )
    parts, folds, scored = [], [], {}
    for res in results:
        parts.append(res.pop("oof"))
        for category, message in res.pop("warnings"):
            # a worker process's warnings are raised again here, where the caller (the
            # command line) collects them and shows each once with a count
            warnings.warn(message, category, stacklevel=2)
        p_score = res.pop("scored", None)
        if p_score is not None:
            scored[f"{res['repeat']}:{res['fold']}"] = p_score
        folds.append(res)
    oof = pd.concat(parts, ignore_index=True)
    table = None if score is None else pd.DataFrame(scored, index=score.index)
    return CVResult(oof=oof, folds=folds, scored=table)


def _fit_outer_fold_recorded(*args) -> dict[str, Any]:
    """:func:`_fit_outer_fold`, its warnings returned as ``(category, message)`` pairs."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _fit_outer_fold(*args)
    out["warnings"] = [(w.category, str(w.message)) for w in caught]
    return out


def _fit_outer_fold(
    frame, y, r, f, train, test, config, baselines, score=None, alert_sensitivity=None
) -> dict:
    seed = config.seed + 1000 * r + f
    X_train, y_train = frame.iloc[train], y[train]
    X_test = frame.iloc[test]
    head = make_head(config, seed).fit(X_train, y_train)
    margin = head.decision_function(X_test)

    inner_margin = calibration_margins(head, X_train, y_train, config.inner_splits, seed)
    calibrator, threshold = fit_calibration(inner_margin, y_train, config)
    p = calibrator.predict_proba(margin)[:, 1]
    oof = pd.DataFrame(
        {
            "sample_id": frame.index[test].astype(str),
            "repeat": r,
            "fold": f,
            "y": y[test],
            "margin": margin,
            "p_default": p,
            "decision": (p >= threshold).astype(int),
        }
    )
    alert = None
    if alert_sensitivity is not None:
        from cytoresp.train.threshold import choose_alert_threshold

        inner_p = calibrator.predict_proba(inner_margin)[:, 1]
        alert = choose_alert_threshold(y_train, inner_p, alert_sensitivity)
        oof["alert"] = (p <= alert).astype(int)
    for name, factory in baselines.items():
        est = factory().fit(X_train, y_train)
        oof[f"p_{name}"] = est.predict_proba(X_test)[:, 1]
    scored = None
    if score is not None:
        scored = calibrator.predict_proba(head.decision_function(score[frame.columns]))[:, 1]
    out = {
        "oof": oof,
        "scored": scored,
        "repeat": r,
        "fold": f,
        "n_train": len(train),
        "n_test": len(test),
        "threshold": float(threshold),
        "calibration": (calibrator.intercept_, calibrator.slope_),
    }
    if alert is not None:
        out["alert_threshold"] = float(alert)
    return out


def inner_oof_margins(head: Pipeline, X: pd.DataFrame, y: np.ndarray, n_splits: int, seed: int):
    """Out-of-fold log-odds on ``X`` from clones of ``head`` fitted on inner folds."""
    n_splits = max(2, min(n_splits, int(np.bincount(y, minlength=2).min())))
    margin = np.empty(len(y))
    cv = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
    for train, test in cv.split(X, y):
        est = clone(head).fit(X.iloc[train], y[train])
        margin[test] = est.decision_function(X.iloc[test])
    return margin
