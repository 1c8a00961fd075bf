"""Read and validate a cytokine panel file: :func:`read_panel`, the one entry point.

:func:`read_panel` turns a panel file (canonical wide CSV, Luminex xPONENT / Bio-Plex export,
long table, Excel or Parquet) or a DataFrame into a validated :class:`Panel`; every problem
is collected in one pass and raised together as :class:`~cytoresp.errors.InputError`.
The data contract is documented for users in ``docs/data-format.md``.

All cell parsing is vectorised (pyarrow compute / numpy on whole columns).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import pandas as pd

from cytoresp.errors import InputError, Problem, UsageError
from cytoresp.panels._table import MAX_PROBLEMS, role_of, table_from_frame
from cytoresp.panels.excel import read_excel_tables, read_parquet_table
from cytoresp.panels.limits import check_input, read_limited
from cytoresp.panels.long import looks_long, read_long_table
from cytoresp.panels.luminex import NoHeaderFound, read_luminex_text
from cytoresp.panels.panel import Panel
from cytoresp.panels.sniff import sniff
from cytoresp.panels.validate import panel_from_table
from cytoresp.panels.visits import baseline_note
from cytoresp.panels.wide import decode_text, read_csv_table

__all__ = ["FORMATS", "MAX_PROBLEMS", "PanelSource", "read_panel"]

#: Values accepted by ``read_panel(format=...)``.
FORMATS: tuple[str, ...] = ("wide", "luminex", "long", "xlsx", "parquet")

PanelSource = str | os.PathLike | IO[str] | IO[bytes] | pd.DataFrame


def _load(source: Any) -> tuple[str, bytes | pd.DataFrame, str]:
    """(name for messages, bytes or DataFrame, lower-case file suffix).

    Every source goes through the input size guards of :mod:`cytoresp.panels.limits`
    first (a path before it is read; stdin and file objects never beyond the size limit).
    """
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



def read_panel(
    source: PanelSource,
    *,
    require_labels: bool = False,
    format: str | None = None,  # noqa: A002 - the documented keyword
    therapies: Mapping[str, Any] | None = None,
    columns: tuple[Any, ...] | None = None,
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
    therapies : mapping, optional
        Therapies declared beside the registry (``docs/therapies.md``), as returned by
        :func:`~cytoresp.panels.therapies.declared_therapies`.
    columns : tuple of DeclaredColumn, optional
        Covariates and measurements declared by a training config
        (:func:`~cytoresp.panels.declared.declared_columns`).

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
        fmt = format or ("long" if looks_long([str(c) for c in payload.columns]) else "wide")
        if fmt not in ("wide", "long"):
            raise UsageError(f"a DataFrame is read as 'wide' or 'long', not {fmt!r}")
        if payload.index.name is not None and role_of(str(payload.index.name)) == "sample_id":
            payload = payload.reset_index()  # e.g. a panel indexed by sample_id
        table = table_from_frame(payload, name)
        if fmt == "long":
            table = read_long_table(table)
        return _with_baseline_note(panel_from_table(
            table, require_labels=require_labels, therapies=therapies, columns=columns))
    if not payload.strip():
        raise InputError([Problem(name, None, None, "the file is empty")])
    fmt = format or sniff(payload, suffix)
    if fmt == "xlsx":
        table = read_excel_tables(payload, name)
    elif fmt == "parquet":
        table = read_parquet_table(payload, name)
    else:
        text = decode_text(payload, name)
        if fmt == "luminex" and format is None:
            table = _luminex_or_wide(text, payload, name)
        elif fmt == "luminex":
            table = read_luminex_text(text, name)
        else:
            del text
            table = read_csv_table(payload, name)
            if fmt == "long":
                table = read_long_table(table)
    if fmt in ("xlsx", "parquet") and table is not None:
        if looks_long(table.names) and format != "wide":
            table = read_long_table(table)
    return _with_baseline_note(panel_from_table(
        table, require_labels=require_labels, therapies=therapies, columns=columns))


def _with_baseline_note(panel: Panel) -> Panel:
    """The panel, warned about patients without a baseline sample (whole reads only: a
    streamed chunk may hold a patient's later visits without its baseline)."""
    note = baseline_note(panel)
    if note is not None:
        panel.warnings.append(note)
    return panel


def _luminex_or_wide(text: str, payload: bytes, name: str):
    """A file sniffed as an instrument export: read it as one, else as a wide table.

    The sniffer guesses "instrument export" from an analyte header below the first line or
    a well column. When no instrument header can be found, the file is read as a wide
    table; if that fails too, both readers' problems are reported (the wide reader's are
    often the precise ones), with a hint on choosing the format.
    """
    try:
        return read_luminex_text(text, name)
    except NoHeaderFound as luminex_error:
        try:
            return read_csv_table(payload, name)
        except InputError as wide_error:
            hint = Problem(name, None, None,
                           "read as an instrument export (an analyte header below the first "
                           "line, or a well column), then as a wide table; both failed. "
                           "Pass --format wide or --format luminex to see one reader's "
                           "problems only")
            raise InputError([*luminex_error.problems, *wide_error.problems, hint]) from None
