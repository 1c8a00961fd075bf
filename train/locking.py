"""Several cytoresp jobs on one SQLite tracking store, without "database is locked".

SQLite allows one writer at a time, and MLflow (3.x) does not guard everything a
concurrent writer can trip over: two processes opening a new store both create its
tables and migrate it (one of them crashes), two jobs creating the same experiment race,
and a transaction that turns from reading into writing gets ``SQLITE_BUSY`` at once,
without waiting (sqlite's deadlock rule), which surfaces as "database is locked".

Two measures, used together by the training job:

- :func:`store_lock`: an exclusive :class:`filelock.FileLock` (``flock`` on POSIX) on a
  lock file next to the database (``mlflow.db.lock``) around every group of MLflow
  writes: opening (creating) the store, creating the experiment and the run, logging the
  results, registering the model, ending the run. Model fitting, the long part, runs
  outside the lock, so jobs train in parallel and only write one at a time. The kernel
  releases the lock when its process dies, even by SIGKILL, so a crashed job never blocks
  the others. The lock is re-entrant within a process and waits at most
  ``CYTORESP_LOCK_TIMEOUT`` seconds (default 600).
- :func:`retry_if_locked`: retries an idempotent call, with exponential backoff and
  jitter, when it fails with "database is locked" (another program, such as
  ``mlflow ui``, can still hold the database).

For a tracking server (``http://...``) or any other database, both are no-ops: the
server serialises its own writes.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote

from filelock import FileLock, Timeout

from cytoresp.errors import TrackingError

__all__ = ["is_locked_error", "lock_path", "retry_if_locked", "sqlite_path", "store_lock"]

T = TypeVar("T")

#: Default for ``CYTORESP_LOCK_TIMEOUT`` (seconds).
DEFAULT_LOCK_TIMEOUT = 600.0

#: Seconds between two attempts to take a lock another process holds.
_POLL_INTERVAL = 0.05

_locks: dict[str, FileLock] = {}  # lock file -> its lock, one per process (re-entrant)
_guard = threading.Lock()


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (absolute), else None.

    Examples
    --------
    >>> str(sqlite_path("sqlite:////data/mlflow.db"))
    '/data/mlflow.db'
    >>> sqlite_path("http://127.0.0.1:5000") is None
    True
    """
    if not uri.startswith("sqlite:"):
        return None
    rest = uri[len("sqlite:") :].split("?", 1)[0]
    if not rest.startswith("///"):
        return None  # sqlite:// (memory) or malformed
    path = unquote(rest[3:])
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path).expanduser().resolve()


def lock_path(uri: str) -> Path | None:
    """The lock file guarding a SQLite store (``<db>.lock``), else None."""
    db = sqlite_path(uri)
    return None if db is None else db.with_name(db.name + ".lock")


def _timeout() -> float:
    text = os.environ.get("CYTORESP_LOCK_TIMEOUT", "")
    try:
        return float(text) if text.strip() else DEFAULT_LOCK_TIMEOUT
    except ValueError:
        return DEFAULT_LOCK_TIMEOUT


@contextlib.contextmanager
def store_lock(uri: str, timeout: float | None = None) -> Iterator[Path | None]:
    """Hold the exclusive lock of a SQLite tracking store (a no-op for other stores).

    Parameters
    ----------
    uri : str
        The tracking URI.
    timeout : float, optional
        Seconds to wait for another job to release the lock (default
        ``CYTORESP_LOCK_TIMEOUT`` or 600).

    Yields
    ------
    Path or None
        The lock file, or None when nothing was locked.

    Raises
    ------
    TrackingError
        If the lock is not free within ``timeout``.

    Examples
    --------
    >>> import tempfile
    >>> uri = f"sqlite:///{tempfile.mkdtemp()}/mlflow.db"
    >>> with store_lock(uri) as held, store_lock(uri):  # re-entrant
    ...     held.name
    'mlflow.db.lock'
    """
    path = lock_path(uri)
    if path is None:
        yield None
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = _process_lock(path)
        limit = _timeout() if timeout is None else timeout
        lock.acquire(timeout=max(limit, 0.0), poll_interval=_POLL_INTERVAL)
    except Timeout:
        raise TrackingError(
            f"waited {limit:.0f} s for the lock on the tracking store {uri} "
            f"({path}): another cytoresp job is still writing to it. Try again, "
            "or raise CYTORESP_LOCK_TIMEOUT."
        ) from None
    except OSError:
        # a read-only folder: sqlite cannot write there either and will say so
        yield None
        return
    try:
        yield path
    finally:
        lock.release()


def _process_lock(path: Path) -> FileLock:
    """The one lock object of ``path`` in this process, shared by its threads.

    Sharing it makes the lock re-entrant within the process (filelock counts nested
    acquisitions); the kernel releases the underlying ``flock`` when the process dies.
    """
    key = str(path)
    with _guard:
        if key not in _locks:
            _locks[key] = FileLock(key, thread_local=False)
        return _locks[key]


def is_locked_error(exc: BaseException) -> bool:
    """True when ``exc`` (or its cause) is SQLite's "database is locked"/"busy"."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = str(exc).lower()
        if "database is locked" in text or "database table is locked" in text:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def retry_if_locked(
    fn: Callable[..., T],
    *args,
    attempts: int = 6,
    first_delay: float = 0.2,
    max_delay: float = 5.0,
    **kwargs,
) -> T:
    """Call ``fn(*args, **kwargs)``; retry with backoff while SQLite says it is locked.

    Only for idempotent calls (reading, creating something that may already exist,
    setting an alias): a call that failed may or may not have been applied.

    Examples
    --------
    >>> calls = []
    >>> def flaky():
    ...     calls.append(1)
    ...     if len(calls) < 3:
    ...         raise RuntimeError("(sqlite3.OperationalError) database is locked")
    ...     return "ok"
    >>> retry_if_locked(flaky, first_delay=0.001)
    'ok'
    >>> len(calls)
    3
    """
    delay = first_delay
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if attempt == attempts - 1 or not is_locked_error(exc):
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")  # pragma: no cover
