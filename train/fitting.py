"""Fit a ResponseModel: cross-validate each therapy head, then fit it on all its patients."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike

import numpy as np
import pandas as pd

from cytoresp.errors import InputError, Problem
from cytoresp.models.card import training_data_summary
from cytoresp.models.reference import training_quantiles, training_ranges
from cytoresp.models.response_model import ResponseModel, TherapyHead
from cytoresp.models.shapley import background_sample
from cytoresp.models.verdict import verdict_to_dict
from cytoresp.panels.panel import CLINICAL_COVARIATES, Panel
from cytoresp.panels.therapies import therapy_display, therapy_order
from cytoresp.train.calibration import fit_calibration
from cytoresp.train.config import TrainConfig
from cytoresp.train.cv import CVResult, check_trainable, cross_validate, make_head
from cytoresp.train.metrics import Estimate, evaluate, paired_difference

Log = Callable[[str], None]


@dataclass
class TherapyReport:
    """Cross-validated evaluation of one therapy head.

    Attributes
    ----------
    therapy : str
    n, n_responders : int
    metrics : dict of str to Estimate
        Default model, pooled over repeats, bootstrap 95% intervals over patients.
    baselines : dict of str to dict of str to Estimate
        Same for each baseline, on the same folds.
    differences : dict of str to Estimate
        Paired ROC AUC difference, default minus baseline.
    cv : CVResult
    """

    therapy: str
    n: int
    n_responders: int
    metrics: dict[str, Estimate]
    baselines: dict[str, dict[str, Estimate]]
    differences: dict[str, Estimate]
    cv: CVResult

    def flat_metrics(self) -> dict[str, float]:
        """``{therapy}_{metric}`` (+ ``_lower``/``_upper``) for MLflow."""
        out: dict[str, float] = {}
        t = self.therapy

        def put(prefix: str, est: Estimate) -> None:
            out[prefix] = est.value
            out[f"{prefix}_lower"] = est.lower
            out[f"{prefix}_upper"] = est.upper

        for name, est in self.metrics.items():
            put(f"{t}_{name}", est)
        for base, metrics in self.baselines.items():
            for name in ("roc_auc", "pr_auc", "brier"):
                if name in metrics:
                    put(f"{t}_{base}_{name}", metrics[name])
        for base, est in self.differences.items():
            put(f"{t}_auc_diff_vs_{base}", est)
        return {k: float(v) for k, v in out.items()}


def therapy_rows(
    panel: Panel, therapy: str, plate: bool = False
) -> tuple[pd.DataFrame, np.ndarray]:
    """Model frame and labels of the patients given ``therapy`` with a known outcome.

    ``plate``: include the ``plate`` code column (per-plate normalisation).
    """
    mask = (panel.therapy == therapy) & panel.responder.notna()
    frame = panel.to_model_frame(plate=plate).loc[mask.to_numpy()]
    y = panel.responder[mask].to_numpy(dtype=int)
    return frame, y


def labelled_counts(panel: Panel) -> dict[str, int]:
    """Patients with a known outcome per therapy, in registry order."""
    if panel.therapy is None or panel.responder is None:
        return {}
    known = panel.therapy[panel.responder.notna()].dropna()
    counts = known.value_counts()
    return {t: int(counts[t]) for t in therapy_order(counts.index)}


def resolve_therapies(
    panel: Panel, therapy: str, min_patients: int = 1, log: Log | None = None
) -> list[str]:
    """The therapies to train: ``all`` means every therapy with ``min_patients`` patients.

    Patients count when their outcome is known. A therapy named alone is trained whatever
    its size (cross-validation then says whether it can run); with ``all``, the smaller
    ones are skipped and ``log`` says so.
    """
    if panel.therapy is None or panel.responder is None:
        raise InputError(
            [Problem(panel.source, None, None, "training needs 'therapy' and 'responder' columns")]
        )
    counts = labelled_counts(panel)
    present = list(counts)
    if therapy != "all":
        if therapy not in present:
            raise InputError([Problem(
                panel.source, None, "therapy",
                f"no patients with therapy {therapy} and a known outcome in the data "
                f"(found: {', '.join(present) or 'none'})",
            )])
        return [therapy]
    wanted = [t for t in present if counts[t] >= min_patients]
    skipped = {t: counts[t] for t in present if t not in wanted}
    if skipped and log is not None:
        log("skipped (fewer than min_patients_per_head = "
            f"{min_patients} patients with a known outcome): "
            + ", ".join(f"{t} ({n})" for t, n in skipped.items()))
    if not wanted:
        raise InputError([Problem(
            panel.source, None, "therapy",
            f"no therapy has at least {min_patients} patients with a known outcome "
            f"(min_patients_per_head; found: "
            f"{', '.join(f'{t} ({n})' for t, n in counts.items()) or 'none'}); lower "
            f"min_patients_per_head in the config, or train one therapy with --therapy",
        )])
    return wanted


def trained_summary(model: ResponseModel) -> str:
    """What a training run fitted and skipped, in words.

    Examples
    --------
    >>> trained_summary(model)
    'trained 2 heads: ifnb (...), ga (...)'
    """
    n = model.metadata.get("n_training", {})
    heads = model.therapies
    text = f"trained {len(heads)} head{'s' if len(heads) != 1 else ''}: " + ", ".join(
        f"{t} ({n.get(t, '?')} patients)" if i == 0 else f"{t} ({n.get(t, '?')})"
        for i, t in enumerate(heads)
    )
    skipped = model.metadata.get("skipped_therapies") or {}
    if skipped:
        text += "; skipped " + ", ".join(
            f"{t} ({k} patients, fewer than min_patients_per_head = "
            f"{model.metadata.get('config', {}).get('min_patients_per_head')})"
            for t, k in skipped.items()
        )
    others = model.metadata.get("other_therapies") or []
    if len(heads) == 1 and not skipped and not others:
        text += f" (the data hold no other therapy than {therapy_display(heads[0])})"
    return text


def evaluate_cv(cv: CVResult, therapy: str, config: TrainConfig) -> TherapyReport:
    """Metrics with bootstrap intervals, pooled over repeats, resampling patients."""
    oof = cv.oof
    y, groups = oof["y"].to_numpy(), oof["sample_id"].to_numpy()
    kw = {"n_boot": config.n_boot, "seed": config.seed, "groups": groups}
    metrics = evaluate(y, oof["p_default"].to_numpy(), 0.5, **kw)
    at_threshold = evaluate(y, oof["decision"].to_numpy(dtype=float), 0.5, **kw)
    for name in ("balanced_accuracy", "sensitivity", "specificity"):
        metrics[name] = at_threshold[name]
    baselines, differences = {}, {}
    for name in cv.models:
        if name == "default":
            continue
        baselines[name] = evaluate(y, oof[f"p_{name}"].to_numpy(), 0.5, **kw)
        differences[name] = paired_difference(
            y, oof["p_default"].to_numpy(), oof[f"p_{name}"].to_numpy(), "roc_auc", **kw
        )
    first = oof[oof["repeat"] == 0]
    return TherapyReport(
        therapy=therapy,
        n=len(first),
        n_responders=int(first["y"].sum()),
        metrics=metrics,
        baselines=baselines,
        differences=differences,
        cv=cv,
    )


def fit_head(
    frame: pd.DataFrame,
    y: np.ndarray,
    therapy: str,
    config: TrainConfig,
    cv: CVResult,
    sample_weight: np.ndarray | None = None,
) -> TherapyHead:
    """Fit the head on all rows, then its calibration and threshold on out-of-fold log-odds.

    The out-of-fold log-odds are the ones each outer fold of the cross-validation was
    calibrated on, computed the same way on all rows: the classifier's own (the super
    learner's ``oof_margin_``), or else the first CV repeat's outer out-of-fold log-odds
    (out-of-fold fits of the same head, as the outer folds' inner clones are).

    ``sample_weight`` (e.g. inverse-propensity weights) weights the final fit only.
    """
    fit_params = {} if sample_weight is None else {"model__sample_weight": sample_weight}
    pipeline = make_head(config).fit(frame, y, **fit_params)
    own = getattr(pipeline.named_steps["model"], "oof_margin_", None)
    if own is not None:
        # the classifier's own out-of-fold log-odds: what each outer fold was calibrated on
        margin, labels = np.asarray(own, dtype=np.float64), np.asarray(y)
    else:
        first = cv.oof[cv.oof["repeat"] == 0]
        margin, labels = first["margin"].to_numpy(), first["y"].to_numpy()
    calibrator, threshold = fit_calibration(margin, labels, config)
    features = pipeline.named_steps["features"]
    Z = features.transform_inputs(frame)
    background = np.nanmean(np.asarray(Z, dtype=np.float64), axis=0)
    return TherapyHead(
        therapy=therapy,
        pipeline=pipeline,
        input_columns=list(frame.columns),
        background=np.where(np.isfinite(background), background, 0.0),
        calibrator=calibrator,
        threshold=threshold,
        background_sample=background_sample(
            features, frame, size=config.explain_background, seed=config.seed
        ),
    )


def fit_response_model(
    data: Panel | pd.DataFrame | str | PathLike,
    therapy: str = "all",
    config: TrainConfig | None = None,
    log: Log | None = None,
) -> tuple[ResponseModel, dict[str, TherapyReport]]:
    """Cross-validate and fit one head per therapy (no MLflow; see :mod:`cytoresp.train.job`).

    Parameters
    ----------
    data : Panel, DataFrame or path
        A training panel with ``therapy`` and ``responder``.
    therapy : str
        ``"all"`` (every therapy with ``config.min_patients_per_head`` patients) or one
        canonical therapy id (``docs/therapies.md``).
    config : TrainConfig, optional
        With ``config.landmarks`` (a panel with visits), the landmark heads are fitted
        too (:func:`cytoresp.train.landmarks.fit_landmark_heads`) and stored in
        ``model.landmarks``. A panel with visits trains its baseline heads on its month-0
        samples (:func:`baseline_panel`).
    log : callable, optional
        Receives one line of progress text at a time.

    Returns
    -------
    model : ResponseModel
    reports : dict of str to TherapyReport
        The baseline heads' (the landmark heads' are in ``model.landmarks.reports``).

    Examples
    --------
    A quick run (one repeat of 3 folds, no bootstrap intervals on the metrics, 5 refits
    for the report's spread, small heads with fixed penalties):

    >>> from cytoresp.datasets import simulate_cohort
    >>> quick = TrainConfig(n_splits=3, n_repeats=1, n_boot=0, n_jobs=1, n_ensemble=5,
    ...                     model={"n_estimators": 20, "early_stopping": False, "C": 1.0,
    ...                            "C_ridge": 1.0})
    >>> model, reports = fit_response_model(simulate_cohort(200, seed=3).panel, config=quick)
    >>> model.therapies, sorted(reports)
    (['ifnb', 'ga'], ['ga', 'ifnb'])
    """
    config = config or TrainConfig()
    log = log or (lambda _msg: None)
    if not isinstance(data, Panel):
        from cytoresp.panels.read import read_panel

        data = read_panel(data, require_labels=True, therapies=config.declared,
                          columns=config.columns)
    panel = data
    full = panel
    if getattr(panel, "has_visits", False):
        panel = baseline_panel(panel, log)
    elif config.landmarks:
        from cytoresp.errors import UsageError

        raise UsageError(
            "landmark heads (--landmarks) need a panel with visits: a 'patient_id' and a "
            "'month' column (months since the therapy started, 0 = baseline; "
            "docs/data-format.md)"
        )
    extra = [c for c in panel.covariates.columns if c not in CLINICAL_COVARIATES]
    if extra and "covariates" not in config.features:
        # declared covariates and measurements are inputs of the heads beside the clinical
        # covariates (PanelFeatures passes only the clinical ones by default)
        import dataclasses

        config = dataclasses.replace(
            config, features={**config.features, "covariates": list(panel.covariates.columns)})
    therapies = resolve_therapies(panel, therapy, config.min_patients_per_head, log)
    if config.ipw and set(therapies) - {"ifnb", "ga"}:
        from cytoresp.errors import UsageError

        raise UsageError(
            "inverse-propensity weighting (--ipw) compares IFN-β with GA only; heads for "
            f"{', '.join(t for t in therapies if t not in ('ifnb', 'ga'))} cannot be weighted "
            "(train them without --ipw, or with --therapy ifnb / ga)"
        )
    assignment = check_assignment(panel, config, log)
    heads, reports, training, weights = {}, {}, {}, {}
    given = labelled_therapies(panel, therapies)
    frame_labelled = panel.to_model_frame(plate=config.plate_normalisation).loc[
        given.index.to_numpy()
    ]
    for t in therapies:
        frame, y = therapy_rows(panel, t, plate=config.plate_normalisation)
        check_trainable(y, config.n_splits, t, panel.source)
        log(
            f"{t}: {len(y)} patients, {int(y.sum())} responders; "
            f"{config.n_repeats}x{config.n_splits}-fold nested cross-validation"
        )
        # the fold heads also score the other therapies' patients: the cross-fitted
        # outcome model behind the therapy choice (cytoresp.train.choice)
        others = frame_labelled.loc[(given != t).to_numpy()]
        score = others if len(therapies) > 1 and len(others) else None
        cv = cross_validate(frame, y, config, score=score)
        reports[t] = evaluate_cv(cv, t, config)
        log(f"{t}: cross-validated ROC AUC {reports[t].metrics['roc_auc']}")
        if config.ipw:
            weights[t] = assignment.weights(config.ipw_clip).loc[frame.index].to_numpy()
        heads[t] = fit_head(frame, y, t, config, cv, sample_weight=weights.get(t))
        training[t] = (frame, y)
    ensemble = None
    if config.n_ensemble > 0 and len(heads) == 2:
        from cytoresp.train.ensemble import fit_bootstrap_ensemble

        log(f"bootstrap ensemble: {config.n_ensemble} refits per head (report spread)")
        ensemble = fit_bootstrap_ensemble(
            heads,
            training,
            config.n_ensemble,
            level=config.recommend_level,
            seed=config.seed,
            n_jobs=config.n_jobs,
            sample_weight=weights or None,
        )
    choice = None
    if len(therapies) > 1:
        # the final heads' probabilities of the same patients: the scores the calibration
        # is applied to at scoring time (put on the out-of-fold scale, train/choice.py)
        final = pd.DataFrame(
            {t: heads[t].response_probability(frame_labelled) for t in therapies},
            index=given.index,
        )
        choice = fit_choice(
            panel, given, {t: reports[t].cv for t in therapies}, assignment, config, final
        )
        log(choice.summary())
    frame_all = panel.to_model_frame()
    model = ResponseModel(
        heads=heads,
        training_ranges=training_ranges(frame_all),
        training_quantiles=training_quantiles(frame_all),
        metadata={
            "therapies": therapies,
            "config": config.to_dict(),
            "n_training": {t: reports[t].n for t in therapies},
            "cv_metrics": {t: reports[t].flat_metrics() for t in therapies},
            "declared_therapies": dict(config.therapies),
            "declared_columns": config.declaration(),
            "outcome_name": config.outcome_name or "response",
            "skipped_therapies": {
                t: k for t, k in labelled_counts(panel).items()
                if therapy == "all" and t not in therapies
            },
            "other_therapies": [t for t in labelled_counts(panel) if t not in therapies],
        },
        ensemble=ensemble,
        choice=choice,
    )
    if assignment is not None:
        model.metadata["assignment"] = {**assignment.to_dict(), "ipw": config.ipw}
    # the model card's data section and the verdict against the baselines (models/card.py,
    # models/verdict.py)
    model.metadata["training_data"] = training_data_summary(panel, therapies)
    model.metadata["baseline_verdict"] = verdict_to_dict(model.metadata)
    if config.landmarks:
        from cytoresp.train.landmarks import fit_landmark_heads

        landmarks, landmark_reports = fit_landmark_heads(full, therapies, config, log,
                                                         baseline_reports=reports)
        landmarks.reports = landmark_reports
        model.landmarks = landmarks
        model.metadata["landmarks"] = landmarks.metadata
    return model, reports


def baseline_panel(panel: Panel, log: Log | None = None) -> Panel:
    """The baseline (month 0) samples of a panel with visits, as a panel without visits.

    The baseline heads are fitted on these only, exactly as on a file of baseline
    samples; the on-treatment samples go to the landmark heads (``--landmarks``).
    """
    import dataclasses

    at_baseline = (panel.month.to_numpy(dtype=np.float64) == 0.0)
    base = dataclasses.replace(panel.subset(at_baseline), patient_id=None, month=None)
    n_on = int((~at_baseline).sum())
    if n_on and log is not None:
        log(f"baseline heads: {int(at_baseline.sum())} baseline (month 0) samples; "
            f"{n_on} on-treatment samples are read by the landmark heads only (--landmarks)")
    return base


def labelled_therapies(panel: Panel, therapies: list[str]) -> pd.Series:
    """Therapy of every patient with a known outcome and one of ``therapies`` (index sample_id)."""
    mask = (panel.therapy.isin(therapies) & panel.responder.notna()).to_numpy()
    frame = panel.to_model_frame()
    return pd.Series(
        panel.therapy.to_numpy(dtype=object)[mask], index=frame.index[mask], name="therapy"
    )


def fit_choice(
    panel: Panel,
    given: pd.Series,
    cvs: dict,
    assignment,
    config: TrainConfig,
    final: pd.DataFrame | None = None,
):
    """The therapy choice (:mod:`cytoresp.train.choice`) from the heads' cross-validations.

    ``final``: the final heads' probabilities of the labelled patients (index as
    ``given``, one column per therapy), for the score rescaling.
    """
    from cytoresp.train.choice import (
        crossfit_by_repeat,
        fit_therapy_choice,
        propensity_matrix,
    )

    therapies = list(cvs)
    folds = crossfit_by_repeat(cvs, given)
    mu = sum(m for m, _ in folds) / len(folds)
    estimated, source = None, "observed shares (randomised assignment assumed)"
    if assignment is not None and not assignment.auc > assignment.auc_chance:
        # Assignment is not predictable beyond chance: the noise of an estimated
        # propensity, anti-correlated with the therapy given out of fold, multiplies the
        # outcome heads' errors in the DR pseudo-outcomes and biased the BLP slope down
        # (about -0.5 on null randomised cohorts of 300 per therapy), so use the shares.
        source = (
            "observed shares (cross-fitted propensity AUC "
            f"{assignment.auc:.2f} is within chance, {assignment.auc_chance:.2f})"
        )
    elif assignment is not None and set(therapies) == {"ifnb", "ga"}:
        p = assignment.propensity.copy()
        p.index = p.index.astype(str)
        p = p.reindex(given.index.astype(str)).to_numpy(dtype=np.float64)
        if not np.isnan(p).any():
            estimated = pd.DataFrame({"ifnb": p, "ga": 1.0 - p}, index=given.index)
            source = "cross-fitted logistic model of assignment"
    e = propensity_matrix(given, therapies, estimated, clip=config.ipw_clip)
    responder = panel.responder.to_numpy(dtype=np.float64)
    mask = (panel.therapy.isin(therapies) & panel.responder.notna()).to_numpy()
    return fit_therapy_choice(
        responder[mask],
        given,
        mu,
        e,
        folds=folds,
        final=final,
        level=config.recommend_level,
        alpha=config.choice_alpha,
        propensity_source=source,
        info={
            "folds": f"{config.n_repeats}x{config.n_splits}",
            "propensity_clip": config.ipw_clip,
            "method": "BLP on cross-fitted DR pseudo-outcomes, HC3, per fold and repeat; "
            "averaged, covariance bounded by the folds' average (valid under any "
            "dependence between folds); one-sided slope test; "
            "final heads' predicted difference standardised onto the out-of-fold one",
        },
    )


def check_assignment(panel: Panel, config: TrainConfig, log: Log):
    """Propensity diagnostics of the training cohort (:mod:`cytoresp.train.propensity`).

    Logs a warning when the therapy groups differ strongly; returns the report, or None
    when the data hold one therapy only (then ``config.ipw`` is refused).
    """
    from cytoresp.errors import UsageError
    from cytoresp.train.propensity import assess_assignment

    report = assess_assignment(panel, seed=config.seed, clip=config.ipw_clip)
    if report is None:
        if config.ipw:
            raise UsageError(
                "inverse-propensity weighting (--ipw) needs labelled patients of both "
                "therapies (at least 5 of each) in the training data"
            )
        return None
    log(
        f"therapy assignment: cross-validated propensity AUC {report.auc:.2f}, "
        f"max |SMD| {report.max_abs_smd:.2f} ({report.max_abs_weighted_smd:.2f} after weighting)"
    )
    for text in report.warnings:
        log(f"WARNING: {text}")
    if report.warnings and not config.ipw:
        from cytoresp.train.propensity import IPW_ADVICE

        log(f"WARNING: {IPW_ADVICE}")
    if config.ipw:
        log(
            f"fitting the heads with inverse-propensity weights (clip {config.ipw_clip}); "
            "weighting balances measured inputs only"
        )
    return report


__all__ = ["TherapyReport", "fit_response_model", "resolve_therapies", "trained_summary"]
