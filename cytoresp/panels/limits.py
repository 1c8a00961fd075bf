"""Input size guards: refuse a file that would exhaust memory, before parsing it.

A panel file is read whole into memory and parsed column by column, which takes several
times the file's size. These guards look at the file without parsing it (its size, the
length of its longest line, the number of header columns, the declared size of an .xlsx
archive's members, a Parquet file's metadata) and raise :class:`~cytoresp.errors.InputError`
with a clear message when a limit is exceeded.

Every limit can be raised (or switched off with ``0``) through an environment variable:

=============================  ==================  ==========================================
variable                       default             what it bounds
=============================  ==================  ==========================================
``CYTORESP_MAX_INPUT_BYTES``   1 GiB               file size; uncompressed size of an .xlsx
                                                   or a Parquet file
``CYTORESP_MAX_COLUMNS``       20,000              header columns
``CYTORESP_MAX_LINE_BYTES``    4 MiB               the longest line of a text file
``CYTORESP_MAX_CELLS``         200,000,000         rows x columns
=============================  ==================  ==========================================

The reader calls :func:`check_input` before it loads a file; the command line calls it
before any work. Checking the same unchanged file twice costs nothing (the result is
remembered by path, size and modification time).
"""

from __future__ import annotations

import csv
import io
import os
import threading
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from cytoresp.errors import InputError, Problem, UsageError

__all__ = ["ENV", "InputLimits", "check_input", "read_limited"]

#: Environment variable of each limit.
ENV: dict[str, str] = {
    "max_bytes": "CYTORESP_MAX_INPUT_BYTES",
    "max_columns": "CYTORESP_MAX_COLUMNS",
    "max_line_bytes": "CYTORESP_MAX_LINE_BYTES",
    "max_cells": "CYTORESP_MAX_CELLS",
}
_BLOCK = 8 << 20
_checked: dict[tuple[str, int, int, InputLimits], None] = {}
_checked_lock = threading.Lock()


@dataclass(frozen=True)
class InputLimits:
    """Upper bounds on an input file; ``None`` means unbounded.

    Parameters
    ----------
    max_bytes : int or None
        File size in bytes (also the uncompressed size of an .xlsx or Parquet file).
    max_columns : int or None
        Columns of the header.
    max_line_bytes : int or None
        Bytes in the longest line of a text file (``\\n`` or ``\\r`` ends a line).
    max_cells : int or None
        Data rows times header columns.

    Examples
    --------
    >>> InputLimits(max_columns=10).max_columns
    10
    >>> InputLimits.from_env({"CYTORESP_MAX_COLUMNS": "0"}).max_columns is None
    True
    """

    max_bytes: int | None = 1 << 30
    max_columns: int | None = 20_000
    max_line_bytes: int | None = 4 << 20
    max_cells: int | None = 200_000_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> InputLimits:
        """The defaults, overridden by ``CYTORESP_MAX_*`` variables (``0`` = no limit)."""
        environ = os.environ if environ is None else environ
        values: dict[str, int | None] = {}
        for attr, var in ENV.items():
            text = environ.get(var, "").strip().replace("_", "")
            if not text:
                continue
            try:
                number = int(float(text))
            except (ValueError, OverflowError):
                msg = f"{var} must be a whole number (0 = no limit), not {text!r}"
                raise UsageError(msg) from None
            values[attr] = number if number > 0 else None
        return cls(**values)


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} bytes"


def _refuse(name: str, what: str, limit_attr: str) -> InputError:
    return InputError(
        [
            Problem(
                name,
                None,
                None,
                f"{what}; refused before reading so it cannot exhaust memory (raise the "
                f"limit with {ENV[limit_attr]}=N, or 0 for none, if the file is genuine)",
            )
        ]
    )


def check_input(source: Any, limits: InputLimits | None = None, name: str | None = None) -> None:
    """Raise :class:`InputError` if ``source`` exceeds a limit; otherwise return quietly.

    Parameters
    ----------
    source : path, bytes or DataFrame
        A file path (``"-"`` and file objects are left alone: use :func:`read_limited`
        for streams), the bytes of a file already read, or a DataFrame. Anything that is
        not a readable regular file passes: the reader reports it.
    limits : InputLimits, optional
        Default :meth:`InputLimits.from_env`.
    name : str, optional
        The name used in messages (default: the path).

    Examples
    --------
    >>> check_input(b"sample_id,IFNG\\nP1,3.2\\n", name="a.csv")
    >>> check_input(b"sample_id,IFNG,IL10\\n", InputLimits(max_columns=2), name="a.csv")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cytoresp.errors.InputError: 1 problem in the input:
      a.csv: the header has 3 columns, more than the limit of 2; ...
    """
    limits = InputLimits.from_env() if limits is None else limits
    if isinstance(source, bytes | bytearray | memoryview):
        _check_bytes(bytes(source), name or "<input>", limits)
        return
    if hasattr(source, "shape") and hasattr(source, "columns"):
        n_rows, n_cols = source.shape
        _check_shape(name or "<DataFrame>", int(n_rows), int(n_cols), limits)
        return
    if not isinstance(source, str | os.PathLike) or os.fspath(source) == "-":
        return
    path = Path(source)
    label = name or os.fspath(source)
    try:
        st = path.stat()
    except OSError:
        return
    if not path.is_file():
        return
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, limits)
    with _checked_lock:
        if key in _checked:
            return
    if limits.max_bytes is not None and st.st_size > limits.max_bytes:
        raise _refuse(
            label,
            f"the file is {_size(st.st_size)}, larger than the limit of {_size(limits.max_bytes)}",
            "max_bytes",
        )
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            if head == b"PK\x03\x04":
                _check_zip(path, label, limits)
            elif head == b"PAR1":
                _check_parquet(path, label, limits)
            else:
                fh.seek(0)
                _scan_text(fh, st.st_size, label, limits)
    except OSError:
        return
    with _checked_lock:
        if len(_checked) > 1000:
            _checked.clear()
        _checked[key] = None


def read_limited(stream: IO[bytes], name: str, limits: InputLimits | None = None) -> bytes:
    """Read a binary stream (such as stdin) but never more than the size limit, then check it.

    Examples
    --------
    >>> import io
    >>> read_limited(io.BytesIO(b"sample_id,IFNG\\nP1,1\\n"), "<stdin>")
    b'sample_id,IFNG\\nP1,1\\n'
    """
    limits = InputLimits.from_env() if limits is None else limits
    if limits.max_bytes is None:
        data = stream.read()
    else:
        data = stream.read(limits.max_bytes + 1)
        if len(data) > limits.max_bytes:
            raise _refuse(
                name,
                f"the input is larger than the limit of {_size(limits.max_bytes)}",
                "max_bytes",
            )
    if isinstance(data, str):
        data = data.encode("utf-8")
    check_input(data, limits, name=name)
    return data


def _check_shape(name: str, n_rows: int, n_cols: int, limits: InputLimits) -> None:
    if limits.max_columns is not None and n_cols > limits.max_columns:
        raise _refuse(
            name,
            f"the header has {n_cols:,} columns, more than the limit of {limits.max_columns:,}",
            "max_columns",
        )
    if limits.max_cells is not None and n_rows * max(n_cols, 1) > limits.max_cells:
        raise _refuse(
            name,
            f"{n_rows:,} rows x {n_cols:,} columns is more than the limit of "
            f"{limits.max_cells:,} cells",
            "max_cells",
        )


def _count_columns(line: bytes) -> int:
    text = line.decode("utf-8", errors="replace").lstrip("\ufeff")
    counts = {d: text.count(d) for d in (",", ";", "\t")}
    delim = max(counts, key=lambda d: counts[d])
    if not counts[delim]:
        return 1
    try:
        return len(next(csv.reader([text], delimiter=delim)))
    except (csv.Error, StopIteration):
        return counts[delim] + 1


def _check_bytes(data: bytes, name: str, limits: InputLimits) -> None:
    if limits.max_bytes is not None and len(data) > limits.max_bytes:
        raise _refuse(
            name,
            f"the input is {_size(len(data))}, larger than the limit of {_size(limits.max_bytes)}",
            "max_bytes",
        )
    if data.startswith((b"PK\x03\x04", b"PAR1")):
        if data.startswith(b"PK"):
            _check_zip(io.BytesIO(data), name, limits)
        else:
            _check_parquet(io.BytesIO(data), name, limits)
        return
    _scan_text(io.BytesIO(data), len(data), name, limits)


def _scan_text(fh: IO[bytes], size: int, name: str, limits: InputLimits) -> None:
    """Longest line, header columns and line count of a text file, read in blocks."""
    max_line = limits.max_line_bytes
    header: bytes | None = None
    pending = b""  # the start of the file while the header line is being collected
    current = 0  # length of the line in progress
    longest = 0
    n_lf = n_cr = 0
    last = b""
    scan = max_line is not None and size > max_line  # else no line can be too long
    while True:
        block = fh.read(_BLOCK)
        if not block:
            break
        if header is None:
            pending = (pending + block).lstrip(b"\r\n \t\xef\xbb\xbf")
            ends = [i for i in (pending.find(b"\n"), pending.find(b"\r")) if i >= 0]
            if ends:
                header = pending[: min(ends)]
            elif max_line is not None and len(pending) > max_line:
                header = pending[: max_line + 1]
        arr = np.frombuffer(block, dtype=np.uint8)
        is_lf, is_cr = arr == 10, arr == 13
        n_lf += int(is_lf.sum())
        n_cr += int(is_cr.sum())
        last = block[-1:]
        if not scan:
            continue
        breaks = np.flatnonzero(is_lf | is_cr)
        if len(breaks) == 0:
            current += len(block)
        else:
            longest = max(longest, current + int(breaks[0]))
            if len(breaks) > 1:
                longest = max(longest, int(np.diff(breaks).max()) - 1)
            current = len(block) - int(breaks[-1]) - 1
        if max(longest, current) > max_line:
            break
    if header is None:
        header = pending.strip()
    if scan and max(longest, current) > max_line:
        raise _refuse(
            name,
            f"a line is longer than the limit of {_size(max_line)} (is it really a table? "
            "a file with old Mac line ends or one giant quoted cell looks like this)",
            "max_line_bytes",
        )
    n_lines = (n_lf if n_lf else n_cr) + (1 if last not in (b"", b"\n", b"\r") else 0)
    n_cols = _count_columns(header) if header else 0
    _check_shape(name, max(n_lines - 1, 0), n_cols, limits)  # data rows below the header


def _check_zip(source: Any, name: str, limits: InputLimits) -> None:
    try:
        with zipfile.ZipFile(source) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return  # not a readable archive: the reader says so
    total = sum(max(i.file_size, 0) for i in infos)
    if limits.max_bytes is not None and total > limits.max_bytes:
        raise _refuse(
            name,
            f"the archive unpacks to {_size(total)}, more than the limit of "
            f"{_size(limits.max_bytes)} (a 'zip bomb' looks like this)",
            "max_bytes",
        )
    if len(infos) > 10_000:
        raise _refuse(name, f"the archive holds {len(infos):,} files", "max_bytes")


def _check_parquet(source: Any, name: str, limits: InputLimits) -> None:
    try:
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(source).metadata
        n_rows, n_cols = int(meta.num_rows), int(meta.num_columns)
        total = sum(int(meta.row_group(i).total_byte_size) for i in range(meta.num_row_groups))
    except Exception:  # noqa: BLE001 - unreadable metadata: the reader reports it
        return
    if limits.max_bytes is not None and total > limits.max_bytes:
        raise _refuse(
            name,
            f"the table unpacks to {_size(total)}, more than the limit of "
            f"{_size(limits.max_bytes)}",
            "max_bytes",
        )
    _check_shape(name, n_rows, n_cols, limits)
