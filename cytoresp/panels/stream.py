"""Read a panel in chunks, with bounded memory.

:class:`PanelStream` turns a panel source into validated :class:`~cytoresp.panels.panel.Panel`
chunks of about ``chunk_rows`` rows, in input order:

* a wide CSV file or standard input is parsed by pyarrow's streaming CSV reader (1 MiB
  blocks, a bounded read-ahead, every cell as text exactly as
  :func:`~cytoresp.panels.read.read_panel` reads a whole file, with the same reader
  options), and each chunk goes through the same validation
  (:func:`~cytoresp.panels.validate.panel_from_table`) with its spreadsheet row numbers;
* a Parquet file is read with ``ParquetFile.iter_batches``;
* formats that need the whole file (Luminex / Bio-Plex exports with a preamble, Excel
  workbooks, long tables, anything unusual such as a UTF-16 file) are read whole by
  :func:`~cytoresp.panels.read.read_panel` and then handed out in chunks.

Errors keep the whole-file contract: each problem names the file, the spreadsheet row and
the column; sample ids are checked for duplicates across chunks; when a chunk has
problems, later chunks are still validated (not scored) until :data:`MAX_PROBLEMS`
problems are listed, and one :class:`~cytoresp.errors.InputError` is raised. Bad rows and
bytes that are not UTF-8 are reported with their file line as the whole-file reader does,
from what the stream itself saw (the file is never read a second time). The caller writes
through an atomic writer (:func:`~cytoresp.panels.write.atomic_output`), so bad input never
leaves a partial output.
"""

from __future__ import annotations

import codecs
import io
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

import numpy as np
import pandas as pd
import pyarrow as pa

from cytoresp.errors import InputError, Problem, quote_cell
from cytoresp.panels._table import (
    MAX_PROBLEMS,
    CsvLayout,
    Problems,
    Table,
    bad_row_problems,
    blank_rows,
    not_utf8_problem,
    role_of,
    table_from_frame,
)
from cytoresp.panels.long import looks_long
from cytoresp.panels.panel import Panel
from cytoresp.panels.read import read_panel
from cytoresp.panels.sniff import sniff
from cytoresp.panels.validate import panel_from_table
from cytoresp.panels.visits import format_month

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "Chunk",
    "PanelStream",
    "Progress",
    "iter_chunks",
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
    """A binary stream that gives back ``head`` first, then the rest of ``fh``.

    It checks that the bytes are UTF-8 as they pass: :attr:`bad_utf8` is then the file
    line and the value of the first byte that is not (counted from the start of ``head``).
    """

    def __init__(self, head: bytes, fh: IO[bytes]):
        self._head = memoryview(head)
        self._fh = fh
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._newlines = 0
        self.bad_utf8: tuple[int, int] | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if len(self._head):
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            self._check_utf8(bytes(b[:n]))
            return n
        data = self._fh.read(len(b))
        b[: len(data)] = data
        self._check_utf8(data)
        return len(data)

    def _check_utf8(self, data: bytes) -> None:
        if self.bad_utf8 is not None:
            return
        pending = self._decoder.getstate()[0]  # an incomplete character: never a newline
        try:
            self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            seen = pending + data
            line = self._newlines + seen[: exc.start].count(b"\n") + 1
            self.bad_utf8 = (line, seen[exc.start])
            return
        self._newlines += data.count(b"\n")


class PanelStream:
    """Validated panel chunks of a source, in input order.

    Parameters
    ----------
    source : path, ``"-"``, file object or DataFrame
        What :func:`~cytoresp.panels.read.read_panel` accepts.
    chunk_rows : int
        Target rows per chunk.
    therapies : mapping, optional
        Therapies declared beside the registry (a model's declared therapies).
    columns : tuple of DeclaredColumn, optional
        Declared covariates and measurements (a model's, :mod:`cytoresp.panels.declared`).

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
    ``panel.csv`` holds 40 samples (a CSV file is read in blocks of 1 MiB, so a chunk
    holds at least ``chunk_rows`` rows, or the rest of the file):

    >>> stream = PanelStream("panel.csv", chunk_rows=10_000)
    >>> sum(len(chunk.panel) for chunk in stream)
    40
    >>> stream.mode
    'csv'
    """

    def __init__(self, source: Any, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                 therapies: Mapping[str, Any] | None = None,
                 columns: tuple[Any, ...] | None = None):
        if int(chunk_rows) < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows!r}")
        self.source = source
        self.therapies = therapies
        self.columns = columns
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
        if not head.strip():
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
        src = self.source
        if self._fh is not None:  # the head is already read: give read_panel all of it
            data = self._head + self._fh.read()
            buf = io.BytesIO(data)
            buf.name = self.name
            src = buf if self.name == "<stdin>" else self.source
        panel = src if isinstance(src, Panel) else read_panel(src, therapies=self.therapies,
                                                                    columns=self.columns)
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
        problems = Problems(self.name, self.limit)
        seen = _SeenIds()
        seen_visits = _SeenIds()  # (patient_id, month) of a panel with visits
        header: Any = None
        n_rows = 0

        def tables_without_blank_rows() -> Iterator[tuple[Any, int | None]]:
            nonlocal header, n_rows
            for table, bytes_read in tables:
                if header is None:
                    header = table
                keep = ~blank_rows(table)
                if not keep.all():
                    table = table.take(keep)
                if len(table):
                    n_rows += len(table)
                    yield table, bytes_read

        for table, bytes_read, parsed in _parse_ahead(tables_without_blank_rows(),
                                                      therapies=self.therapies,
                                                      columns=self.columns):
            try:
                panel = parsed.result()
            except InputError as exc:
                problems.merge(exc)
                if problems.whole_file:  # a header problem: every chunk would repeat it
                    break
                if problems.full:
                    problems.truncated = True
                    break
                continue
            ids = np.asarray(panel.sample_ids, dtype=object)
            dup = seen.check_and_add(ids, table.rows)
            if dup:
                col = next((n for n in table.names if role_of(n) == "sample_id"), None)
                for sid, first, row in dup[: self.limit]:
                    problems.add(
                        f"duplicate sample id {sid!r} in rows {first}, {row}; "
                        f"sample ids must be unique",
                        column=col,
                        about_rows=True,
                    )
                if problems.full:
                    problems.truncated = True
                    break
            if panel.has_visits:
                keys = np.asarray([f"{p}\x1f{m!r}" for p, m in zip(
                    panel.patient_id.tolist(), panel.month.tolist(), strict=True)], dtype=object)
                col = next((n for n in table.names if role_of(n) == "month"), None)
                for key, first, row in seen_visits.check_and_add(keys, table.rows)[: self.limit]:
                    pid, m = key.split("\x1f")
                    at = format_month(float(m))
                    problems.add(
                        f"patient {quote_cell(pid)} has 2 samples at month {at} "
                        f"(rows {first}, {row}); keep one sample per patient and month "
                        f"(average replicates first)",
                        column=col,
                        about_rows=True,
                    )
                if problems.full:
                    problems.truncated = True
                    break
            if not problems:
                yield Chunk(panel, table.rows, bytes_read)
        if problems:
            raise problems.error()
        if n_rows == 0 and header is not None:
            empty = header.take(np.zeros(len(header), bool))
            panel_from_table(Table(empty.names, empty.columns, empty.rows, empty.source),
                             columns=self.columns)
            # (raises "no data rows")

    # -- CSV ------------------------------------------------------------------------------
    def _csv_tables(self) -> Iterator[tuple[Any, int | None]]:
        import pyarrow.csv as pcsv

        head = self._head
        if head.startswith(codecs.BOM_UTF8):
            head = head[len(codecs.BOM_UTF8):]
        layout = CsvLayout.of(head)
        n_blank_top, ncol = layout.n_blank_top, layout.n_columns
        bad: list[tuple[int | None, int, int]] = []

        def on_bad_row(row: Any) -> str:
            bad.append((row.number, row.expected_columns, row.actual_columns))
            return "skip"

        stream = _HeadThenRest(head, self._fh)
        # one thread: the record number of a bad row is known (as in the whole-file reader)
        options = layout.options(on_bad_row, threads=False, block_size=CSV_BLOCK_BYTES)
        try:
            reader = pcsv.open_csv(io.BufferedReader(stream, buffer_size=CSV_BLOCK_BYTES),
                                   **options)
        except pa.ArrowInvalid as exc:
            self._csv_failed(exc, stream)
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
                self._csv_failed(exc, stream)
            if bad:
                self._csv_bad_rows(reader, stream, bad, layout)
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

    def _csv_failed(self, exc: Exception, stream: _HeadThenRest) -> NoReturn:
        """A parse error: bytes that are not UTF-8 are named with their line."""
        if stream.bad_utf8 is not None:
            line, byte = stream.bad_utf8
            raise InputError([not_utf8_problem(self.name, line, byte)])
        message = str(exc)
        if "utf8" in message.lower() or "utf-8" in message.lower():
            message = (
                "not UTF-8 text; save the file as UTF-8 (in Excel: 'CSV UTF-8 (comma delimited)')"
            )
        raise InputError([Problem(self.name, None, None, f"cannot parse the table: {message}")])

    def _csv_bad_rows(self, reader: Any, stream: _HeadThenRest,
                      bad: list[tuple[int | None, int, int]], layout: CsvLayout) -> NoReturn:
        """Rows with the wrong number of fields: read on to count them all, then raise."""
        try:
            for _ in reader:
                pass
        except pa.ArrowInvalid as exc:
            self._csv_failed(exc, stream)
        if stream.bad_utf8 is not None:  # the whole-file reader checks the text first
            line, byte = stream.bad_utf8
            raise InputError([not_utf8_problem(self.name, line, byte)])
        raise InputError(bad_row_problems(self.name, bad, layout))

    # -- Parquet --------------------------------------------------------------------------
    def _parquet_tables(self) -> Iterator[tuple[Any, int | None]]:
        import pyarrow.parquet as pq

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
    tables: Iterator[tuple[Any, int | None]], ahead: int | None = None,
    therapies: Mapping[str, Any] | None = None,
    columns: tuple[Any, ...] | None = None,
) -> Iterator[tuple[Any, int | None, Any]]:
    """(table, bytes read, future of its panel), in order, parsing ``ahead`` tables at once.

    Parsing the cells (pyarrow compute, which releases the GIL) runs on worker threads
    while the next tables are read, so reading is not limited to one core. At most
    ``ahead`` tables are in flight beyond the one being consumed: memory stays bounded.
    """
    from concurrent.futures import ThreadPoolExecutor

    if ahead is None:
        try:
            ahead = max(len(os.sched_getaffinity(0)), 1)
        except AttributeError:  # pragma: no cover - not Linux
            ahead = max(os.cpu_count() or 1, 1)
    pending: deque = deque()
    pool = ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="cytoresp-parse")
    try:
        for table, bytes_read in tables:
            pending.append((table, bytes_read,
                            pool.submit(panel_from_table, table, therapies=therapies,
                                        columns=columns)))
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


def iter_chunks(
    source: Any, chunk_rows: int = DEFAULT_CHUNK_ROWS,
    therapies: Mapping[str, Any] | None = None,
    columns: tuple[Any, ...] | None = None,
) -> tuple[PanelStream, Iterator[Chunk]]:
    """The stream of ``source`` and an iterator over its validated chunks."""
    stream = PanelStream(source, chunk_rows, therapies, columns)
    return stream, _stream_or_whole(stream)
