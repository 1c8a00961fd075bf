"""The training job: cross-validate, fit, and log everything to MLflow; register the model."""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from cytoresp import interrupts
from cytoresp.interrupts import commit_guard, raise_if_interrupted
from cytoresp.models.response_model import ResponseModel
from cytoresp.panels.panel import Panel
from cytoresp.train.config import TrainConfig
from cytoresp.train.fitting import Log, TherapyReport, fit_response_model
from cytoresp.train.locking import retry_if_locked, store_lock
from cytoresp.train.tracking import configure_tracking

DEFAULT_EXPERIMENT = "cytoresp"
CANDIDATE_ALIAS = "candidate"


@dataclass
class TrainingResult:
    """What a training job produced and where it lives."""

    model: ResponseModel
    reports: dict[str, TherapyReport]
    tracking_uri: str
    experiment: str
    run_id: str
    model_uri: str
    registered_name: str | None = None
    registered_version: str | None = None
    out_dir: str | None = None
    artifacts: list[str] = field(default_factory=list)


def panel_fingerprint(panel: Panel) -> str:
    """sha256 of the panel's values, censoring, labels and covariates (order-sensitive)."""
    digest = hashlib.sha256()
    for part in (panel.values, panel.censoring, panel.covariates):
        digest.update(pd.util.hash_pandas_object(part, index=True).to_numpy().tobytes())
        digest.update(",".join(map(str, part.columns)).encode())
    for series in (panel.therapy, panel.responder):
        if series is not None:
            digest.update(pd.util.hash_pandas_object(series.astype(str)).to_numpy().tobytes())
    return digest.hexdigest()


def run_training_job(
    data: Panel | pd.DataFrame | str | PathLike,
    therapy: str = "all",
    experiment: str = DEFAULT_EXPERIMENT,
    register: str | None = None,
    out_dir: str | PathLike | None = None,
    config: TrainConfig | None = None,
    tracking_uri: str | None = None,
    log: Log | None = None,
    label_from: str | None = None,
    format: str | None = None,  # noqa: A002 - read_panel's keyword
) -> TrainingResult:
    """Train, evaluate and log a ResponseModel in one MLflow run.

    One parent run per job with a child run per outer fold; parameters, metrics with
    95% intervals, the configuration, the dataset fingerprint, ROC / calibration / Shapley
    plots, out-of-fold predictions, and the model (pyfunc, signature on float columns,
    input example, pinned requirements), registered under ``register`` with alias
    ``candidate``. ``out_dir`` also writes the standalone model directory. ``format``
    forces the input format (:func:`~cytoresp.panels.read.read_panel`).
    """
    import dataclasses

    import mlflow

    from cytoresp.models.mlflow_flavour import log_response_model

    log = log or (lambda _msg: None)
    config = config or TrainConfig()
    if config.outcome_name is None and (config.label or label_from):
        name = config.label or f"response by the {label_from} definition"
        config = dataclasses.replace(config, outcome_name=name)
    if isinstance(data, Panel):
        panel = data
    else:
        from cytoresp.train.labels import read_training_panel

        panel = read_training_panel(
            data, label_from, format=format, label=config.label, positive=config.positive,
            therapies=config.declared, therapy_if_absent=config.therapy_if_absent,
            columns=config.columns, select_rows=config.select_rows,
        )
        for warning in panel.warnings:
            log(f"warning: {warning}")
    if config.strict and panel.strict_notes:
        from cytoresp.errors import InputError, Problem

        raise InputError([Problem(panel.source, None, None, f"strict: {note}")
                          for note in panel.strict_notes])
    log(f"outcome: {config.outcome_name or 'response'}")
    if config.plate_normalisation:
        panel.to_model_frame(plate=True)  # no plate column: InputError before any MLflow run
    uri = configure_tracking(tracking_uri)
    # MLflow writes hold the store's lock (cytoresp.train.locking): concurrent jobs on one
    # sqlite store fit in parallel but write one at a time
    with store_lock(uri):
        retry_if_locked(mlflow.set_experiment, experiment)
    fingerprint = panel_fingerprint(panel)
    log(f"tracking store: {uri} (experiment {experiment!r})")

    with store_lock(uri):
        active = mlflow.start_run(run_name=f"train-{therapy}")
    with active as run:
        writes = contextlib.ExitStack()
        try:
            writes.enter_context(store_lock(uri))
            mlflow.set_tags({"cytoresp.job": "train", "cytoresp.data_fingerprint": fingerprint,
                             "cytoresp.outcome": config.outcome_name or "response"})
            mlflow.log_params(
                {
                    "therapy": therapy,
                    "outcome_name": config.outcome_name or "response",
                    "data_source": panel.source,
                    "n_samples": len(panel),
                    "analytes": ",".join(panel.analytes),
                    **_flatten("config", config.to_dict()),
                }
            )
            _log_dataset(panel, fingerprint)
            writes.close()
            with worker_signals():  # Ctrl-C reaches loky workers too: only this process acts
                model, reports = fit_response_model(panel, therapy, config, log=log)
            raise_if_interrupted()  # a KeyboardInterrupt a library swallowed stops us here
            model.metadata["data_fingerprint"] = fingerprint
            model.metadata["mlflow_run_id"] = run.info.run_id
            writes.enter_context(store_lock(uri))
            assignment = model.metadata.get("assignment")
            if assignment:  # propensity diagnostics (cytoresp.train.propensity)
                from cytoresp.train.propensity import assignment_metrics

                mlflow.log_metrics(assignment_metrics(assignment))
                mlflow.log_dict(assignment, "assignment.json")
                warning = "; ".join(assignment["warnings"]) or "none"
                mlflow.set_tag("cytoresp.assignment_warning", warning[:5000])
            choice = getattr(model, "choice", None)
            if choice is not None:  # the therapy-choice gate (cytoresp.train.choice)
                mlflow.log_metrics(choice.metrics())
                mlflow.log_dict(choice.to_dict(), "therapy_choice.json")
                mlflow.set_tag("cytoresp.choice_gate", "passed" if choice.gate_passed else "failed")
            for report in reports.values():
                mlflow.log_metrics(report.flat_metrics())
                _log_fold_runs(report)
            landmarks = getattr(model, "landmarks", None)
            if landmarks is not None:  # landmark heads: metrics prefixed L<month>_
                for by_therapy in landmarks.reports.values():
                    for lreport in by_therapy.values():
                        mlflow.log_metrics(lreport.flat_metrics())
                        _log_fold_runs(lreport.report, prefix=f"L{lreport.landmark}-")
                mlflow.log_dict(landmarks.metadata, "landmarks.json")
            mlflow.set_tags(verdict_tags(model))
            writes.close()
            with tempfile.TemporaryDirectory() as tmp:
                artifacts = _write_artifacts(Path(tmp), model, reports, panel, config)
                mlflow.log_artifacts(tmp)
            example = model.model_frame(panel).head(5)
            if "plate" in example.columns:  # the pyfunc takes plate labels, not codes
                example["plate"] = panel.plate.head(5).fillna("").astype(str).to_numpy()
            writes.enter_context(store_lock(uri))
            info = log_response_model(model, example)  # logged, not registered yet
            writes.close()
            version, saved = _commit(uri, run.info.run_id, info, register, out_dir, model, log)
        except BaseException:
            _end_run_locked(uri, "KILLED" if _interrupted() else "FAILED")
            writes.close()
            raise
    return TrainingResult(
        model=model,
        reports=reports,
        tracking_uri=uri,
        experiment=experiment,
        run_id=run.info.run_id,
        model_uri=f"models:/{register}/{version}" if register else info.model_uri,
        registered_name=register,
        registered_version=version,
        out_dir=saved,
        artifacts=artifacts,
    )


def verdict_tags(model: ResponseModel) -> dict[str, str]:
    """MLflow tags of the verdict against the baselines (:mod:`cytoresp.models.verdict`).

    ``cytoresp.beats_baselines.<therapy>`` is ``true``, ``false`` or ``untested`` for each
    head; ``cytoresp.beats_baselines`` is ``false`` when any head is, ``true`` when every
    head is, ``untested`` otherwise.

    Examples
    --------
    >>> tags = verdict_tags(model)
    >>> sorted(tags)
    ['cytoresp.beats_baselines', 'cytoresp.beats_baselines.ga', 'cytoresp.beats_baselines.ifnb']
    >>> set(tags.values()) <= {"true", "false", "untested"}
    True
    """
    from cytoresp.models.verdict import baseline_verdicts, status

    verdicts = baseline_verdicts(model.metadata)
    per = {t: status(verdicts.get(t, {})) for t in model.therapies}
    tags = {f"cytoresp.beats_baselines.{t}": s for t, s in per.items()}
    values = set(per.values())
    tags["cytoresp.beats_baselines"] = (
        "false" if "false" in values else "true" if values == {"true"} else "untested"
    )
    for month, info in (model.metadata.get("landmarks") or {}).items():
        # landmark heads: cytoresp.beats_baselines.L3.ifnb (not in the overall tag, which
        # stays the baseline heads')
        for t, comparisons in baseline_verdicts(info).items():
            tags[f"cytoresp.beats_baselines.L{month}.{t}"] = status(comparisons)
    return tags


def _commit(
    uri: str, run_id: str, info, register: str | None, out_dir, model: ResponseModel, log: Log
) -> tuple[str | None, str | None]:
    """The commit step of a training job, all or nothing with respect to interrupts.

    Registration with its alias, the standalone model folder (``--out``) and the end of
    the run as FINISHED run in one :func:`~cytoresp.interrupts.commit_guard`: after a
    SIGINT / SIGTERM none of them starts (the caller marks the run KILLED); a signal that
    arrives once they have started is honoured right after them.
    """
    import io

    import mlflow

    parts = [f"MLflow run {run_id} (FINISHED)"]
    if register:
        parts.append(f"registered model {register}")
    if out_dir is not None:
        parts.append(str(out_dir))
    version = saved = None
    with store_lock(uri), commit_guard(", ".join(parts)):
        if register:
            with contextlib.redirect_stderr(io.StringIO()):  # MLflow's registration chatter
                version = str(mlflow.register_model(info.model_uri, register).version)
            mlflow.MlflowClient().set_registered_model_alias(register, CANDIDATE_ALIAS, version)
            log(f"registered {register} version {version} (alias @{CANDIDATE_ALIAS})")
        if out_dir is not None:
            saved = str(Path(out_dir))
            model.save(saved)
            log(f"standalone model written to {saved}")
        mlflow.end_run()
    return version, saved


@contextlib.contextmanager
def worker_signals() -> Iterator[None]:
    """Worker processes started by joblib (loky) here ignore SIGINT.

    Ctrl-C on a terminal goes to the whole process group: a worker would otherwise die
    or send a KeyboardInterrupt of its own back. Only the parent acts on it (it records
    the signal, stops joblib, which kills the workers, and exits 130). Applied only when
    the command line handles signals (:func:`cytoresp.interrupts.handling`).
    """
    if not interrupts.installed():
        yield
        return
    from joblib import parallel_config

    with parallel_config(backend="loky", initializer=interrupts.ignore_sigint):
        yield


def _end_run_locked(uri: str, status: str) -> None:
    """Mark the active run ``status`` under the store's lock (without it if it is stuck)."""
    import mlflow

    from cytoresp.errors import TrackingError

    try:
        with store_lock(uri, timeout=60):
            mlflow.end_run(status=status)
    except TrackingError:
        mlflow.end_run(status=status)


def _interrupted() -> bool:
    import sys

    exc = sys.exc_info()[1]
    return interrupts.interrupted() or isinstance(exc, KeyboardInterrupt | SystemExit)


def _flatten(prefix: str, obj, out: dict | None = None) -> dict[str, str]:
    import re

    out = {} if out is None else out
    if isinstance(obj, dict):
        for k, v in obj.items():
            # MLflow parameter names allow letters, digits, _ - . space : / only (a declared
            # column may be a glob pattern such as "m00_*")
            _flatten(f"{prefix}.{re.sub(r'[^A-Za-z0-9_. :/-]', '_', str(k))}", v, out)
    else:
        out[prefix] = str(obj)
    return out


def _log_dataset(panel: Panel, fingerprint: str) -> None:
    import mlflow

    from cytoresp.panels.write import panel_to_frame

    table = panel_to_frame(panel)
    dataset = mlflow.data.from_pandas(
        table,
        source=panel.source,
        name=Path(panel.source).name or "panel",
        targets="responder" if "responder" in table.columns else None,
        digest=fingerprint[:20],
    )
    mlflow.log_input(dataset, context="training")


def _log_fold_runs(report: TherapyReport, prefix: str = "") -> None:
    import mlflow

    from cytoresp.train.metrics import brier, roc_auc

    oof = report.cv.oof
    for fold in report.cv.folds:
        rows = oof[(oof["repeat"] == fold["repeat"]) & (oof["fold"] == fold["fold"])]
        name = f"{prefix}{report.therapy}-repeat{fold['repeat']}-fold{fold['fold']}"
        with mlflow.start_run(run_name=name, nested=True):
            mlflow.log_params(
                {
                    "therapy": report.therapy,
                    "repeat": fold["repeat"],
                    "fold": fold["fold"],
                    "n_train": fold["n_train"],
                    "n_test": fold["n_test"],
                }
            )
            metrics = {
                "roc_auc": roc_auc(rows["y"], rows["p_default"]),
                "brier": brier(rows["y"], rows["p_default"]),
                "threshold": fold["threshold"],
                "calibration_intercept": fold["calibration"][0],
                "calibration_slope": fold["calibration"][1],
            }
            for model in report.cv.models:
                if model != "default":
                    metrics[f"{model}_roc_auc"] = roc_auc(rows["y"], rows[f"p_{model}"])
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})


def _write_artifacts(
    root: Path,
    model: ResponseModel,
    reports: dict[str, TherapyReport],
    panel: Panel,
    config: TrainConfig,
) -> list[str]:
    from cytoresp.models.card import CARD_FILE, render_card
    from cytoresp.models.persistence import library_versions
    from cytoresp.models.plots import plot_beeswarm, plot_importance
    from cytoresp.panels.write import atomic_output
    from cytoresp.train.plots import plot_reliability, plot_roc

    written = []
    if getattr(panel, "has_visits", False):  # the baseline heads' plots: month-0 samples
        from cytoresp.train.fitting import baseline_panel

        panel = baseline_panel(panel)
    with atomic_output(root / CARD_FILE) as fh:  # the same card is in the model's folder
        fh.write(render_card(model, versions=library_versions()))
    written.append(CARD_FILE)
    with atomic_output(root / "config.json") as fh:
        fh.write(json.dumps(config.to_dict(), indent=1))
    summary = {t: r.flat_metrics() for t, r in reports.items()}
    with atomic_output(root / "metrics.json") as fh:
        fh.write(json.dumps(summary, indent=1))
    written += ["config.json", "metrics.json"]
    plots = root / "plots"
    plots.mkdir()
    frame = model.model_frame(panel)
    for t, report in reports.items():
        oof = report.cv.oof
        with atomic_output(root / f"cv_predictions_{t}.csv") as fh:
            report.cv.oof.to_csv(fh, index=False)
        curves = {m: (oof["y"].to_numpy(), oof[f"p_{m}"].to_numpy()) for m in report.cv.models}
        figures = {
            f"roc_{t}.png": plot_roc(curves, title=f"Cross-validated ROC, {t}"),
            f"calibration_{t}.png": plot_reliability(
                oof["y"].to_numpy(), oof["p_default"].to_numpy(), title=f"Calibration, {t}"
            ),
        }
        rows = frame[(panel.therapy == t).to_numpy()]
        head = model.heads[t]
        _, contrib = head.cytokine_contributions(rows)
        Z = head.features.transform_inputs(rows[head.input_columns])
        figures[f"shapley_beeswarm_{t}.png"] = plot_beeswarm(
            contrib, Z, title=f"Shapley values of the log-odds of response to {t}"
        )
        figures[f"shapley_importance_{t}.png"] = plot_importance(
            contrib, title=f"Mean |Shapley value| of the log-odds of response to {t}"
        )
        for name, fig in figures.items():
            with atomic_output(plots / name, "wb") as fh:
                fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")
            written.append(f"plots/{name}")
        written.append(f"cv_predictions_{t}.csv")
    landmarks = getattr(model, "landmarks", None)
    if landmarks is not None:  # out-of-fold predictions of the landmark heads (with alerts)
        for month, by_therapy in landmarks.reports.items():
            for t, lreport in by_therapy.items():
                name = f"cv_predictions_L{month}_{t}.csv"
                oof = lreport.report.cv.oof
                with atomic_output(root / name) as fh:
                    oof.to_csv(fh, index=False)
                written.append(name)
                curves = {m: (oof["y"].to_numpy(), oof[f"p_{m}"].to_numpy())
                          for m in lreport.report.cv.models}
                figures = {
                    f"roc_L{month}_{t}.png": plot_roc(
                        curves, title=f"Cross-validated ROC, {t}, landmark {month}"),
                    f"calibration_L{month}_{t}.png": plot_reliability(
                        oof["y"].to_numpy(), oof["p_default"].to_numpy(),
                        title=f"Calibration, {t}, landmark {month}"),
                }
                for fname, fig in figures.items():
                    with atomic_output(plots / fname, "wb") as fh:
                        fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")
                    written.append(f"plots/{fname}")
    return written
