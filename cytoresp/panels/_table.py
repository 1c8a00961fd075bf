"""The model every panel reader shares: the table as read, its problems, column roles.

Internal to :mod:`cytoresp.panels`. Every format reader (wide CSV, long, Luminex, Excel,
Parquet), the validation and the streaming reader import from here and from nowhere else
in the package for these names, so there is one of each:

* :class:`Table` / :class:`Preparsed`: a rectangular table as read, before validation;
* :class:`Problems`: the one problem collector (per file and across streamed chunks), and
  :class:`CollectedError`, the :class:`~cytoresp.errors.InputError` it raises, which
  carries its problems in structured form (listed, count left out, whole-file or not);
* column roles (:func:`role_key`, :func:`role_of`), the analyte-header resolution
  (:func:`analyte_header`), the CSV header layout and reader options (:class:`CsvLayout`);
* the cell-message helpers (:func:`quoted_at`, :func:`invalid_message`, ...).
"""

from __future__ import annotations

import codecs
import csv
import difflib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cytoresp.errors import InputError, Problem, quote_cell
from cytoresp.panels.registry import (
    ANALYTES,
    ambiguity,
    interpretation,
    normalise_name,
    resolve_analyte,
    split_unit,
)
from cytoresp.panels.units import unit_factor
from cytoresp.panels.values import (
    ValueFlags,
    as_text,
    format_numbers,
    is_numeric_column,
)

#: At most this many problems are listed in one InputError (the rest are counted).
MAX_PROBLEMS = 50

# ---------------------------------------------------------------------------------------
# column roles

#: Header keys of the sample id column, best first.
SAMPLE_ALIASES = ("sample_id", "sampleid", "sample_name", "samplename", "sample", "description")
ROLE_ALIASES: dict[str, tuple[str, ...]] = {
    "therapy": ("therapy", "treatment", "dmt"),
    "responder": ("responder",),
    "patient_id": ("patient_id", "patientid", "patient", "patient_no", "patient_number",
                   "subject_id", "subjectid", "subject", "participant_id", "participant"),
    "month": ("month", "months", "visit_month", "month_of_visit", "months_on_therapy",
              "months_on_treatment", "month_on_therapy", "month_on_treatment",
              "months_since_start", "months_since_baseline", "time_months", "time_month"),
    "plate": ("plate", "plate_id", "plateid", "plate_name", "batch", "batch_id", "batchid"),
    "age": ("age", "age_y", "age_years", "age_yr", "age_yrs", "age_at_baseline"),
    "sex": ("sex", "gender", "sex_f", "female"),
    "edss": ("edss", "edss_score", "baseline_edss"),
    "disease_duration_y": ("disease_duration_y", "disease_duration", "disease_duration_years",
                           "duration_y"),
    "relapses_prior_2y": ("relapses_prior_2y", "relapses_2y", "relapses_prior_2_y"),
    "gd_lesions": ("gd_lesions", "gd_lesion", "gd_enhancing_lesions", "gdlesions"),
}
_ROLE_OF: dict[str, str] = {alias: role for role, al in ROLE_ALIASES.items() for alias in al}
_ROLE_OF.update({alias: "sample_id" for alias in SAMPLE_ALIASES})
_BRACKET = re.compile(r"\s*[\(\[][^\(\)\[\]]*[\)\]]\s*$")


def role_key(name: str) -> str:
    """A header cell normalised for role lookup (``"Sample ID (text)"`` -> ``"sample_id"``)."""
    s = unicodedata.normalize("NFKC", str(name)).strip().lower()
    s = _BRACKET.sub("", s) or s
    return re.sub(r"[^a-z0-9]+", "_", s).strip("_")


def role_of(name: str) -> str | None:
    """The role of a header cell (``"sample_id"``, ``"therapy"``, a covariate...) or None."""
    return _ROLE_OF.get(role_key(name))


@lru_cache(maxsize=1)
def _header_candidates() -> dict[str, str]:
    """Normalised name -> how a suggestion names it (``'IL10' (IL-10)``, ``'age'``)."""
    out: dict[str, str] = {}
    for a in ANALYTES:
        label = f"'{a.id}'" + (f" ({a.display_name})" if a.display_name != a.id else "")
        for name in (a.id, a.display_name, *a.synonyms):
            out.setdefault(normalise_name(name), label)
    for role, aliases in ROLE_ALIASES.items():
        for alias in aliases:
            out.setdefault(normalise_name(alias), f"'{role}'")
    for alias in SAMPLE_ALIASES:
        out.setdefault(normalise_name(alias), "'sample_id'")
    return out


#: A letter O next to a digit is read as a zero (``IL-1O`` is IL-10), an l or I between
#: digits as a one, before any fuzzy matching.
_CONFUSED = ((re.compile(r"(?<=\d)o|o(?=\d)"), "0"), (re.compile(r"(?<=\d)[li](?=\d)"), "1"))


@lru_cache(maxsize=4096)  # asked again for the same headers in every streamed chunk
def header_suggestion(name: str) -> str | None:
    """What a header that matches nothing was probably meant to be, or None.

    Near misses of an analyte name (``IL-1O`` with a letter O), a covariate or a role
    (``agee``, ``therapie``). Used for the "did you mean" of ignored columns.

    Examples
    --------
    >>> header_suggestion("IL-1O"), header_suggestion("therapie"), header_suggestion("notes")
    ("'IL10' (IL-10)", "'therapy'", None)
    >>> header_suggestion("Race:"), header_suggestion("GCS")
    (None, None)
    """
    key = normalise_name(split_unit(name)[0])
    if len(key) < 3:
        return None
    candidates = _header_candidates()
    fixed = key
    for pattern, digit in _CONFUSED:
        fixed = pattern.sub(digit, fixed)
    if fixed != key and fixed in candidates:
        return candidates[fixed]
    if len(key) < 5:  # short names are close to too many others (GCS, Race, IL-99)
        return None
    close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.8)
    return candidates[close[0]] if close else None


# ---------------------------------------------------------------------------------------
# analyte headers


@dataclass(frozen=True)
class AnalyteHeader:
    """What a column or analyte name says: the analyte, how it was read, its unit.

    Attributes
    ----------
    analyte : str or None
        Canonical id, None when the name is unknown or ambiguous.
    ambiguity : str or None
        Why the name is refused as ambiguous (for the message), else None.
    note : str or None
        How a name read by assumption was interpreted (a warning), else None.
    unit : str or None
        The unit written in the name, else the default unit given.
    factor : float or None
        Factor to pg/mL; None for an unknown unit.
    """

    analyte: str | None
    ambiguity: str | None
    note: str | None
    unit: str | None
    factor: float | None


def analyte_header(name: str, default_unit: str | None = None) -> AnalyteHeader:
    """Resolve an analyte header (``"IL-17A (ng/ml)"``): the one resolution of every reader."""
    aid = resolve_analyte(name)
    if aid is None:
        return AnalyteHeader(None, ambiguity(name), None, None, None)
    unit = split_unit(name)[1] or default_unit
    return AnalyteHeader(aid, None, interpretation(name), unit, unit_factor(unit))


# ---------------------------------------------------------------------------------------
# problems


class CollectedError(InputError):
    """The InputError of a :class:`Problems` collector, with its problems in structured form.

    Attributes
    ----------
    found : list of Problem
        The problems listed, without the summary lines ("... and N more").
    unlisted : int
        How many further problems were found and not listed.
    whole_file : bool
        True when a problem concerns the whole file (a header or column problem, which
        would repeat in every chunk of a streamed file).
    """

    def __init__(self, problems: list[Problem], found: list[Problem], unlisted: int,
                 whole_file: bool):
        super().__init__(problems)
        self.found = found
        self.unlisted = unlisted
        self.whole_file = whole_file


class Problems:
    """Collects problems; cells are capped per column and sorted by row when raised.

    One collector serves a file read whole and a file streamed in chunks (:meth:`merge`
    adds a chunk's :class:`CollectedError`).

    Parameters
    ----------
    file : str
        The source as named in messages.
    limit : int
        At most this many problems are listed (the rest are counted).
    """

    def __init__(self, file: str, limit: int = MAX_PROBLEMS):
        self.file = file
        self.limit = limit
        self.general: list[Problem] = []
        self.cells: list[tuple[int, int, Problem]] = []
        self.n_cells = 0
        self.unlisted = 0  # problems counted, not kept (summary lines, merged chunks)
        self.whole_file = False
        #: Set when checking stopped early: the message then says more may follow.
        self.truncated = False
        self._summaries: list[tuple[Problem, int]] = []

    def __bool__(self) -> bool:
        return bool(self.general) or self.n_cells > 0 or self.unlisted > 0

    @property
    def full(self) -> bool:
        """True once ``limit`` problems are kept."""
        return len(self.general) + len(self.cells) >= self.limit

    def add(self, message: str, row: int | None = None, column: str | None = None, *,
            about_rows: bool = False) -> None:
        """A problem; without a row it concerns the whole file unless ``about_rows``."""
        self.general.append(Problem(self.file, row, column, message))
        if row is None and not about_rows:
            self.whole_file = True

    def add_summary(self, message: str, n_more: int) -> None:
        """A line standing for ``n_more`` problems of the same kind that are not listed."""
        problem = Problem(self.file, None, None, message)
        self.general.append(problem)
        self._summaries.append((problem, n_more))

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

    def merge(self, exc: InputError) -> None:
        """Add the problems of another collector's error (a streamed chunk).

        Problems without a row are kept once however many chunks report them.
        """
        if isinstance(exc, CollectedError):
            found, unlisted, whole_file = exc.found, exc.unlisted, exc.whole_file
        else:
            found = exc.problems
            unlisted, whole_file = 0, any(p.row is None for p in exc.problems)
        for p in found:
            if p.row is None:
                if p not in self.general:
                    self.general.append(p)
            else:
                self.cells.append((p.row, 0, p))
                self.n_cells += 1
        self.unlisted += unlisted
        self.whole_file |= whole_file

    def error(self) -> CollectedError:
        """The InputError listing the problems in row order, the rest counted."""
        cells = [p for _, _, p in sorted(self.cells, key=lambda t: (t[0], t[1]))]
        room = max(self.limit - len(self.general), 0)
        listed = self.general + cells[:room]
        more = self.unlisted + len(self.general) + self.n_cells - len(listed)
        summary = {id(p) for p, _ in self._summaries}
        found = [p for p in listed if id(p) not in summary]
        unlisted = more + sum(n for _, n in self._summaries)
        problems = list(listed)
        if self.truncated:
            problems.append(Problem(self.file, None, None,
                                    "... and possibly more problems in later rows (not all "
                                    "rows were checked); fix the ones above and run again"))
        elif more > 0:
            problems.append(Problem(self.file, None, None,
                                    f"... and {more} more problem(s) not listed; fix the ones "
                                    f"above and run again"))
        return CollectedError(problems, found, unlisted, self.whole_file)

    def raise_if_any(self) -> None:
        """Raise :meth:`error` when there is any problem."""
        if self:
            raise self.error()


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

    def take(self, keep: np.ndarray) -> Table:
        """The rows where ``keep`` is True."""
        return Table(self.names, [take(c, keep) for c in self.columns], self.rows[keep],
                     self.source, self.warnings)


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


def empty_mask(col: Any) -> np.ndarray:
    """Cells of a column that are empty (blank text, NaN)."""
    if isinstance(col, Preparsed):
        return np.isnan(col.values)
    if is_numeric_column(col):
        return np.isnan(np.asarray(col, dtype=np.float64))
    if isinstance(col, pa.Array) and pa.types.is_string(col.type) and not col.null_count:
        blank = pc.or_(pc.equal(col, ""), pc.utf8_is_space(col))
        return np.asarray(blank.to_numpy(zero_copy_only=False), dtype=bool)
    return np.asarray(pc.equal(as_text(col), "").to_numpy(zero_copy_only=False), dtype=bool)


def blank_rows(table: Table) -> np.ndarray:
    """Rows empty in every column (blank lines, trailing separators)."""
    blank = np.ones(len(table), dtype=bool)
    for col in table.columns:
        blank &= empty_mask(col)
        if not blank.any():
            break
    return blank


def take(col: Any, keep: np.ndarray) -> Any:
    """The cells of a column where ``keep`` is True."""
    if isinstance(col, Preparsed):
        return Preparsed(col.values[keep], col.censoring[keep])
    if isinstance(col, pa.Array | pa.ChunkedArray):
        return col.filter(pa.array(keep))
    return np.asarray(col)[keep]


# ---------------------------------------------------------------------------------------
# delimited text


def split_line(line: str) -> list[str]:
    """The cells of one delimited line (delimiter guessed from the line)."""
    delim = delimiter(line)
    try:
        return next(csv.reader([line], delimiter=delim))
    except (csv.Error, StopIteration):
        return []


def delimiter(line: str) -> str:
    """``,``, ``;`` or tab: whichever the line has most of (``,`` when none)."""
    counts = {d: line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


@dataclass(frozen=True)
class CsvLayout:
    """Where the header of delimited text is and how to read the text.

    Attributes
    ----------
    n_blank_top : int
        Blank lines before the header.
    delimiter : str
        Taken from the header line.
    n_columns : int
        Fields of the header (at least 1).
    """

    n_blank_top: int
    delimiter: str
    n_columns: int

    @classmethod
    def of(cls, head: bytes) -> CsvLayout:
        """The layout of text starting with ``head`` (a UTF-8 BOM is skipped)."""
        if head.startswith(codecs.BOM_UTF8):
            head = head[len(codecs.BOM_UTF8):]
        lines = head[:65536].decode("utf-8", errors="ignore").splitlines()
        n_blank_top = next((i for i, ln in enumerate(lines) if ln.strip()), len(lines))
        header = lines[n_blank_top] if n_blank_top < len(lines) else ""
        return cls(n_blank_top, delimiter(header), max(len(split_line(header)), 1))

    @property
    def names(self) -> list[str]:
        """Placeholder column names (the header is read as the first row)."""
        return [f"c{i}" for i in range(self.n_columns)]

    def options(self, on_bad_row: Callable[[Any], str], *, threads: bool,
                block_size: int | None = None) -> dict[str, Any]:
        """Keyword arguments of ``pyarrow.csv.read_csv`` / ``open_csv``: every cell as text."""
        import pyarrow.csv as pcsv

        names = self.names
        read = {"column_names": names, "skip_rows": self.n_blank_top, "use_threads": threads}
        if block_size is not None:
            read["block_size"] = block_size
        return {
            "read_options": pcsv.ReadOptions(**read),
            "parse_options": pcsv.ParseOptions(delimiter=self.delimiter,
                                               newlines_in_values=True,
                                               ignore_empty_lines=False,
                                               invalid_row_handler=on_bad_row),
            "convert_options": pcsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False,
                quoted_strings_can_be_null=False),
        }


def bad_row_problems(source: str, bad: Sequence[tuple[int | None, int, int]],
                     layout: CsvLayout, first_line: int = 1) -> list[Problem]:
    """Problems of rows whose field count differs from the header's.

    ``bad`` holds (record number or None, expected fields, actual fields).
    """
    problems = []
    for number, expected, actual in bad[:10]:
        problems.append(Problem(
            source, None if number is None else number + first_line - 1, None,
            f"this row has {actual} fields but the header has {expected}; check for an "
            f"unquoted '{layout.delimiter}' inside a cell (e.g. a decimal comma) or a missing "
            f"one"))
    if len(bad) > 10:
        problems.append(Problem(
            source, None, None,
            f"{len(bad)} rows in all have a field count different from the header's "
            f"({layout.n_columns}); if the file is an instrument export with lines before the "
            f"table, read it with format='luminex'"))
    return problems


def not_utf8_problem(source: str, line: int, byte: int) -> Problem:
    """The problem of a byte that is not UTF-8, on a file line."""
    return Problem(source, line, None,
                   f"not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8 (in Excel: "
                   f"'CSV UTF-8 (comma delimited)')")


# ---------------------------------------------------------------------------------------
# cells in messages


def text_at(col: Any, i: int) -> str:
    """Cell ``i`` of a column as text."""
    if is_numeric_column(col):
        return format_numbers(np.asarray(col, dtype=np.float64)[i: i + 1])[0]
    return as_text(col)[i].as_py()


def quoted_at(col: Any, i: int) -> str:
    """Cell ``i`` of a column quoted for a message, long text cut (:func:`quote_cell`)."""
    return quote_cell(text_at(col, i))


def list_rows(rows: Sequence[int], limit: int = 10) -> str:
    """Row numbers for a message, at most ``limit`` of them."""
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def invalid_message(raw: str) -> str:
    """The message of a cell that is not a concentration, with a hint where one helps."""
    hint = ""
    if re.fullmatch(r"[+-]?\d+,\d+", raw):
        hint = " (a decimal comma? write it with a dot: " + raw.replace(",", ".") + ")"
    elif raw.lower() in ("nd", "n.d.", "n.d", "bdl"):
        hint = (" ('ND' is ambiguous: write '<LLOQ' (or '<limit') if below detection, or "
                "leave it empty if not measured)")
    return (f"not a concentration: {quote_cell(raw)}{hint}; write a number, a censored value "
            f"('<0.64', '< LLOQ', 'OOR <', '>ULOQ'), or leave it empty if missing")


def report_value_flags(flags: ValueFlags, col: Any, name: str, order: int, rows: np.ndarray,
                       problems: Problems) -> None:
    """The problems of a parsed concentration column (invalid, negative, bad limit)."""
    problems.add_cells(flags.invalid, rows, order, name,
                       lambda i: invalid_message(text_at(col, i)))
    problems.add_cells(flags.negative, rows, order, name,
                       lambda i: f"negative concentration {quoted_at(col, i)}; concentrations "
                                 f"cannot be negative (write a censored value such as '< LLOQ' "
                                 f"if it is below the limit)")
    problems.add_cells(flags.bad_limit, rows, order, name,
                       lambda i: f"the limit in {quoted_at(col, i)} must be a positive number")
