"""Every output file of cytoresp: atomic writes, tables, canonical panels.

:func:`atomic_output` writes a temp file beside the destination and renames it into place
(:func:`_commit`, the one commit step): a crash, a kill or an error never leaves a partial
file at the destination; either the previous file (if any) stays, or the complete new one
replaces it. Files get the mode a plain ``open()`` would give (the umask applies), folders
made with :func:`atomic_dir` too.

On top of it: :func:`write_table` (predictions, explanations: CSV with formulas
neutralised, or Parquet), :func:`write_panel` / :func:`panel_to_frame` (the canonical wide
panel that :func:`~cytoresp.panels.read.read_panel` reads back exactly).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cytoresp.errors import CytorespError, UsageError
from cytoresp.interrupts import commit_guard, signals_blocked
from cytoresp.panels.panel import ABOVE, BELOW, CLINICAL_COVARIATES, Panel
from cytoresp.panels.values import as_text, format_numbers_arrow

__all__ = [
    "FORMULA_PREFIXES",
    "OutputError",
    "atomic_output",
    "check_writable",
    "check_writable_dir",
    "atomic_dir",
    "neutralise_formulas",
    "output_format",
    "panel_csv_bytes",
    "panel_to_frame",
    "remove_uncommitted",
    "write_panel",
    "write_table",
]

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


def _umask() -> int:
    """The process umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but brief)
    os.umask(mask)
    return mask


def _commit(tmp: Path, dest: Path) -> None:
    """Move a finished temp file or folder onto its destination: the one commit step.

    Every output of cytoresp (files through :func:`atomic_output`, model folders through
    :func:`atomic_dir`) appears at its destination here and nowhere else. An existing
    folder at ``dest`` is moved aside, replaced, then removed.
    """
    old = None
    with commit_guard(str(dest)):  # never after SIGINT / SIGTERM (cytoresp.interrupts)
        if tmp.is_dir() and dest.is_dir():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            os.replace(dest, old)
        os.replace(tmp, dest)
        if old is not None:  # inside the guard: an interrupt never leaves it behind
            shutil.rmtree(old, ignore_errors=True)


#: Temp files and folders of :func:`atomic_output` / :func:`atomic_dir` not yet committed
#: or removed (path -> is a folder). A KeyboardInterrupt can land inside ``contextlib``
#: between a context's ``__enter__`` (the temp file exists) and the registration of its
#: ``__exit__``: that context is never exited and its generator waits, suspended, for a
#: garbage collection that may never come before the process ends. Whatever is left here
#: is removed by :func:`remove_uncommitted`, at exit and by the CLI after an interrupt.
_UNCOMMITTED: dict[str, bool] = {}


@atexit.register
def remove_uncommitted() -> list[str]:
    """Remove the temp files and folders of writes that never finished; their paths.

    Examples
    --------
    >>> remove_uncommitted()   # nothing pending
    []
    """
    removed = []
    for path, is_dir in list(_UNCOMMITTED.items()):
        if is_dir:
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)
        _UNCOMMITTED.pop(path, None)
        removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_dir(dest: str | os.PathLike) -> Iterator[Path]:
    """Fill a new folder beside ``dest``; put it at ``dest`` only on success.

    The temp folder is created with SIGINT / SIGTERM blocked and inside the cleanup's
    ``try``, so an interrupt at any moment leaves neither a temp folder nor a partial
    ``dest``. An existing folder at ``dest`` is replaced (in the one commit step). The
    folder's mode honours the umask (0755 under umask 022), as ``mkdir`` would, not the
    0700 of :func:`tempfile.mkdtemp`.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> dest = pathlib.Path(tempfile.mkdtemp()) / "model"
    >>> with atomic_dir(dest) as tmp:
    ...     _ = (tmp / "spec.json").write_text("{}")
    >>> sorted(p.name for p in dest.iterdir())
    ['spec.json']
    """
    dest = Path(dest)
    tmp: Path | None = None
    try:
        with signals_blocked():
            try:
                tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
                _UNCOMMITTED[str(tmp)] = True
                os.chmod(tmp, 0o777 & ~_umask())
            except OSError as exc:
                raise _output_error(dest, exc) from None
        yield tmp
        _UNCOMMITTED.pop(str(tmp), None)  # before the rename: never removed once committed
        _commit(tmp, dest)
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if tmp is not None:
            _UNCOMMITTED.pop(str(tmp), None)


@contextlib.contextmanager
def atomic_output(dest: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temp file next to ``dest`` and move it into place only on success.

    ``dest == "-"`` yields standard output (text or binary by ``mode``). The file's mode
    honours the umask (0644 under umask 022).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_output(out) as fh:
    ...     _ = fh.write("done\\n")
    >>> out.read_text()
    'done\\n'
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
    fd: int | None = None
    tmp: str | None = None
    try:
        # A signal that lands while the temp file is being created is handled right
        # after mkstemp returns, inside this try: the file is always removed.
        with signals_blocked():
            try:
                fd, tmp = tempfile.mkstemp(
                    prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or "."
                )
                _UNCOMMITTED[tmp] = False
            except OSError as exc:
                raise _output_error(path, exc) from None
        with os.fdopen(
            fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})
        ) as fh:
            fd = None  # closed with fh from here on
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() honours umask
        _UNCOMMITTED.pop(tmp, None)  # before the rename: never removed once committed
        _commit(Path(tmp), path)
    except BaseException as exc:
        if fd is not None:
            os.close(fd)
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno in _DEVICE_ERRNOS:
            raise _output_error(path, exc) from None
        raise
    finally:
        if tmp is not None:
            _UNCOMMITTED.pop(tmp, None)


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


# ---------------------------------------------------------------------------------------
# canonical panels


def _panel_columns(panel: Panel) -> tuple[list[str], list[pa.Array]]:
    index = panel.values.index
    names: list[str] = ["sample_id"]
    cols: list[pa.Array] = [as_text(pd.Series(np.asarray(index, dtype=object)).astype("str"))]
    if panel.patient_id is not None and panel.month is not None:
        names += ["patient_id", "month"]
        cols.append(as_text(panel.patient_id.reset_index(drop=True)))
        cols.append(format_numbers_arrow(panel.month.to_numpy(dtype=np.float64)))
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

    Columns: ``sample_id``, ``patient_id`` and ``month`` (a panel with visits), then
    ``plate``, ``therapy``, ``responder`` and the clinical
    covariates where the panel has them, then the analytes by canonical id. Censored cells
    are written ``<limit`` / ``>limit``; numbers in their shortest exact form (so that
    :func:`read_panel` gives back exactly the same floats); missing cells are empty; sex as
    ``F``/``M``.

    Examples
    --------
    >>> import io
    >>> from cytoresp.panels import read_panel
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
        ``"-"`` writes to stdout. A path is written atomically (:func:`atomic_output`): a
        temporary file in the same directory is renamed over it, so a failure never leaves
        a partial file.

    Examples
    --------
    >>> import io
    >>> from cytoresp.panels import read_panel
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
    with atomic_output(dest, "wb") as fh:
        fh.write(data)
    if str(dest) == "-":
        fh.flush()
