"""Read, validate and write cytokine panel files.

:func:`read_panel` turns a panel file (canonical wide CSV, Luminex xPONENT / Bio-Plex export,
long table, Excel or Parquet) or a DataFrame into a validated :class:`Panel`; every problem
is collected in one pass and raised together as :class:`~cytoresp.errors.InputError`.
:func:`write_panel` writes the canonical wide CSV that :func:`read_panel` reads back exactly.
The data contract is documented for users in ``docs/data-format.md``.

All cell parsing is vectorised (pyarrow compute / numpy on whole columns).
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import sys
import tempfile
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cytoresp.errors import InputError, Problem, UsageError, quote_cell
from cytoresp.features.panel import (
    ABOVE,
    BELOW,
    CLINICAL_COVARIATES,
    OBSERVED,
    Panel,
)
from cytoresp.features.read_values import (
    ValueFlags,
    as_text,
    format_numbers,
    format_numbers_arrow,
    is_numeric_column,
    parse_value_column,
)
from cytoresp.features.registry import ambiguity, get_analyte, interpretation, resolve_analyte
from cytoresp.features.units import SUPPORTED_UNITS, unit_factor

__all__ = [
    "FORMATS",
    "MAX_PROBLEMS",
    "PanelSource",
    "panel_to_frame",
    "parse_value_column",
    "read_panel",
    "write_panel",
]

#: Values accepted by ``read_panel(format=...)``.
FORMATS: tuple[str, ...] = ("wide", "luminex", "long", "xlsx", "parquet")
#: At most this many problems are listed in one InputError (the rest are counted).
MAX_PROBLEMS = 50
#: At most this many names are listed in a warning about ignored columns.
_MAX_NAMES = 20

PanelSource = str | os.PathLike | IO[str] | IO[bytes] | pd.DataFrame

# ---------------------------------------------------------------------------------------
# column roles

_SAMPLE_ALIASES = ("sample_id", "sampleid", "sample_name", "samplename", "sample", "description")
_ROLE_ALIASES: dict[str, tuple[str, ...]] = {
    "therapy": ("therapy", "treatment", "dmt"),
    "responder": ("responder",),
    "plate": ("plate", "plate_id", "plateid", "plate_name", "batch", "batch_id", "batchid"),
    "age": ("age", "age_y", "age_years", "age_yr", "age_yrs", "age_at_baseline"),
    "sex": ("sex", "gender", "sex_f", "female"),
    "edss": ("edss", "edss_score", "baseline_edss"),
    "disease_duration_y": ("disease_duration_y", "disease_duration", "disease_duration_years",
                           "duration_y"),
    "relapses_prior_2y": ("relapses_prior_2y", "relapses_2y", "relapses_prior_2_y"),
    "gd_lesions": ("gd_lesions", "gd_lesion", "gd_enhancing_lesions", "gdlesions"),
}
_ROLE_OF: dict[str, str] = {alias: role for role, al in _ROLE_ALIASES.items() for alias in al}
_ROLE_OF.update({alias: "sample_id" for alias in _SAMPLE_ALIASES})
_BRACKET = re.compile(r"\s*[\(\[][^\(\)\[\]]*[\)\]]\s*$")

#: Plausible ranges of the numeric covariates: (low, high, must be whole).
_COVARIATE_RANGE: dict[str, tuple[float, float, bool]] = {
    "age": (0.0, 120.0, False),
    "edss": (0.0, 10.0, False),
    "disease_duration_y": (0.0, 100.0, False),
    "relapses_prior_2y": (0.0, np.inf, True),
    "gd_lesions": (0.0, np.inf, True),
}

_THERAPY_KEYS: dict[str, str] = {}
for _k in ("ifnb", "ifnbeta", "ifnb1a", "ifnb1b", "interferonb", "interferonbeta",
           "interferonb1a", "interferonb1b", "interferonbeta1a", "interferonbeta1b", "ifnbeta1a",
           "ifnbeta1b", "avonex", "rebif", "betaseron", "betaferon", "extavia", "plegridy",
           "peginterferonb1a", "peginterferonbeta1a"):
    _THERAPY_KEYS[_k] = "ifnb"
for _k in ("ga", "glatiramer", "glatirameracetate", "copaxone", "glatopa", "copolymer1", "cop1"):
    _THERAPY_KEYS[_k] = "ga"

_SEX = {"f": 1.0, "female": 1.0, "w": 1.0, "woman": 1.0, "1": 1.0, "1.0": 1.0,
        "m": 0.0, "male": 0.0, "man": 0.0, "0": 0.0, "0.0": 0.0}
_RESPONDER = {"1": 1.0, "1.0": 1.0, "true": 1.0, "yes": 1.0, "y": 1.0,
              "0": 0.0, "0.0": 0.0, "false": 0.0, "no": 0.0, "n": 0.0}


def _role_key(name: str) -> str:
    s = unicodedata.normalize("NFKC", str(name)).strip().lower()
    s = _BRACKET.sub("", s) or s
    return re.sub(r"[^a-z0-9]+", "_", s).strip("_")


def _therapy_key(text: pa.Array) -> pa.Array:
    s = pc.utf8_lower(text)
    for greek, latin in (("β", "b"), ("beta", "b")):
        s = pc.replace_substring(s, greek, latin)
    return pc.replace_substring_regex(s, r"[^a-z0-9]+", "")


# ---------------------------------------------------------------------------------------
# problems


class _Problems:
    """Collects problems; cells are capped per column and sorted by row when raised."""

    def __init__(self, file: str):
        self.file = file
        self.general: list[Problem] = []
        self.cells: list[tuple[int, int, Problem]] = []
        self.n_cells = 0

    def __bool__(self) -> bool:
        return bool(self.general) or self.n_cells > 0

    def add(self, message: str, row: int | None = None, column: str | None = None) -> None:
        self.general.append(Problem(self.file, row, column, message))

    def add_cells(
        self,
        mask: np.ndarray,
        rows: np.ndarray,
        order: int,
        column: str,
        message: Callable[[int], str],
    ) -> None:
        """One problem per True in ``mask``; ``message(i)`` gets the data-row position."""
        idx = np.flatnonzero(mask)
        self.n_cells += len(idx)
        for i in idx[:MAX_PROBLEMS]:
            self.cells.append((int(rows[i]), order, Problem(self.file, int(rows[i]), column,
                                                            message(int(i)))))

    def raise_if_any(self) -> None:
        if not self:
            return
        cells = [p for _, _, p in sorted(self.cells, key=lambda t: (t[0], t[1]))]
        room = max(MAX_PROBLEMS - len(self.general), 0)
        listed = self.general + cells[:room]
        more = len(self.general) + self.n_cells - len(listed)
        if more > 0:
            listed.append(Problem(self.file, None, None,
                                  f"... and {more} more problem(s) not listed; fix the ones "
                                  f"above and run again"))
        raise InputError(listed)


# ---------------------------------------------------------------------------------------
# the table every format is turned into


@dataclass
class Preparsed:
    """An analyte column already parsed (by a vendor reader): values in pg/mL, censoring."""

    values: np.ndarray
    censoring: np.ndarray


@dataclass
class Table:
    """A rectangular table as read: header names, one column per name, spreadsheet rows.

    ``columns`` hold pyarrow string arrays, numeric numpy arrays / Series, or
    :class:`Preparsed` analyte columns. ``rows`` gives each data row's spreadsheet row
    number (header = row 1) for messages.
    """

    names: list[str]
    columns: list[Any]
    rows: np.ndarray
    source: str
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)


def table_from_frame(df: pd.DataFrame, source: str, first_row: int = 2) -> Table:
    """A :class:`Table` of a DataFrame's columns (kept as they are, duplicates allowed)."""
    cols: list[Any] = []
    for j in range(df.shape[1]):
        s = df.iloc[:, j]
        cols.append(s.to_numpy(dtype=np.float64, na_value=np.nan) if is_numeric_column(s)
                    else as_text(s))
    names = ["" if _is_blank_name(c) else str(c) for c in df.columns]
    return Table(names, cols, np.arange(first_row, first_row + len(df), dtype=np.int64), source)


def _is_blank_name(c: Any) -> bool:
    return c is None or (isinstance(c, float) and np.isnan(c)) or str(c).startswith("Unnamed: ")


# ---------------------------------------------------------------------------------------
# loading and sniffing


def _load(source: Any) -> tuple[str, bytes | pd.DataFrame, str]:
    """(name for messages, bytes or DataFrame, lower-case file suffix).

    Every source goes through the input size guards of :mod:`cytoresp.features.limits`
    first (a path before it is read; stdin and file objects never beyond the size limit).
    """
    from cytoresp.features.limits import check_input, read_limited

    if isinstance(source, pd.DataFrame):
        check_input(source, name="<DataFrame>")
        return "<DataFrame>", source, ""
    if isinstance(source, Panel):
        raise UsageError("read_panel got a Panel; it is already read (use it directly)")
    if isinstance(source, str | os.PathLike):
        if str(source) == "-":
            return "<stdin>", read_limited(sys.stdin.buffer, "<stdin>"), ""
        path = Path(source)
        if path.is_dir():
            raise InputError([Problem(str(source), None, None,
                                      "is a directory; give the panel file inside it")])
        check_input(path, name=str(source))
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise InputError([Problem(str(source), None, None, "file not found")]) from None
        except OSError as exc:
            raise InputError([Problem(str(source), None, None,
                                      f"cannot read the file: {exc.strerror}")]) from None
        return str(source), data, path.suffix.lower()
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        name = str(name) if isinstance(name, str) and name else "<file>"
        try:
            data = read_limited(source, name)
        except TypeError:  # read() gave neither text nor bytes
            data = None
        if not isinstance(data, bytes | bytearray):
            raise UsageError(f"read() of {name} did not return text or bytes")
        return name, bytes(data), Path(name).suffix.lower() if name != "<file>" else ""
    raise UsageError(
        f"read_panel takes a path, '-', a file object or a DataFrame, not {type(source).__name__}"
    )


def _sniff(data: bytes, suffix: str) -> str:
    if data.startswith(b"PK\x03\x04"):
        return "xlsx"
    if data.startswith(b"PAR1"):
        return "parquet"
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix == ".parquet":
        return "parquet"
    head = data[:65536].decode("utf-8", errors="replace")
    if re.search(r"(?im)^\W*(?:DataType:|Program\W+xPONENT|xPONENT|Bio-?Plex)", head):
        return "luminex"
    lines = [ln for ln in head.splitlines() if ln.strip()]
    first = _split_line(lines[0]) if lines else []
    from cytoresp.features.read_long import looks_long

    if looks_long(first):
        return "long"
    # a preamble before the header, or a plate-well column: an instrument export
    header = next((cells for cells in map(_split_line, lines[:200])
                   if any(resolve_analyte(c) for c in cells)), None)
    if header is not None:
        keys = {_role_key(c) for c in header}
        if header != first or keys & {"well", "location"}:
            return "luminex"
    return "wide"


def _split_line(line: str) -> list[str]:
    delim = _delimiter(line)
    try:
        return next(csv.reader([line], delimiter=delim))
    except (csv.Error, StopIteration):
        return []


def _delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 text of a file, or InputError for an empty, binary or non-UTF-8 file."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError([Problem(source, None, None,
                                  "the file is UTF-16 text; save it as UTF-8 (in Excel: "
                                  "'CSV UTF-8 (comma delimited)')")])
    if b"\x00" in data[:8192]:
        raise InputError([Problem(source, None, None,
                                  "this is a binary file, not a text table; give a CSV, an "
                                  ".xlsx or a .parquet file")])
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError([Problem(source, line, None,
                                  f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the "
                                  f"file as UTF-8 (in Excel: 'CSV UTF-8 (comma delimited)')")]
                         ) from None
    if not text.strip():
        raise InputError([Problem(source, None, None, "the file is empty")])
    return text


def read_csv_table(data: bytes | str, source: str, first_line: int = 1) -> Table:
    """Read delimited UTF-8 text (header on its first non-blank line) as a :class:`Table`.

    Every cell is kept as text. ``first_line`` is the file line of ``data``'s first line
    (for messages). The delimiter (``,``, ``;`` or tab) is taken from the header line.
    """
    import pyarrow.csv as pcsv

    if isinstance(data, str):
        data = data.encode("utf-8")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    head_lines = data[:65536].decode("utf-8", errors="ignore").splitlines()
    n_blank_top = 0
    for ln in head_lines:
        if ln.strip():
            break
        n_blank_top += 1
    head = head_lines[n_blank_top] if n_blank_top < len(head_lines) else ""
    delim = _delimiter(head)
    header = _split_line(head)
    ncol = max(len(header), 1)
    names = [f"c{i}" for i in range(ncol)]
    bad: list[tuple[int | None, int, int]] = []

    def handler(row: Any) -> str:
        bad.append((row.number, row.expected_columns, row.actual_columns))
        return "skip"

    def read(threads: bool) -> Any:
        return pcsv.read_csv(
            io.BytesIO(data),
            read_options=pcsv.ReadOptions(column_names=names, skip_rows=n_blank_top,
                                          use_threads=threads),
            parse_options=pcsv.ParseOptions(delimiter=delim, newlines_in_values=True,
                                            ignore_empty_lines=False,
                                            invalid_row_handler=handler),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False,
                quoted_strings_can_be_null=False),
        )

    try:
        tbl = read(True)
        if bad:  # numbers of bad rows are only known single-threaded
            bad.clear()
            tbl = read(False)
    except pa.ArrowInvalid as exc:
        raise InputError([Problem(source, None, None, f"cannot parse the table: {exc}")]) from None
    problems = []
    rec = np.arange(tbl.num_rows, dtype=np.int64) + 1 + n_blank_top
    if bad:
        skipped = np.array(sorted(b[0] for b in bad if b[0] is not None), dtype=np.int64)
        # record k of the table is the k-th record number that was not skipped
        if len(skipped):
            keep = np.setdiff1d(np.arange(1, tbl.num_rows + len(skipped) + 1 + n_blank_top),
                                skipped)
            rec = keep[n_blank_top: n_blank_top + tbl.num_rows]
        for number, expected, actual in bad[:10]:
            problems.append(Problem(
                source, None if number is None else number + first_line - 1, None,
                f"this row has {actual} fields but the header has {expected}; check for an "
                f"unquoted '{delim}' inside a cell (e.g. a decimal comma) or a missing one"))
        if len(bad) > 10:
            problems.append(Problem(
                source, None, None,
                f"{len(bad)} rows in all have a field count different from the header's "
                f"({ncol}); if the file is an instrument export with lines before the table, "
                f"read it with format='luminex'"))
    cols = [tbl.column(i).combine_chunks() for i in range(tbl.num_columns)]
    header_cells = [c[0].as_py() if len(c) else "" for c in cols]
    cols = [c.slice(1) for c in cols]
    rows = rec[1:] + first_line - 1
    t = Table([h.strip() for h in header_cells], cols, rows, source)
    if problems:
        raise InputError(problems)
    return t


# ---------------------------------------------------------------------------------------
# the public reader


def read_panel(
    source: PanelSource,
    *,
    require_labels: bool = False,
    format: str | None = None,  # noqa: A002 - the documented keyword
) -> Panel:
    """Read and validate a cytokine panel.

    Parameters
    ----------
    source : path, ``"-"``, file object or DataFrame
        A panel file (``"-"`` reads stdin) or an in-memory table such as
        ``simulate_cohort(...).panel``. Text must be UTF-8.
    require_labels : bool, default False
        Also require the ``therapy`` and ``responder`` columns, filled in every row
        (training data).
    format : {"wide", "luminex", "long", "xlsx", "parquet"}, optional
        Force a format; by default it is detected from the content (not only the
        extension).

    Returns
    -------
    Panel
        Values in pg/mL with canonical analyte ids, censoring codes, covariates, labels,
        plate; non-fatal findings in ``panel.warnings``.

    Raises
    ------
    InputError
        Listing every problem found (file, spreadsheet row, column, what to do), at most
        :data:`MAX_PROBLEMS` of them plus a count of the rest.
    UsageError
        For a bad ``format`` or ``source`` argument.

    Examples
    --------
    >>> import io
    >>> csv = ("sample_id,IFN-gamma (pg/ml),IL-10,therapy\\n"
    ...        "P1,3.2,<0.56,IFN-beta\\nP2,*1.5,OOR >,GA\\n")
    >>> p = read_panel(io.StringIO(csv))
    >>> p.analytes, p.values["IFNG"].tolist(), p.censoring["IL10"].tolist()
    (['IFNG', 'IL10'], [3.2, 1.5], [-1, 1])
    >>> p.therapy.tolist()
    ['ifnb', 'ga']
    """
    if format is not None and format not in FORMATS:
        raise UsageError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    name, payload, suffix = _load(source)
    if isinstance(payload, pd.DataFrame):
        from cytoresp.features.read_long import looks_long, read_long_table

        fmt = format or ("long" if looks_long([str(c) for c in payload.columns]) else "wide")
        if fmt not in ("wide", "long"):
            raise UsageError(f"a DataFrame is read as 'wide' or 'long', not {fmt!r}")
        if payload.index.name is not None and _ROLE_OF.get(_role_key(str(payload.index.name))
                                                           ) == "sample_id":
            payload = payload.reset_index()  # e.g. a panel indexed by sample_id
        table = table_from_frame(payload, name)
        if fmt == "long":
            table = read_long_table(table)
        return panel_from_table(table, require_labels=require_labels)
    if not payload.strip():
        raise InputError([Problem(name, None, None, "the file is empty")])
    fmt = format or _sniff(payload, suffix)
    if fmt == "xlsx":
        from cytoresp.features.read_excel import read_excel_tables

        table = read_excel_tables(payload, name)
    elif fmt == "parquet":
        from cytoresp.features.read_excel import read_parquet_table

        table = read_parquet_table(payload, name)
    else:
        text = decode_text(payload, name)
        if fmt == "luminex":
            from cytoresp.features.read_luminex import read_luminex_text

            table = read_luminex_text(text, name)
        else:
            del text
            table = read_csv_table(payload, name)
            if fmt == "long":
                from cytoresp.features.read_long import read_long_table

                table = read_long_table(table)
    if fmt in ("xlsx", "parquet") and table is not None:
        from cytoresp.features.read_long import looks_long, read_long_table

        if looks_long(table.names) and format != "wide":
            table = read_long_table(table)
    return panel_from_table(table, require_labels=require_labels)


# ---------------------------------------------------------------------------------------
# wide table -> Panel


@dataclass
class _Roles:
    sample: int | None = None
    single: dict[str, int] = field(default_factory=dict)  # role -> column position
    analytes: list[tuple[int, str, float]] = field(default_factory=list)  # (pos, id, factor)
    unknown: list[int] = field(default_factory=list)


def _classify(table: Table, problems: _Problems, notes: list[str]) -> _Roles:
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
        key = _role_key(name)
        role = _ROLE_OF.get(key)
        if role == "sample_id":
            sample_candidates.append((_SAMPLE_ALIASES.index(key), j))
            continue
        if role is not None:
            seen.setdefault(role, []).append(j)
            continue
        aid = resolve_analyte(name)
        if aid is None:
            why = ambiguity(name)
            if why:
                problems.add(f"ambiguous analyte name: {why}", column=name)
            else:
                roles.unknown.append(j)
            continue
        note = interpretation(name)
        if note:
            notes.append(f"column {name!r}: {note}")
        factor = 1.0
        if not isinstance(col, Preparsed):
            from cytoresp.features.registry import split_unit

            unit = split_unit(name)[1]
            f = unit_factor(unit)
            if f is None:
                problems.add(f"unknown unit {unit!r} for analyte {aid}; supported: "
                             f"{SUPPORTED_UNITS} (Olink NPX and MFI are not concentrations)",
                             column=name)
                continue
            factor = f
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
            if prio == best:
                problems.add(f"columns {table.names[roles.sample]!r} and {table.names[j]!r} "
                             f"both look like the sample id; keep one of them")
            else:
                roles.unknown.append(j)
    return roles


def _any_nonempty(col: Any) -> bool:
    if is_numeric_column(col):
        return bool(np.any(~np.isnan(np.asarray(col, dtype=np.float64))))
    return bool(pc.any(pc.not_equal(as_text(col), "")).as_py() or False)


def _empty_mask(col: Any) -> np.ndarray:
    if isinstance(col, Preparsed):
        return np.isnan(col.values)
    if is_numeric_column(col):
        return np.isnan(np.asarray(col, dtype=np.float64))
    if isinstance(col, pa.Array) and pa.types.is_string(col.type) and not col.null_count:
        blank = pc.or_(pc.equal(col, ""), pc.utf8_is_space(col))
        return np.asarray(blank.to_numpy(zero_copy_only=False), dtype=bool)
    return np.asarray(pc.equal(as_text(col), "").to_numpy(zero_copy_only=False), dtype=bool)


def _take(col: Any, keep: np.ndarray) -> Any:
    if isinstance(col, Preparsed):
        return Preparsed(col.values[keep], col.censoring[keep])
    if isinstance(col, pa.Array | pa.ChunkedArray):
        return col.filter(pa.array(keep))
    return np.asarray(col)[keep]


def _text_at(col: Any, i: int) -> str:
    if is_numeric_column(col):
        return format_numbers(np.asarray(col, dtype=np.float64)[i: i + 1])[0]
    return as_text(col)[i].as_py()


def _quoted_at(col: Any, i: int) -> str:
    """Cell ``i`` of a column quoted for a message, long text cut (:func:`quote_cell`)."""
    return quote_cell(_text_at(col, i))


def _list_rows(rows: Sequence[int], limit: int = 10) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def _invalid_message(raw: str) -> str:
    hint = ""
    if re.fullmatch(r"[+-]?\d+,\d+", raw):
        hint = " (a decimal comma? write it with a dot: " + raw.replace(",", ".") + ")"
    elif raw.lower() in ("nd", "n.d.", "n.d", "bdl"):
        hint = (" ('ND' is ambiguous: write '<LLOQ' (or '<limit') if below detection, or "
                "leave it empty if not measured)")
    return (f"not a concentration: {quote_cell(raw)}{hint}; write a number, a censored value "
            f"('<0.64', '< LLOQ', 'OOR <', '>ULOQ'), or leave it empty if missing")


def _parse_analytes(table: Table, roles: _Roles, problems: _Problems, notes: list[str]
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
        _report_value_flags(flags, col, name, j, table.rows, problems)
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
                         f"as measured (rows {_list_rows(rows.tolist())})")
        V[:, k], C[:, k] = values, cens
    return ids, V, C


def _report_value_flags(flags: ValueFlags, col: Any, name: str, order: int, rows: np.ndarray,
                        problems: _Problems) -> None:
    problems.add_cells(flags.invalid, rows, order, name,
                       lambda i: _invalid_message(_text_at(col, i)))
    problems.add_cells(flags.negative, rows, order, name,
                       lambda i: f"negative concentration {_quoted_at(col, i)}; concentrations "
                                 f"cannot be negative (write a censored value such as '< LLOQ' "
                                 f"if it is below the limit)")
    problems.add_cells(flags.bad_limit, rows, order, name,
                       lambda i: f"the limit in {_quoted_at(col, i)} must be a positive number")


def _parse_numeric_role(col: Any, name: str, role: str, order: int, rows: np.ndarray,
                        problems: _Problems, notes: list[str]) -> np.ndarray:
    values, cens, flags = parse_value_column(col)
    # a bound such as '>90' (ages de-identified under HIPAA Safe Harbor) is read as its bound
    bounded = (cens != OBSERVED) & ~flags.no_limit
    if bounded.any():
        notes.append(f"{name}: {int(bounded.sum())} value(s) given as a bound (e.g. "
                     f"{_quoted_at(col, int(np.flatnonzero(bounded)[0]))}) were read as the "
                     f"bound (rows {_list_rows(rows[bounded].tolist())})")
    bad = flags.invalid | flags.bad_limit | flags.extrapolated | flags.no_limit
    lo, hi, whole = _COVARIATE_RANGE[role]
    problems.add_cells(bad, rows, order, name,
                       lambda i: f"{role} must be a number, got {_quoted_at(col, i)}")
    values = np.where(bad, np.nan, values)
    raw = values.copy()
    raw[flags.negative] = -1.0  # out of range below, whatever its value
    with np.errstate(invalid="ignore"):
        out = ~np.isnan(raw) & ((raw < lo) | (raw > hi))
        notwhole = whole & ~out & ~np.isnan(raw) & (raw != np.round(raw))
    span = f"{lo:g} to {hi:g}" if np.isfinite(hi) else f">= {lo:g}"
    problems.add_cells(out, rows, order, name,
                       lambda i: f"{role} {_quoted_at(col, i)} is outside the plausible range "
                                 f"{span}")
    problems.add_cells(notwhole, rows, order, name,
                       lambda i: f"{role} must be a whole number (a count), got "
                                 f"{_quoted_at(col, i)}")
    return np.where(out | notwhole, np.nan, values)


def _map_tokens(text: pa.Array, mapping: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(index into mapping's values or -1, empty mask) of lower-cased text cells."""
    keys = list(mapping)
    idx = pc.index_in(text, value_set=pa.array(keys, type=text.type)).fill_null(-1)
    return idx.to_numpy(zero_copy_only=False), np.asarray(
        pc.equal(text, "").to_numpy(zero_copy_only=False), dtype=bool)


def panel_from_table(table: Table, *, require_labels: bool = False) -> Panel:
    """Validate a :class:`Table` (wide layout) and build the :class:`Panel`.

    Every vendor reader ends here, so all formats share the same checks.
    """
    problems = _Problems(table.source)
    notes: list[str] = list(table.warnings)
    roles = _classify(table, problems, notes)
    if roles.sample is None:
        problems.add("no sample id column; name one column 'sample_id' (also accepted: "
                     "'Sample', 'Sample ID', 'SampleID', 'Description')")
    if not roles.analytes and not any(p.message.startswith(("ambiguous", "unknown unit"))
                                      for p in problems.general):
        seen = ", ".join(quote_cell(n) for n in table.names[:_MAX_NAMES] if n)
        problems.add(f"no column is a known analyte (columns: {seen or 'none'}); name analyte "
                     f"columns by canonical id (IFNG, IL10, ...) or a synonym listed in "
                     f"docs/analytes.md")
    if require_labels:
        for role in ("therapy", "responder"):
            if role not in roles.single:
                problems.add(f"training data needs a {role!r} column"
                             + (" (ifnb or ga)" if role == "therapy" else " (0 or 1)"))

    # rows that are empty in every column (blank lines, trailing separators) are dropped
    if len(table):
        blank = np.ones(len(table), dtype=bool)
        for col in table.columns:
            blank &= _empty_mask(col)
        if blank.any():
            keep = ~blank
            table = Table(table.names, [_take(c, keep) for c in table.columns],
                          table.rows[keep], table.source, table.warnings)
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
                    problems.add(f"... and {groups.ngroups - k} more duplicated sample ids")
                    break
                problems.add(f"duplicate sample id {quote_cell(sid)} in rows "
                             f"{_list_rows(grp.tolist())}; sample ids must be unique",
                             column=table.names[j])

    analyte_ids, V, C = _parse_analytes(table, roles, problems, notes)

    therapy = None
    if "therapy" in roles.single:
        j = roles.single["therapy"]
        text = as_text(table.columns[j])
        idx, empty = _map_tokens(_therapy_key(text), _THERAPY_KEYS)
        bad = (idx < 0) & ~empty
        problems.add_cells(bad, rows, j, table.names[j],
                           lambda i: f"unknown therapy {_quoted_at(text, i)}; use 'ifnb' "
                                     f"(interferon-beta) or 'ga' (glatiramer acetate)")
        if require_labels:
            problems.add_cells(empty, rows, j, table.names[j],
                               lambda i: "empty therapy; training rows need 'ifnb' or 'ga'")
        vals = np.array(list(_THERAPY_KEYS.values()), dtype=object)
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
                                     f"{_quoted_at(table.columns[j], i)}")
        if require_labels:
            problems.add_cells(empty, rows, j, table.names[j],
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
                                                f"1 = female), got {_quoted_at(c, i)}")
            vals = np.array(list(_SEX.values()), dtype=np.float64)
            covs[role] = np.where(idx >= 0, vals[np.clip(idx, 0, None)], np.nan)
        else:
            covs[role] = _parse_numeric_role(col, name, role, j, rows, problems, notes)

    plate = None
    if "plate" in roles.single:
        text = as_text(table.columns[roles.single["plate"]])
        arr = text.to_numpy(zero_copy_only=False).astype(object)
        arr[arr == ""] = np.nan
        plate = arr

    if roles.unknown:
        names = [table.names[j] or f"(column {j + 1}, no header)" for j in roles.unknown]
        shown = ", ".join(quote_cell(x) for x in names[:_MAX_NAMES])
        more = f" and {len(names) - _MAX_NAMES} more" if len(names) > _MAX_NAMES else ""
        notes.append(f"ignored {len(names)} column(s) that are not a known analyte, covariate "
                     f"or label: {shown}{more} (see docs/data-format.md)")

    problems.raise_if_any()

    index = pd.Index(ids_text.to_numpy(zero_copy_only=False), name="sample_id", dtype=object)
    values = pd.DataFrame(V, index=index, columns=pd.Index(analyte_ids, dtype=object),
                          copy=False)
    censoring = pd.DataFrame(C, index=index, columns=pd.Index(analyte_ids, dtype=object),
                             copy=False)
    cov_cols = [c for c in CLINICAL_COVARIATES if c in covs]
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
    )


# ---------------------------------------------------------------------------------------
# writing


def _panel_columns(panel: Panel) -> tuple[list[str], list[pa.Array]]:
    index = panel.values.index
    names: list[str] = ["sample_id"]
    cols: list[pa.Array] = [as_text(pd.Series(np.asarray(index, dtype=object)).astype("str"))]
    if panel.plate is not None:
        names.append("plate")
        cols.append(as_text(panel.plate.reset_index(drop=True)))
    if panel.therapy is not None:
        names.append("therapy")
        cols.append(as_text(panel.therapy.reset_index(drop=True)))
    if panel.responder is not None:
        names.append("responder")
        cols.append(format_numbers_arrow(panel.responder.to_numpy(dtype=np.float64)))
    for c in CLINICAL_COVARIATES:
        if c not in panel.covariates.columns:
            continue
        x = panel.covariates[c].to_numpy(dtype=np.float64)
        text = format_numbers_arrow(x)
        if c == "sex":
            text = pc.if_else(pa.array(x == 1.0), "F", pc.if_else(pa.array(x == 0.0), "M", text))
        names.append(c)
        cols.append(text)
    V = panel.values.to_numpy(dtype=np.float64)
    C = panel.censoring.to_numpy()
    for k, aid in enumerate(panel.values.columns):
        below, above = C[:, k] == BELOW, C[:, k] == ABOVE
        text = format_numbers_arrow(np.where(below | above, np.abs(V[:, k]), V[:, k]))
        if below.any():
            text = pc.if_else(pa.array(below), pc.binary_join_element_wise("<", text, ""), text)
        if above.any():
            text = pc.if_else(pa.array(above), pc.binary_join_element_wise(">", text, ""), text)
        names.append(str(aid))
        cols.append(text)
    return names, cols


def panel_to_frame(panel: Panel) -> pd.DataFrame:
    """The canonical wide table of a panel, every cell as text.

    Columns: ``sample_id``, then ``plate``, ``therapy``, ``responder`` and the clinical
    covariates where the panel has them, then the analytes by canonical id. Censored cells
    are written ``<limit`` / ``>limit``; numbers in their shortest exact form (so that
    :func:`read_panel` gives back exactly the same floats); missing cells are empty; sex as
    ``F``/``M``.

    Examples
    --------
    >>> import io
    >>> p = read_panel(io.StringIO("sample_id,IL-10 (ng/ml),sex\\nP1,<0.5,f\\nP2,0.0021,M\\n"))
    >>> panel_to_frame(p).values.tolist()
    [['P1', 'F', '<500'], ['P2', 'M', '2.1']]
    """
    names, cols = _panel_columns(panel)
    frame = pa.Table.from_arrays(cols, names=names).to_pandas()
    return frame.astype("str")


_NEEDS_QUOTES = r'[",\r\n]|^\s|\s$'


def _csv_field(text: pa.Array) -> pa.Array:
    """Quote the cells that need it (RFC 4180), vectorised."""
    needs = pc.match_substring_regex(text, _NEEDS_QUOTES)
    if not pc.any(needs).as_py():
        return text
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
    return pc.if_else(needs, quoted, text)


def panel_csv_bytes(panel: Panel) -> bytes:
    """The canonical wide CSV of a panel as UTF-8 bytes (``\\n`` line ends)."""
    names, cols = _panel_columns(panel)
    header = ",".join(_csv_field(pa.array(names, type=pa.string())).to_pylist())
    if len(panel) == 0:
        return (header + "\n").encode("utf-8")
    # each line ends with "\n"; the string array's data buffer is then the whole body
    # only free text can need quotes; numbers, censored values and labels never do
    free = {"sample_id", "plate"}
    fields = [_csv_field(c) if n in free else c for n, c in zip(names, cols, strict=True)]
    lines = pc.binary_join_element_wise(*fields, ",")
    lines = pc.binary_join_element_wise(lines, "", "\n")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset:
                                                                lines.offset + len(lines) + 1]
    body = lines.buffers()[2].to_pybytes()[offsets[0]: offsets[-1]]
    return (header + "\n").encode("utf-8") + body


def write_panel(panel: Panel, dest: str | os.PathLike | IO[str] | IO[bytes]) -> None:
    """Write a panel as the canonical wide CSV (UTF-8, ``\\n`` line ends).

    Parameters
    ----------
    panel : Panel
        The panel to write (see :func:`panel_to_frame` for the layout).
    dest : path, ``"-"`` or file object
        ``"-"`` writes to stdout. A path is written atomically: a temporary file in the same
        directory is renamed over it, so a failure never leaves a partial file.

    Examples
    --------
    >>> import io
    >>> p = read_panel(io.StringIO("sample_id,IL6\\nA,<0.11\\nB,2.5\\n"))
    >>> buf = io.StringIO(); write_panel(p, buf); buf.getvalue()
    'sample_id,IL6\\nA,<0.11\\nB,2.5\\n'
    """
    data = panel_csv_bytes(panel)
    if hasattr(dest, "write"):
        if isinstance(dest, io.TextIOBase) or "b" not in getattr(dest, "mode", "b"):
            try:
                dest.write(data.decode("utf-8"))
            except TypeError:
                dest.write(data)
        else:
            dest.write(data)
        return
    if not isinstance(dest, str | os.PathLike):
        raise UsageError(f"write_panel takes a path, '-' or a file object, not "
                         f"{type(dest).__name__}")
    if str(dest) == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    path = Path(dest)
    parent = path.parent
    if not parent.is_dir():
        raise UsageError(f"cannot write {dest}: the folder {parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        from cytoresp.interrupts import commit_guard

        with commit_guard(str(path)):  # never after SIGINT / SIGTERM
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
