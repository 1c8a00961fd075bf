"""Visits: several samples of one patient, by month since the therapy started.

A panel may hold a ``patient_id`` and a ``month`` column (months since the therapy
started; 0 = the baseline sample) next to ``sample_id``. Then each row is one visit of a
patient, and:

* ``patient_id`` and ``month`` come together (one without the other is an error), every
  row has both, ``month`` is a finite number >= 0 (fractions allowed: 1.5 months);
* a patient has at most one sample per month (duplicates of (``patient_id``, ``month``)
  are listed in the error);
* therapy, responder and the clinical covariates are per patient: different values on
  two rows of one patient are an error; a row where they are empty takes the patient's
  value from its other rows;
* a patient without a month-0 sample is allowed (it can be scored on its on-treatment
  sample) and reported (:func:`patients_without_baseline`, :func:`baseline_note`).

A panel without these columns is unchanged: one baseline sample per row, the sample id
standing for the patient.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from cytoresp.errors import quote_cell
from cytoresp.panels._table import (
    MAX_PROBLEMS,
    Problems,
    Table,
    list_rows,
    quoted_at,
)
from cytoresp.panels.panel import Panel
from cytoresp.panels.values import as_text, format_numbers, is_numeric_column

__all__ = [
    "BASELINE_MONTH",
    "baseline_note",
    "format_month",
    "parse_visits",
    "patient_has",
    "patient_level",
    "patients_without_baseline",
]

#: The month of the baseline sample (the day the therapy started).
BASELINE_MONTH = 0.0


def format_month(month: float) -> str:
    """A month for messages and ids: ``3.0 -> '3'``, ``1.5 -> '1.5'``.

    Examples
    --------
    >>> format_month(3.0), format_month(1.5)
    ('3', '1.5')
    """
    return str(format_numbers(np.asarray([month], dtype=np.float64))[0])


def _text(col: Any) -> np.ndarray:
    return np.asarray(pc.utf8_trim_whitespace(as_text(col)).to_numpy(zero_copy_only=False),
                      dtype=object)


def parse_visits(table: Table, single: dict[str, int], problems: Problems
                 ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The ``patient_id`` (object) and ``month`` (float64) of every row, or (None, None).

    Problems (one column without the other, empty cells, a month that is not a number
    >= 0, several samples of a patient at one month) go to ``problems``.

    Parameters
    ----------
    table : Table
        The table (blank rows already dropped).
    single : dict
        Role -> column position (``"patient_id"``, ``"month"`` among them when present).
    problems : Problems
        The collector of the whole validation.
    """
    jp, jm = single.get("patient_id"), single.get("month")
    if jp is None and jm is None:
        return None, None
    if jp is None or jm is None:
        have, lacks = (("patient_id", "month") if jm is None else ("month", "patient_id"))
        name = table.names[jp if jm is None else jm]
        problems.add(f"column {name!r} gives the {have} of each sample but there is no "
                     f"{lacks!r} column; samples of several visits need both 'patient_id' "
                     f"and 'month' (months since the therapy started, 0 = baseline), a "
                     f"panel of baseline samples needs neither")
        return None, None
    rows = table.rows
    pname, mname = table.names[jp], table.names[jm]
    patient = _text(table.columns[jp])
    p_empty = patient == ""
    problems.add_cells(p_empty, rows, jp, pname,
                       lambda i: "empty patient id; every row of a panel with visits needs "
                                 "its patient")

    mcol = table.columns[jm]
    if is_numeric_column(mcol):
        month = np.asarray(mcol, dtype=np.float64).copy()
        m_empty = np.isnan(month)
    else:
        mtext = _text(mcol)
        m_empty = mtext == ""
        month = pd.to_numeric(pd.Series(mtext), errors="coerce").to_numpy(dtype=np.float64,
                                                                          copy=True)
    problems.add_cells(m_empty, rows, jm, mname,
                       lambda i: "empty month; every row of a panel with visits needs the "
                                 "months since the therapy started (0 = baseline)")
    with np.errstate(invalid="ignore"):
        bad = ~m_empty & (~np.isfinite(month) | (month < 0))
    problems.add_cells(bad, rows, jm, mname,
                       lambda i: f"month must be a number >= 0 (months since the therapy "
                                 f"started, 0 = baseline), got {quoted_at(mcol, i)}")
    month[m_empty | bad] = np.nan
    patient[p_empty] = None

    ok = ~p_empty & ~np.isnan(month)
    if ok.any():
        keys = pd.DataFrame({"p": patient[ok], "m": month[ok], "row": rows[ok]})
        dup = keys.duplicated(["p", "m"], keep=False).to_numpy()
        if dup.any():
            groups = keys[dup].groupby(["p", "m"], sort=False)["row"]
            for k, ((pid, m), grp) in enumerate(groups):
                if k >= MAX_PROBLEMS:
                    problems.add_summary(f"... and {groups.ngroups - k} more duplicated "
                                         f"(patient_id, month) pairs", groups.ngroups - k)
                    break
                problems.add(f"patient {quote_cell(pid)} has {len(grp)} samples at month "
                             f"{format_month(m)} (rows {list_rows(grp.tolist())}); keep one "
                             f"sample per patient and month (average replicates first)",
                             column=mname, about_rows=True)
    return patient, month


def patient_has(patient: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
    """Rows whose patient has ``mask`` True on some row (all False without visits).

    Examples
    --------
    >>> patient_has(np.array(["a", "a", "b"], dtype=object), np.array([True, False, False]))
    array([ True,  True, False])
    """
    if patient is None:
        return np.zeros(len(mask), dtype=bool)
    has = np.array([p is not None for p in patient], dtype=bool)
    with_mask = set(patient[has & mask].tolist())
    return np.array([p is not None and p in with_mask for p in patient], dtype=bool)


def patient_level(patient: np.ndarray, columns: dict[str, tuple[str, np.ndarray]],
                  rows: np.ndarray, problems: Problems) -> dict[str, np.ndarray]:
    """Per-patient columns checked for agreement and filled within each patient.

    Parameters
    ----------
    patient : ndarray of object
        Patient id per row (None where empty).
    columns : dict
        Role -> (header name, parsed values: float64 or object, NaN = empty).
    rows : ndarray of int
        Spreadsheet row of each data row.
    problems : Problems
        Where a patient whose rows disagree is reported.

    Returns
    -------
    dict
        Role -> values, each empty cell given the value of the patient's other rows.

    Examples
    --------
    >>> p = Problems("<x>")
    >>> out = patient_level(np.array(["a", "a", "b"], dtype=object),
    ...                     {"age": ("age", np.array([30.0, np.nan, 40.0]))},
    ...                     np.array([2, 3, 4]), p)
    >>> out["age"].tolist(), bool(p)
    ([30.0, 30.0, 40.0], False)
    """
    has = np.array([p is not None for p in patient], dtype=bool)
    codes = pd.factorize(pd.Series(patient, dtype=object), use_na_sentinel=True)[0]
    out: dict[str, np.ndarray] = {}
    for role, (name, values) in columns.items():
        s = pd.Series(values)
        s_known = s[has]
        g = s_known.groupby(codes[has], sort=False)
        n_distinct = g.nunique(dropna=True)
        for k, code in enumerate(n_distinct.index[n_distinct.to_numpy() > 1]):
            if k >= MAX_PROBLEMS:
                break
            at = np.flatnonzero((codes == code) & s.notna().to_numpy())
            vals = pd.unique(s.iloc[at])[:5]
            shown = ", ".join(quote_cell(_show(v)) for v in vals)
            problems.add(f"patient {quote_cell(patient[at[0]])} has different values in "
                         f"column {name!r} (rows {list_rows(rows[at].tolist())}): {shown}; "
                         f"{role} is per patient and must agree across the patient's rows",
                         column=name, about_rows=True)
        filled = s.copy()
        filled[has] = g.transform("first")
        out[role] = filled.to_numpy(dtype=values.dtype)
    return out


def _show(v: Any) -> str:
    if isinstance(v, float):
        return format_month(v)
    return str(v)


def patients_without_baseline(panel: Panel) -> list[str]:
    """The patients of a panel with visits that have no month-0 sample, in input order.

    A panel without visits (no ``patient_id`` / ``month``) has only baseline samples:
    the list is empty.

    Examples
    --------
    >>> import io
    >>> from cytoresp.panels import read_panel
    >>> p = read_panel(io.StringIO("sample_id,patient_id,month,IL10\\n"
    ...                            "s1,A,0,1.5\\ns2,A,3,2\\ns3,B,3,1\\n"))
    >>> patients_without_baseline(p)
    ['B']
    """
    if panel.patient_id is None or panel.month is None:
        return []
    pid = panel.patient_id.to_numpy(dtype=object)
    at_baseline = set(pid[panel.month.to_numpy(dtype=np.float64) == BASELINE_MONTH].tolist())
    return [p for p in pd.unique(pid).tolist() if p not in at_baseline]


def baseline_note(panel: Panel) -> str | None:
    """The warning about patients without a baseline sample, or None when there is none.

    Examples
    --------
    >>> import io
    >>> from cytoresp.panels import read_panel
    >>> p = read_panel(io.StringIO("sample_id,patient_id,month,IL10\\ns1,A,3,2\\n"))
    >>> print(baseline_note(p))
    1 patient(s) have no baseline (month 0) sample: 'A'; they can be scored on their
    on-treatment samples, but have no change from baseline
    """
    missing = patients_without_baseline(panel)
    if not missing:
        return None
    shown = ", ".join(quote_cell(str(p)) for p in missing[:20])
    more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
    return (f"{len(missing)} patient(s) have no baseline (month 0) sample: {shown}{more}; "
            f"they can be scored on their on-treatment samples, but have no change from "
            f"baseline")
