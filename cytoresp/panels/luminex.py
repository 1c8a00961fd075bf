"""Luminex instrument exports: xPONENT (``DataType:`` sections) and Bio-Plex style tables.

An xPONENT CSV starts with preamble lines (``"Program","xPONENT"``, ``"Batch",...``), then
``"DataType:","<name>"`` sections separated by blank lines: Median, Net MFI, Count, Units,
Concentration (or Result / Obs Conc), ... Only the concentration section is data; the
``Units`` section, when present, gives each analyte's unit. Rows are wells
(``Location`` = ``"17(1,A3)"``); background, standard and control wells are dropped and
replicate wells of a sample are averaged (see :mod:`cytoresp.panels.long`). The
``Batch`` name becomes the ``plate`` of every sample.

Without ``DataType:`` sections, the first row that holds a well or sample column and at
least one analyte column is the header (Bio-Plex Manager / Milliplex Analyst exports); a
``Type`` column (``B``, ``S1``, ``C1``, ``X1``) keeps only unknowns (``X``).

Files are one plate (at most a few thousand lines), so sections are found line by line;
the cells themselves are parsed vectorised as in every format.
"""

from __future__ import annotations

import csv
import re

import numpy as np
import pyarrow as pa

from cytoresp.errors import InputError, Problem
from cytoresp.panels._table import (
    MAX_PROBLEMS,
    Preparsed,
    Problems,
    Table,
    analyte_header,
    list_rows,
    report_value_flags,
    role_key,
    role_of,
)
from cytoresp.panels.long import aggregate_replicates
from cytoresp.panels.panel import ABOVE, BELOW
from cytoresp.panels.registry import get_analyte, resolve_analyte
from cytoresp.panels.units import SUPPORTED_UNITS
from cytoresp.panels.values import parse_value_column


class NoHeaderFound(InputError):
    """No instrument table header in the file.

    :func:`cytoresp.panels.read.read_panel` then reads a file that was only sniffed as an
    instrument export as a plain wide table, whose problems are more precise.
    """


#: Section names (lower case, punctuation removed) holding concentrations, best first.
CONCENTRATION_SECTIONS: tuple[str, ...] = (
    "concentration", "calculated concentration", "calc conc", "calc concentration",
    "obs conc", "observed concentration", "final concentration", "result", "results",
)
_STANDARD = re.compile(r"^(?:background|blank|standard|std|control|ctrl|qc)\s*\d*$",
                       re.IGNORECASE)
_BIOPLEX_KEEP = re.compile(r"^(?:x\d*|unknown\s*\d*)$", re.IGNORECASE)
#: Instrument columns ignored without a warning.
_INSTRUMENT_COLUMNS = {
    "location", "well", "total_events", "type", "outlier", "dilution", "dilution_factor",
    "notes", "group", "region", "standard_expected_concentration", "exp_conc", "beadid",
}


def _section_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


def _records(text: str) -> list[tuple[int, list[str]]]:
    """(file line, cells) of every line, cells stripped."""
    out = []
    lines = text.splitlines()
    delim = ","
    for ln in lines[:50]:
        if ln.count(";") > ln.count(",") and ln.count(";") > 0:
            delim = ";"
            break
        if ln.count(",") > 0:
            break
    for i, cells in enumerate(csv.reader(lines, delimiter=delim), start=1):
        out.append((i, [c.strip() for c in cells]))
    return out


def _blank(cells: list[str]) -> bool:
    return not any(cells)


def _sections(records: list[tuple[int, list[str]]]) -> dict[str, tuple[str, int]]:
    """Section key -> (name as written, index of its first record after the marker)."""
    out: dict[str, tuple[str, int]] = {}
    for k, (_, cells) in enumerate(records):
        if cells and cells[0].lower().rstrip(":") == "datatype" and len(cells) > 1:
            out.setdefault(_section_key(cells[1]), (cells[1], k + 1))
    return out


def _block(records: list[tuple[int, list[str]]], start: int) -> list[tuple[int, list[str]]]:
    """Records from ``start`` (skipping leading blanks) up to a blank line or a new section."""
    k = start
    while k < len(records) and _blank(records[k][1]):
        k += 1
    out = []
    while k < len(records) and not _blank(records[k][1]):
        if records[k][1][0].lower().rstrip(":") == "datatype":
            break
        out.append(records[k])
        k += 1
    return out


def _preamble_value(records: list[tuple[int, list[str]]], keys: tuple[str, ...],
                    stop: int) -> str | None:
    """The value of a ``"Key","value"`` or ``Key: value`` preamble line before ``stop``."""
    for _, cells in records[:stop]:
        if not cells:
            continue
        if len(cells) > 1 and cells[0].lower().rstrip(": ") in keys and cells[1]:
            return cells[1]
        m = re.match(r"^\s*([A-Za-z ]+?)\s*:\s*(\S.*)$", cells[0])
        if len(cells) == 1 and m and m.group(1).lower() in keys:
            return m.group(2).strip()
    return None


def _units(records: list[tuple[int, list[str]]], sections: dict[str, tuple[str, int]]
           ) -> dict[str, str]:
    if "units" not in sections:
        return {}
    rows = {cells[0].lower().rstrip(":"): cells[1:] for _, cells in
            _block(records, sections["units"][1]) if cells}
    names, units = rows.get("analyte", []), rows.get("units", [])
    return {n: u for n, u in zip(names, units, strict=False) if n and u}


def _find_header(records: list[tuple[int, list[str]]]) -> int | None:
    for k, (_, cells) in enumerate(records[:200]):
        keys = {role_key(c) for c in cells}
        if keys & {"location", "well", "sample", "description", "type", "sample_id"} and any(
                resolve_analyte(c) for c in cells):
            return k
    return None


def read_luminex_text(text: str, source: str) -> Table:
    """Read a Luminex export (xPONENT sections or a Bio-Plex table) as a wide :class:`Table`.

    Examples
    --------
    >>> text = '''"Program","xPONENT"
    ... "Batch","Plate7"
    ...
    ... "DataType:","Median"
    ... "Location","Sample","IL-6","Total Events"
    ... "1(1,A1)","P1","88","100"
    ...
    ... "DataType:","Concentration"
    ... "Location","Sample","IL-6","Total Events"
    ... "1(1,A1)","Background0","NaN","100"
    ... "2(1,B1)","P1","2.5","100"
    ... "3(1,C1)","P1","3.5","100"
    ... "4(1,D1)","P2","OOR <","100"
    ... '''
    >>> from cytoresp.panels.validate import panel_from_table
    >>> p = panel_from_table(read_luminex_text(text, "run.csv"))
    >>> p.values["IL6"].tolist(), p.censoring["IL6"].tolist(), p.plate.tolist()
    ([3.0, 0.11], [0, -1], ['Plate7', 'Plate7'])
    """
    records = _records(text)
    sections = _sections(records)
    notes: list[str] = []
    first_section = min((v[1] for v in sections.values()), default=len(records))
    if sections:
        chosen = next((s for s in CONCENTRATION_SECTIONS if s in sections), None)
        if chosen is None:
            found = ", ".join(repr(v[0]) for v in sections.values())
            raise InputError([Problem(source, None, None,
                                      f"this Luminex export has no concentration section "
                                      f"(found {found}); export the calculated concentrations "
                                      f"(xPONENT 'Concentration' or 'Result', Bio-Plex "
                                      f"'Obs Conc'), not MFI")])
        block = _block(records, sections[chosen][1])
        if chosen.startswith("result"):
            notes.append(f"read the {sections[chosen][0]!r} section as concentrations")
    else:
        k = _find_header(records)
        if k is None:
            raise NoHeaderFound([Problem(source, None, None,
                                         "no table header found: expected a row with a sample "
                                         "or well column and analyte columns")])
        block = _block(records, k)
        first_section = k
    if len(block) < 1:
        raise InputError([Problem(source, None, None, "the concentration section is empty")])
    header_line, header = block[0]
    data = block[1:]
    units = _units(records, sections)
    plate = _preamble_value(records, ("batch", "plate", "plate name", "plate id"),
                            first_section)
    return _wells_to_table(header, data, units, plate, source, notes, header_line)


def _per_sample(sample: np.ndarray, keep: np.ndarray, cols: list[np.ndarray],
                header: list[str], visit_cols: list[int], problems: Problems
                ) -> dict[str, dict[str, str]]:
    """Column name -> sample -> value of the visit columns (``patient_id``, ``month``),
    which must agree across a sample's wells."""
    out: dict[str, dict[str, str]] = {}
    for j in visit_cols:
        values: dict[str, str] = {}
        conflicts: dict[str, set[str]] = {}
        for s, v in zip(sample[keep], cols[j][keep], strict=True):
            v = str(v).strip()
            if not v:
                continue
            if values.setdefault(s, v) != v:
                conflicts.setdefault(s, {values[s]}).add(v)
        for s, vs in list(conflicts.items())[:MAX_PROBLEMS]:
            problems.add(f"sample {s!r} has different values in column {header[j]!r}: "
                         f"{', '.join(repr(v) for v in sorted(vs))}; a sample-level column "
                         f"must agree across the sample's wells", column=header[j])
        out[header[j]] = values
    return out


def _wells_to_table(header: list[str], data: list[tuple[int, list[str]]],
                    units: dict[str, str], plate: str | None, source: str,
                    notes: list[str], header_line: int) -> Table:
    problems = Problems(source)
    keys = [role_key(h) for h in header]
    width = len(header)
    lines = np.array([ln for ln, _ in data], dtype=np.int64)
    grid = [cells[:width] + [""] * (width - len(cells)) for _, cells in data]
    cols = [np.array([row[j] for row in grid], dtype=object) for j in range(width)]

    def col_of(*names: str) -> int | None:
        return next((keys.index(n) for n in names if n in keys), None)

    j_type = col_of("type")
    j_sample = col_of("sample_id", "sample", "description") if j_type is None else col_of(
        "description", "sample_id", "sample")
    if j_sample is None:
        raise InputError([Problem(source, header_line, None,
                                  "no sample column in the Luminex table (expected 'Sample' "
                                  "or 'Description')")])
    sample = cols[j_sample]
    keep = np.ones(len(grid), dtype=bool)
    if j_type is not None:
        keep &= np.array([bool(_BIOPLEX_KEEP.match(t)) for t in cols[j_type]], dtype=bool)
        if j_sample == col_of("description"):  # unknowns without a description: use Type
            sample = np.where(sample == "", cols[j_type], sample)
    keep &= np.array([not _STANDARD.match(s) for s in sample], dtype=bool)
    dropped = int((~keep).sum())
    if dropped:
        notes.append(f"dropped {dropped} background/standard/control well(s)")
    empty_sample = keep & (sample == "")
    problems.add_cells(empty_sample, lines, j_sample, header[j_sample],
                       lambda i: "a sample well without a sample name")
    keep &= ~empty_sample

    cells_sample, cells_analyte, cells_value, cells_cens = [], [], [], []
    unknown = []
    visit_cols = [j for j, name in enumerate(header)
                  if j not in (j_sample, j_type) and role_of(name) in ("patient_id", "month")]
    for j, name in enumerate(header):
        if j in (j_sample, j_type) or not name or keys[j] in _INSTRUMENT_COLUMNS \
                or j in visit_cols:
            continue
        header_of = analyte_header(name, default_unit=units.get(name))
        aid = header_of.analyte
        if aid is None:
            if header_of.ambiguity:
                problems.add(f"ambiguous analyte name: {header_of.ambiguity}", row=header_line,
                             column=name)
            else:
                unknown.append(name)
            continue
        if header_of.note:
            notes.append(f"column {name!r}: {header_of.note}")
        factor = header_of.factor
        if factor is None:
            problems.add(f"unknown unit {header_of.unit!r} for analyte {aid}; supported: "
                         f"{SUPPORTED_UNITS}", row=header_line, column=name)
            continue
        col = cols[j]
        values, cens, flags = parse_value_column(col)
        sel = keep
        masked = type(flags)(*(getattr(flags, f) & sel for f in (
            "missing", "extrapolated", "invalid", "negative", "bad_limit", "no_limit")))
        report_value_flags(masked, col, name, j, lines, problems)
        values = values * factor
        a = get_analyte(aid)
        values[flags.no_limit & (cens == BELOW)] = a.lloq
        values[flags.no_limit & (cens == ABOVE)] = a.uloq
        n_fill = int((flags.no_limit & sel).sum())
        if n_fill:
            notes.append(f"{name}: {n_fill} out-of-range well(s) without a limit got the "
                         f"registry limit (LLOQ {a.lloq:g} / ULOQ {a.uloq:g} pg/mL, "
                         f"docs/analytes.md); export with the kit's limits to be exact")
        ext = flags.extrapolated & sel
        if ext.any():
            notes.append(f"{name}: {int(ext.sum())} extrapolated value(s) ('*') were used as "
                         f"measured (lines {list_rows(lines[ext].tolist())})")
        bad = flags.errors
        use = sel & ~bad
        cells_sample.append(sample[use])
        cells_analyte.append(np.full(int(use.sum()), aid, dtype=object))
        cells_value.append(values[use])
        cells_cens.append(cens[use])
    if unknown:
        notes.append(f"ignored column(s) that are not a known analyte: "
                     f"{', '.join(repr(u) for u in unknown[:20])}")
    visit_values = _per_sample(sample, keep, cols, header, visit_cols, problems)
    if not cells_sample and not problems:
        problems.add("no column of the Luminex table is a known analyte (see docs/analytes.md)",
                     row=header_line)
    problems.raise_if_any()
    samples, analytes, V, C, agg_notes = aggregate_replicates(
        np.concatenate(cells_sample), np.concatenate(cells_analyte),
        np.concatenate(cells_value), np.concatenate(cells_cens).astype(np.int8))
    notes += agg_notes
    first_line = {}
    for s, ln in zip(sample[keep], lines[keep], strict=True):
        first_line.setdefault(s, ln)
    rows = np.array([first_line.get(s, 0) for s in samples], dtype=np.int64)
    names = ["sample_id"]
    out_cols: list = [pa.array(list(samples), type=pa.string())]
    if plate:
        names.append("plate")
        out_cols.append(pa.array([plate] * len(samples), type=pa.string()))
    for name, values in visit_values.items():
        names.append(name)
        out_cols.append(pa.array([values.get(s, "") for s in samples], type=pa.string()))
    names += analytes
    out_cols += [Preparsed(V[:, k].copy(), C[:, k].copy()) for k in range(len(analytes))]
    return Table(names, out_cols, rows, source, notes)

