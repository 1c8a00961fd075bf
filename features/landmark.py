"""Landmark tables: one row per patient, baseline values beside an on-treatment sample.

A landmark ``L`` (months since the therapy started) asks "what do we know about this
patient L months in?". :func:`landmark_table` turns a panel with visits (several samples
per patient, :mod:`cytoresp.panels.visits`) into one row per patient holding

* the baseline (month 0) sample's columns under their usual names (the input of
  :class:`~cytoresp.features.builder.PanelFeatures`, as for a baseline model);
* for ``L > 0``, every measured column of the patient's *latest* sample with
  ``0 < month <= L + window`` under ``<column>@on`` (the input of
  :class:`~cytoresp.features.change.ChangeFromBaseline`), and ``month_on``, the month
  of that sample.

Censoring travels as in every model frame (a value censored below its limit ``L`` is
``-L``), so ``<ID>@on`` columns need no extra flags. Clinical covariates are per patient
(checked when the panel is read): taken from the baseline row, else from the patient's
first row that has them. ``plate`` is the baseline sample's plate; the on-treatment
sample's plate is not kept (plate normalisation applies to the baseline columns only).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from cytoresp.errors import UsageError
from cytoresp.panels.panel import (
    CLINICAL_COVARIATES,
    MONTH_COLUMN,
    PATIENT_COLUMN,
    PLATE_COLUMN,
    Panel,
)

__all__ = [
    "DEFAULT_WINDOW",
    "MONTH_ON",
    "ON_SUFFIX",
    "landmark_table",
    "landmark_window",
]

#: Suffix of the on-treatment columns of a landmark table (``TNF@on``).
ON_SUFFIX = "@on"
#: Column holding the month of the on-treatment sample used.
MONTH_ON = "month_on"
#: Default tolerance (months) after the landmark: a sample taken up to a month late
#: (a 3-month visit at week 16) still counts for the 3-month landmark. An assumption about
#: visit schedules, not derived from data.
DEFAULT_WINDOW = 1.0


def _check_month(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value) \
            or value < 0:
        raise UsageError(f"{name} must be a number of months >= 0, got {value!r}")
    return float(value)


def landmark_window(landmark: float, window: float | None = None) -> tuple[float, float]:
    """The months ``(lo, hi]`` whose samples count as on-treatment for a landmark.

    ``lo`` is 0 (the baseline is not on treatment) and ``hi`` is ``landmark + window``
    (``window`` defaults to :data:`DEFAULT_WINDOW`). For ``landmark = 0`` the window is
    empty: a baseline landmark uses the month-0 sample only.

    Examples
    --------
    >>> landmark_window(3), landmark_window(6, window=0.5), landmark_window(0)
    ((0.0, 4.0), (0.0, 6.5), (0.0, 0.0))
    """
    landmark = _check_month(landmark, "landmark")
    window = DEFAULT_WINDOW if window is None else _check_month(window, "window")
    if landmark == 0:
        return 0.0, 0.0
    return 0.0, landmark + window


def landmark_table(
    panel_frame: pd.DataFrame | Panel,
    landmark: float,
    window: float | None = None,
    *,
    patient_columns: Sequence[str] = CLINICAL_COVARIATES,
) -> pd.DataFrame:
    """One row per patient: baseline columns, and the on-treatment sample for ``L > 0``.

    Parameters
    ----------
    panel_frame : DataFrame or Panel
        ``Panel.to_model_frame(visits=True)`` (columns ``patient_id``, ``month``, then the
        model frame), or a :class:`~cytoresp.panels.panel.Panel` (converted so). A panel
        without visits is one baseline sample per patient.
    landmark : float
        Months since the therapy started; 0 gives the baseline table.
    window : float, optional
        Months after the landmark a sample still counts (default
        :data:`DEFAULT_WINDOW`): on-treatment samples are those with
        ``0 < month <= landmark + window`` (:func:`landmark_window`); the latest is used.
    patient_columns : sequence of str, default CLINICAL_COVARIATES
        Columns that are per patient (no ``@on`` copy). ``plate`` is never copied.

    Returns
    -------
    DataFrame
        Index ``patient_id`` (patients in order of first appearance). Columns: every
        model-frame column from the baseline sample (NaN for a patient without one); for
        ``landmark > 0`` then ``<column>@on`` for every measured column and ``month_on``.
        ``attrs`` holds ``landmark``, ``window`` (``(lo, hi]``), ``dropped`` (patients
        without a usable sample: no baseline for L = 0, no on-treatment sample in the
        window for L > 0) and ``without_baseline`` (patients kept without a baseline).

    Raises
    ------
    UsageError
        For a bad landmark or window, a frame without ``patient_id`` / ``month``, or a
        patient with two samples at one month.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"patient_id": ["A", "A", "A", "B", "C"],
    ...                       "month": [0.0, 3.0, 6.0, 0.0, 3.0],
    ...                       "TNF": [8.0, 4.0, 2.0, 5.0, -1.0], "age": [30.0] * 3 + [40.0, 50.0]})
    >>> t = landmark_table(frame, landmark=3)
    >>> t
                TNF   age  TNF@on  month_on
    patient_id
    A           8.0  30.0     4.0       3.0
    C           NaN  50.0    -1.0       3.0
    >>> t.attrs["dropped"], t.attrs["without_baseline"]
    (['B'], ['C'])
    >>> landmark_table(frame, landmark=6)["TNF@on"].tolist()   # A's latest sample in (0, 7]
    [2.0, -1.0]
    >>> landmark_table(frame, landmark=0).index.tolist()
    ['A', 'B']
    """
    lo, hi = landmark_window(landmark, window)
    landmark = float(landmark)
    frame = panel_frame.to_model_frame(visits=True) if isinstance(panel_frame, Panel) \
        else panel_frame
    if not isinstance(frame, pd.DataFrame) or PATIENT_COLUMN not in frame.columns \
            or MONTH_COLUMN not in frame.columns:
        raise UsageError("landmark_table needs a frame with 'patient_id' and 'month' columns "
                         "(Panel.to_model_frame(visits=True)) or a Panel")
    patient = frame[PATIENT_COLUMN].to_numpy(dtype=object)
    month = pd.to_numeric(frame[MONTH_COLUMN], errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(month).any() or (month < 0).any() or pd.isna(frame[PATIENT_COLUMN]).any():
        raise UsageError("landmark_table: every row needs a patient_id and a month >= 0")
    dup = pd.DataFrame({"p": patient, "m": month}).duplicated(keep=False).to_numpy()
    if dup.any():
        pairs = sorted({(str(p), float(m)) for p, m in zip(patient[dup], month[dup],
                                                            strict=True)})[:10]
        raise UsageError(f"landmark_table: several samples of one patient at one month: "
                         f"{', '.join(f'{p} at month {m:g}' for p, m in pairs)}")

    data = frame.drop(columns=[PATIENT_COLUMN, MONTH_COLUMN])
    order = pd.Index(pd.unique(patient), name=PATIENT_COLUMN, dtype=object)
    per_patient = [c for c in data.columns if c in set(patient_columns)]
    measured = [c for c in data.columns if c not in set(per_patient) and c != PLATE_COLUMN]

    base_rows = month == 0.0
    base = data[base_rows].set_axis(pd.Index(patient[base_rows], dtype=object), axis=0)
    out = base.reindex(order)
    if per_patient:  # per-patient columns: the baseline row, else the patient's first value
        first = data[per_patient].set_axis(pd.Index(patient, dtype=object), axis=0)
        first = first.groupby(level=0, sort=False).first().reindex(order)
        out[per_patient] = out[per_patient].fillna(first)
    has_base = order.isin(pd.Index(patient[base_rows], dtype=object))

    if landmark == 0:
        keep = has_base
        without_baseline: list[Any] = []
    else:
        on_rows = (month > lo) & (month <= hi)
        on = data.loc[on_rows, measured].assign(_m=month[on_rows], _p=patient[on_rows])
        # the latest sample as a whole (groupby().last() would mix visits: it skips NaN)
        on = on.sort_values("_m", kind="stable").drop_duplicates("_p", keep="last")
        on = on.set_index("_p").reindex(order)
        for c in measured:
            out[f"{c}{ON_SUFFIX}"] = on[c].to_numpy(dtype=np.float64)
        out[MONTH_ON] = on["_m"].to_numpy(dtype=np.float64)
        keep = ~np.isnan(out[MONTH_ON].to_numpy())
        without_baseline = order[keep & ~has_base].tolist()
    out.index.name = PATIENT_COLUMN
    result = out[keep].astype(np.float64)
    result.attrs = {
        "landmark": landmark,
        "window": (lo, hi),
        "dropped": order[~keep].tolist(),
        "without_baseline": without_baseline,
    }
    return result
