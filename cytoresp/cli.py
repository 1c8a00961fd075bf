"""The ``cytoresp`` command line (contract in DESIGN.md).

Exit codes: 0 success, 2 bad usage or bad input, 1 anything else, 130 interrupted.
Messages go to standard error, so standard output can carry data (``--output -``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from typing import Annotated

import typer
from rich.console import Console

from cytoresp import interrupts
from cytoresp.errors import (
    CytorespError,
    InputError,
    ModelIntegrityError,
    TrackingError,
    UsageError,
)

app = typer.Typer(
    name="cytoresp",
    help="Predict response to a multiple sclerosis therapy (IFN-β, glatiramer acetate, "
    "natalizumab, ...: docs/therapies.md) from a baseline cytokine panel, and explain it "
    "cytokine by cytokine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)

TherapyOpt = Annotated[
    str | None,
    typer.Option(
        "--therapy",
        help="score one head: a therapy id or name of docs/therapies.md (ifnb, ga, "
        "natalizumab, Tysabri, ...; default: every head)",
    ),
]
TrackingOpt = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking store (default: $MLFLOW_TRACKING_URI, "
        "else sqlite:///mlflow.db in the working directory)",
    ),
]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="exit 2 instead of warning for an ignored column, a guessed role (a plate "
        "column with one sample per plate) or an input the model needs that the file lacks",
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option("--format", help="wide, luminex, long, xlsx or parquet (default: detected)"),
]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("cytoresp")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            text = "unknown (not installed)"
        print(f"cytoresp {text}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", help="print the version and exit", callback=_version,
                     is_eager=True),
    ] = False,
) -> None:
    """Predict response to a multiple sclerosis therapy from a baseline cytokine panel."""


def _check_format(format: str | None) -> None:  # noqa: A002 - the option's name
    """Refuse an unknown ``--format`` before any work (the reader's own list)."""
    from cytoresp.panels.read import FORMATS

    if format is not None and format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")


def _log(message: str) -> None:
    err.print(f"· {message}", markup=False)


def _warn(message: object) -> None:
    err.print("[yellow]warning:[/yellow]", end=" ")
    err.print(str(message), markup=False)


def _error(prefix: str, message: object) -> None:
    err.print(f"[red]{prefix}[/red]", end=" ")
    err.print(str(message), markup=False)


@contextlib.contextmanager
def _warnings_once():
    """Collect the warnings of a command and show each once, with its count, at the end.

    A warning raised in every cross-validation fold (a ratio skipped for a missing analyte)
    would otherwise fill the log (137 times in one training log of issue #13).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            counts: dict[tuple[str, str], int] = {}
            for w in caught:
                key = (w.category.__name__, str(w.message))
                counts[key] = counts.get(key, 0) + 1
            for (category, message), n in counts.items():
                if "The specified dataset source can be interpreted" in message:
                    continue  # MLflow's note on a local path: harmless (STACK-NOTES.md)
                times = f" ({n} times)" if n > 1 else ""
                _warn(f"{message} [{category}]{times}")


def _refuse_strict(panel) -> None:
    """``--strict``: the panel's ignored columns and guessed roles are errors (exit 2)."""
    from cytoresp.errors import Problem

    if panel.strict_notes:
        raise InputError([Problem(panel.source, None, None, f"--strict: {note}")
                          for note in panel.strict_notes])


def _guard_input(path: str) -> None:
    """Refuse an input file that would exhaust memory, before any work (panels/limits.py)."""
    from cytoresp.panels.limits import check_input

    check_input(path)


def _check_therapy(therapy: str | None, allow_all: bool = False, declared=None) -> str | None:
    """The canonical id of ``--therapy`` (registry or ``declared`` names; ``all`` if allowed).

    A name close to a registered one but not one of its names is a typo: an error with
    "did you mean". Any other unknown name is returned as given, for the model to check
    against its heads (a therapy declared in its training config).
    """
    from cytoresp.panels.therapies import (
        resolve_therapy,
        suggest_therapies,
        unknown_therapy_message,
    )

    if therapy is None or (allow_all and therapy == "all"):
        return therapy
    tid = resolve_therapy(therapy, declared)
    if tid is not None:
        return tid
    if declared is not None or suggest_therapies(therapy, declared):
        raise UsageError(f"--therapy: {unknown_therapy_message(therapy, declared)}"
                         + ("; or 'all'" if allow_all else ""))
    return therapy


def _load(model: str, tracking_uri: str | None):
    from cytoresp.models.mlflow_flavour import is_uri, load_model

    if is_uri(model):
        from cytoresp.train.tracking import configure_tracking

        configure_tracking(tracking_uri)
    return load_model(model)


@app.command()
def simulate(
    n: Annotated[int, typer.Option("--n", help="number of patients", min=1)] = 600,
    seed: Annotated[int, typer.Option("--seed", help="random seed")] = 0,
    out: Annotated[str, typer.Option("--out", help="output CSV (- for stdout)")] = "-",
    truth: Annotated[
        str | None, typer.Option("--truth", help="also write true probabilities here")
    ] = None,
    assignment: Annotated[str, typer.Option(help="randomised or confounded")] = "randomised",
    visits: Annotated[
        str, typer.Option("--visits", help="months of the samples, e.g. 0,3,6 (0 = baseline)")
    ] = "0",
    on_treatment: Annotated[
        str | None,
        typer.Option("--on-treatment", help="literature (default) or none (with --visits)"),
    ] = None,
) -> None:
    """Simulate a literature-grounded cohort in the canonical panel format."""
    from cytoresp.datasets import simulate_longitudinal
    from cytoresp.panels.write import atomic_output

    try:
        months = tuple(float(v) for v in visits.split(","))
    except ValueError:
        raise UsageError(f"--visits must be months separated by commas (e.g. 0,3,6), got "
                         f"{visits!r}") from None
    if on_treatment is not None and all(m == 0 for m in months):
        raise UsageError("--on-treatment describes the samples after month 0: give them "
                         "with --visits (e.g. --visits 0,3,6)")
    try:
        cohort = simulate_longitudinal(n, seed, visits=months,
                                       on_treatment=on_treatment or "literature",
                                       assignment=assignment)
    except UsageError as exc:  # worded for the library: say it with the option names
        raise UsageError(str(exc).removeprefix("simulate_longitudinal: ")) from None
    with atomic_output(out) as fh:
        cohort.panel.to_csv(fh, index=False, lineterminator="\n")
    if truth:
        with atomic_output(truth) as fh:
            cohort.truth.to_csv(fh, index=False, lineterminator="\n")
    if out != "-":
        _log(f"wrote {n} simulated patients to {out}")


@app.command()
def validate(
    input: Annotated[str, typer.Option("--input", help="panel file (- for stdin)")],
    output: Annotated[
        str | None, typer.Option("--output", help="write the canonical wide panel")
    ] = None,
    labels: Annotated[
        bool, typer.Option("--labels", help="require therapy and responder (training files)")
    ] = False,
    format: FormatOpt = None,
    strict: StrictOpt = False,
) -> None:
    """Check a panel and report every problem; optionally write it in canonical form."""
    from cytoresp.panels import read_panel, write_panel

    _check_format(format)
    _guard_input(input)
    panel = read_panel(input, require_labels=labels, format=format)
    if strict:
        _refuse_strict(panel)
    for warning in panel.warnings:
        _warn(warning)
    if output:
        write_panel(panel, output)
    n_cens = int((panel.censoring != 0).to_numpy().sum())
    visits = ""
    if panel.has_visits:
        months = ", ".join(f"{m:g}" for m in sorted(panel.month.unique()))
        visits = f" of {panel.patient_id.nunique()} patients (months {months})"
    _log(
        f"{panel.source}: {len(panel)} samples{visits}, {len(panel.analytes)} analytes "
        f"({', '.join(panel.analytes)}), {n_cens} censored cells: OK"
    )


@app.command()
def train(
    data: Annotated[str, typer.Option("--data", help="training panel with therapy and responder")],
    therapy: Annotated[
        str,
        typer.Option(
            "--therapy",
            help="all (a head for every therapy with enough patients) or one therapy "
            "(docs/therapies.md)",
        ),
    ] = "all",
    experiment: Annotated[str, typer.Option("--experiment", help="MLflow experiment")] = "cytoresp",
    register: Annotated[
        str | None,
        typer.Option(
            "--register",
            help="register the model under this name with alias 'candidate'; without it the "
            "model is logged in the MLflow run (models:/m-<id>) but not registered",
        ),
    ] = None,
    out: Annotated[
        str | None, typer.Option("--out", help="also write the standalone model here")
    ] = None,
    config: Annotated[
        str | None, typer.Option("--config", help="JSON or TOML training config")
    ] = None,
    tracking_uri: TrackingOpt = None,
    ipw: Annotated[
        bool,
        typer.Option(
            "--ipw",
            help="fit the heads with inverse-propensity weights (non-randomised cohorts; "
            "see docs/methods.md)",
        ),
    ] = False,
    label_from: Annotated[
        str | None,
        typer.Option(
            "--label-from",
            help="derive 'responder' from first-year follow-up columns by a named definition: "
            "rio, modified_rio, magnims or neda3 (docs/outcomes.md)",
        ),
    ] = None,
    label: Annotated[
        str | None,
        typer.Option(
            "--label",
            help="the outcome column (any two-level column) instead of 'responder'; its "
            "name is the outcome's name unless outcome_name is in the config",
        ),
    ] = None,
    positive: Annotated[
        str | None,
        typer.Option("--positive", help="the value of --label that counts as the outcome"),
    ] = None,
    format: FormatOpt = None,
    strict: StrictOpt = False,
    plate_normalise: Annotated[
        bool,
        typer.Option(
            "--plate-normalise",
            help="per-plate median normalisation of the cytokines, fitted on the training "
            "data inside every fold; needs a 'plate' column here and when predicting "
            "(docs/methods.md)",
        ),
    ] = False,
    landmarks: Annotated[
        str | None,
        typer.Option(
            "--landmarks",
            help="landmark months, e.g. 0,3,6: beside the baseline heads, one head per "
            "therapy and later month on the patients with an on-treatment sample in its "
            "window (needs patient_id and month columns; docs/methods.md)",
        ),
    ] = None,
) -> None:
    """Cross-validate, fit and log a model to MLflow (registered with --register)."""
    import dataclasses

    from cytoresp.train.config import TrainConfig
    from cytoresp.train.job import run_training_job

    _check_format(format)
    _guard_input(data)
    if out is not None:
        from cytoresp.panels.write import check_writable_dir

        check_writable_dir(out)
    cfg = TrainConfig.from_file(config) if config else TrainConfig()
    therapy = _check_therapy(therapy, allow_all=True, declared=cfg.declared)
    if positive is not None and label is None and cfg.label is None:
        raise UsageError("--positive needs --label (or label in the config)")
    if label is not None or positive is not None:
        cfg = dataclasses.replace(cfg, label=label or cfg.label,
                                  positive=positive if positive is not None else cfg.positive)
    if label_from is not None and cfg.label is not None:
        raise UsageError("give --label or --label-from, not both")
    if strict:
        cfg = dataclasses.replace(cfg, strict=True)
    if landmarks is not None:
        from cytoresp.train.config import check_landmarks

        cfg = dataclasses.replace(cfg, landmarks=check_landmarks(landmarks))
    if ipw or plate_normalise:
        cfg = dataclasses.replace(
            cfg, ipw=cfg.ipw or ipw, plate_normalisation=cfg.plate_normalisation or plate_normalise
        )
    with _warnings_once():
        result = run_training_job(
            data, therapy, experiment, register, out, cfg, tracking_uri, log=_log,
            label_from=label_from, format=format,
        )
    _print_training(result)


def _print_training(result) -> None:
    from cytoresp.models.verdict import baseline_verdicts, summary_line
    from cytoresp.train.fitting import trained_summary

    err.print(trained_summary(result.model), markup=False)
    err.print(f"outcome: {result.model.outcome_name}", markup=False)
    for t, report in result.reports.items():
        m = report.metrics
        err.print(
            f"[bold]{t}[/bold] n={report.n} ({report.n_responders} responders): "
            f"ROC AUC {m['roc_auc']}, Brier {m['brier'].value:.3f}, "
            + (f"logistic baseline AUC {report.baselines['logistic']['roc_auc'].value:.3f}"
               if "logistic" in report.baselines else "no logistic baseline")
        )
    verdicts = baseline_verdicts(result.model.metadata)
    for t in result.reports:  # did each head beat its baselines (models/verdict.py)?
        line = summary_line(t, verdicts.get(t, {}))
        style = "yellow" if line.startswith("WARNING") else "default"
        err.print(line, style=style, markup=False)
    for month, info in (result.model.metadata.get("landmarks") or {}).items():
        for t, flat in info.get("cv_metrics", {}).items():
            alert = info["alert"][t]
            err.print(
                f"landmark {month} {t} n={info['n_training'][t]}: ROC AUC "
                f"{flat[f'{t}_roc_auc']:.3f} [{flat[f'{t}_roc_auc_lower']:.3f}, "
                f"{flat[f'{t}_roc_auc_upper']:.3f}]; early non-response alert at p <= "
                f"{alert['threshold']:.3f}: sensitivity {alert['sensitivity']:.2f}, "
                f"specificity {alert['specificity']:.2f} (out of fold)", markup=False)
        for t, why in info.get("skipped", {}).items():
            err.print(f"landmark {month} {t}: no head ({why})", markup=False)
    err.print(f"MLflow run {result.run_id} in {result.tracking_uri}")
    err.print(f"model: {result.model_uri}"
              + ("" if result.registered_name else " (not registered: use --register NAME)"))


@app.command()
def predict(
    model: Annotated[
        str,
        typer.Option(
            "--model", help="models:/NAME@ALIAS, models:/NAME/VERSION or a model directory"
        ),
    ],
    input: Annotated[str, typer.Option("--input", help="panel file (- for stdin)")],
    output: Annotated[
        str, typer.Option("--output", help="predictions file, .csv or .parquet (- for stdout)")
    ],
    therapy: TherapyOpt = None,
    explain: Annotated[
        int, typer.Option("--explain", help="add the K largest cytokine drivers", min=0)
    ] = 0,
    tracking_uri: TrackingOpt = None,
    format: FormatOpt = None,
    strict: StrictOpt = False,
) -> None:
    """Score a panel file: probability of response per therapy, recommendation, drivers.

    With two or more therapies: the calibrated difference between the two leading ones
    with a conservative 90% confidence interval for the average difference among patients
    with the same predicted difference (not for one patient's own difference), and
    recommended_therapy (a therapy, or 'either' when the training cohort's heterogeneity
    test failed or the interval includes 0; the reason is in recommendation_reason).
    """
    from cytoresp.panels.write import check_writable, output_format
    from cytoresp.predict.batch import score_file

    therapy = _check_therapy(therapy)
    _check_format(format)
    check_writable(output)
    output_format(output)  # an unsupported extension fails now, not after scoring
    _guard_input(input)
    start = time.perf_counter()
    loaded = _load(model, tracking_uri)
    if getattr(loaded, "landmarks", None) is not None:
        # landmark heads: the panel is read whole, patients scored at their latest landmark
        from cytoresp.panels.read import read_panel
        from cytoresp.panels.write import write_table
        from cytoresp.predict.visits import visits_table

        panel = read_panel(input, format=format, therapies=loaded.declared_therapies,
                           columns=loaded.declared_columns)
        if strict:
            _refuse_strict(panel)
        table = visits_table(loaded, panel, therapy=therapy, explain=explain)
        write_table(table, output)
        for note in panel.warnings:
            _warn(note)
        if output != "-":
            by = "patients" if getattr(panel, "has_visits", False) else "samples"
            alerts = (int(table["early_nonresponse_alert"].fillna(False).sum())
                      if "early_nonresponse_alert" in table.columns else 0)
            _log(f"scored {len(table)} {by} in {time.perf_counter() - start:.1f} s -> "
                 f"{output}" + (f"; {alerts} early non-response alert(s)" if alerts else ""))
        return
    # streamed in chunks; a progress bar (rows/s) only when stderr is a terminal
    summary = score_file(
        loaded, input, output, therapy=therapy, explain=explain,
        progress=err if err.is_terminal else None, format=format, strict=strict,
    )
    seconds = time.perf_counter() - start
    _warn_lost(loaded, summary.therapies)
    for note in summary.notes:
        _warn(note)
    needed = {c: k for c, k in summary.missing.items() if c != "plate"}
    if needed:
        _warn("inputs the model uses are missing (scored as unknown): " + ", ".join(
            f"{c} in {k} of {summary.n_rows} samples" for c, k in needed.items()))
    if output != "-":
        _log(
            f"scored {summary.n_rows} samples ({', '.join(summary.therapies)}) in {seconds:.1f} s "
            f"-> {output}; {summary.n_with_warnings} with warnings"
        )


def _warn_lost(loaded, therapies) -> None:
    """One warning per scored head that did not beat its baselines (models/verdict.py)."""
    from cytoresp.models.verdict import BASELINE_NAMES, baseline_verdicts, lost_baselines

    verdicts = baseline_verdicts(loaded.metadata)
    for t in therapies:
        lost = [BASELINE_NAMES[b] for b in lost_baselines(verdicts.get(t, {}))]
        if lost:
            _warn(f"the {t} head did not beat {' nor '.join(lost)} in cross-validation; "
                  "treat its numbers with caution (cytoresp card --model MODEL)")


@app.command()
def explain(
    model: Annotated[str, typer.Option("--model", help="model URI or directory")],
    input: Annotated[str, typer.Option("--input", help="panel file (- for stdin)")],
    output: Annotated[
        str | None, typer.Option("--output", help="long cytokine-level table")
    ] = None,
    sample: Annotated[str | None, typer.Option("--sample", help="sample id to plot")] = None,
    plot: Annotated[str | None, typer.Option("--plot", help="waterfall PNG for --sample")] = None,
    therapy: TherapyOpt = None,
    by: Annotated[
        str,
        typer.Option(
            "--by",
            help="cytokine (default): Shapley values of each cytokine and covariate; "
            "balance: of each log-ratio, axis score and log cytokine the model reads",
        ),
    ] = "cytokine",
    tracking_uri: TrackingOpt = None,
) -> None:
    """Shapley values of the log-odds: the full table, or one patient's waterfall plot."""
    from cytoresp.panels.write import atomic_output, check_writable, write_table

    therapy = _check_therapy(therapy)
    if by not in ("cytokine", "balance"):
        raise UsageError(f"--by is 'cytokine' or 'balance', not {by!r}")
    if output is None and plot is None:
        raise UsageError("give --output FILE, or --sample ID with --plot FILE.png")
    if (sample is None) != (plot is None):
        raise UsageError("--sample and --plot go together")
    for dest in (output, plot):
        if dest is not None:
            check_writable(dest)
    _guard_input(input)
    loaded = _load(model, tracking_uri)
    frame = loaded.model_frame(input)
    if output is not None:
        write_table(loaded.explain(frame, therapy, by=by), output)
        if output != "-":
            _log(f"wrote explanations of {len(frame)} samples to {output}")
    if plot is not None:
        if sample not in frame.index:
            raise InputError(f"sample {sample!r} is not in {input}")
        from cytoresp.models.plots import plot_waterfall

        t = loaded.resolve_therapies(therapy)[0]  # a name the model declared, or its first head
        if by == "balance":
            from cytoresp.models.attribution import balance_contributions

            base, contrib = balance_contributions(loaded.heads[t], frame.loc[[sample]])
        else:
            base, contrib = loaded.heads[t].cytokine_contributions(frame.loc[[sample]])
        fig = plot_waterfall(float(base[0]), contrib.iloc[0],
                             title=f"{sample}: {loaded.outcome_name}, {t}")
        with atomic_output(plot, "wb") as fh:
            fig.savefig(fh, format="png", dpi=120, bbox_inches="tight")
        _log(f"wrote the waterfall of {sample} ({t}) to {plot}")


@app.command()
def report(
    model: Annotated[str, typer.Option("--model", help="model URI or directory")],
    input: Annotated[str, typer.Option("--input", help="panel file (- for stdin)")],
    sample: Annotated[str, typer.Option("--sample", help="sample id of the patient")],
    out: Annotated[str, typer.Option("--out", help="HTML file to write")],
    therapy: TherapyOpt = None,
    top: Annotated[int, typer.Option("--top", help="drivers listed per therapy", min=1)] = 5,
    tracking_uri: TrackingOpt = None,
) -> None:
    """One patient's self-contained HTML report: probabilities, drivers, percentiles."""
    from cytoresp.panels.write import check_writable
    from cytoresp.predict.report import write_report

    therapy = _check_therapy(therapy)
    check_writable(out)
    loaded = _load(model, tracking_uri)
    write_report(loaded, input, sample, out, therapy=therapy, top=top)
    _log(f"wrote the report of {sample} to {out}")


@app.command()
def card(
    model: Annotated[
        str,
        typer.Option(
            "--model", help="models:/NAME@ALIAS, models:/NAME/VERSION or a model directory"
        ),
    ],
    output: Annotated[
        str | None, typer.Option("--output", help="write the card here (Markdown) instead of "
                                 "standard output")
    ] = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Print the model card (Markdown): data, model, evaluation against the baselines, limits."""
    from cytoresp.models.card import render_card
    from cytoresp.panels.write import atomic_output, check_writable

    if output is not None:
        check_writable(output)
    loaded = _load(model, tracking_uri)  # checks the folder's manifest, card included
    # Rendered from what the model stores: the same text as the model_card.md written
    # beside it (tested), wherever that file sits (a folder, an MLflow model's data
    # folder, a registry URI), and a card for folders saved before cards existed.
    text = render_card(loaded)
    with atomic_output(output or "-") as fh:
        fh.write(text if text.endswith("\n") else text + "\n")
    if output is not None and output != "-":
        _log(f"wrote the model card to {output}")


@app.command()
def demo(
    n: Annotated[int, typer.Option("--n", help="training cohort size", min=50)] = 600,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Simulate -> train both therapies -> register -> predict a new batch -> explain."""
    from cytoresp.demo import run_demo

    run_demo(
        n=n, seed=seed, tracking_uri=tracking_uri, log=_log,
        console=Console(highlight=False, soft_wrap=True),
    )


def _click_exceptions(name: str) -> tuple[type[BaseException], ...]:
    """The click exception class ``name`` from click and from typer's vendored copy."""
    import importlib

    found = []
    for module in ("click.exceptions", "typer._click.exceptions"):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


_CLICK_EXIT = _click_exceptions("Exit")
_CLICK_ABORT = _click_exceptions("Abort")
_CLICK_ERROR = _click_exceptions("ClickException")


def _run(argv: list[str] | None) -> int:
    """Run one command; map its errors to exit codes (130 for an interrupt, unprinted)."""
    try:
        code = app(args=argv, prog_name="cytoresp", standalone_mode=False)
        # typer turns KeyboardInterrupt into Exit(130) and, without standalone mode,
        # *returns* that code instead of raising: it must not become exit status 0
        if isinstance(code, int) and not isinstance(code, bool) and code != 0:
            return code
        return 0
    except _CLICK_EXIT as exc:
        return exc.exit_code
    except _CLICK_ABORT:
        return 130
    except _CLICK_ERROR as exc:
        exc.show(file=sys.stderr)
        return 2
    except (InputError, UsageError, ModelIntegrityError) as exc:
        _error("error:", exc)
        return 2
    except TrackingError as exc:
        _error("error:", exc)
        return 1
    except CytorespError as exc:
        _error("error:", exc)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # noqa: BLE001 - last line of defence: no traceback for users
        if interrupts.interrupted():
            return 130  # an error caused by the interrupt (a worker stopped, ...): 130 wins
        if os.environ.get("CYTORESP_DEBUG"):
            raise
        _error(
            "internal error:",
            f"{type(exc).__name__}: {exc}\n"
            "(set CYTORESP_DEBUG=1 for the traceback and please report it)",
        )
        return 1


def _report_interrupt() -> None:
    """Say that the command was interrupted, and what had been written in full before."""
    done = interrupts.committed_before_signal()
    if done:
        err.print(
            "interrupted (after the last step had completed: "
            + ", ".join(done)
            + " written in full)",
            markup=False,
        )
    else:
        err.print("interrupted")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map errors to exit codes without tracebacks.

    SIGINT and SIGTERM always end a command with exit status 130, whenever they arrive
    (:mod:`cytoresp.interrupts`): work stops, nothing is committed after the signal, the
    MLflow run of ``train`` is marked KILLED. ``argv=None`` means "this process is the
    command" (the ``cytoresp`` script, ``python -m cytoresp.cli``): the signals are then
    ignored after the exit status is decided. With an explicit ``argv`` (a caller that
    goes on running) the previous handlers are restored.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MPLBACKEND", "Agg")
    # Quiet by default: our own progress lines replace MLflow's INFO logs and tqdm bars.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # One BLAS thread: the many tiny L-BFGS fits of training spend their time in
    # OpenBLAS thread hand-offs otherwise (measured 30x slower on a busy 2-core machine,
    # see docs/reliability.md). Set before numpy is imported; XGBoost's OpenMP is unaffected.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
    with interrupts.handling(restore=argv is not None):
        try:
            try:
                code = _run(argv)
            finally:
                interrupts.settle()  # from here on a signal is recorded, never raised
        except KeyboardInterrupt:  # raised while an error above was being reported
            code = 130
        if interrupts.interrupted() or code == 130:
            from cytoresp.panels.write import remove_uncommitted

            remove_uncommitted()  # a temp file whose write an interrupt orphaned
            _report_interrupt()
            code = 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
