"""Output files written atomically: a temp file beside the destination, then a rename.

A crash, a kill or Ctrl-C never leaves a partial file at the destination: either the
previous file (if any) stays, or the complete new one replaces it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pandas as pd

from cytoresp.errors import CytorespError, UsageError
from cytoresp.interrupts import commit_guard

#: Text that a spreadsheet would run as a formula when it starts a cell.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

#: Errors of the output device itself (as opposed to a bad path): exit code 1.
_DEVICE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


class OutputError(CytorespError):
    """The output could not be written (disk full, quota, I/O error): exit code 1."""


def _output_error(path: Path, exc: OSError) -> CytorespError:
    """A clear error for an OSError met while writing ``path``."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = "no space left on the device (disk full or quota exceeded)"
    elif exc.errno == errno.EFBIG:
        reason = "the file would exceed the largest file size allowed here"
    message = (
        f"cannot write {path}: {reason}; nothing was written to {path.name} "
        "(an existing file there is unchanged)"
    )
    if exc.errno in _DEVICE_ERRNOS:
        return OutputError(message)
    return UsageError(message)


def check_writable(dest: str | os.PathLike) -> Path | None:
    """Fail before any work if ``dest`` cannot be written (None for stdout)."""
    if os.fspath(dest) == "-":
        return None
    path = Path(dest)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"output {path} is a directory; give a file name")
    if not parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"cannot write {path}: folder {parent} is not writable")
    _probe(path, parent)
    return path


def check_writable_dir(dest: str | os.PathLike) -> Path:
    """Fail before any work if a directory (a model, ``train --out``) cannot be made at ``dest``."""
    path = Path(dest)
    if path.exists() and not path.is_dir():
        raise UsageError(f"cannot write the model to {path}: it exists and is not a folder")
    base = path.parent if str(path.parent) else Path(".")
    while not base.exists() and base != base.parent:  # the nearest folder that exists
        base = base.parent
    if not base.is_dir():
        raise UsageError(f"cannot write the model to {path}: {base} is not a folder")
    if not os.access(base, os.W_OK):
        raise UsageError(f"cannot write the model to {path}: folder {base} is not writable")
    _probe(path, base)
    return path


def _probe(path: Path, parent: Path) -> None:
    """Write and remove a small file beside ``path``: a read-only or full disk fails now."""
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=parent)
    except OSError as exc:
        raise _output_error(path, exc) from None
    try:
        os.write(fd, b"\0" * 4096)
        os.fsync(fd)
    except OSError as exc:
        raise _output_error(path, exc) from None
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(probe)


class _TextSink:
    """Bytes in, UTF-8 text out: a binary face for a standard output that has none."""

    def __init__(self, stream: IO[str]):
        self.stream = stream

    def write(self, data: bytes | memoryview) -> int:
        self.stream.write(bytes(data).decode("utf-8"))
        return len(data)

    def flush(self) -> None:
        self.stream.flush()


@contextlib.contextmanager
def atomic_output(dest: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temp file next to ``dest`` and move it into place only on success.

    ``dest == "-"`` yields standard output (text or binary by ``mode``).
    """
    path = check_writable(dest)
    if path is None:
        if "b" not in mode:
            yield sys.stdout
        elif hasattr(sys.stdout, "buffer"):
            yield sys.stdout.buffer
        else:  # a text-only standard output (a notebook, a redirected sys.stdout)
            yield _TextSink(sys.stdout)
        return
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    except OSError as exc:
        raise _output_error(path, exc) from None
    try:
        with os.fdopen(
            fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})
        ) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        with commit_guard(str(path)):  # never after SIGINT / SIGTERM (cytoresp.interrupts)
            os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno in _DEVICE_ERRNOS:
            raise _output_error(path, exc) from None
        raise


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells that a spreadsheet would evaluate (``=cmd|...``) with ``'``.

    Only text (object/string) columns are touched; numbers stay numbers.
    """
    out = frame
    for col in frame.columns:
        series = frame[col]
        if series.dtype == object or pd.api.types.is_string_dtype(series):
            text = series.astype("string")
            risky = text.str.startswith(FORMULA_PREFIXES).fillna(False).to_numpy(dtype=bool)
            if risky.any():
                if out is frame:
                    out = frame.copy()
                out[col] = series.where(~risky, "'" + text)
    return out


def output_format(dest: str | os.PathLike) -> str:
    """``csv`` or ``parquet`` from the file name (stdout is CSV)."""
    name = os.fspath(dest).lower()
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    if name.endswith((".csv", ".txt", ".tsv")) or name == "-" or "." not in Path(name).name:
        return "csv"
    raise UsageError(f"unsupported output format for {dest}: use .csv or .parquet")


def write_table(frame: pd.DataFrame, dest: str | os.PathLike) -> None:
    """Write ``frame`` atomically as CSV or Parquet, formulas neutralised in CSV."""
    fmt = output_format(dest)
    if fmt == "parquet":
        with atomic_output(dest, "wb") as fh:
            frame.to_parquet(fh, index=False)
    else:
        with atomic_output(dest) as fh:
            neutralise_formulas(frame).to_csv(fh, index=False, lineterminator="\n")
