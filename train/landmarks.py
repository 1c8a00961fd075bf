"""Fit the landmark heads: one head per therapy and landmark month after baseline.

Each landmark head goes through what a baseline head does (:mod:`cytoresp.train.fitting`):
repeated nested cross-validation with the baselines on the same folds, the final fit with
its calibration and threshold on out-of-fold log-odds, the verdict against the baselines
and the explanation background. On top, the early non-response alert: its threshold is
chosen inside every outer fold from inner out-of-fold probabilities (so the reported
sensitivity and specificity are out of fold), and for the final head on the out-of-fold
log-odds its calibration is fitted on. The inputs are the baseline inputs plus the
``<analyte> Δ`` changes (:func:`cytoresp.models.landmarks.landmark_inputs`), passed to
``PanelFeatures`` as numeric inputs; the logistic baseline reads them too, so that the
comparison with it is about the head, not about the data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd

from cytoresp.models.landmarks import (
    LandmarkHeads,
    is_change_feature,
    landmark_inputs,
    landmark_table_in,
)
from cytoresp.models.response_model import TherapyHead
from cytoresp.models.verdict import verdict_to_dict
from cytoresp.panels.panel import CLINICAL_COVARIATES, Panel
from cytoresp.train.config import TrainConfig
from cytoresp.train.cv import CVResult, cross_validate
from cytoresp.train.fitting import TherapyReport, evaluate_cv, fit_head
from cytoresp.train.metrics import evaluate
from cytoresp.train.threshold import choose_alert_threshold

Log = Callable[[str], None]

__all__ = ["LandmarkReport", "fit_landmark_heads", "patient_outcomes", "prefixed_metrics"]


@dataclasses.dataclass
class LandmarkReport:
    """Cross-validated evaluation of one landmark head (and of its alert)."""

    landmark: int
    report: TherapyReport
    alert: dict[str, float]
    versus: dict[str, float | bool | None] = dataclasses.field(default_factory=dict)

    def flat_metrics(self) -> dict[str, float]:
        """:meth:`TherapyReport.flat_metrics` prefixed ``L<month>_``, with the alert's and
        the difference from the baseline head (``L3_ifnb_auc_diff_vs_baseline_head``)."""
        out = prefixed_metrics(self.landmark, self.report.flat_metrics(), self.alert,
                               self.report.therapy)
        if self.versus.get("difference") is not None:
            key = f"L{self.landmark}_{self.report.therapy}_auc_diff_vs_baseline_head"
            out[key] = float(self.versus["difference"])
            out[f"{key}_lower"] = float(self.versus["lower"])
            out[f"{key}_upper"] = float(self.versus["upper"])
        return out


def prefixed_metrics(
    month: int, flat: dict[str, float], alert: dict[str, float], therapy: str
) -> dict[str, float]:
    """MLflow metric names of a landmark head: ``L3_ifnb_roc_auc``, ``L3_ifnb_alert_...``.

    Examples
    --------
    >>> prefixed_metrics(3, {"ga_roc_auc": 0.8}, {"sensitivity": 0.75}, "ga")
    {'L3_ga_roc_auc': 0.8, 'L3_ga_alert_sensitivity': 0.75}
    """
    out = {f"L{month}_{k}": float(v) for k, v in flat.items()}
    out.update({f"L{month}_{therapy}_alert_{k}": float(v) for k, v in alert.items()})
    return out


def patient_outcomes(panel: Panel) -> pd.DataFrame:
    """Therapy and outcome per patient (index ``patient_id``), from a panel with visits.

    Both are per patient (the reader checked that a patient's rows agree); the first
    known value of each is taken.
    """
    frame = pd.DataFrame(
        {
            "therapy": panel.therapy.to_numpy(dtype=object),
            "responder": panel.responder.to_numpy(dtype=np.float64),
        },
        index=pd.Index(panel.patient_id.to_numpy(dtype=object), name="patient_id"),
    )
    return frame.groupby(level=0, sort=False).first()


def alert_metrics(cv: CVResult, config: TrainConfig) -> dict[str, float]:
    """Out-of-fold sensitivity to non-response and specificity of the alert, with intervals.

    Pooled over repeats; bootstrap 95% intervals resampling patients. ``sensitivity`` is
    the share of non-responders flagged, ``specificity`` the share of responders not
    flagged.
    """
    oof = cv.oof
    nonresp = 1 - oof["y"].to_numpy(dtype=int)
    est = evaluate(nonresp, oof["alert"].to_numpy(dtype=float), 0.5, n_boot=config.n_boot,
                   seed=config.seed, groups=oof["sample_id"].to_numpy())
    out: dict[str, float] = {}
    for name in ("sensitivity", "specificity"):
        out[name] = est[name].value
        out[f"{name}_lower"] = est[name].lower
        out[f"{name}_upper"] = est[name].upper
    out["target_sensitivity"] = float(config.alert_sensitivity)
    return out


def baseline_comparison(
    cv: CVResult, baseline_cv: CVResult | None, baseline_sample: pd.Series,
    config: TrainConfig,
) -> tuple[dict[str, float | bool | None], pd.DataFrame | None]:
    """The landmark head against the baseline head, out of fold, on the same patients.

    Pairs each landmark out-of-fold probability with the baseline head's out-of-fold
    probability of the same patient in the same repeat (both cross-validations use the
    same repeats and seeds; their folds differ, both are out of fold). Returns the paired
    ROC AUC difference (landmark minus baseline) with its bootstrap interval and
    ``beats``: True when the interval's lower end is above 0 (with ``n_boot = 0``: when
    the difference is), and the paired table (``sample_id`` = patient, ``repeat``, ``y``,
    ``p_landmark``, ``p_baseline``), or None when the baseline head's predictions are
    unavailable (no baseline sample).
    """
    from cytoresp.train.metrics import paired_difference

    if baseline_cv is None:
        return {"difference": None, "lower": None, "upper": None, "beats": None}, None
    land = cv.oof[["sample_id", "repeat", "y", "p_default"]].rename(
        columns={"p_default": "p_landmark"})
    land["base_id"] = baseline_sample.reindex(land["sample_id"].to_numpy()).to_numpy()
    base = baseline_cv.oof[["sample_id", "repeat", "p_default"]].rename(
        columns={"sample_id": "base_id", "p_default": "p_baseline"})
    base["base_id"] = base["base_id"].astype(str)
    paired = land.dropna(subset=["base_id"]).merge(base, on=["base_id", "repeat"])
    y = paired["y"].to_numpy(dtype=int)
    if len(paired) == 0 or len(set(y)) < 2:
        return {"difference": None, "lower": None, "upper": None, "beats": None}, None
    est = paired_difference(y, paired["p_landmark"].to_numpy(), paired["p_baseline"].to_numpy(),
                            "roc_auc", n_boot=config.n_boot, seed=config.seed,
                            groups=paired["sample_id"].to_numpy())
    lower = est.lower if np.isfinite(est.lower) else est.value
    out = {"difference": float(est.value), "lower": float(est.lower), "upper": float(est.upper),
           "n": int(paired["sample_id"].nunique()), "beats": bool(lower > 0)}
    return out, paired


def fit_landmark_heads(
    panel: Panel,
    therapies: list[str],
    config: TrainConfig,
    log: Log | None = None,
    baseline_reports: dict[str, TherapyReport] | None = None,
) -> tuple[LandmarkHeads, dict[int, dict[str, LandmarkReport]]]:
    """Cross-validate and fit the heads of every landmark month > 0 of ``config.landmarks``.

    Parameters
    ----------
    panel : Panel
        The training panel with visits (``patient_id``, ``month``), all samples.
    therapies : list of str
        The therapies of the baseline heads; a landmark head is fitted for each that has
        enough patients with a sample in the landmark's window (at least
        ``config.n_splits`` responders and non-responders), the others are skipped and
        ``log`` says so.
    config : TrainConfig
    log : callable, optional
    baseline_reports : dict, optional
        The baseline heads' cross-validation (:func:`cytoresp.train.fitting.evaluate_cv`):
        each landmark head is compared with its baseline head out of fold on the same
        patients (:func:`baseline_comparison`); where it does not clearly beat it, scoring
        at that landmark uses the baseline head's probability (``scored_by`` in the
        metadata) and the alert threshold is chosen on the baseline head's out-of-fold
        probabilities of the same patients.

    Returns
    -------
    heads : LandmarkHeads
    reports : dict
        Landmark month -> therapy -> :class:`LandmarkReport`.
    """
    from cytoresp.features.change import ChangeFromBaseline
    from cytoresp.models.landmarks import landmark_windows

    log = log or (lambda _msg: None)
    visits = panel.to_model_frame(visits=True)
    outcomes = patient_outcomes(panel)
    at_base = visits["month"].to_numpy(dtype=np.float64) == 0.0
    baseline_sample = pd.Series(visits.index[at_base].astype(str),
                                index=visits["patient_id"].to_numpy(dtype=object)[at_base])
    baseline_reports = baseline_reports or {}
    windows = landmark_windows(config.landmarks, config.landmark_window)
    heads: dict[int, dict[str, TherapyHead]] = {}
    changes: dict[int, ChangeFromBaseline] = {}
    reports: dict[int, dict[str, LandmarkReport]] = {}
    meta: dict[str, dict] = {}
    for month, window in windows.items():
        # the change step learns no outcome (which analytes are below their limit at both
        # visits somewhere, the floor for a 0): fitted once on the cohort's landmark table
        table = landmark_table_in(visits, month, window)
        if len(table) == 0:
            log(f"landmark {month}: no patient has a sample in ({window[0]:g}, "
                f"{window[1]:g}] months; no head")
            meta[str(month)] = {"window": list(window), "n_training": {}, "skipped": {},
                                "cv_metrics": {}, "alert": {}, "vs_baseline_head": {},
                                "scored_by": {}}
            continue
        change = ChangeFromBaseline().fit(table)
        changes[month] = change
        inputs = landmark_inputs(visits, month, window, change)
        frame_all = inputs.drop(columns=["month_on"])
        deltas = [c for c in frame_all.columns if is_change_feature(c)]
        cfg = landmark_config(config, list(frame_all.columns), deltas)
        heads[month], reports[month] = {}, {}
        info = {"window": list(window), "n_training": {}, "skipped": {}, "cv_metrics": {},
                "alert": {}, "vs_baseline_head": {}, "scored_by": {}}
        for t in therapies:
            who = outcomes.reindex(frame_all.index)
            mask = (who["therapy"] == t).to_numpy() & who["responder"].notna().to_numpy()
            frame, y = frame_all.loc[mask], who["responder"].to_numpy()[mask].astype(int)
            n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
            if min(n_pos, n_neg) < config.n_splits:
                info["skipped"][t] = f"{n_pos} responders, {n_neg} non-responders"
                log(f"landmark {month}: {t} skipped ({n_pos} responders and {n_neg} "
                    f"non-responders with a sample in ({window[0]:g}, {window[1]:g}] months; "
                    f"{config.n_splits}-fold cross-validation needs {config.n_splits} of each)")
                continue
            log(f"landmark {month}: {t}: {len(y)} patients with a sample in "
                f"({window[0]:g}, {window[1]:g}] months, {n_pos} responders")
            cv = cross_validate(frame, y, cfg, alert_sensitivity=config.alert_sensitivity,
                                baseline_covariates=deltas)
            report = evaluate_cv(cv, t, cfg)
            head = fit_head(frame, y, t, cfg, cv)
            _changes_from_zero(head)
            base_report = baseline_reports.get(t)
            versus, paired = baseline_comparison(
                cv, base_report.cv if base_report is not None else None, baseline_sample,
                config)
            # the landmark head scores only where it clearly beat the baseline head out of
            # fold; elsewhere the baseline head's probability is the on-treatment estimate
            scored_by = "baseline" if versus["beats"] is False else "landmark"
            # the landmark head's own threshold, on its own probabilities: kept also where
            # the baseline head scores, for the patients without a baseline sample (they
            # are still scored by the landmark head, models/landmarks.py)
            own_threshold = final_alert_threshold(head, cv, y, config.alert_sensitivity)
            if scored_by == "landmark":
                head.alert_threshold = own_threshold
                alert = alert_metrics(cv, config)
            else:
                first = paired[paired["repeat"] == 0]
                head.alert_threshold = choose_alert_threshold(
                    first["y"].to_numpy(), first["p_baseline"].to_numpy(),
                    config.alert_sensitivity)
                alert = baseline_alert_metrics(paired, config)
            info["vs_baseline_head"][t] = versus
            info["scored_by"][t] = scored_by
            heads[month][t] = head
            reports[month][t] = LandmarkReport(month, report, alert, versus)
            info["n_training"][t] = report.n
            info["cv_metrics"][t] = report.flat_metrics()
            info["alert"][t] = {**alert, "threshold": head.alert_threshold,
                                "landmark_threshold": own_threshold}
            if versus["difference"] is not None:
                log(f"landmark {month}: {t}: ROC AUC {versus['difference']:+.3f} "
                    f"(95% CI {versus['lower']:+.3f} to {versus['upper']:+.3f}) against the "
                    f"baseline head on the same patients, out of fold: scored by the "
                    f"{scored_by} head")
            log(f"landmark {month}: {t}: cross-validated ROC AUC "
                f"{report.metrics['roc_auc']}; alert (p <= {head.alert_threshold:.3f}) "
                f"sensitivity {alert['sensitivity']:.2f}, specificity "
                f"{alert['specificity']:.2f} out of fold")
        info["baseline_verdict"] = verdict_to_dict({"cv_metrics": info["cv_metrics"]})
        meta[str(month)] = info
    kept = {m: h for m, h in heads.items() if h}
    result = LandmarkHeads(
        heads=kept,
        change={m: changes[m] for m in kept},
        window=config.landmark_window,
        alert_sensitivity=float(config.alert_sensitivity),
        metadata=meta,
    )
    return result, reports


def baseline_alert_metrics(paired: pd.DataFrame, config: TrainConfig) -> dict[str, float]:
    """:func:`alert_metrics` of an alert on the baseline head's out-of-fold probabilities.

    The probabilities are already out of fold; the threshold is then chosen out of sample
    too: patients are split in ``config.n_splits`` stratified folds, and each fold's
    patients are flagged with the threshold chosen on the other folds' patients (same
    repeat).
    """
    from sklearn.model_selection import StratifiedKFold

    rows = []
    for r, part in paired.groupby("repeat", sort=True):
        part = part.reset_index(drop=True)
        y = part["y"].to_numpy(dtype=int)
        alert = np.zeros(len(part), dtype=int)
        k = max(2, min(config.n_splits, int(np.bincount(y, minlength=2).min())))
        folds = StratifiedKFold(k, shuffle=True, random_state=config.seed + int(r))
        for train, test in folds.split(part, y):
            t = choose_alert_threshold(y[train], part["p_baseline"].to_numpy()[train],
                                       config.alert_sensitivity)
            alert[test] = part["p_baseline"].to_numpy()[test] <= t
        rows.append(part.assign(alert=alert))
    return alert_metrics(CVResult(oof=pd.concat(rows, ignore_index=True)), config)


def landmark_config(config: TrainConfig, columns: list[str], deltas: list[str]) -> TrainConfig:
    """The config of a landmark head: the baseline head's, the changes as numeric inputs."""
    covs = config.features.get("covariates", "default")
    if covs == "default":
        covs = [c for c in CLINICAL_COVARIATES if c in columns]
    base = [c for c in (covs or []) if c in columns]
    return dataclasses.replace(config, features={**config.features, "covariates": base + deltas})


def _changes_from_zero(head: TherapyHead) -> None:
    """Arrows of change inputs say up or down since baseline (background 0), not vs the mean."""
    names = head.features.input_names_
    bg = np.asarray(head.background, dtype=np.float64).copy()
    for j, name in enumerate(names):
        if is_change_feature(name):
            bg[j] = 0.0
    head.background = bg


def final_alert_threshold(
    head: TherapyHead, cv: CVResult, y: np.ndarray, sensitivity: float
) -> float:
    """The alert threshold of the final head, on the out-of-fold log-odds it is calibrated on.

    The same log-odds :func:`~cytoresp.train.fitting.fit_head` fits the calibration on:
    the classifier's own out-of-fold log-odds where it has them, else the first CV
    repeat's.
    """
    own = getattr(head.model, "oof_margin_", None)
    if own is not None:
        margin, labels = np.asarray(own, dtype=np.float64), np.asarray(y)
    else:
        first = cv.oof[cv.oof["repeat"] == 0]
        margin, labels = first["margin"].to_numpy(), first["y"].to_numpy()
    p = head.calibrator.response_probability(margin)
    return choose_alert_threshold(labels, p, sensitivity)
