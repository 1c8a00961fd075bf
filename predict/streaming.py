"""Read a panel in chunks and write a table as it goes, with bounded memory.

:class:`PanelStream` turns a panel source into validated :class:`~cytoresp.features.panel.Panel`
chunks of about ``chunk_rows`` rows, in input order:

* a wide CSV file or standard input is parsed by pyarrow's streaming CSV reader (1 MiB
  blocks, a bounded read-ahead, every cell as text exactly as
  :func:`~cytoresp.features.reader.read_panel` reads a whole file), and each chunk goes
  through the same validation (:func:`~cytoresp.features.reader.panel_from_table`) with
  its spreadsheet row numbers;
* a Parquet file is read with ``ParquetFile.iter_batches``;
* formats that need the whole file (Luminex / Bio-Plex exports with a preamble, Excel
  workbooks, long tables, anything unusual such as a UTF-16 file) are read whole by
  :func:`~cytoresp.features.reader.read_panel` and then handed out in chunks.

Errors keep the whole-file contract: each problem names the file, the spreadsheet row and
the column; sample ids are checked for duplicates across chunks; when a chunk has
problems, later chunks are still validated (not scored) until :data:`MAX_PROBLEMS`
problems are listed, and one :class:`~cytoresp.errors.InputError` is raised. The caller
writes through :class:`TableWriter`, whose temporary file is removed on any error, so bad
input never leaves a partial output.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from cytoresp.errors import InputError, Problem
from cytoresp.features.panel import Panel
from cytoresp.predict.writers import atomic_output, neutralise_formulas, output_format

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "Chunk",
    "PanelStream",
    "TableWriter",
    "rich_progress",
]

#: Rows scored at a time: large enough for vectorised work, small enough that memory stays
#: a few hundred MB whatever the file size.
DEFAULT_CHUNK_ROWS = 50_000
#: Bytes pyarrow's CSV reader parses at a time (its read-ahead is a few dozen blocks).
CSV_BLOCK_BYTES = 1 << 20
_HEAD_BYTES = 1 << 16

Progress = Callable[[int, int | None], None]


@dataclass
class Chunk:
    """One validated piece of the input.

    Attributes
    ----------
    panel : Panel
        The rows of this chunk (blank rows dropped), in input order.
    rows : ndarray of int
        Spreadsheet row of each sample (header = row 1), for messages.
    bytes_read : int or None
        Input bytes consumed so far (None when unknown), for progress.
    """

    panel: Panel
    rows: np.ndarray
    bytes_read: int | None


# ---------------------------------------------------------------------------------------
# problems across chunks


class _Collector:
    """Problems of several chunks, listed as one InputError in row order."""

    def __init__(self, limit: int):
        self.limit = limit
        self.general: list[Problem] = []
        self.cells: list[Problem] = []
        self.unlisted = 0
        self.truncated = False

    def __bool__(self) -> bool:
        return bool(self.general or self.cells or self.unlisted)

    @property
    def full(self) -> bool:
        return len(self.general) + len(self.cells) >= self.limit

    def add(self, problems: list[Problem]) -> None:
        for p in problems:
            more = re.match(r"\.\.\. and (\d+) more", p.message)
            if p.row is None and more:
                self.unlisted += int(more.group(1))
            elif p.row is None:
                if p not in self.general:
                    self.general.append(p)
            else:
                self.cells.append(p)

    def error(self, source: str) -> InputError:
        cells = sorted(self.cells, key=lambda p: p.row)
        room = max(self.limit - len(self.general), 0)
        listed = self.general + cells[:room]
        more = self.unlisted + len(cells) - len(cells[:room])
        if self.truncated:
            listed.append(
                Problem(
                    source,
                    None,
                    None,
                    "... and possibly more problems in later rows (not all rows "
                    "were checked); fix the ones above and run again",
                )
            )
        elif more > 0:
            listed.append(
                Problem(
                    source,
                    None,
                    None,
                    f"... and {more} more problem(s) not listed; fix the ones above and run again",
                )
            )
        return InputError(listed)


def _is_header_level(problems: list[Problem]) -> bool:
    """True when a chunk's problems concern the whole file (they would repeat per chunk)."""
    return any(
        p.row is None and not p.message.startswith(("duplicate sample id", "... and"))
        for p in problems
    )


class _SeenIds:
    """Sample ids of earlier chunks, as two independent 64-bit hashes and their rows.

    24 bytes per sample whatever the ids' length (the ids themselves are not kept); an id
    counts as seen when both hashes match (a false match has a probability near 2**-128).
    """

    _KEY2 = "cytoresp:ids:02!"  # a second, independent hash key (16 characters)

    def __init__(self) -> None:
        self.h1 = np.empty(0, dtype=np.uint64)  # sorted
        self.h2 = np.empty(0, dtype=np.uint64)
        self.rows = np.empty(0, dtype=np.int64)

    def check_and_add(self, ids: np.ndarray, rows: np.ndarray) -> list[tuple[str, int, int]]:
        """(id, earlier row, this row) of every id seen in an earlier chunk; then add them."""
        h1 = pd.util.hash_array(ids)
        found: list[tuple[str, int, int]] = []
        n_seen = len(self.h1)
        if n_seen:
            pos = np.searchsorted(self.h1, h1)
            hit = np.flatnonzero((pos < n_seen) & (self.h1[np.minimum(pos, n_seen - 1)] == h1))
            if len(hit):
                h2 = pd.util.hash_array(ids[hit], hash_key=self._KEY2)
                for i, second in zip(hit.tolist(), h2.tolist(), strict=True):
                    j = int(pos[i])
                    while j < n_seen and self.h1[j] == h1[i]:
                        if self.h2[j] == second:
                            found.append((ids[i], int(self.rows[j]), int(rows[i])))
                            break
                        j += 1
        order = np.argsort(h1, kind="stable")
        at = np.searchsorted(self.h1, h1[order])
        self.h1 = np.insert(self.h1, at, h1[order])
        self.h2 = np.insert(self.h2, at, pd.util.hash_array(ids, hash_key=self._KEY2)[order])
        self.rows = np.insert(self.rows, at, np.asarray(rows, dtype=np.int64)[order])
        return found


# ---------------------------------------------------------------------------------------
# the stream


class _HeadThenRest(io.RawIOBase):
    """A binary stream that gives back ``head`` first, then the rest of ``fh``."""

    def __init__(self, head: bytes, fh: IO[bytes]):
        self._head = memoryview(head)
        self._fh = fh

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if len(self._head):
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._fh.read(len(b))
        b[: len(data)] = data
        return len(data)


class PanelStream:
    """Validated panel chunks of a source, in input order.

    Parameters
    ----------
    source : path, ``"-"``, file object or DataFrame
        What :func:`~cytoresp.features.reader.read_panel` accepts.
    chunk_rows : int
        Target rows per chunk.

    Attributes
    ----------
    name : str
        The source as named in messages.
    mode : {"csv", "parquet", "whole"}
        How the source is read: streamed CSV, streamed Parquet, or read whole.
    total_bytes : int or None
        Size of the input file, when known.

    Examples
    --------
    >>> stream = PanelStream("panel.csv", chunk_rows=10_000)  # doctest: +SKIP
    >>> sum(len(chunk.panel) for chunk in stream)  # doctest: +SKIP
    """

    def __init__(self, source: Any, chunk_rows: int = DEFAULT_CHUNK_ROWS):
        from cytoresp.features.reader import MAX_PROBLEMS

        if int(chunk_rows) < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows!r}")
        self.source = source
        self.chunk_rows = int(chunk_rows)
        self.limit = MAX_PROBLEMS
        self.total_bytes: int | None = None
        self.mode = "whole"
        self.name = "<DataFrame>"
        self._head = b""
        self._fh: IO[bytes] | None = None
        self._prepare()

    # -- choosing how to read ------------------------------------------------------------
    def _prepare(self) -> None:
        src = self.source
        if isinstance(src, pd.DataFrame | Panel) or not isinstance(src, str | os.PathLike):
            if hasattr(src, "read") and not isinstance(src, pd.DataFrame | Panel):
                name = getattr(src, "name", None)
                self.name = str(name) if isinstance(name, str) and name else "<file>"
            return
        if os.fspath(src) == "-":
            self.name = "<stdin>"
            self._fh = sys.stdin.buffer
        else:
            self.name = os.fspath(src)
            path = Path(src)
            if not path.is_file():
                return  # read_panel gives the message (missing file, a folder, ...)
            self.total_bytes = path.stat().st_size
            with open(path, "rb") as fh:
                magic = fh.read(4)
            if magic == b"PAR1":
                self.mode = "parquet"
                return
            self._fh = open(path, "rb")  # noqa: SIM115 - closed by __iter__
        self._head = self._read_head(self._fh)
        if self._csv_streamable(self._head):
            self.mode = "csv"

    @staticmethod
    def _read_head(fh: IO[bytes]) -> bytes:
        head = fh.read(_HEAD_BYTES)
        # complete the last line so that the header is whole
        while head and b"\n" not in head[-_HEAD_BYTES:]:
            more = fh.read(_HEAD_BYTES)
            if not more:
                break
            head += more
        return head

    def _csv_streamable(self, head: bytes) -> bool:
        from cytoresp.features import reader

        sniff = getattr(reader, "_sniff", None)
        if sniff is None or not head.strip():
            return False
        if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head[:8192]:
            return False
        body = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
        try:
            body[: body.rfind(b"\n") + 1 or len(body)].decode("utf-8")
        except UnicodeDecodeError:
            return False
        suffix = Path(self.name).suffix.lower() if self.name != "<stdin>" else ""
        return sniff(head, suffix) == "wide" and b"\n" in body.lstrip(b"\r\n")

    # -- iteration ------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Chunk]:
        try:
            if self.mode == "csv":
                yield from self._checked(self._csv_tables())
            elif self.mode == "parquet":
                yield from self._checked(self._parquet_tables())
            else:
                yield from self._whole()
        finally:
            if self._fh is not None and self._fh is not sys.stdin.buffer:
                self._fh.close()

    def _whole(self) -> Iterator[Chunk]:
        from cytoresp.features.reader import read_panel

        src = self.source
        if self._fh is not None:  # the head is already read: give read_panel all of it
            data = self._head + self._fh.read()
            buf = io.BytesIO(data)
            buf.name = self.name
            src = buf if self.name == "<stdin>" else self.source
        panel = src if isinstance(src, Panel) else read_panel(src)
        n = len(panel)
        rows = np.arange(2, n + 2, dtype=np.int64)
        for start in range(0, max(n, 1), self.chunk_rows):
            stop = min(start + self.chunk_rows, n)
            part = panel if (start == 0 and stop == n) else panel.subset(np.arange(start, stop))
            yield Chunk(
                part,
                rows[start:stop],
                self.total_bytes and int(self.total_bytes * stop / max(n, 1)),
            )

    def _checked(self, tables: Iterator[tuple[Any, int | None]]) -> Iterator[Chunk]:
        """Validate tables; yield panels while all is well, then only collect problems."""
        from cytoresp.features.reader import Table, panel_from_table

        problems = _Collector(self.limit)
        seen = _SeenIds()
        header: Any = None
        n_rows = 0

        def tables_without_blank_rows() -> Iterator[tuple[Any, int | None]]:
            nonlocal header, n_rows
            for table, bytes_read in tables:
                if header is None:
                    header = table
                keep = ~_blank_rows(table)
                if not keep.all():
                    table = Table(
                        table.names,
                        [_take(c, keep) for c in table.columns],
                        table.rows[keep],
                        table.source,
                        table.warnings,
                    )
                if len(table):
                    n_rows += len(table)
                    yield table, bytes_read

        for table, bytes_read, parsed in _parse_ahead(tables_without_blank_rows()):
            try:
                panel = parsed.result()
            except InputError as exc:
                problems.add(exc.problems)
                if _is_header_level(exc.problems):
                    break
                if problems.full:
                    problems.truncated = True
                    break
                continue
            ids = np.asarray(panel.sample_ids, dtype=object)
            dup = seen.check_and_add(ids, table.rows)
            if dup:
                col = _sample_column(table)
                problems.add(
                    [
                        Problem(
                            self.name,
                            None,
                            col,
                            f"duplicate sample id {sid!r} in rows {first}, {row}; "
                            f"sample ids must be unique",
                        )
                        for sid, first, row in dup[: self.limit]
                    ]
                )
                if problems.full:
                    problems.truncated = True
                    break
            if not problems:
                yield Chunk(panel, table.rows, bytes_read)
        if problems:
            raise problems.error(self.name)
        if n_rows == 0 and header is not None:
            panel_from_table(
                Table(
                    header.names,
                    [_take(c, np.zeros(len(header), bool)) for c in header.columns],
                    header.rows[:0],
                    header.source,
                )
            )  # raises "no data rows"

    # -- CSV ------------------------------------------------------------------------------
    def _csv_tables(self) -> Iterator[tuple[Any, int | None]]:
        import pyarrow.csv as pcsv

        from cytoresp.features.reader import Table, _delimiter, _split_line

        head = self._head
        if head.startswith(b"\xef\xbb\xbf"):
            head = head[3:]
        text = head.decode("utf-8", errors="ignore")
        lines = text.splitlines()
        n_blank_top = next((i for i, ln in enumerate(lines) if ln.strip()), len(lines))
        header_line = lines[n_blank_top] if n_blank_top < len(lines) else ""
        delim = _delimiter(header_line)
        ncol = max(len(_split_line(header_line)), 1)
        names = [f"c{i}" for i in range(ncol)]
        bad: list[tuple[int, int, str]] = []

        def on_bad_row(row: Any) -> str:
            bad.append((row.expected_columns, row.actual_columns, row.text))
            return "skip"

        stream = _HeadThenRest(head, self._fh)
        try:
            reader = pcsv.open_csv(
                io.BufferedReader(stream, buffer_size=CSV_BLOCK_BYTES),
                read_options=pcsv.ReadOptions(
                    column_names=names,
                    skip_rows=n_blank_top,
                    block_size=CSV_BLOCK_BYTES,
                    use_threads=True,
                ),
                parse_options=pcsv.ParseOptions(
                    delimiter=delim,
                    newlines_in_values=True,
                    ignore_empty_lines=False,
                    invalid_row_handler=on_bad_row,
                ),
                convert_options=pcsv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()),
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except pa.ArrowInvalid as exc:
            yield from self._csv_failed(exc)
            return
        header_names: list[str] | None = None
        first_row = 2 + n_blank_top  # spreadsheet row of the next data row
        pending: list[pa.RecordBatch] = []
        n_pending = 0
        consumed = 0
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                batch = None
            except pa.ArrowInvalid as exc:
                yield from self._csv_failed(exc)
                return
            if bad:
                yield from self._csv_bad_rows(bad, delim, ncol)
                return
            if batch is not None:
                consumed += max(batch.nbytes - 3 * batch.num_rows * ncol, 0)
                if header_names is None:
                    header_names = (
                        [str(v).strip() for v in batch.slice(0, 1).to_pylist()[0].values()]
                        if batch.num_rows
                        else None
                    )
                    batch = batch.slice(1)
                if batch.num_rows:
                    pending.append(batch)
                    n_pending += batch.num_rows
            if pending and (n_pending >= self.chunk_rows or batch is None):
                tbl = pa.Table.from_batches(pending).combine_chunks()
                cols = [
                    tbl.column(i).chunk(0)
                    if tbl.column(i).num_chunks == 1
                    else tbl.column(i).combine_chunks()
                    for i in range(tbl.num_columns)
                ]
                rows = np.arange(first_row, first_row + tbl.num_rows, dtype=np.int64)
                first_row += tbl.num_rows
                pending, n_pending = [], 0
                total = self.total_bytes
                yield (
                    Table(header_names or [], cols, rows, self.name),
                    min(consumed, total) if total else None,
                )
            if batch is None:
                break
        if header_names is None:
            header_names = []
        if first_row == 2 + n_blank_top:  # a header and no data rows
            empty = [pa.array([], pa.string()) for _ in header_names]
            yield Table(header_names, empty, np.empty(0, dtype=np.int64), self.name), None

    def _csv_failed(self, exc: Exception) -> Iterator[tuple[Any, int | None]]:
        """A parse error (e.g. bytes that are not UTF-8): the whole-file reader's message."""
        if self.name != "<stdin>":
            from cytoresp.features.reader import read_panel

            read_panel(self.source)  # raises the exact message, with the line
        message = str(exc)
        if "utf8" in message.lower() or "utf-8" in message.lower():
            message = (
                "not UTF-8 text; save the file as UTF-8 (in Excel: 'CSV UTF-8 (comma delimited)')"
            )
        raise InputError([Problem(self.name, None, None, f"cannot parse the table: {message}")])
        yield  # pragma: no cover - a generator

    def _csv_bad_rows(self, bad, delim: str, ncol: int) -> Iterator[tuple[Any, int | None]]:
        """Rows with the wrong number of fields: the whole-file reader's message."""
        if self.name != "<stdin>":
            from cytoresp.features.reader import read_panel

            read_panel(self.source)  # raises the exact message, with line numbers
        problems = [
            Problem(
                self.name,
                None,
                None,
                f"a row has {actual} fields but the header has {expected} ({text[:60]!r}); "
                f"check for an unquoted '{delim}' inside a cell (e.g. a decimal comma) "
                f"or a missing one",
            )
            for expected, actual, text in bad[:10]
        ]
        if len(bad) > 10:
            problems.append(
                Problem(
                    self.name,
                    None,
                    None,
                    f"{len(bad)} rows in all have a field count different from "
                    f"the header's ({ncol})",
                )
            )
        raise InputError(problems)
        yield  # pragma: no cover - a generator

    # -- Parquet --------------------------------------------------------------------------
    def _parquet_tables(self) -> Iterator[tuple[Any, int | None]]:
        import pyarrow.parquet as pq

        from cytoresp.features.read_long import looks_long
        from cytoresp.features.reader import table_from_frame

        try:
            pf = pq.ParquetFile(self.source)
            names = pf.schema_arrow.names
        except Exception:  # noqa: BLE001 - the whole-file reader words the error
            raise _FallBack from None
        if looks_long([str(n) for n in names]):
            raise _FallBack
        first_row = 2
        done = 0
        n_total = max(pf.metadata.num_rows, 1)
        for batch in pf.iter_batches(batch_size=self.chunk_rows):
            df = batch.to_pandas().reset_index(drop=True)
            table = table_from_frame(df, self.name, first_row=first_row)
            first_row += len(df)
            done += len(df)
            yield table, int((self.total_bytes or 0) * done / n_total) or None
        if first_row == 2:
            yield table_from_frame(pf.schema_arrow.empty_table().to_pandas(), self.name), None


def _parse_ahead(
    tables: Iterator[tuple[Any, int | None]], ahead: int | None = None
) -> Iterator[tuple[Any, int | None, Any]]:
    """(table, bytes read, future of its panel), in order, parsing ``ahead`` tables at once.

    Parsing the cells (pyarrow compute, which releases the GIL) runs on worker threads
    while the next tables are read, so reading is not limited to one core. At most
    ``ahead`` tables are in flight beyond the one being consumed: memory stays bounded.
    """
    from concurrent.futures import ThreadPoolExecutor

    from cytoresp.features.reader import panel_from_table

    if ahead is None:
        try:
            ahead = max(len(os.sched_getaffinity(0)), 1)
        except AttributeError:  # pragma: no cover - not Linux
            ahead = max(os.cpu_count() or 1, 1)
    pending: deque = deque()
    pool = ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="cytoresp-parse")
    try:
        for table, bytes_read in tables:
            pending.append((table, bytes_read, pool.submit(panel_from_table, table)))
            if len(pending) > ahead:
                yield pending.popleft()
        while pending:
            yield pending.popleft()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _FallBack(Exception):
    """Raised by a streaming reader that finds the source needs whole-file reading."""


def _stream_or_whole(stream: PanelStream) -> Iterator[Chunk]:
    try:
        yield from stream
    except _FallBack:
        stream.mode = "whole"
        yield from stream._whole()


def _blank_rows(table: Any) -> np.ndarray:
    """Rows empty in every column (blank lines, trailing separators)."""
    from cytoresp.features.read_values import as_text, is_numeric_column

    blank = np.ones(len(table), dtype=bool)
    for col in table.columns:
        if is_numeric_column(col):
            blank &= np.isnan(np.asarray(col, dtype=np.float64))
        else:
            import pyarrow.compute as pc

            blank &= np.asarray(
                pc.equal(as_text(col), "").to_numpy(zero_copy_only=False), dtype=bool
            )
        if not blank.any():
            break
    return blank


def _take(col: Any, keep: np.ndarray) -> Any:
    if isinstance(col, pa.Array | pa.ChunkedArray):
        return col.filter(pa.array(keep))
    if isinstance(col, pd.Series):
        return col[keep]
    return np.asarray(col)[keep]


def _sample_column(table: Any) -> str | None:
    from cytoresp.features import reader

    role_of = getattr(reader, "_ROLE_OF", {})
    role_key = getattr(reader, "_role_key", None)
    for name in table.names:
        if role_key is not None and role_of.get(role_key(name)) == "sample_id":
            return name
    return None


def iter_chunks(
    source: Any, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> tuple[PanelStream, Iterator[Chunk]]:
    """The stream of ``source`` and an iterator over its validated chunks."""
    stream = PanelStream(source, chunk_rows)
    return stream, _stream_or_whole(stream)


# ---------------------------------------------------------------------------------------
# writing


class TableWriter:
    """Write DataFrames one after another into one CSV or Parquet file, atomically.

    The destination appears only when the ``with`` block ends without an error (temp file
    + rename, :func:`~cytoresp.predict.writers.atomic_output`); ``"-"`` writes CSV to
    standard output. CSV cells that a spreadsheet would run as a formula are neutralised.

    Examples
    --------
    >>> with TableWriter("predictions.csv") as out:  # doctest: +SKIP
    ...     for part in parts:
    ...         out.write(part)
    """

    def __init__(self, dest: str | os.PathLike):
        self.dest = dest
        self.format = output_format(dest)
        self.n_rows = 0
        self._stack = contextlib.ExitStack()
        self._fh: Any = None
        self._parquet: Any = None
        self._schema: pa.Schema | None = None
        self._header_done = False

    def __enter__(self) -> TableWriter:
        self._fh = self._stack.enter_context(atomic_output(self.dest, "wb"))
        return self

    def write(self, frame: pd.DataFrame) -> None:
        """Append the rows of ``frame`` (same columns every time)."""
        if self.format == "parquet":
            import pyarrow.parquet as pq

            if self._schema is None:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                self._schema = table.schema
                self._parquet = pq.ParquetWriter(self._fh, self._schema)
            else:
                table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
            self._parquet.write_table(table)
        else:
            # Arrow's CSV writer: about ten times faster than DataFrame.to_csv; shortest
            # round-trip floats and empty cells for NaN as to_csv, every text cell quoted
            import pyarrow.csv as pa_csv

            table = pa.Table.from_pandas(neutralise_formulas(frame), preserve_index=False)
            options = pa_csv.WriteOptions(
                include_header=not self._header_done, quoting_style="needed"
            )
            buffer = pa.BufferOutputStream()
            pa_csv.write_csv(table, buffer, write_options=options)
            self._fh.write(memoryview(buffer.getvalue()))
            self._header_done = True
        self.n_rows += len(frame)

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self._parquet is not None:
            if exc_type is None:
                try:
                    self._parquet.close()
                except BaseException as err:
                    self._stack.__exit__(type(err), err, err.__traceback__)
                    raise
            else:
                with contextlib.suppress(Exception):
                    self._parquet.close()
        return bool(self._stack.__exit__(exc_type, exc, tb))


# ---------------------------------------------------------------------------------------
# progress


@contextlib.contextmanager
def rich_progress(
    console: Any, total_bytes: int | None, label: str = "scoring"
) -> Iterator[Progress]:
    """A rich progress bar on ``console`` (rows, rows/s); yields ``update(rows, bytes)``.

    Examples
    --------
    >>> from rich.console import Console
    >>> with rich_progress(Console(stderr=True), 1000) as update:  # doctest: +SKIP
    ...     update(500, 400)
    """
    import time

    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    state = {"rows": 0, "start": time.perf_counter()}

    def rate(_task: Any) -> str:
        seconds = max(time.perf_counter() - state["start"], 1e-9)
        return f"{state['rows']:,} rows, {state['rows'] / seconds:,.0f} rows/s"

    class _Rate(TextColumn):
        def render(self, task):  # noqa: D102 - rich API
            from rich.text import Text

            return Text(rate(task))

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%") if total_bytes else TextColumn(""),
        _Rate(""),
        TimeElapsedColumn(),
        TimeRemainingColumn() if total_bytes else TextColumn(""),
        console=console,
        transient=True,
    )
    with bar:
        task = bar.add_task(label, total=total_bytes)

        def update(rows: int, bytes_read: int | None) -> None:
            state["rows"] = rows
            if bytes_read is not None:
                bar.update(task, completed=bytes_read)
            else:
                bar.refresh()

        yield update
