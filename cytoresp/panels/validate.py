"""Validation: a :class:`Table` in the wide layout becomes a :class:`Panel`.

Every format reader ends here, so all formats share the same checks: column roles,
analyte columns and their units, cell values and censoring, labels and covariates, sample
ids. Every problem is collected (:class:`~cytoresp.panels._table.Problems`) and raised
together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cytoresp.errors import quote_cell
from cytoresp.panels._table import (
    MAX_PROBLEMS,
    SAMPLE_ALIASES,
    Preparsed,
    Problems,
    Table,
    analyte_header,
    blank_rows,
    header_suggestion,
    list_rows,
    quoted_at,
    report_value_flags,
    role_key,
    role_of,
)
from cytoresp.panels.declared import DeclaredColumn, match_declared
from cytoresp.panels.panel import ABOVE, BELOW, CLINICAL_COVARIATES, OBSERVED, Panel
from cytoresp.panels.registry import get_analyte
from cytoresp.panels.therapies import (
    Therapy,
    therapy_key,
    therapy_keys,
    unknown_therapy_message,
)
from cytoresp.panels.units import SUPPORTED_UNITS
from cytoresp.panels.values import as_text, is_numeric_column, parse_value_column
from cytoresp.panels.visits import parse_visits, patient_has, patient_level

__all__ = ["panel_from_table"]

#: At most this many names are listed in a warning about ignored columns.
_MAX_NAMES = 20

#: A plate column is checked for one sample per plate from this many labelled rows on.
_MIN_ROWS_PLATE_CHECK = 10

#: Plausible ranges of the numeric covariates: (low, high, must be whole).
_COVARIATE_RANGE: dict[str, tuple[float, float, bool]] = {
    "age": (0.0, 120.0, False),
    "edss": (0.0, 10.0, False),
    "disease_duration_y": (0.0, 100.0, False),
    "relapses_prior_2y": (0.0, np.inf, True),
    "gd_lesions": (0.0, np.inf, True),
}

_SEX = {"f": 1.0, "female": 1.0, "w": 1.0, "woman": 1.0, "1": 1.0, "1.0": 1.0,
        "m": 0.0, "male": 0.0, "man": 0.0, "0": 0.0, "0.0": 0.0}
_RESPONDER = {"1": 1.0, "1.0": 1.0, "true": 1.0, "yes": 1.0, "y": 1.0,
              "0": 0.0, "0.0": 0.0, "false": 0.0, "no": 0.0, "n": 0.0}


def _therapy_key(text: pa.Array) -> pa.Array:
    """:func:`~cytoresp.panels.therapies.therapy_key` of every cell (once per distinct value)."""
    distinct = pc.unique(text)
    keys = pa.array([None if v is None else therapy_key(v) for v in distinct.to_pylist()],
                    text.type)
    return pc.take(keys, pc.index_in(text, value_set=distinct))

# ---------------------------------------------------------------------------------------
# wide table -> Panel


@dataclass
class _Roles:
    sample: int | None = None
    single: dict[str, int] = field(default_factory=dict)  # role -> column position
    analytes: list[tuple[int, str, float]] = field(default_factory=list)  # (pos, id, factor)
    unknown: list[int] = field(default_factory=list)
    refused: int = 0  # analyte columns refused (ambiguous name, unknown unit)
    declared: list[tuple[int, DeclaredColumn]] = field(default_factory=list)


def _classify(table: Table, problems: Problems, notes: list[str],
              declared: tuple[DeclaredColumn, ...] | None = None) -> _Roles:
    roles = _Roles()
    seen: dict[str, list[int]] = {}
    sample_candidates: list[tuple[int, int]] = []  # (priority, position)
    for j, raw in enumerate(table.names):
        name = raw.strip()
        col = table.columns[j]
        if not name:
            if not isinstance(col, Preparsed) and _any_nonempty(col):
                roles.unknown.append(j)
            continue
        decl = match_declared(name, declared)
        if decl is not None and decl.kind == "sample_id":
            sample_candidates.append((-1, j))  # declared: before every alias
            continue
        if decl is not None and decl.kind != "concentration":
            roles.declared.append((j, decl))
            continue
        if decl is not None and analyte_header(name).analyte is None:
            problems.add(f"column {name!r} is declared a concentration but is not an analyte "
                         f"of docs/analytes.md; declare it 'log' (values on a log scale) or "
                         f"'numeric'", column=name)
            roles.refused += 1
            continue
        role = role_of(name)
        if role == "sample_id":
            sample_candidates.append((SAMPLE_ALIASES.index(role_key(name)), j))
            continue
        if role is not None:
            seen.setdefault(role, []).append(j)
            continue
        header = analyte_header(name)
        aid = header.analyte
        if aid is None:
            if header.ambiguity:
                problems.add(f"ambiguous analyte name: {header.ambiguity}", column=name)
                roles.refused += 1
            else:
                roles.unknown.append(j)
            continue
        if header.note:
            notes.append(f"column {name!r}: {header.note}")
        factor = 1.0
        if not isinstance(col, Preparsed):
            if header.factor is None:
                problems.add(f"unknown unit {header.unit!r} for analyte {aid}; supported: "
                             f"{SUPPORTED_UNITS} (Olink NPX and MFI are not concentrations)",
                             column=name)
                roles.refused += 1
                continue
            factor = header.factor
        seen.setdefault("analyte:" + aid, []).append(j)
        roles.analytes.append((j, aid, factor))
    for role, cols in seen.items():
        if len(cols) > 1:
            names = " and ".join(repr(table.names[c]) for c in cols)
            what = f"analyte {role.split(':', 1)[1]}" if role.startswith("analyte:") else role
            problems.add(f"columns {names} both give {what}; keep one of them")
        elif not role.startswith("analyte:"):
            roles.single[role] = cols[0]
    if sample_candidates:
        sample_candidates.sort()
        roles.sample = sample_candidates[0][1]
        best = sample_candidates[0][0]
        for prio, j in sample_candidates[1:]:
            if prio == best and best >= 0:
                problems.add(f"columns {table.names[roles.sample]!r} and {table.names[j]!r} "
                             f"both look like the sample id; keep one of them")
            else:
                roles.unknown.append(j)
    return roles


def _any_nonempty(col: Any) -> bool:
    if is_numeric_column(col):
        return bool(np.any(~np.isnan(np.asarray(col, dtype=np.float64))))
    return bool(pc.any(pc.not_equal(as_text(col), "")).as_py() or False)


def _parse_analytes(table: Table, roles: _Roles, problems: Problems, notes: list[str]
                    ) -> tuple[list[str], np.ndarray, np.ndarray]:
    n = len(table)
    ids = [aid for _, aid, _ in roles.analytes]
    V = np.empty((n, len(ids)), dtype=np.float64)
    C = np.empty((n, len(ids)), dtype=np.int8)
    for k, (j, aid, factor) in enumerate(roles.analytes):
        col, name = table.columns[j], table.names[j]
        if isinstance(col, Preparsed):
            V[:, k], C[:, k] = col.values, col.censoring
            continue
        values, cens, flags = parse_value_column(col)
        report_value_flags(flags, col, name, j, table.rows, problems)
        if factor != 1.0:
            values = values * factor
        a = get_analyte(aid)
        fill_b = flags.no_limit & (cens == BELOW)
        fill_a = flags.no_limit & (cens == ABOVE)
        values[fill_b] = a.lloq
        values[fill_a] = a.uloq
        if fill_b.any() or fill_a.any():
            parts = []
            if fill_b.any():
                parts.append(f"{int(fill_b.sum())} below-limit cell(s) without a limit got the "
                             f"registry LLOQ {a.lloq:g} pg/mL")
            if fill_a.any():
                parts.append(f"{int(fill_a.sum())} above-limit cell(s) without a limit got the "
                             f"registry ULOQ {a.uloq:g} pg/mL")
            notes.append(f"{name}: {'; '.join(parts)} (docs/analytes.md); write the kit's "
                         f"limit in the cell (e.g. '<0.64') to be exact")
        if flags.extrapolated.any():
            rows = table.rows[flags.extrapolated]
            notes.append(f"{name}: {len(rows)} value(s) marked as extrapolated ('*') were used "
                         f"as measured (rows {list_rows(rows.tolist())})")
        V[:, k], C[:, k] = values, cens
    return ids, V, C


def _parse_numeric_role(col: Any, name: str, role: str, order: int, rows: np.ndarray,
                        problems: Problems, notes: list[str]) -> np.ndarray:
    values, cens, flags = parse_value_column(col)
    # a bound such as '>90' (ages de-identified under HIPAA Safe Harbor) is read as its bound
    bounded = (cens != OBSERVED) & ~flags.no_limit
    if bounded.any():
        notes.append(f"{name}: {int(bounded.sum())} value(s) given as a bound (e.g. "
                     f"{quoted_at(col, int(np.flatnonzero(bounded)[0]))}) were read as the "
                     f"bound (rows {list_rows(rows[bounded].tolist())})")
    bad = flags.invalid | flags.bad_limit | flags.extrapolated | flags.no_limit
    lo, hi, whole = _COVARIATE_RANGE[role]
    problems.add_cells(bad, rows, order, name,
                       lambda i: f"{role} must be a number, got {quoted_at(col, i)}")
    values = np.where(bad, np.nan, values)
    raw = values.copy()
    raw[flags.negative] = -1.0  # out of range below, whatever its value
    with np.errstate(invalid="ignore"):
        out = ~np.isnan(raw) & ((raw < lo) | (raw > hi))
        notwhole = whole & ~out & ~np.isnan(raw) & (raw != np.round(raw))
    span = f"{lo:g} to {hi:g}" if np.isfinite(hi) else f">= {lo:g}"
    problems.add_cells(out, rows, order, name,
                       lambda i: f"{role} {quoted_at(col, i)} is outside the plausible range "
                                 f"{span}")
    problems.add_cells(notwhole, rows, order, name,
                       lambda i: f"{role} must be a whole number (a count), got "
                                 f"{quoted_at(col, i)}")
    return np.where(out | notwhole, np.nan, values)


#: Cells read as missing in a declared numeric, log or categorical column.
_MISSING_TOKENS = ("", "na", "nan", "n/a", "null", "none", ".", "-")


def _parse_declared(col: Any, name: str, decl: DeclaredColumn, order: int, rows: np.ndarray,
                    problems: Problems) -> dict[str, np.ndarray]:
    """The model-frame columns of a declared numeric, log or categorical column."""
    text = pc.utf8_trim_whitespace(as_text(col))
    missing = np.asarray(pc.is_in(pc.utf8_lower(text), value_set=pa.array(_MISSING_TOKENS))
                         .to_numpy(zero_copy_only=False), dtype=bool)
    if decl.kind == "categorical":
        idx, _ = _map_tokens(text, {lvl: k for k, lvl in enumerate(decl.levels)})
        bad = (idx < 0) & ~missing
        problems.add_cells(bad, rows, order, name,
                           lambda i: f"{quoted_at(text, i)} is not a declared level of {name} "
                                     f"({', '.join(decl.levels)})")
        out = {}
        for k, cname in enumerate(decl.model_columns(name), start=1):
            out[cname] = np.where((idx < 0), np.nan, (idx == k).astype(np.float64))
        return out
    values = pd.to_numeric(pd.Series(text.to_numpy(zero_copy_only=False)), errors="coerce")
    values = values.to_numpy(dtype=np.float64, copy=True)
    bad = np.isnan(values) & ~missing
    problems.add_cells(bad, rows, order, name,
                       lambda i: f"{name} is declared {decl.kind}: a number is expected, got "
                                 f"{quoted_at(text, i)}")
    values[missing] = np.nan
    if np.isinf(values).any():
        problems.add_cells(np.isinf(values), rows, order, name,
                           lambda i: f"{name}: infinite value {quoted_at(text, i)}")
        values[np.isinf(values)] = np.nan
    return {name: values}


def _map_tokens(text: pa.Array, mapping: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(index into mapping's values or -1, empty mask) of lower-cased text cells."""
    keys = list(mapping)
    idx = pc.index_in(text, value_set=pa.array(keys, type=text.type)).fill_null(-1)
    return idx.to_numpy(zero_copy_only=False), np.asarray(
        pc.equal(text, "").to_numpy(zero_copy_only=False), dtype=bool)


def panel_from_table(table: Table, *, require_labels: bool = False,
                     therapies: Mapping[str, Therapy] | None = None,
                     columns: tuple[DeclaredColumn, ...] | None = None) -> Panel:
    """Validate a :class:`Table` (wide layout) and build the :class:`Panel`.

    Every vendor reader ends here, so all formats share the same checks. ``therapies``:
    therapies declared beside the registry (:func:`~cytoresp.panels.therapies.declared_therapies`).
    """
    problems = Problems(table.source)
    notes: list[str] = list(table.warnings)
    roles = _classify(table, problems, notes, columns)
    if roles.sample is None:
        problems.add("no sample id column; name one column 'sample_id' (also accepted: "
                     "'Sample', 'Sample ID', 'SampleID', 'Description')")
    if not roles.analytes and not roles.refused and not roles.declared:
        seen = ", ".join(quote_cell(n) for n in table.names[:_MAX_NAMES] if n)
        problems.add(f"no column is a known analyte (columns: {seen or 'none'}); name analyte "
                     f"columns by canonical id (IFNG, IL10, ...) or a synonym listed in "
                     f"docs/analytes.md")
    if require_labels:
        for role in ("therapy", "responder"):
            if role not in roles.single:
                problems.add(f"training data needs a {role!r} column"
                             + (" (a therapy of docs/therapies.md, e.g. ifnb, ga, natalizumab)"
                                if role == "therapy" else " (0 or 1)"))

    # rows that are empty in every column (blank lines, trailing separators) are dropped
    if len(table):
        blank = blank_rows(table)
        if blank.any():
            table = table.take(~blank)
    if len(table) == 0 and roles.sample is not None:
        problems.add("the table has a header but no data rows")
    rows = table.rows

    ids_text = None
    if roles.sample is not None:
        j = roles.sample
        ids_text = as_text(table.columns[j])
        empty = np.asarray(pc.equal(ids_text, "").to_numpy(zero_copy_only=False), dtype=bool)
        problems.add_cells(empty, rows, j, table.names[j],
                           lambda i: "empty sample id; every row needs a unique sample id")
        has_dup = len(pc.unique(ids_text)) < len(ids_text)  # fast check in C++
        dup = np.zeros(len(ids_text), dtype=bool)
        if has_dup:
            ids = pd.Series(ids_text.to_numpy(zero_copy_only=False), dtype=object)
            dup = ids.duplicated(keep=False).to_numpy() & ~empty
        if dup.any():
            groups = pd.Series(rows[dup]).groupby(ids[dup].to_numpy(), sort=False)
            for k, (sid, grp) in enumerate(groups):
                if k >= MAX_PROBLEMS:
                    problems.add_summary(f"... and {groups.ngroups - k} more duplicated sample "
                                         f"ids", groups.ngroups - k)
                    break
                problems.add(f"duplicate sample id {quote_cell(sid)} in rows "
                             f"{list_rows(grp.tolist())}; sample ids must be unique",
                             column=table.names[j], about_rows=True)

    analyte_ids, V, C = _parse_analytes(table, roles, problems, notes)
    patient, month = parse_visits(table, roles.single, problems)

    therapy = None
    if "therapy" in roles.single:
        j = roles.single["therapy"]
        text = as_text(table.columns[j])
        keys = therapy_keys(therapies)
        idx, empty = _map_tokens(_therapy_key(text), keys)
        bad = (idx < 0) & ~empty
        problems.add_cells(bad, rows, j, table.names[j],
                           lambda i: unknown_therapy_message(text[i].as_py(), therapies))
        if require_labels:  # with visits, one row of the patient is enough
            problems.add_cells(empty & ~patient_has(patient, ~empty), rows, j, table.names[j],
                               lambda i: "empty therapy; every training row needs its therapy "
                                         "(docs/therapies.md)")
        vals = np.array(list(keys.values()), dtype=object)
        therapy_arr = np.where(idx >= 0, vals[np.clip(idx, 0, None)], np.nan).astype(object)
        therapy = therapy_arr

    responder = None
    if "responder" in roles.single:
        j = roles.single["responder"]
        text = pc.utf8_lower(as_text(table.columns[j]))
        idx, empty = _map_tokens(text, _RESPONDER)
        bad = (idx < 0) & ~empty
        problems.add_cells(bad, rows, j, table.names[j],
                           lambda i: f"responder must be 0 or 1 (or yes/no, true/false), got "
                                     f"{quoted_at(table.columns[j], i)}")
        if require_labels:
            problems.add_cells(empty & ~patient_has(patient, ~empty), rows, j, table.names[j],
                               lambda i: "empty responder; training rows need 0 or 1")
        vals = np.array(list(_RESPONDER.values()), dtype=np.float64)
        responder = np.where(idx >= 0, vals[np.clip(idx, 0, None)], np.nan)

    covs: dict[str, np.ndarray] = {}
    for role in CLINICAL_COVARIATES:
        if role not in roles.single:
            continue
        j = roles.single[role]
        col, name = table.columns[j], table.names[j]
        if role == "sex":
            text = pc.utf8_lower(as_text(col))
            idx, empty = _map_tokens(text, _SEX)
            bad = (idx < 0) & ~empty
            problems.add_cells(bad, rows, j, name,
                               lambda i, c=col: f"sex must be F/M (female/male, or 1/0 with "
                                                f"1 = female), got {quoted_at(c, i)}")
            vals = np.array(list(_SEX.values()), dtype=np.float64)
            covs[role] = np.where(idx >= 0, vals[np.clip(idx, 0, None)], np.nan)
        else:
            covs[role] = _parse_numeric_role(col, name, role, j, rows, problems, notes)

    for j, decl in roles.declared:
        covs.update(_parse_declared(table.columns[j], table.names[j].strip(), decl, j, rows,
                                    problems))

    if patient is not None:
        per_patient: dict[str, tuple[str, np.ndarray]] = {}
        if therapy is not None:
            per_patient["therapy"] = (table.names[roles.single["therapy"]], therapy)
        if responder is not None:
            per_patient["responder"] = (table.names[roles.single["responder"]], responder)
        for role in CLINICAL_COVARIATES:
            if role in covs:
                per_patient[role] = (table.names[roles.single[role]], covs[role])
        filled = patient_level(patient, per_patient, rows, problems)
        therapy = filled.get("therapy", therapy)
        responder = filled.get("responder", responder)
        covs.update({r: v for r, v in filled.items() if r in covs})

    plate = None
    strict: list[str] = []
    if "plate" in roles.single:
        name = table.names[roles.single["plate"]]
        text = as_text(table.columns[roles.single["plate"]])
        arr = text.to_numpy(zero_copy_only=False).astype(object)
        arr[arr == ""] = np.nan
        labels = pd.Series(arr, dtype=object).dropna()
        if len(labels) >= _MIN_ROWS_PLATE_CHECK and labels.nunique() == len(labels):
            # a per-sample id (a well, a barcode), not a plate: never used as one
            # no count in the text: streamed chunks give the same note, shown once
            msg = (f"column {name!r} has a different value in every row (one per sample), "
                   f"so it is not a plate or batch and is not used as one; rename it if it "
                   f"is a sample or well id")
            notes.append(msg)
            strict.append(msg)
        else:
            plate = arr

    if roles.unknown:
        names = [table.names[j] or f"(column {j + 1}, no header)" for j in roles.unknown]
        for raw in names:
            guess = header_suggestion(raw)
            if guess is not None:
                msg = (f"column {raw!r} matches no analyte, covariate or role (not used); "
                       f"did you mean {guess}?")
                notes.append(msg)
                strict.append(msg)
        shown = ", ".join(quote_cell(x) for x in names[:_MAX_NAMES])
        more = f" and {len(names) - _MAX_NAMES} more" if len(names) > _MAX_NAMES else ""
        msg = (f"ignored {len(names)} column(s) that are not a known analyte, covariate "
               f"or label: {shown}{more} (see docs/data-format.md)")
        notes.append(msg)
        strict.append(msg)

    problems.raise_if_any()

    index = pd.Index(ids_text.to_numpy(zero_copy_only=False), name="sample_id", dtype=object)
    values = pd.DataFrame(V, index=index, columns=pd.Index(analyte_ids, dtype=object),
                          copy=False)
    censoring = pd.DataFrame(C, index=index, columns=pd.Index(analyte_ids, dtype=object),
                             copy=False)
    cov_cols = [c for c in CLINICAL_COVARIATES if c in covs]
    cov_cols += [c for c in covs if c not in cov_cols]
    covariates = pd.DataFrame({c: covs[c] for c in cov_cols}, index=index,
                              columns=pd.Index(cov_cols, dtype=object), dtype=np.float64)
    return Panel(
        values=values,
        censoring=censoring,
        covariates=covariates,
        therapy=None if therapy is None else pd.Series(therapy, index=index, name="therapy",
                                                       dtype=object),
        responder=None if responder is None else pd.Series(responder, index=index,
                                                           name="responder"),
        plate=None if plate is None else pd.Series(plate, index=index, name="plate",
                                                   dtype=object),
        source=table.source,
        warnings=notes,
        strict_notes=strict,
        patient_id=None if patient is None else pd.Series(patient, index=index,
                                                          name="patient_id", dtype=object),
        month=None if month is None else pd.Series(month, index=index, name="month"),
    )


