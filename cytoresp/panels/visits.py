"""Visits: several samples of one patient, by month since the therapy started.

A panel may hold a ``patient_id`` and a ``month`` column (months since the therapy
started; 0 = the baseline sample) next to ``sample_id``. Then each row is one visit of a
patient, and:

* ``patient_id`` and ``month`` come together (``month`` alone is an error; ``patient_id``
  alone is a baseline cohort when its ids are unique, an error otherwise), every row has
  both, ``month`` is a finite number >= 0 (fractions allowed: 1.5 months);
* a patient has at most one sample per month (duplicates of (``patient_id``, ``month``)
  are listed in the error);
* therapy, responder and the clinical covariates are per patient: different therapies or
  responses on two rows of one patient are an error; a clinical covariate recorded at
  every visit (age, disease duration, EDSS) takes the baseline row's value, with a
  warning where the rows differ; a row where they are empty takes the patient's value;
* a patient without a month-0 sample is allowed (it can be scored on its on-treatment
  sample) and reported (:func:`patients_without_baseline`, :func:`baseline_note`).

A panel without these columns is unchanged: one baseline sample per row, the sample id
standing for the patient.
"""

from __future__ import annotations

import re
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
    text_at,
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


def parse_visits(table: Table, single: dict[str, int], problems: Problems,
                 notes: list[str] | None = None
                 ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The ``patient_id`` (object) and ``month`` (float64) of every row, or (None, None).

    Problems (a month without patients, a patient with several rows but no month, empty
    cells, a month that is not a number >= 0, several samples of a patient at one month)
    go to ``problems``. A ``patient_id`` column without ``month`` whose ids are unique is
    the common export of a baseline cohort: each row stays one patient's baseline sample,
    with a note in ``notes``.

    Parameters
    ----------
    table : Table
        The table (blank rows already dropped).
    single : dict
        Role -> column position (``"patient_id"``, ``"month"`` among them when present).
    problems : Problems
        The collector of the whole validation.
    notes : list of str, optional
        Where the non-fatal findings go (the panel's warnings).
    """
    jp, jm = single.get("patient_id"), single.get("month")
    if jp is None and jm is None:
        return None, None
    if jm is None:
        name = table.names[jp]
        ids = pd.Series(_text(table.columns[jp]))
        dup = ids[(ids != "") & ids.duplicated(keep=False)]
        if len(dup):
            first, others = dup.iloc[0], dup.nunique() - 1
            also = f" (and {others} other patient(s) several)" if others else ""
            problems.add(f"column {name!r}: patient {quote_cell(first)} has "
                         f"{int((ids == first).sum())} rows{also} but there is no 'month' "
                         f"column; samples of several visits need 'month' (months since the "
                         f"therapy started, 0 = baseline)")
        elif notes is not None:
            notes.append(f"column {name!r} holds patient ids but there is no 'month' column: "
                         f"each row is taken as one patient's baseline sample")
        return None, None
    if jp is None:
        problems.add(f"column {table.names[jm]!r} gives the month of each sample but there is "
                     f"no 'patient_id' column; samples of several visits need both "
                     f"'patient_id' and 'month' (months since the therapy started, 0 = "
                     f"baseline), a panel of baseline samples needs neither")
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
                                 f"started, 0 = baseline), got {quoted_at(mcol, i)}"
                                 f"{_month_hint(text_at(mcol, i))}")
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


_VISIT_LABEL = re.compile(r"(?:m|mo|month|months)\s*([0-9]+(?:\.[0-9]+)?)|"
                          r"([0-9]+(?:\.[0-9]+)?)\s*(?:m|mo|month|months)", re.IGNORECASE)
_BASELINE_LABEL = re.compile(r"baseline|bl|base|pre|pre-?treatment|t0|v0|visit ?0",
                             re.IGNORECASE)


def _month_hint(cell: str) -> str:
    """A hint for a visit label written as text: ``'M3'`` -> write ``3``.

    Examples
    --------
    >>> _month_hint("M3"), _month_hint("6 months"), _month_hint("x")
    (' (write the number of months: 3)', ' (write the number of months: 6)', '')
    >>> _month_hint("Baseline")
    ' (write 0 for the baseline sample)'
    """
    text = cell.strip()
    m = _VISIT_LABEL.fullmatch(text)
    if m:
        return f" (write the number of months: {m.group(1) or m.group(2)})"
    if _BASELINE_LABEL.fullmatch(text):
        return " (write 0 for the baseline sample)"
    return ""


def patient_has(patient: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
    """Rows whose patient has ``mask`` True on some row (all False without visits).

    Examples
    --------
    >>> patient_has(np.array(["a", "a", "b"], dtype=object), np.array([True, False, False]))
    array([ True,  True, False])
    """
    if patient is None:
        return np.zeros(len(mask), dtype=bool)
    s = pd.Series(patient, dtype=object)
    has = s.notna().to_numpy()
    return has & s.isin(pd.unique(patient[has & mask])).to_numpy()


def patient_level(patient: np.ndarray, columns: dict[str, tuple[str, np.ndarray]],
                  rows: np.ndarray, problems: Problems, *,
                  raw: dict[str, Any] | None = None,
                  baseline: np.ndarray | None = None,
                  notes: list[str] | None = None) -> dict[str, np.ndarray]:
    """Per-patient columns: one value per patient, on every row of the patient.

    Without ``baseline`` (therapy, responder) every row of a patient must agree: a patient
    whose rows differ is an error in ``problems``, and an empty cell takes the value of the
    patient's other rows. With ``baseline`` (the clinical covariates, which registries
    often record at every visit: age, disease duration, EDSS) the patient's value is the
    one of its baseline row, else of its first row with a value, and rows that differ are
    a warning in ``notes`` (the model's covariates are baseline covariates).

    Parameters
    ----------
    patient : ndarray of object
        Patient id per row (None where empty).
    columns : dict
        Role -> (header name, parsed values: float64 or object, NaN = empty).
    rows : ndarray of int
        Spreadsheet row of each data row.
    problems : Problems
        Where a patient whose rows disagree is reported (without ``baseline``).
    raw : dict, optional
        Role -> the column as read, to quote the cells as written in messages (else the
        parsed values are shown).
    baseline : ndarray of bool, optional
        The baseline rows (month 0): their value is the patient's, and disagreement is a
        warning.
    notes : list of str, optional
        Where the warnings go with ``baseline``.

    Returns
    -------
    dict
        Role -> values, each row given its patient's value.

    Examples
    --------
    >>> p = Problems("<x>")
    >>> out = patient_level(np.array(["a", "a", "b"], dtype=object),
    ...                     {"age": ("age", np.array([30.0, np.nan, 40.0]))},
    ...                     np.array([2, 3, 4]), p)
    >>> out["age"].tolist(), bool(p)
    ([30.0, 30.0, 40.0], False)
    >>> notes = []
    >>> out = patient_level(np.array(["a", "a"], dtype=object),
    ...                     {"age": ("age", np.array([31.0, 30.5]))}, np.array([2, 3]), p,
    ...                     baseline=np.array([False, True]), notes=notes)
    >>> out["age"].tolist(), bool(p), len(notes)
    ([30.5, 30.5], False, 1)
    """
    has = pd.notna(pd.Series(patient, dtype=object)).to_numpy()
    codes = pd.factorize(pd.Series(patient, dtype=object), use_na_sentinel=True)[0]
    out: dict[str, np.ndarray] = {}
    for role, (name, values) in columns.items():
        s = pd.Series(values)
        known = has & s.notna().to_numpy()
        n_distinct = s[known].groupby(codes[known], sort=False).nunique()
        differ = n_distinct.index[n_distinct.to_numpy() > 1].to_numpy()
        if len(differ):
            col = None if raw is None else raw.get(role)
            lines = []
            for code in differ[:MAX_PROBLEMS if baseline is None else 3]:
                at = np.flatnonzero((codes == code) & known)
                who, where = quote_cell(patient[at[0]]), list_rows(rows[at].tolist())
                shown = _distinct_cells(col, s, at)
                if baseline is None:
                    problems.add(f"patient {who} has different values in column {name!r} "
                                 f"(rows {where}): {shown}; {role} is per patient and must "
                                 f"agree across the patient's rows", column=name,
                                 about_rows=True)
                else:
                    lines.append(f"patient {who} (rows {where}): {shown}")
            if lines and notes is not None:
                more = f" and {len(differ) - 3} more" if len(differ) > 3 else ""
                notes.append(f"column {name!r} differs between the rows of {len(differ)} "
                             f"patient(s): {'; '.join(lines)}{more}; {role} is taken per "
                             f"patient, from the baseline (month 0) row, else the patient's "
                             f"first row with a value")
        # the patient's value: its baseline row's where known, else its first known row
        idx = np.flatnonzero(known)
        if baseline is not None:
            idx = idx[np.argsort(~baseline[idx], kind="stable")]
        first = pd.Series(s.to_numpy()[idx]).groupby(codes[idx], sort=False).first()
        filled = s.copy()
        filled[has] = first.reindex(codes[has]).to_numpy()
        out[role] = filled.to_numpy(dtype=values.dtype)
    return out


def _distinct_cells(col: Any, parsed: pd.Series, at: np.ndarray) -> str:
    """The distinct values at rows ``at`` (at most 5), as written in the file if known."""
    if col is None:
        vals = pd.unique(parsed.iloc[at])[:5]
        return ", ".join(quote_cell(_show(v)) for v in vals)
    seen: dict[Any, str] = {}
    for i in at.tolist():
        key = parsed.iloc[i]
        if key not in seen:
            seen[key] = quoted_at(col, i)
        if len(seen) == 5:
            break
    return ", ".join(seen.values())


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
