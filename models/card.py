"""The model card: what a trained model is, what it was trained on, how well it did.

Markdown, following the TRIPOD+AI items (Collins et al., BMJ 2024;385:e078378) that apply
to a model trained by one run of ``cytoresp train``: intended use and users, the training
data (patients per therapy, outcome and prevalence, inputs, censored and missing values,
the therapy-assignment diagnostics), the model, the cross-validated evaluation with
intervals against the baselines (and the verdict of :mod:`cytoresp.models.verdict`),
calibration, the therapy choice's heterogeneity test, and limits.

The card is built only from what the model stores (:attr:`ResponseModel.metadata`, its
heads and its therapy choice), so a model saved before cards existed gets one too: what
it does not store is listed under "Not recorded by this model". It is deterministic (no
clock time), written into every model folder as ``model_card.md`` by
:func:`cytoresp.models.persistence.save_model_dir` (hence also inside the MLflow model),
logged to the training run, and printed by ``cytoresp card --model MODEL``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cytoresp.models.verdict import (
    BASELINE_NAMES,
    RULE,
    BaselineComparison,
    baseline_verdicts,
    lost_baselines,
    status,
)
from cytoresp.panels.panel import ABOVE, BELOW

__all__ = ["CARD_FILE", "render_card", "training_data_summary"]

#: The card's file name in a model folder.
CARD_FILE = "model_card.md"

_METRICS = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC (average precision)",
    "brier": "Brier score (lower is better)",
    "calibration_intercept": "calibration intercept (0 ideal)",
    "calibration_slope": "calibration slope (1 ideal)",
    "balanced_accuracy": "balanced accuracy at the threshold",
    "sensitivity": "sensitivity at the threshold",
    "specificity": "specificity at the threshold",
}


# --------------------------------------------------------------------------- training data


def training_data_summary(panel: Any, therapies: Iterable[str]) -> dict[str, Any]:
    """What the card says about the training data, computed at training time.

    Parameters
    ----------
    panel : Panel
        The training panel.
    therapies : iterable of str
        The therapies a head was trained for; rows of the other therapies and rows
        without a known outcome are left out.

    Returns
    -------
    dict
        ``source`` (the file name only), ``n_rows`` (the whole panel), per therapy
        ``patients`` and ``positives``, and per input (analytes, then covariates) the share
        of training rows ``missing``, ``below`` and ``above`` the limits of quantification;
        ``overall`` holds the shares over every analyte cell.

    Examples
    --------
    >>> from cytoresp.datasets import simulate_cohort
    >>> from cytoresp.panels import read_panel
    >>> panel = read_panel(simulate_cohort(100, seed=1).panel)
    >>> s = training_data_summary(panel, ["ifnb", "ga"])
    >>> sum(s["therapies"][t]["patients"] for t in ("ifnb", "ga"))
    100
    >>> 0 <= s["overall"]["below"] < 1
    True
    """
    therapies = list(therapies)
    mask = np.ones(len(panel), dtype=bool)
    if panel.therapy is not None:
        mask &= panel.therapy.isin(therapies).to_numpy()
    if panel.responder is not None:
        mask &= panel.responder.notna().to_numpy()
    per_therapy = {}
    for t in therapies:
        rows = mask & (panel.therapy == t).to_numpy() if panel.therapy is not None else mask
        y = panel.responder.to_numpy()[rows] if panel.responder is not None else np.array([])
        per_therapy[t] = {"patients": int(rows.sum()), "positives": int(np.nansum(y))}
    values = panel.values.loc[mask]
    cens = panel.censoring.loc[mask]
    inputs: dict[str, dict[str, float]] = {}
    n = max(int(mask.sum()), 1)
    for col in values.columns:
        missing = values[col].isna() & (cens[col] == 0)
        inputs[str(col)] = {
            "missing": float(missing.sum() / n),
            "below": float((cens[col] == BELOW).sum() / n),
            "above": float((cens[col] == ABOVE).sum() / n),
        }
    for col in panel.covariates.columns:
        inputs[str(col)] = {
            "missing": float(panel.covariates.loc[mask, col].isna().sum() / n),
            "below": 0.0,
            "above": 0.0,
        }
    cells = max(values.size, 1)
    overall = {
        "missing": float((values.isna() & (cens == 0)).to_numpy().sum() / cells),
        "below": float((cens == BELOW).to_numpy().sum() / cells),
        "above": float((cens == ABOVE).to_numpy().sum() / cells),
    }
    return {
        "source": Path(str(panel.source)).name or str(panel.source),
        "n_rows": int(len(panel)),
        "therapies": per_therapy,
        "analytes": [str(c) for c in values.columns],
        "covariates": [str(c) for c in panel.covariates.columns],
        "inputs": inputs,
        "overall": overall,
    }


# --------------------------------------------------------------------------- rendering


def _pct(x: float) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{100 * x:.1f}%"


def _est(flat: Mapping[str, float], key: str) -> str:
    if key not in flat:
        return "—"
    v = float(flat[key])
    lo = float(flat.get(f"{key}_lower", math.nan))
    hi = float(flat.get(f"{key}_upper", math.nan))
    if not math.isfinite(v):
        return "undefined"
    if math.isfinite(lo) and math.isfinite(hi):
        return f"{v:.3f} ({lo:.3f} to {hi:.3f})"
    return f"{v:.3f}"


def _therapy_name(therapy: str, model: Any) -> str:
    from cytoresp.panels.therapies import therapy_display

    return therapy_display(therapy, getattr(model, "declared_therapies", None))


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>&|#!{}])")


def _md(text: Any) -> str:
    """User text (an outcome, a therapy or column name) as inert Markdown: every character
    a renderer could read as markup or raw HTML is backslash-escaped, newlines are spaces."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _code(text: Any) -> str:
    """User text as a Markdown code span (no backtick inside, pipes escaped for tables)."""
    inner = " ".join(str(text).split()).replace("`", "'").replace("|", "\\|")
    return f"`{inner}`"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def render_card(model: Any, versions: Mapping[str, str] | None = None) -> str:
    """The model card of ``model`` as Markdown.

    Parameters
    ----------
    model : ResponseModel
    versions : mapping, optional
        Library versions to name (default: those the model was saved with, when loaded
        from a folder).

    Returns
    -------
    str
        The card; the same model always gives the same text.

    Examples
    --------
    >>> text = render_card(model)
    >>> text.startswith("# Model card")
    True
    >>> "## Evaluation" in text and "## Limits" in text
    True
    """
    meta: Mapping[str, Any] = model.metadata or {}
    config: Mapping[str, Any] = meta.get("config") or {}
    cv_metrics: Mapping[str, Mapping[str, float]] = meta.get("cv_metrics") or {}
    data: Mapping[str, Any] = meta.get("training_data") or {}
    verdicts = baseline_verdicts(meta)
    missing: list[str] = []
    therapies = list(model.therapies)
    names = {t: _md(_therapy_name(t, model)) for t in therapies}
    outcome = _md(model.outcome_name)

    out = [f"# Model card: {outcome}, {', '.join(names[t] for t in therapies)}", ""]
    versions = versions or meta.get("saved_with") or {}
    origin = []
    if meta.get("mlflow_run_id"):
        origin.append(f"MLflow run {_code(meta['mlflow_run_id'])}")
    if meta.get("data_fingerprint"):
        origin.append(f"training data fingerprint {_code(str(meta['data_fingerprint'])[:16])}")
    if versions.get("cytoresp"):
        origin.append(f"cytoresp {_md(versions['cytoresp'])}")
    out.append(
        "Built from what the model stores, following the TRIPOD+AI items (Collins et al., "
        "BMJ 2024) that apply to a model trained by one run of `cytoresp train`"
        + (f". {'; '.join(origin)}." if origin else ".")
    )
    out.append("")

    # -- summary / verdict ---------------------------------------------------------------
    out += ["## Verdict against the baselines", ""]
    for t in therapies:
        comps = verdicts.get(t, {})
        s = status(comps)
        if s == "true":
            beaten = [BASELINE_NAMES.get(b, b) for b, c in comps.items() if c.beats]
            text = f"clearly beat {' and '.join(beaten)} in cross-validation"
        elif s == "false":
            lost = [BASELINE_NAMES[b] for b in lost_baselines(comps)]
            text = (f"**did not beat {' nor '.join(lost)} in cross-validation: treat its "
                    "numbers with caution**")
        else:
            text = "**not tested** against the baselines (no bootstrap intervals stored)"
        out.append(f"- {names[t]}: {text}.")
    out += ["", f"Rule: {RULE}.", ""]

    # -- intended use ----------------------------------------------------------------------
    out += [
        "## Intended use and users",
        "",
        f"Estimates the probability of {outcome} for each therapy with a head "
        f"({', '.join(names[t] for t in therapies)}) from the baseline inputs listed "
        "below (cytokines, and covariates or other measurements where declared)"
        ", and explains each estimate input by input (Shapley values of the log-odds). "
        "Users: research groups analysing cohorts like the training cohort (same assay, "
        "same population, same outcome definition). Research software: not a medical "
        "device, not validated for treatment decisions of individual patients. Not for "
        "patients outside the training population or panels measured differently (the "
        "predictions warn about values outside the training range and missing inputs).",
        "",
    ]

    # -- training data -----------------------------------------------------------------------
    out += ["## Training data", ""]
    if data:
        out.append(f"Source: {_code(data.get('source', '?'))} ({data.get('n_rows', '?')} rows "
                   "read).")
        out.append("")
    else:
        missing.append("the training data summary (source, censored and missing shares)")
    rows = []
    for t in therapies:
        flat = cv_metrics.get(t) or {}
        n = (meta.get("n_training") or {}).get(t, (data.get("therapies") or {}).get(t, {}).get(
            "patients", "?"))
        pos = (data.get("therapies") or {}).get(t, {}).get("positives")
        rows.append([names[t], str(n), "—" if pos is None else str(pos),
                     _est(flat, f"{t}_prevalence")])
    out += _table(["therapy", "patients", f"with {outcome}", "prevalence (95% CI)"], rows)
    out.append("")
    label = config.get("label") or "responder"
    positive = config.get("positive")
    out.append(
        f"Outcome: {outcome} (column {_code(label)}"
        + (f", value {_code(positive)} counts as the outcome" if positive is not None else "")
        + "). Patients without a known outcome were left out."
    )
    if config.get("select_rows"):
        sel = ", ".join(f"{_code(k)} = {_code(v)}" for k, v in config["select_rows"].items())
        out.append(f"Rows used: {sel}.")
    inputs = list(model.input_columns)
    out.append("")
    out.append(f"Inputs ({len(inputs)}): " + ", ".join(_code(c) for c in inputs) + ".")
    out.append("")
    per_input = data.get("inputs") or {}
    if per_input:
        overall = data.get("overall") or {}
        out.append(
            "Censored and missing values among the training rows (analyte cells: "
            f"{_pct(overall.get('below'))} below the lower limit of quantification, "
            f"{_pct(overall.get('above'))} above the upper limit, "
            f"{_pct(overall.get('missing'))} missing). By default a value below the lower "
            "limit counts as the limit / √2, and a missing value is left missing (the "
            "model's own handling, docs/methods.md)."
        )
        out.append("")
        shown = [c for c in per_input if any(per_input[c].get(k, 0) > 0
                                             for k in ("missing", "below", "above"))]
        if shown:
            out += _table(
                ["input", "below the limit", "above the limit", "missing"],
                [[_code(c), _pct(per_input[c]["below"]), _pct(per_input[c]["above"]),
                  _pct(per_input[c]["missing"])] for c in shown],
            )
        else:
            out.append("No input was censored or missing.")
        out.append("")
    assignment = meta.get("assignment")
    out.append("Therapy assignment (how patients came to their therapy):")
    out.append("")
    if assignment:
        warn = _md("; ".join(assignment.get("warnings") or []) or "none")
        out.append(
            f"- cross-fitted propensity ROC AUC {assignment.get('propensity_auc', math.nan):.2f} "
            f"(chance level up to {assignment.get('auc_chance', math.nan):.2f}); largest "
            f"standardised mean difference {_max_abs(assignment.get('smd'))} "
            f"({_max_abs(assignment.get('weighted_smd'))} with inverse-propensity weights); "
            f"share outside the overlap {_pct(assignment.get('outside_overlap', math.nan))}; "
            f"inverse-propensity weighting {'on' if assignment.get('ipw') else 'off'}."
        )
        out.append(f"- warnings: {warn}.")
    else:
        out.append("- no diagnostics: the model has one therapy head or the data lacked "
                   "labelled patients of both IFN-β and GA.")
    out.append("")

    # -- the model -------------------------------------------------------------------------------
    out += ["## The model", ""]
    out.append(
        "One head per therapy (T-learner): panel features (log2 cytokines, log-ratios of "
        "cytokine pairs, immune-axis scores, covariates) into a classifier whose log-odds "
        "are exactly additive over the inputs, then a logistic (Platt) recalibration of "
        "those log-odds fitted on out-of-fold log-odds."
    )
    out.append("")
    head_rows = []
    for t in therapies:
        head = model.heads[t]
        est = head.model
        state: Mapping[str, Any] = {}
        try:
            state = est.to_dict()
        except Exception:  # noqa: BLE001 - a head type without a state summary
            state = {}
        detail = []
        if state.get("class") == "SuperLearnerClassifier":
            weights = ", ".join(
                f"{name} {float(w):.2f}"
                for name, w in zip(
                    state.get("candidates", []), state.get("weights", []), strict=True
                )
            )
            detail.append(f"weights: {weights}" if weights else "weights not stored")
        if "n_trees" in state:
            detail.append(f"{state['n_trees']} trees")
        if state.get("C") is not None:
            detail.append(f"linear part C = {float(state['C']):.3g}")
        if state.get("l1_ratio") is not None:
            detail.append(f"l1_ratio {float(state['l1_ratio']):.2g}")
        cal = head.calibrator
        head_rows.append([
            names[t], type(est).__name__, ", ".join(detail) or "—",
            f"{getattr(cal, 'intercept_', math.nan):+.3f} + {getattr(cal, 'slope_', math.nan):.3f}"
            " × log-odds", f"{head.threshold:.3f}",
        ])
    out += _table(["therapy", "classifier", "fitted", "calibration", "decision threshold"],
                  head_rows)
    out.append("")
    if config:
        keys = ("model", "features", "ipw", "plate_normalisation", "seed")
        shown_cfg = {k: config[k] for k in keys if k in config and config[k] not in ({}, None)}
        out.append("Configuration: " + ", ".join(f"{_code(k)} = {_code(v)}"
                                                 for k, v in shown_cfg.items())
                   + ".")
    else:
        missing.append("the training configuration")
    out.append("")

    # -- evaluation -----------------------------------------------------------------------------
    # A super-learner head is calibrated on its own stacked out-of-fold log-odds (its own
    # inner folds), not on clones refitted on the config's inner folds (train/cv.py).
    stacked = {
        t: int(model.heads[t].model.inner_splits)
        for t in therapies
        if type(model.heads[t].model).__name__ == "SuperLearnerClassifier"
    }
    if stacked:
        k = sorted(set(stacked.values()))
        where = (f"the stacked out-of-fold log-odds of the super learner's own "
                 f"{'/'.join(map(str, k))} inner folds")
    else:
        where = f"{config.get('inner_splits', '?')} inner folds of each outer training part"
    out += ["## Evaluation", ""]
    if config:
        out.append(
            f"{config.get('n_repeats', '?')}× repeated {config.get('n_splits', '?')}-fold "
            f"nested cross-validation (calibration and threshold fitted on {where}); "
            "every step fitted inside the fold; baselines scored on the same folds. "
            f"95% intervals: patient bootstrap ({config.get('n_boot', '?')} resamples; "
            "ROC AUC and the threshold metrics within each class, the others over all "
            "patients). Internal validation only: no external cohort."
        )
        out.append("")
    for t in therapies:
        flat = cv_metrics.get(t) or {}
        if not flat:
            missing.append(f"cross-validated metrics of {names[t]}")
            continue
        out += [f"### {names[t]}", ""]
        bases = [b for b in ("logistic", "prevalence", "clinical")
                 if f"{t}_{b}_roc_auc" in flat]
        rows = []
        for key in ("roc_auc", "pr_auc", "brier"):
            rows.append([_METRICS[key], _est(flat, f"{t}_{key}")]
                        + [_est(flat, f"{t}_{b}_{key}") for b in bases])
        out += _table(["metric (95% CI)", "this model", *bases], rows)
        out.append("")
        comps: Mapping[str, BaselineComparison] = verdicts.get(t, {})
        if comps:
            out += _table(
                ["ROC AUC difference, model minus", "paired (95% CI)", "clearly above?"],
                [[BASELINE_NAMES.get(b, b), c.text(),
                  {True: "yes", False: "**no**", None: "not tested"}[c.beats]]
                 for b, c in comps.items()],
            )
            out.append("")
        rows = [[_METRICS[k], _est(flat, f"{t}_{k}")]
                for k in ("balanced_accuracy", "sensitivity", "specificity")
                if f"{t}_{k}" in flat]
        if rows:
            out += _table(["at the decision threshold", "value (95% CI)"], rows)
            out.append("")

    # -- calibration ----------------------------------------------------------------------------
    out += ["## Calibration", ""]
    out.append(
        "Cross-validated calibration of the recalibrated probabilities (logistic "
        "recalibration of the out-of-fold predictions; intercept with the slope fixed at 1):"
    )
    out.append("")
    out += _table(
        ["therapy", "intercept (95% CI)", "slope (95% CI)", "Brier (95% CI)"],
        [[names[t], _est(cv_metrics.get(t) or {}, f"{t}_calibration_intercept"),
          _est(cv_metrics.get(t) or {}, f"{t}_calibration_slope"),
          _est(cv_metrics.get(t) or {}, f"{t}_brier")] for t in therapies],
    )
    out.append("")
    k_in, k_out = config.get("inner_splits", "?"), config.get("n_splits", "?")
    if stacked:
        out.append(
            "How the evaluated and the deployed calibration relate: every head here is a "
            "super learner, calibrated (in each outer fold of the cross-validation and in "
            "the deployed model alike) on its own stacked out-of-fold log-odds, whose "
            "weights and intercept already maximise their likelihood, so the Platt step is "
            "the identity. Its candidates' inner choices (penalty, number of trees) are made "
            "on all of the rows it is given before the out-of-fold refits, which makes those "
            "log-odds slightly optimistic; the outer cross-validation above measures the "
            "result on patients none of it saw"
            + ("; and the deployed head is fitted with inverse-propensity weights while "
               "the cross-validated heads were not, so the weighted head itself was not "
               "evaluated." if config.get("ipw") else ".")
        )
    else:
        out.append(
            "How the evaluated and the deployed calibration relate: in cross-validation "
            "each outer fold's head is recalibrated (Platt) on the out-of-fold log-odds of "
            f"heads fitted on {k_in} inner folds of its training part; the deployed head, "
            "fitted on every patient, is recalibrated by the same procedure on the "
            f"out-of-fold log-odds of the first repeat's {k_out} outer-fold heads. Same "
            "procedure, different number of folds, so the heads behind the calibration see "
            "a slightly different share of the data"
            + ("; and the deployed head is fitted with inverse-propensity weights while "
               "the cross-validated heads were not, so the weighted head itself was not "
               "evaluated." if config.get("ipw") else ".")
        )
    out.append("")

    # -- therapy choice ---------------------------------------------------------------------------
    out += ["## Therapy choice (heterogeneity test)", ""]
    choice = getattr(model, "choice", None)
    if choice is not None:
        out += ["```", choice.summary().replace("```", "'''"), "```", ""]
        out.append(
            "When the test fails, every recommendation is `either`: the data do not show "
            "that the predicted difference between therapies separates who benefits from which."
        )
    elif len(therapies) > 1:
        out.append("No heterogeneity test is stored: every recommendation is `either`.")
    else:
        out.append("One therapy head: no therapy choice.")
    out.append("")

    # -- landmark heads ---------------------------------------------------------------------------
    out += _landmark_section(model, names)

    # -- limits -----------------------------------------------------------------------------------
    out += ["## Limits", ""]
    limits = []
    for t in therapies:
        s = status(verdicts.get(t, {}))
        if s == "false":
            limits.append(f"{names[t]}: the model did not clearly beat its baselines "
                          "(above); its probabilities add little to them.")
        elif s == "untested":
            limits.append(f"{names[t]}: the comparison with the baselines was not tested.")
    sizes = meta.get("n_training") or {}
    small = [f"{names[t]} ({sizes[t]})" for t in therapies if t in sizes and sizes[t] < 200]
    if small:
        limits.append(
            "Small training cohort for " + ", ".join(small) + ": intervals are wide and "
            "the estimates of a new cohort may differ."
        )
    limits += [
        "Validated by cross-validation within one cohort only; performance in another "
        "cohort (other assay, laboratory, population or outcome definition) is unknown "
        "until measured there.",
        "Probabilities are for the therapy given in the training data; in a "
        "non-randomised cohort, differences between therapies may reflect who received "
        "them (see the assignment diagnostics above).",
        "Explanations are Shapley values of the model's log-odds: they describe the "
        "model, not causal effects of cytokines.",
        "The cross-validated calibration intercept is close to 0 almost by construction "
        "(each fold's recalibration is fitted to its training part's share of patients "
        "with the outcome): it does not show how calibrated the probabilities are in a "
        "cohort whose prevalence differs (docs/methods.md, \"The evaluated and the "
        "deployed calibration\").",
    ]
    out += [f"- {x}" for x in limits]
    out.append("")
    if missing:
        out += ["## Not recorded by this model", ""]
        out += [f"- {m}" for m in missing]
        out.append("")
        out.append("(The model was saved by an older cytoresp or outside `cytoresp train`; "
                   "retrain to get the full card.)")
        out.append("")
    return "\n".join(out)


def _landmark_section(model: Any, names: Mapping[str, str]) -> list[str]:
    """The card's section on landmark heads (empty for a baseline-only model)."""
    landmarks = getattr(model, "landmarks", None)
    info = (getattr(model, "metadata", {}) or {}).get("landmarks")
    if landmarks is None or not info:
        return []
    out = ["## On-treatment landmark heads", ""]
    out.append(
        "Beside each baseline head (landmark 0), a head per later landmark month and "
        "therapy, fitted on the patients with an on-treatment sample in the landmark's "
        "window; inputs: the baseline inputs plus each analyte's log2 change from baseline "
        "to the latest on-treatment sample in the window (`<analyte> Δ`). Same nested "
        "cross-validation, calibration and baselines as a baseline head; the logistic "
        "baseline also reads the changes. The early non-response alert is raised when the "
        "probability of response under the current therapy is at or below the head's "
        f"alert threshold, chosen for a sensitivity of {landmarks.alert_sensitivity:g} to "
        "non-response (inside every outer fold for the figures below)."
    )
    out.append("")
    rows = []
    for month in sorted(info, key=int):
        entry = info[month]
        lo, hi = entry.get("window", [math.nan, math.nan])
        for t, flat in (entry.get("cv_metrics") or {}).items():
            alert = (entry.get("alert") or {}).get(t, {})
            beats = ((entry.get("baseline_verdict") or {}).get("therapies", {})
                     .get(t, {}).get("beats_baselines"))
            versus = (entry.get("vs_baseline_head") or {}).get(t) or {}
            diff = versus.get("difference")
            vs_text = "—" if diff is None else (
                f"{diff:+.3f} ({versus['lower']:+.3f} to {versus['upper']:+.3f})")
            rows.append([
                str(month), f"({lo:g}, {hi:g}]", names.get(t, _md(t)),
                str((entry.get("n_training") or {}).get(t, "?")),
                _est(flat, f"{t}_roc_auc"),
                _est(flat, f"{t}_logistic_roc_auc"),
                {True: "yes", False: "**no**", None: "not tested"}[beats],
                vs_text, (entry.get("scored_by") or {}).get(t, "landmark"),
                f"{alert.get('threshold', math.nan):.3f}",
                _est(alert, "sensitivity"), _est(alert, "specificity"),
            ])
        for t, why in (entry.get("skipped") or {}).items():
            rows.append([str(month), f"({lo:g}, {hi:g}]", names.get(t, _md(t)), "—",
                         f"no head ({_md(why)})", "", "", "", "", "", "", ""])
    out += _table(["month", "window (months)", "therapy", "patients", "ROC AUC (95% CI)",
                   "logistic baseline", "beats baselines?",
                   "ROC AUC minus the baseline head's, same patients (95% CI)", "scored by",
                   "alert at p ≤", "alert sensitivity", "alert specificity"], rows)
    out.append("")
    out.append(
        "\"Scored by\": a landmark head scores only where its out-of-fold ROC AUC clearly "
        "beat the baseline head's on the same patients (the interval above 0); otherwise "
        "the baseline head's probability is the estimate at that landmark, and the alert "
        "threshold and its figures are the baseline head's out-of-fold ones.")
    out.append("")
    return out


def _max_abs(values: Mapping[str, float] | None) -> str:
    if not values:
        return "—"
    finite = [abs(float(v)) for v in values.values() if math.isfinite(float(v))]
    return f"{max(finite):.2f}" if finite else "—"
