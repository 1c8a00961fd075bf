"""Landmark heads: response predicted from on-treatment panels, and the early alert.

A model trained with ``cytoresp train --landmarks 0,3,6`` holds, beside its baseline heads
(landmark 0, the heads of :class:`~cytoresp.models.response_model.ResponseModel`), one
:class:`~cytoresp.models.response_model.TherapyHead` per later landmark month ``L`` and
therapy. A landmark head reads the patient's baseline inputs plus, per analyte, the log2
change from baseline to the latest on-treatment sample in the landmark's window
(:func:`cytoresp.features.landmark.landmark_table`,
:class:`cytoresp.features.landmark.ChangeFromBaseline`): columns named ``<analyte> Δ``,
passed to the head as numeric inputs, so that explanations name them ("change since
baseline").

**Windows.** Landmark ``L`` uses the latest on-treatment sample with
``L_prev < month <= L + window`` where ``L_prev`` is the previous landmark (0 for the
first): a patient sampled at month 3 only has landmark 3, not 6; one sampled at months 3
and 6 has both, and is scored with the latest (6).

**Alert.** Each landmark head stores ``alert_threshold``: the early non-response alert is
raised when the head's calibrated probability of response under the patient's current
therapy is at or below it. It was chosen on out-of-fold probabilities so that
``alert_sensitivity`` of the training non-responders fall at or below it
(:func:`cytoresp.train.threshold.choose_alert_threshold`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cytoresp.models.response_model import TherapyHead

if TYPE_CHECKING:
    from cytoresp.models.response_model import ResponseModel
    from cytoresp.panels.panel import Panel

__all__ = [
    "CHANGE_SUFFIX",
    "LandmarkHeads",
    "changed_input",
    "is_change_feature",
    "landmark_inputs",
    "landmark_table_in",
    "landmark_windows",
    "score_visits",
]

#: Suffix of a change-from-baseline input (``TNF Δ``): explanations say "change since
#: baseline" for these.
CHANGE_SUFFIX = " Δ"


def is_change_feature(name: str) -> bool:
    """True for a change-from-baseline input: ``TNF Δ``, ``IFNG/IL10 Δ``, ``TNF Δ undetectable``.

    Examples
    --------
    >>> is_change_feature("TNF Δ"), is_change_feature("TNF Δ undetectable")
    (True, True)
    >>> is_change_feature("TNF")
    False
    """
    return CHANGE_SUFFIX in str(name)


def changed_input(name: str) -> str:
    """The baseline input a change feature is about: ``TNF Δ`` -> ``TNF``.

    Examples
    --------
    >>> changed_input("TNF Δ undetectable"), changed_input("IFNG/IL10 Δ")
    ('TNF', 'IFNG/IL10')
    """
    return str(name).split(CHANGE_SUFFIX)[0]


def landmark_windows(months: list[int], window: float | None) -> dict[int, tuple[float, float]]:
    """The window ``(after, up_to]`` of each landmark month > 0, in months.

    ``window`` is the tolerance after each landmark (None: the default of
    :func:`cytoresp.features.landmark.landmark_table`, :data:`DEFAULT_WINDOW`).

    Examples
    --------
    >>> landmark_windows([0, 3, 6], 1.0)
    {3: (0.0, 4.0), 6: (3.0, 7.0)}
    """
    w = default_window() if window is None else float(window)
    out, previous = {}, 0.0
    for m in sorted(months):
        if m > 0:
            out[m] = (previous, float(m) + w)
            previous = float(m)
    return out


def default_window() -> float:
    """The tolerance after a landmark when the config sets none (months)."""
    from cytoresp.features.landmark import DEFAULT_WINDOW

    return float(DEFAULT_WINDOW)


@dataclass
class LandmarkHeads:
    """The heads of the landmarks after baseline, and how their inputs are built.

    Attributes
    ----------
    heads : dict of int to dict of str to TherapyHead
        Landmark month -> therapy -> head (each with ``alert_threshold``).
    change : dict of int to ChangeFromBaseline
        Landmark month -> the fitted change step
        (:class:`~cytoresp.features.change.ChangeFromBaseline`) that turns its landmark
        table into the ``<analyte> Δ`` inputs. Fitted once on the training cohort's
        landmark table, without outcomes (which analytes get a "below the limit at both
        visits" indicator, the floor for a 0), and applied unchanged when scoring.
    window : float or None
        Tolerance after each landmark (months); None for the default.
    alert_sensitivity : float
        The share of non-responders the alert thresholds were chosen to flag.
    metadata : dict
        Per landmark: training sizes, cross-validated metrics, the alert's
        cross-validated sensitivity and specificity, the verdict against the baselines.
    """

    heads: dict[int, dict[str, TherapyHead]]
    change: dict[int, Any] = field(default_factory=dict)
    window: float | None = None
    alert_sensitivity: float = 0.8
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Training only, not stored: landmark month -> therapy -> LandmarkReport.
    reports: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def months(self) -> list[int]:
        """Landmark months with at least one head, ascending (0 excluded)."""
        return sorted(m for m, h in self.heads.items() if h)

    def windows(self) -> dict[int, tuple[float, float]]:
        """``(after, up_to]`` of each landmark: as trained (stored per landmark in
        :attr:`metadata`, so a landmark without heads still bounds the next one), else
        :func:`landmark_windows`."""
        stored = {int(m): tuple(float(x) for x in info["window"])
                  for m, info in self.metadata.items() if info.get("window")}
        computed = landmark_windows([0, *self.months], self.window)
        return {m: stored.get(m, w) for m, w in computed.items()}

    def scored_by(self, month: int, therapy: str) -> str:
        """``"landmark"``, or ``"baseline"`` where the landmark head did not clearly beat the
        baseline head out of fold in training (then the baseline head's probability is
        the estimate at that landmark for patients with a baseline sample)."""
        info = self.metadata.get(str(month)) or {}
        return (info.get("scored_by") or {}).get(therapy, "landmark")

    def alert_threshold(self, month: int, therapy: str, scorer: str = "landmark") -> float:
        """The alert threshold of a probability given by ``scorer`` at landmark ``month``.

        ``head.alert_threshold`` was chosen on the probabilities of the head that scores
        the landmark (:meth:`scored_by`). Where that is the baseline head, a patient
        without a baseline sample is still scored by the landmark head, whose own
        threshold is ``metadata[month]["alert"][therapy]["landmark_threshold"]``; NaN
        (no alert) when the model does not store it.
        """
        head = self.heads[month][therapy]
        if scorer == "baseline" or self.scored_by(month, therapy) == "landmark":
            return float(head.alert_threshold)
        alert = ((self.metadata.get(str(month)) or {}).get("alert") or {}).get(therapy) or {}
        return float(alert.get("landmark_threshold", np.nan))

    def inputs(self, visits: pd.DataFrame, month: int) -> pd.DataFrame:
        """The model frame of landmark ``month``: one row per patient in its window.

        ``visits`` is :meth:`Panel.to_model_frame(visits=True)
        <cytoresp.panels.panel.Panel.to_model_frame>`. Columns: the baseline inputs, the
        ``<analyte> Δ`` changes, and ``month_on`` (the month of the on-treatment sample).
        """
        return landmark_inputs(visits, month, self.windows()[month], self.change[month])


def landmark_table_in(
    visits: pd.DataFrame, month: int, window: tuple[float, float]
) -> pd.DataFrame:
    """The landmark table of ``month``, only the patients whose sample is in ``window``.

    :func:`cytoresp.features.landmark.landmark_table` takes the latest on-treatment
    sample with ``0 < month <= up_to``; the ones at or before ``after`` (the previous
    landmark) belong to the previous landmark and are dropped here.
    """
    from cytoresp.features.landmark import landmark_table

    after, up_to = window
    table = landmark_table(visits, float(month), window=up_to - float(month))
    keep = table["month_on"].to_numpy(dtype=np.float64) > after
    return table[keep] if not keep.all() else table


def landmark_inputs(
    visits: pd.DataFrame, month: int, window: tuple[float, float], change
) -> pd.DataFrame:
    """Baseline inputs, ``<analyte> Δ`` changes and ``month_on`` of one landmark.

    Parameters
    ----------
    visits : DataFrame
        The visits model frame (``patient_id``, ``month``, analytes, covariates).
    month : int
        The landmark month.
    window : (float, float)
        ``(after, up_to]``: the on-treatment sample's month must be in it.
    change : ChangeFromBaseline
        The fitted change step.

    Returns
    -------
    DataFrame
        Index ``patient_id``; only the patients with an on-treatment sample in the window.
    """
    table = landmark_table_in(visits, month, window)
    names = list(change.get_feature_names_out())
    if len(table):
        deltas = pd.DataFrame(change.transform(table[list(change.feature_names_in_)]),
                              index=table.index, columns=names)
    else:
        deltas = pd.DataFrame(columns=names, index=table.index, dtype=np.float64)
    out = pd.concat([table[_baseline_columns(table)], deltas], axis=1)
    out["month_on"] = table["month_on"].to_numpy(dtype=np.float64)
    return out


def _baseline_columns(table: pd.DataFrame) -> list[str]:
    """The columns of a landmark table that hold baseline inputs (analytes, covariates)."""
    return [
        c for c in table.columns
        if not str(c).endswith("@on") and c not in ("month_on", "patient_id", "month")
        and not str(c).startswith("_")
    ]


#: Columns of :func:`score_visits`, in order (``drivers`` with ``explain``, then ``warnings``).
VISIT_COLUMNS = (
    "patient_id", "sample_id", "therapy", "landmark_month", "p_response",
    "p_response_baseline", "p_response_change", "early_nonresponse_alert",
)


def patient_therapy(panel: Panel, therapy: str | None = None) -> pd.Series:
    """The current therapy of every patient (index ``patient_id``, input order).

    The panel's ``therapy`` column (per patient), else ``therapy`` for every patient,
    else missing.
    """
    pid = _patient_ids(panel)
    if panel.therapy is not None:
        known = pd.Series(panel.therapy.to_numpy(dtype=object), index=pid)
        first = known.groupby(level=0, sort=False).first()
    else:
        first = pd.Series(np.nan, index=pd.unique(pid), dtype=object)
    if therapy is not None:
        first = first.where(first.notna(), therapy)
    first.index.name = "patient_id"
    return first


def _patient_ids(panel) -> pd.Index:
    if getattr(panel, "patient_id", None) is not None:
        return pd.Index(panel.patient_id.to_numpy(dtype=object), name="patient_id")
    return pd.Index(panel.values.index.to_numpy(dtype=object), name="patient_id")


def landmark_probabilities(
    model: ResponseModel, panel: Panel, therapy: str | None = None
) -> dict[str, Any]:
    """Every probability of response under the current therapy a patient has.

    Returns a dict: ``therapy`` (Series per patient), ``p`` (DataFrame, patients x
    landmark months 0, 3, 6, ...: the calibrated probability of response of that
    landmark's head, NaN where the patient has no sample in its window or the therapy no
    head), ``sample`` (the sample id scored at each landmark), ``inputs`` (landmark month
    -> the model frame of that landmark, for explanations), ``base_frame`` (baseline model
    frame by patient).
    """
    from cytoresp.models.response_model import align_frame

    visits = panel.to_model_frame(visits=True)
    current = patient_therapy(panel, therapy)
    patients = current.index
    months = [0] + (model.landmarks.months if model.landmarks is not None else [])
    p = pd.DataFrame(np.nan, index=patients, columns=months)
    sample = pd.DataFrame(None, index=patients, columns=months, dtype=object)
    key = pd.MultiIndex.from_arrays([visits["patient_id"].to_numpy(dtype=object),
                                     visits["month"].to_numpy(dtype=np.float64)])
    sample_of = pd.Series(visits.index.to_numpy(dtype=object), index=key)
    at_base = visits["month"].to_numpy(dtype=np.float64) == 0.0
    base = visits.loc[at_base]
    base_frame = align_frame(base.drop(columns=["patient_id", "month"]), model.input_columns)
    base_frame.index = pd.Index(base["patient_id"].to_numpy(dtype=object), name="patient_id")
    base_frame.attrs["cytoresp_model_frame"] = True
    sample.loc[base_frame.index, 0] = base.index.to_numpy(dtype=object)
    for t in model.therapies:
        who = base_frame.index[(current.reindex(base_frame.index) == t).to_numpy()]
        if len(who):
            p.loc[who, 0] = model.heads[t].response_probability(base_frame.loc[who])
    inputs = {0: base_frame}
    scorer = pd.DataFrame(None, index=patients, columns=months, dtype=object)
    scorer.loc[p[0].notna().to_numpy(), 0] = "baseline"
    for month in months[1:]:
        inp = model.landmarks.inputs(visits, month)
        inputs[month] = inp
        for t, head in model.landmarks.heads[month].items():
            who = inp.index[(current.reindex(inp.index) == t).to_numpy()]
            if not len(who):
                continue
            on = inp.loc[who, "month_on"].to_numpy(dtype=np.float64)
            sample.loc[who, month] = sample_of.reindex(
                pd.MultiIndex.from_arrays([who.to_numpy(dtype=object), on])).to_numpy()
            by_base = pd.Index([])
            if model.landmarks.scored_by(month, t) == "baseline":
                by_base = who[p.loc[who, 0].notna().to_numpy()]
                p.loc[by_base, month] = p.loc[by_base, 0]
                scorer.loc[by_base, month] = "baseline"
            rest = who.difference(by_base, sort=False)
            if len(rest):
                frame = align_frame(inp.loc[rest], head.input_columns)
                p.loc[rest, month] = head.response_probability(frame)
                scorer.loc[rest, month] = "landmark"
    return {"therapy": current, "p": p, "sample": sample, "inputs": inputs,
            "base_frame": base_frame, "scorer": scorer}


def score_visits(
    model: ResponseModel, panel: Panel, therapy: str | None = None, explain: int = 0
) -> pd.DataFrame:
    """One row per patient: the latest landmark's probability, the change, the alert.

    Parameters
    ----------
    model : ResponseModel
        A model with landmark heads (``train --landmarks``), or without (then every
        patient is scored at baseline).
    panel : Panel
        A panel with visits (``patient_id``, ``month``).
    therapy : str, optional
        The current therapy of patients whose ``therapy`` cell is empty.
    explain : int
        Add ``drivers``: the ``explain`` largest contributions of the head that scored the
        patient (``TNF Δ↓ +0.40``: TNF fell since baseline, which raised the log-odds of
        response by 0.40).

    Returns
    -------
    DataFrame
        Columns :data:`VISIT_COLUMNS` (+ ``drivers``), ``warnings``. ``landmark_month`` is
        the latest landmark with a head for the patient's therapy and a sample in its
        window (0: the baseline head); ``p_response`` that head's calibrated probability
        of response under the current therapy; ``p_response_baseline`` the baseline head's
        (empty without a month-0 sample); ``p_response_change`` the difference;
        ``early_nonresponse_alert`` true when ``p_response`` is at or below the landmark
        head's alert threshold (empty at baseline).
    """
    got = landmark_probabilities(model, panel, therapy)
    p, current, samples = got["p"], got["therapy"], got["sample"]
    months = list(p.columns)
    has = p.notna().to_numpy()
    last = np.where(has.any(axis=1), has.shape[1] - 1 - np.argmax(has[:, ::-1], axis=1), -1)
    month_arr = np.asarray(months, dtype=np.float64)
    rows = np.arange(len(p))
    latest = np.where(last >= 0, month_arr[np.maximum(last, 0)], np.nan)
    p_latest = np.where(last >= 0, p.to_numpy()[rows, np.maximum(last, 0)], np.nan)
    p_base = p[0].to_numpy(dtype=np.float64)
    alert = pd.array([pd.NA] * len(p), dtype="boolean")
    thresholds = np.full(len(p), np.nan)
    scorer = got["scorer"].to_numpy(dtype=object)
    for i in np.flatnonzero(last > 0):
        month, t = months[last[i]], current.iloc[i]
        thresholds[i] = model.landmarks.alert_threshold(month, t, scorer[i, last[i]])
    on = last > 0
    known = on & np.isfinite(thresholds)
    alert[known] = p_latest[known] <= thresholds[known]
    sample_scored = [samples.iat[i, last[i]] if last[i] >= 0 else None for i in rows]
    out = pd.DataFrame(
        {
            "patient_id": p.index.to_numpy(dtype=object),
            "sample_id": sample_scored,
            "therapy": current.to_numpy(dtype=object),
            "landmark_month": pd.array(np.where(np.isnan(latest), np.nan, latest),
                                       dtype="Float64").round(0).astype("Int64"),
            "p_response": p_latest,
            "p_response_baseline": p_base,
            "p_response_change": np.where(on, p_latest - p_base, np.nan),
            "early_nonresponse_alert": alert,
        }
    )
    if explain > 0:
        out["drivers"] = _drivers(model, got, last, months, explain)
    out["warnings"] = _visit_warnings(model, panel, got, last)
    return out


def _drivers(model, got: dict, last: np.ndarray, months: list, k: int) -> list[str]:
    from cytoresp.models.attribution import contributions_and_inputs
    from cytoresp.models.response_model import align_frame, format_drivers

    current = got["therapy"]
    text = [""] * len(last)
    scorer = got["scorer"].to_numpy(dtype=object)
    rows = np.arange(len(last))
    by = np.where(last >= 0, scorer[rows, np.maximum(last, 0)], None)
    for j, month in enumerate(months):
        heads = model.heads if month == 0 else model.landmarks.heads[month]
        for (t, head), kind in [(h, k) for h in heads.items() for k in ("baseline", "landmark")]:
            idx = np.flatnonzero((last == j) & (current.to_numpy(dtype=object) == t)
                                 & (by == kind))
            if not len(idx):
                continue
            if kind == "baseline":
                head, month_in = model.heads[t], 0
            else:
                month_in = month
            frame = align_frame(got["inputs"][month_in].loc[current.index[idx]],
                                head.input_columns)
            _, contrib, Z = contributions_and_inputs(head, frame)
            for i, s in zip(idx, format_drivers(contrib, Z, head.background, k), strict=True):
                text[i] = s
    return text


def _visit_warnings(model, panel, got: dict, last: np.ndarray) -> list[str]:
    current = got["therapy"]
    base_known = got["p"][0].notna().to_numpy()
    has_base = current.index.isin(got["base_frame"].index)
    months = list(got["p"].columns)
    scorer = got["scorer"].to_numpy(dtype=object)
    out = []
    for i, t in enumerate(current.to_numpy(dtype=object)):
        notes = []
        if last[i] > 0 and scorer[i, last[i]] == "baseline":
            notes.append(f"the {months[last[i]]}-month head did not beat the baseline head in "
                         f"cross-validation: the baseline probability is used")
        if not isinstance(t, str):
            notes.append("no therapy: the current therapy is needed to score visits "
                         "(a 'therapy' column, or --therapy)")
        elif t not in model.heads:
            notes.append(f"this model has no head for therapy {t}")
        if not has_base[i]:
            notes.append("no baseline (month 0) sample: no baseline probability, changes "
                         "since baseline unknown")
        elif not base_known[i] and isinstance(t, str) and t in model.heads:
            notes.append("baseline not scored")
        out.append("; ".join(notes))
    return out
