"""A self-contained HTML report for one patient: probabilities, drivers, percentiles, warnings.

The page needs no network and runs no script: CSS is inline, each waterfall plot is a PNG
in a ``data:`` URI, and there is no external font or JavaScript. Every string that comes
from the user (sample id, file name, column names) is escaped with :func:`html.escape`.

Content, per therapy head of the model:

- above the probability, when the head did not clearly beat a plain logistic regression
  or a constant prediction in cross-validation (:mod:`cytoresp.models.verdict`): "this
  model did not beat a plain logistic regression in cross-validation; treat its numbers
  with caution" (or the constant-prediction variant, or "not tested");
- the calibrated probability of response and its interval: the percentile interval of the
  probability over the model's bootstrap refits (:mod:`cytoresp.models.recommend`) when the
  model has them, else none (the page says so), and always the cross-validated ROC AUC,
  Brier score and calibration of the model, which say how far to trust any one number;
- the recommendation between the therapies (models with two or more heads): the
  calibrated difference between the two leading therapies with its interval, and the
  training cohort's heterogeneity test (:mod:`cytoresp.models.choice`);
- the top drivers in plain language (``IL-17F higher than typical, lowers the chance of
  response to IFN-β``), each the Shapley value of the cytokine in the log-odds, worded as
  raising or lowering the chance only when moving that cytokine alone from the training
  population to the patient's value does so; the same total by balance (log-ratio, axis
  score); the waterfall plot in cytokine terms;
- where each of the patient's values sits in the training distribution (percentile), and
  warnings (missing analytes, values outside the training range, censored values);
- the model card (:mod:`cytoresp.models.card`) at the end of the page, linked from its top.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cytoresp.models.attribution import alone_changes, balance_contributions
from cytoresp.models.reference import ranking_values
from cytoresp.panels.panel import ABOVE, BELOW, CLINICAL_COVARIATES

#: Therapy names for people.
#: Display names where the report differs from the registry's.
THERAPY_NAMES = {"ifnb": "IFN-β", "ga": "glatiramer acetate (GA)"}


def _therapy_name(therapy: str) -> str:
    from cytoresp.panels.therapies import therapy_display

    return THERAPY_NAMES.get(therapy) or therapy_display(therapy)

DEFAULT_TOP = 5


def percentile_of(value: float, grid: list[float] | np.ndarray) -> float:
    """Where ``value`` sits among the 101 training percentiles ``grid`` (0 to 100).

    Linear between grid points; the middle of a run of equal grid values (many censored
    or integer values); 0 below the minimum, 100 above the maximum; NaN for NaN.

    Examples
    --------
    >>> grid = np.linspace(0.0, 10.0, 101)
    >>> percentile_of(2.5, grid), percentile_of(-1.0, grid), percentile_of(11.0, grid)
    (25.0, 0.0, 100.0)
    >>> percentile_of(1.0, [1.0] * 51 + list(np.linspace(1.1, 6.0, 50)))
    25.0
    """
    q = np.asarray(grid, dtype=np.float64)
    if not np.isfinite(value) or q.size < 2:
        return float("nan")
    step = 100.0 / (q.size - 1)
    lo = int(np.searchsorted(q, value, side="left"))
    hi = int(np.searchsorted(q, value, side="right"))
    if hi > lo:  # equal to one or more grid values: the middle of the run
        return float((lo + hi - 1) / 2 * step)
    if lo == 0:
        return 0.0
    if lo == q.size:
        return 100.0
    frac = (value - q[lo - 1]) / (q[lo] - q[lo - 1])
    return float((lo - 1 + frac) * step)


# --------------------------------------------------------------------------------------
# What the report says, as data (tested without HTML)
# --------------------------------------------------------------------------------------
@dataclass
class Driver:
    """One input's contribution to one therapy's log-odds, in words."""

    input: str
    label: str
    contribution: float
    direction: str  # "higher" | "lower" | "missing" | "typical"
    sentence: str
    #: the change of the log-odds when this input alone comes from the training
    #: population (the reference of its Shapley value); the sentence says "raises" or
    #: "lowers" only when it has the contribution's sign
    alone: float = float("nan")


@dataclass
class TherapySection:
    """Probability, interval, trust metrics, drivers and waterfall of one therapy."""

    therapy: str
    probability: float
    interval: tuple[float, float] | None
    interval_level: float | None
    n_members: int
    cv: dict[str, tuple[float, float, float]]
    base_value: float
    log_odds: float
    drivers: list[Driver]
    waterfall_png: bytes = b""
    #: the largest Shapley values by engineered feature (log-ratio, axis score, log
    #: cytokine): ``(feature, value)``; same base and total as the drivers
    balances: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class ValueRow:
    """Where one input of the patient sits in the training distribution."""

    input: str
    label: str
    value_text: str
    percentile: float
    percentile_text: str
    range_text: str
    flag: str


@dataclass
class PatientReport:
    """Everything the HTML page shows, computed from a model and one panel row."""

    sample_id: str
    source: str
    therapies: list[TherapySection]
    recommendation: str | None
    values: list[ValueRow]
    warnings: list[str]
    model_info: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    #: the training cohort's heterogeneity test (TherapyChoice.summary), when recommending
    choice_test: str = ""
    #: per therapy, the sentence shown above its probability when the head did not beat
    #: its baselines in cross-validation (:func:`cytoresp.models.verdict.caution`)
    cautions: dict[str, str] = field(default_factory=dict)
    #: the model card (Markdown, :func:`cytoresp.models.card.render_card`), at the page's end
    card: str = ""
    #: on-treatment samples and landmark heads: the trajectory (None otherwise)
    trajectory: Trajectory | None = None


@dataclass
class Trajectory:
    """A patient's visits: the probability at each landmark, the values of the top drivers.

    ``landmarks``: ``(landmark month, month of the sample scored, P(response) under the
    current therapy, alert text)`` per landmark the patient has. ``visits``: the months
    of the patient's samples; ``values``: per top driver's analyte, its measured value
    at each visit (text, ``<L`` when censored below). ``drivers``: the latest landmark
    head's top drivers, in words (a change input reads "change since baseline").
    """

    patient_id: str
    therapy: str
    landmarks: list[tuple[int, float, float, str]]
    visits: list[float]
    values: dict[str, list[str]]
    drivers: list[str]
    alert: bool | None
    alert_threshold: float | None


def _label(name: str) -> str:
    from cytoresp.models.plots import display_label

    return display_label(name)


def _fmt(x: float) -> str:
    if not np.isfinite(x):
        return "—"
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:,.0f}"


def _ordinal(p: float) -> str:
    n = int(round(p))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _driver_sentence(
    label: str,
    direction: str,
    contribution: float,
    therapy: str,
    outcome: str = "response",
    alone: float = np.nan,
) -> str:
    """The driver in words. "raises" / "lowers" only when moving this input alone from the
    training population to the patient's value changes the log-odds the same way
    (``alone``, :func:`cytoresp.models.attribution.alone_changes`); otherwise the effect
    is said to run through other inputs."""
    name = _therapy_name(therapy)
    chance = (f"the chance of response to {name}" if outcome == "response"
              else f"the chance of {outcome} on {name}")
    where = {
        "higher": f"{label} higher than typical",
        "lower": f"{label} lower than typical",
        "typical": f"{label} at its typical level",
        "missing": f"{label} not measured",
    }[direction]
    if np.isnan(alone) or np.sign(alone) == np.sign(contribution):
        effect = "raises" if contribution > 0 else "lowers"
        return f"{where}, {effect} {chance} ({contribution:+.2f} log-odds)"
    return (
        f"{where}: its effect on {chance} runs through other inputs "
        f"({contribution:+.2f} log-odds in total; on its own it would change the log-odds "
        f"by {alone:+.2f})"
    )


def _cv_summary(metadata: dict[str, Any], therapy: str) -> dict[str, tuple[float, float, float]]:
    flat = (metadata.get("cv_metrics") or {}).get(therapy) or {}
    out = {}
    for name in ("roc_auc", "brier", "calibration_slope", "calibration_intercept"):
        key = f"{therapy}_{name}"
        if key in flat:
            out[name] = (
                float(flat[key]),
                float(flat.get(f"{key}_lower", np.nan)),
                float(flat.get(f"{key}_upper", np.nan)),
            )
    return out


def build_report(
    model: Any,
    data: Any,
    sample_id: str,
    *,
    therapy: str | None = None,
    top: int = DEFAULT_TOP,
    plots: bool = True,
) -> PatientReport:
    """Compute the content of one patient's report.

    Parameters
    ----------
    model : ResponseModel
    data : Panel, DataFrame or path
        The panel holding the patient (read with :func:`cytoresp.read_panel`).
    sample_id : str
        The patient's ``sample_id``.
    therapy : str, optional
        Only this therapy's head (default: every head).
    top : int
        Number of drivers listed per therapy.
    plots : bool
        Draw the waterfall plots (PNG bytes in :attr:`TherapySection.waterfall_png`).

    Returns
    -------
    PatientReport

    Raises
    ------
    InputError
        If ``sample_id`` is not in the panel.

    Examples
    --------
    >>> rep = build_report(model, "new.csv", "P0007", plots=False)
    >>> rep.therapies[0].drivers[0].sentence
    '... than typical, ... the chance of response to IFN-β (... log-odds)'
    """
    from cytoresp.errors import InputError, Problem, UsageError
    from cytoresp.panels.panel import Panel

    if top < 1:
        raise UsageError(f"--top must be at least 1, got {top}")
    if isinstance(data, Panel):
        panel = data
    else:
        from cytoresp.panels.read import read_panel

        panel = read_panel(data, therapies=model.declared_therapies,
                           columns=model.declared_columns)
    sample_id = str(sample_id)
    if sample_id not in panel.sample_ids:
        shown = ", ".join(map(str, panel.sample_ids[:5]))
        more = ", ..." if len(panel) > 5 else ""
        raise InputError(
            [
                Problem(
                    panel.source,
                    None,
                    "sample_id",
                    f"sample {sample_id!r} is not in the panel (it has {len(panel)} samples: "
                    f"{shown}{more})",
                )
            ]
        )
    trajectory = None
    if getattr(panel, "has_visits", False):
        # a panel with visits: the report is about the patient of this sample; its
        # baseline sample (if any) gives the baseline sections, the visits the trajectory
        pid = panel.patient_id.to_numpy(dtype=object)
        patient = pid[int(np.flatnonzero(panel.sample_ids == sample_id)[0])]
        trajectory = build_trajectory(model, panel, patient, top=top, therapy=therapy)
        months = panel.month.to_numpy(dtype=np.float64)
        at_base = np.flatnonzero((pid == patient) & (months == 0.0))
        if len(at_base):
            sample_id = str(panel.sample_ids[at_base[0]])
    position = int(np.flatnonzero(panel.sample_ids == sample_id)[0])
    row_panel = panel.subset(np.asarray([position]))
    frame = model.model_frame(row_panel)
    therapies = model.resolve_therapies(therapy)

    draws = {}
    ensemble = getattr(model, "ensemble", None)
    if ensemble is not None:
        draws = ensemble.probability_draws({t: model.heads[t] for t in ensemble.therapies}, frame)

    sections = []
    for t in therapies:
        head = model.heads[t]
        base, contrib = head.cytokine_contributions(frame)
        alone = alone_changes(head, frame).iloc[0]
        _, by_balance = balance_contributions(head, frame)
        b = by_balance.iloc[0]
        balances = [
            (str(n), float(b[n]))
            for n in b.abs().sort_values(ascending=False, kind="stable").index[:3]
        ]
        feats = head.engineered(frame)
        margin = float(head.calibrated_margin_of(feats)[0])
        Z = head.features.transform_inputs(frame[head.input_columns])
        c = contrib.iloc[0]
        dev = Z.iloc[0].to_numpy(dtype=np.float64) - np.asarray(head.background, dtype=np.float64)
        dev = pd.Series(dev, index=Z.columns)
        drivers = []
        for name in c.abs().sort_values(ascending=False, kind="stable").index[:top]:
            value = float(c[name])
            d = dev.get(name, np.nan)
            direction = (
                "missing"
                if not np.isfinite(d)
                else "typical"
                if abs(d) < 1e-9
                else "higher"
                if d > 0
                else "lower"
            )
            label = _label(name)
            a = float(alone.get(name, np.nan))
            sentence = _driver_sentence(label, direction, value, t, model.outcome_name, a)
            drivers.append(Driver(name, label, value, direction, sentence, a))
        interval, level, n_members = None, None, 0
        if t in draws:
            p_draws = draws[t][:, 0]
            level = float(ensemble.level)
            alpha = (1.0 - level) / 2.0
            lo, hi = np.quantile(p_draws, [alpha, 1.0 - alpha])
            interval, n_members = (float(lo), float(hi)), int(p_draws.size)
        png = b""
        if plots:
            png = _waterfall_png(float(base[0]), c, f"{sample_id}: {model.outcome_name}, {t}")
        sections.append(
            TherapySection(
                therapy=t,
                probability=float(head.response_probability_of(feats)[0]),
                interval=interval,
                interval_level=level,
                n_members=n_members,
                cv=_cv_summary(model.metadata, t),
                base_value=float(base[0]),
                log_odds=margin,
                drivers=drivers,
                waterfall_png=png,
                balances=balances,
            )
        )

    recommendation, choice_test = None, ""
    if therapy is None and len(model.therapies) >= 2:
        from cytoresp.models.choice import DEFAULT_LEVEL, describe_recommendation

        rec = model.recommend_frame(frame).iloc[0].to_dict()
        choice = getattr(model, "choice", None)
        level = float(choice.level) if choice is not None else DEFAULT_LEVEL
        recommendation = describe_recommendation(rec, level=level)
        choice_test = choice.summary() if choice is not None else ""

    values = _value_rows(model, row_panel, frame)
    warnings = []
    row_warning = str(model.row_warnings(frame).iloc[0])
    if row_warning:
        warnings += [w.strip() for w in row_warning.split(";") if w.strip()]
    codes = row_panel.censoring.iloc[0]
    for code, where in ((BELOW, "below the lower"), (ABOVE, "above the upper")):
        names = [c for c in codes.index[codes.to_numpy() == code] if c in model.input_columns]
        if names:
            warnings.append(
                f"{where} limit of quantification (the model used the limit"
                f"{' / √2' if code == BELOW else ''}): {', '.join(names)}"
            )
    warnings += [f"input file: {w}" for w in panel.warnings]

    meta = model.metadata or {}
    info = {
        "therapies": ", ".join(model.therapies),
        "training patients": ", ".join(
            f"{t} {n}" for t, n in (meta.get("n_training") or {}).items()
        ),
        "MLflow run": meta.get("mlflow_run_id", ""),
        "data fingerprint": str(meta.get("data_fingerprint", ""))[:16],
    }
    created = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    from cytoresp.models.card import render_card
    from cytoresp.models.verdict import baseline_verdicts, caution

    verdicts = baseline_verdicts(meta)
    cautions = {t: c for t in therapies if (c := caution(verdicts.get(t, {})))}
    return PatientReport(
        cautions=cautions,
        card=render_card(model),
        sample_id=sample_id,
        source=str(panel.source),
        therapies=sections,
        recommendation=recommendation,
        choice_test=choice_test,
        values=values,
        warnings=warnings,
        model_info={k: v for k, v in info.items() if v},
        created=created,
        trajectory=trajectory,
    )


def build_trajectory(
    model: Any, panel: Any, patient: Any, *, top: int = DEFAULT_TOP, therapy: str | None = None
) -> Trajectory:
    """The trajectory of one patient of a panel with visits (:class:`Trajectory`).

    The probabilities are those of :func:`cytoresp.models.landmarks.score_visits` (each
    landmark's head under the patient's current therapy); the drivers are the latest
    landmark head's, the visit values those of the analytes behind them.
    (``tests/train/test_landmarks.py`` shows it on a simulated cohort).
    """
    from cytoresp.models.attribution import contributions_and_inputs
    from cytoresp.models.landmarks import (
        changed_input,
        is_change_feature,
        landmark_probabilities,
    )
    from cytoresp.models.response_model import align_frame
    from cytoresp.panels.values import format_numbers

    got = landmark_probabilities(model, panel, therapy)
    p, samples = got["p"], got["sample"]
    current = got["therapy"].get(patient)
    row = p.loc[patient]
    landmarks, latest = [], None
    pid = panel.patient_id.to_numpy(dtype=object)
    months = panel.month.to_numpy(dtype=np.float64)
    month_of = dict(zip(panel.sample_ids.astype(str), months, strict=True))
    alert, threshold = None, None
    for m in p.columns:
        if not np.isfinite(row[m]):
            continue
        head = model.heads[current] if m == 0 else model.landmarks.heads[m][current]
        text = ""
        if m > 0:
            # the threshold of the head that gave the probability (models/landmarks.py)
            cut = model.landmarks.alert_threshold(m, current, got["scorer"].at[patient, m])
            flagged = bool(row[m] <= cut) if np.isfinite(cut) else None
            text = "" if flagged is None else "alert" if flagged else "no alert"
            alert, threshold = flagged, (float(cut) if np.isfinite(cut) else None)
        landmarks.append((int(m), float(month_of.get(str(samples.at[patient, m]), np.nan)),
                          float(row[m]), text))
        # the head behind the probability: the baseline head where the landmark head did
        # not beat it in training (models/landmarks.py, scored_by)
        latest = (0, model.heads[current]) if got["scorer"].at[patient, m] == "baseline" \
            else (m, head)
    drivers: list[str] = []
    analytes: list[str] = []
    if latest is not None:
        m, head = latest
        frame = align_frame(got["inputs"][m].loc[[patient]], head.input_columns)
        _, contrib, Z = contributions_and_inputs(head, frame)
        c = contrib.iloc[0]
        for name in c.abs().sort_values(ascending=False, kind="stable").index[:top]:
            value, z = float(c[name]), float(Z.iloc[0][name])
            if is_change_feature(name) and name.endswith("undetectable"):
                base = changed_input(name)
                way = "below the limit at both visits" if z == 1 else "measurable"
                drivers.append(f"{_label(base)} change since baseline: {way}, "
                               f"{'raises' if value > 0 else 'lowers'} the log-odds by "
                               f"{abs(value):.2f}")
            elif is_change_feature(name):
                base = changed_input(name)
                way = ("unknown" if not np.isfinite(z) else "no change" if abs(z) < 1e-9
                       else f"{'rose' if z > 0 else 'fell'} ({z:+.2f} log2)")
                drivers.append(f"{_label(base)} change since baseline: {way}, "
                               f"{'raises' if value > 0 else 'lowers'} the log-odds by "
                               f"{abs(value):.2f}")
            else:
                base = name
                drivers.append(f"{_label(name)} at baseline: {value:+.2f} log-odds")
            for a in base.split("/"):  # a ratio's change: both of its cytokines
                if a in panel.values.columns and a not in analytes:
                    analytes.append(a)
    mine = np.flatnonzero(pid == patient)
    mine = mine[np.argsort(months[mine], kind="stable")]
    values: dict[str, list[str]] = {}
    for a in analytes:
        v = panel.values[a].to_numpy(dtype=np.float64)[mine]
        cens = panel.censoring[a].to_numpy()[mine]
        text = [str(t) for t in format_numbers(v)]
        values[_label(a)] = [
            "missing" if not np.isfinite(x) else f"<{t}" if c == BELOW else f">{t}"
            if c == ABOVE else t
            for x, c, t in zip(v, cens, text, strict=True)
        ]
    return Trajectory(
        patient_id=str(patient), therapy=str(current), landmarks=landmarks,
        visits=[float(x) for x in months[mine]], values=values, drivers=drivers,
        alert=alert, alert_threshold=threshold,
    )


def _trajectory_html(tr: Trajectory) -> list[str]:
    name = _e(_therapy_name(tr.therapy))
    out = [f'<h2 id="trajectory">On treatment: patient {_e(tr.patient_id)} on {name}</h2>']
    if tr.alert:
        out.append(
            '<p class="warn" id="alert"><strong>Early non-response alert:</strong> the '
            f"probability of response to {name} at the latest landmark is at or below "
            f"{tr.alert_threshold:.2f}, the threshold chosen in cross-validation to flag "
            "most non-responders (see the model card for its sensitivity and "
            "specificity).</p>")
    elif tr.alert is False:
        out.append(f'<p id="alert">No early non-response alert (threshold '
                   f"{tr.alert_threshold:.2f}).</p>")
    out.append("<table><tr><th>landmark (month)</th><th>sample at month</th>"
               "<th>P(response)</th><th>alert</th></tr>")
    for m, month, prob, text in tr.landmarks:
        out.append(f'<tr><td>{m}</td><td>{_fmt(month)}</td>'
                   f'<td class="prob" id="p-landmark-{m}">{prob:.2f}</td><td>{_e(text)}</td></tr>')
    out.append("</table>")
    if tr.drivers:
        out.append("<p>What drives the latest prediction:</p><ol>")
        out += [f"<li>{_e(d)}</li>" for d in tr.drivers]
        out.append("</ol>")
    if tr.values:
        out.append("<p>Measured values (pg/mL) of these cytokines at each visit:</p>")
        out.append("<table><tr><th>cytokine</th>"
                   + "".join(f"<th>month {_fmt(m)}</th>" for m in tr.visits) + "</tr>")
        for label, vals in tr.values.items():
            out.append(f"<tr><td>{_e(label)}</td>"
                       + "".join(f"<td>{_e(v)}</td>" for v in vals) + "</tr>")
        out.append("</table>")
    return out


def _value_rows(model: Any, row_panel: Any, frame: pd.DataFrame) -> list[ValueRow]:
    quantiles = getattr(model, "training_quantiles", {}) or {}
    ranges = model.training_ranges or {}
    censoring = row_panel.censoring
    rows = []
    for col in model.input_columns:
        if col == "plate":  # a plate code (per-plate normalisation), not a measurement
            continue
        v = float(frame[col].iloc[0])
        is_cov = col in CLINICAL_COVARIATES
        code = 0
        if not is_cov and col in censoring.columns:
            code = int(censoring[col].iloc[0])
        unit = "" if is_cov else " pg/mL"
        if not np.isfinite(v):
            text = "missing"
        elif is_cov and col == "sex":
            text = "female" if v == 1 else "male" if v == 0 else _fmt(v)
        elif code == BELOW or v < 0:
            text = f"< {_fmt(abs(v))}{unit} (below the lower limit)"
        elif code == ABOVE:
            text = f"> {_fmt(v)}{unit} (above the upper limit)"
        else:
            text = f"{_fmt(v)}{unit}"
        pct = float("nan")
        if col in quantiles and np.isfinite(v):
            pct = percentile_of(float(ranking_values(np.asarray([v]), col)[0]), quantiles[col])
        if not np.isfinite(pct):
            pct_text = "not stored in this model" if not quantiles else "—"
        elif code == BELOW or (v < 0 and not is_cov):
            pct_text = f"at or below the {_ordinal(max(pct, 0))}"
        elif code == ABOVE:
            pct_text = f"at or above the {_ordinal(pct)}"
        else:
            pct_text = _ordinal(pct)
        flag = ""
        rng = ranges.get(col)
        range_text = "—"
        if rng is not None:
            lo, hi = rng
            range_text = f"{_fmt(lo)} – {_fmt(hi)}{unit}"
            if np.isfinite(v) and v >= 0 and (v < lo or v > hi):
                flag = "outside the training range"
        if not np.isfinite(v):
            flag = "missing"
        rows.append(ValueRow(col, _label(col), text, pct, pct_text, range_text, flag))
    return rows


def _waterfall_png(base: float, contrib: pd.Series, title: str) -> bytes:
    from cytoresp.models.plots import plot_waterfall

    fig = plot_waterfall(base, contrib, title=title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


# --------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1d2329;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #d0d7de;padding-bottom:.2rem}h3{font-size:1.05rem}
.muted{color:#57606a;font-size:.9rem}table{border-collapse:collapse;margin:.5rem 0}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;font-size:.92rem}
th{background:#f6f8fa}.prob{font-size:1.6rem;font-weight:600}
.up{color:#b42318}.down{color:#175cd3}.warn{background:#fff8e1;border-left:4px solid #f0b400;
padding:.5rem .8rem}.flag{color:#b42318;font-weight:600}img{max-width:100%;height:auto}
.note{background:#f6f8fa;padding:.5rem .8rem;font-size:.9rem}
pre.card{white-space:pre-wrap;font-size:.85rem;background:#f6f8fa;padding:.5rem .8rem}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _interval_text(sec: TherapySection) -> str:
    if sec.interval is None:
        return (
            "No per-patient interval: this model has no bootstrap refits. "
            "See the cross-validated performance below for how far to trust the number."
        )
    lo, hi = sec.interval
    tail = round(50 * (1 - sec.interval_level))
    return (
        f"spread {lo:.2f} to {hi:.2f} ({tail}th to {100 - tail}th percentile over "
        f"{sec.n_members} bootstrap refits of the heads, which reuse the main head's penalty, "
        "tree count and calibration). Not a confidence interval: its coverage was not "
        "measured, and it does not include the model's bias or miscalibration."
    )


def _cv_text(sec: TherapySection) -> str:
    names = {
        "roc_auc": "ROC AUC",
        "brier": "Brier score",
        "calibration_slope": "calibration slope",
        "calibration_intercept": "calibration intercept",
    }
    parts = []
    for key, (v, lo, hi) in sec.cv.items():
        ci = f" (95% CI {lo:.2f} to {hi:.2f})" if np.isfinite(lo) and np.isfinite(hi) else ""
        parts.append(f"{names[key]} {v:.2f}{ci}")
    if not parts:
        return "No cross-validated metrics are stored with this model."
    return "Cross-validated performance of this model: " + "; ".join(parts) + "."


def render_html(report: PatientReport) -> str:
    """The report as one self-contained HTML page (no script, no network).

    Examples
    --------
    >>> page = render_html(build_report(model, panel, "P0007"))
    >>> page.startswith("<!DOCTYPE html>")
    True
    """
    sid = _e(report.sample_id)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>cytoresp report: {sid}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<h1>Patient report: <span id="sample-id">{sid}</span></h1>',
        f'<p class="muted">Input {_e(report.source)} · created {_e(report.created)}',
    ]
    if report.model_info:
        info = "; ".join(f"{_e(k)}: {_e(v)}" for k, v in report.model_info.items())
        out.append(f"<br>Model: {info}")
    if report.card:
        out.append('<br><a href="#model-card">Model card</a> (what the model was trained '
                   "on and how well it did; also <code>cytoresp card --model MODEL</code>)")
    out.append("</p>")
    out.append(
        '<p class="note">Research software. These are statistical estimates from a model '
        "trained on one cohort; they are not a treatment decision.</p>"
    )

    out.append("<h2>Probability of response</h2>")
    for t, text in report.cautions.items():
        name = _e(_therapy_name(t))
        out.append(f'<p class="warn caution" id="caution-{_e(t)}"><strong>{name}: '
                   f"{_e(text)}.</strong> See the model card below.</p>")
    out.append(
        "<table><tr><th>therapy</th><th>P(response)</th><th>interval</th></tr>"
        + "".join(
            f"<tr><td>{_e(_therapy_name(s.therapy))}</td>"
            f'<td class="prob" id="p-{_e(s.therapy)}">{s.probability:.2f}</td>'
            f"<td>{_e(_interval_text(s))}</td></tr>"
            for s in report.therapies
        )
        + "</table>"
    )
    for s in report.therapies:
        out.append(
            f'<p class="muted">{_e(_therapy_name(s.therapy))}: {_e(_cv_text(s))}</p>'
        )
    if report.recommendation:
        out.append(f'<p id="recommendation"><strong>{_e(report.recommendation)}</strong></p>')
        if report.choice_test:
            out.append(
                '<p class="muted" id="choice-test">The interval is a conservative confidence '
                "interval for the average true difference among patients with the same "
                "predicted difference (best linear approximation), not for this patient's "
                "own difference. Training cohort: "
                f"{_e(report.choice_test)}</p>"
            )

    if report.trajectory is not None:
        out += _trajectory_html(report.trajectory)

    if report.warnings:
        out.append('<h2>Warnings</h2><div class="warn"><ul>')
        out += [f"<li>{_e(w)}</li>" for w in report.warnings]
        out.append("</ul></div>")

    for s in report.therapies:
        name = _e(_therapy_name(s.therapy))
        out.append(f"<h2>What drives the prediction for {name}</h2>")
        out.append(
            f'<p class="muted">Starting from the average patient ({s.base_value:+.2f} log-odds), '
            f"each input moves the log-odds up or down; together they reach {s.log_odds:+.2f} "
            f"(P = {s.probability:.2f}). “Typical” means the training average.</p><ol>"
        )
        for d in s.drivers:
            cls = "up" if d.contribution > 0 else "down"
            out.append(f'<li class="{cls}">{_e(d.sentence)}</li>')
        out.append("</ol>")
        if s.balances:
            out.append(
                '<p class="muted">The same total by the balances the model reads '
                "(log-ratios, axis scores, single cytokines):</p><ul>"
            )
            out += [f"<li>{_e(n)}: {v:+.2f} log-odds</li>" for n, v in s.balances]
            out.append("</ul>")
        if s.waterfall_png:
            data = base64.b64encode(s.waterfall_png).decode("ascii")
            out.append(
                f'<img alt="waterfall plot of the contributions for {name}" '
                f'src="data:image/png;base64,{data}">'
            )

    out.append("<h2>Where the patient's values sit in the training cohort</h2>")
    out.append(
        "<table><tr><th>input</th><th>value</th><th>training percentile</th>"
        "<th>training range</th><th></th></tr>"
    )
    for v in report.values:
        out.append(
            f"<tr><td>{_e(v.label)}</td><td>{_e(v.value_text)}</td>"
            f"<td>{_e(v.percentile_text)}</td><td>{_e(v.range_text)}</td>"
            f'<td class="flag">{_e(v.flag)}</td></tr>'
        )
    out.append("</table>")
    out.append(
        '<p class="muted">Percentiles are among all training patients; a value below the '
        "lower limit of quantification counts as the limit / √2, as in the model.</p>"
    )
    if report.card:
        out.append('<h2 id="model-card">Model card</h2>')
        out.append(
            '<details open><summary class="muted">The model card (Markdown, as '
            "<code>cytoresp card</code> prints it and the model folder stores it)</summary>"
            f'<pre class="card">{_e(report.card)}</pre></details>'
        )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_report(
    model: Any,
    data: Any,
    sample_id: str,
    out: str | os.PathLike,
    *,
    therapy: str | None = None,
    top: int = DEFAULT_TOP,
) -> Path:
    """Build and write one patient's HTML report atomically.

    Parameters
    ----------
    model : ResponseModel
    data : Panel, DataFrame or path
    sample_id : str
    out : path
        The ``.html`` file to write.
    therapy : str, optional
    top : int

    Returns
    -------
    Path
        ``out``.

    Examples
    --------
    >>> write_report(model, "new.csv", "P0007", "P0007.html")
    PosixPath('P0007.html')
    """
    from cytoresp.panels.write import atomic_output, check_writable

    check_writable(out)
    page = render_html(build_report(model, data, sample_id, therapy=therapy, top=top))
    with atomic_output(out) as fh:
        fh.write(page)
    return Path(out)
