"""Interrupts that always win: SIGINT and SIGTERM recorded once, honoured at every commit.

The command line installs :func:`handling` around every command. From then on the first
SIGINT (Ctrl-C) or SIGTERM is **recorded** in a process-wide flag by the Python-level
handler before anything else happens, and the handler then raises
:class:`Interrupted` (a :class:`KeyboardInterrupt`) in the main thread to stop the work
quickly. A library may swallow that exception (an exception raised inside a ``__del__``,
a weakref callback or a generator being finalised is printed and dropped by Python), but
it cannot unset the flag.

Every commit step (the rename of an output file, the rename of a model folder, the MLflow
registration and the end of the run as FINISHED) runs inside :func:`commit_guard`:

1. SIGINT and SIGTERM are blocked in the calling thread (``signal.pthread_sigmask``);
   that call runs every Python-level handler whose signal has already arrived, so a signal
   that arrived before this point is in the flag now;
2. the flag is checked: if a signal was received, nothing is committed and
   :class:`Interrupted` is raised;
3. the commit runs. A signal arriving now (it may still reach another thread of the
   process, since a signal mask is per thread) is recorded but does not raise in the
   middle of the commit: it is raised as :class:`Interrupted` right after the commit;
4. the signal mask is restored.

The check in step 2 is the one point where the outcome is decided:

* a signal received before it: the commit never runs (no file, no registration, the run
  marked KILLED), exit status 130;
* a signal received after it: the commit completes; the command still ends with exit
  status 130 (a signal always wins the exit status), and the CLI says which outputs had
  already been written in full (:func:`committed_before_signal`). As the commit is the last
  step of a command, this happens only when the signal arrives in the last instants of
  the run.

Outside :func:`handling` (a notebook, a library caller) nothing is installed:
:func:`interrupted` is False, :func:`commit_guard` only blocks the signals while it
commits, and Ctrl-C behaves as Python's default.

Examples
--------
>>> from cytoresp import interrupts
>>> with interrupts.handling():
...     with interrupts.commit_guard("out.csv"):
...         pass  # os.replace(tmp, "out.csv")
...     interrupts.interrupted()
False
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SIGNALS",
    "Interrupted",
    "commit_guard",
    "committed_before_signal",
    "handling",
    "ignore_sigint",
    "installed",
    "interrupted",
    "raise_if_interrupted",
    "received",
    "settle",
    "signals_blocked",
]

#: The signals that interrupt a command.
SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM was received: the work stops, nothing more is committed.

    A :class:`KeyboardInterrupt`, so that code (and libraries) that clean up on Ctrl-C do
    so for SIGTERM as well.

    Parameters
    ----------
    signum : int
        The signal received.
    """

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = int(signum)

    def __str__(self) -> str:
        return f"interrupted by {signal.Signals(self.signum).name}"


@dataclass
class _State:
    signum: int | None = None  # the first signal received (None: none)
    done: list[str] = field(default_factory=list)  # commits completed, in order
    done_at_signal: int = 0  # how many of them had completed when the signal came
    deferred: bool = False  # the signal arrived during a commit (raised after it)
    settled: bool = False  # the exit status is being decided: record, never raise
    installed: bool = False  # inside handling()


_state = _State()
_lock = threading.RLock()  # the handler and the check of a commit exclude each other
_local = threading.local()  # commit depth of each thread


def _depth() -> int:
    return getattr(_local, "depth", 0)


def _handler(signum: int, frame: Any) -> None:
    """Record the signal (first of all), then interrupt the main thread's work."""
    with _lock:  # waits while another thread is between its check and its commit
        if _state.signum is None:
            _state.signum = int(signum)
            _state.done_at_signal = len(_state.done)
        if _state.settled:
            return
        if _depth() > 0:  # the main thread is committing: finish it, raise right after
            _state.deferred = True
            return
    raise Interrupted(signum)


def received() -> int | None:
    """The first SIGINT / SIGTERM received under :func:`handling`, or None."""
    return _state.signum


def interrupted() -> bool:
    """True once SIGINT or SIGTERM has been received under :func:`handling`."""
    return _state.signum is not None


def raise_if_interrupted() -> None:
    """Raise :class:`Interrupted` if a signal was received (even if its exception was lost).

    Raises
    ------
    Interrupted
    """
    signum = _state.signum
    if signum is not None:
        raise Interrupted(signum)


def committed_before_signal() -> list[str]:
    """What was committed before the signal won (empty if none, or no signal)."""
    if _state.signum is None:
        return []
    return list(_state.done[: _state.done_at_signal])


def _block() -> Any:
    """Block :data:`SIGNALS` in this thread; return the previous mask.

    Both calls run the Python handlers of signals that already arrived: the first one may
    raise :class:`Interrupted` before anything changed; if the second one raises, the
    mask is put back before the exception goes on.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        raise
    return previous


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Hold SIGINT / SIGTERM back while the body runs; handle them right after it.

    For a step that must not be cut between two system calls (creating a temp file and
    remembering its name). A signal that arrived before is raised on entry with the mask
    unchanged; one that arrives during the body is handled when the mask is restored on
    exit, so the caller's cleanup sees a completed step.

    Examples
    --------
    >>> with signals_blocked():
    ...     pass
    """
    previous = _block()
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def commit_guard(what: str) -> Iterator[None]:
    """Run a commit step only if no interrupt was received, and never cut it in half.

    Parameters
    ----------
    what : str
        What is committed (e.g. the destination file), named in the CLI's message when a
        signal arrives after the commit.

    Raises
    ------
    Interrupted
        Before the commit if a signal was received (the body does not run), or right
        after it if a signal arrived while it ran (the body has completed).

    Notes
    -----
    Nested guards (a model folder renamed inside the training job's commit) run their
    body without a new check: the outermost guard decided.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> tmp, dest = os.path.join(folder, ".out.tmp"), os.path.join(folder, "out.csv")
    >>> open(tmp, "w").close()
    >>> with commit_guard(dest):
    ...     os.replace(tmp, dest)
    >>> os.path.exists(dest)
    True
    """
    depth = _depth()
    if depth:
        _local.depth = depth + 1
        try:
            yield
        finally:
            _local.depth = depth
        return
    previous = _block()
    ok = False
    try:
        with _lock:
            _local.depth = 1
            if _state.signum is not None:
                raise Interrupted(_state.signum)
        yield
        ok = True
        with _lock:
            _state.done.append(str(what))
            if _state.deferred:  # arrived during this commit, which completed
                _state.done_at_signal = len(_state.done)
    finally:
        try:
            # pending signals (blocked, aimed at this thread) are handled in this call,
            # while the depth still says "committing": they are recorded, not raised
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        finally:
            _local.depth = 0
    with _lock:
        late = ok and _state.deferred and threading.current_thread() is threading.main_thread()
        if late:
            _state.deferred = False
    if late and _state.signum is not None:
        raise Interrupted(_state.signum)


def installed() -> bool:
    """True inside :func:`handling` (the command line): signals are recorded here."""
    return _state.installed


def ignore_sigint() -> None:
    """Ignore SIGINT in this process: the initializer of worker processes.

    Ctrl-C on a terminal reaches every process of the foreground group. A worker that
    ignores it keeps its task's result or error as it is; the parent, which records the
    signal, stops the pool (joblib kills its workers) and exits 130.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def settle() -> None:
    """From now on signals are only recorded, never raised: the exit status is being decided."""
    _state.settled = True


@contextlib.contextmanager
def handling(restore: bool = True) -> Iterator[None]:
    """Install the SIGINT / SIGTERM handlers and a fresh state; restore both on exit.

    Only in the main thread (Python delivers signals there); elsewhere it does nothing.

    Parameters
    ----------
    restore : bool
        Put the previous handlers back on exit (a caller that goes on running). With
        False (the process is about to exit with the status already decided), both
        signals are ignored from then on, so that a late signal cannot turn that status
        into a death by signal or a traceback while Python shuts down.

    Examples
    --------
    >>> with handling():
    ...     interrupted()
    False
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _state
    saved_state = _state
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    _state = _State(installed=True)
    for sig in SIGNALS:
        signal.signal(sig, _handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            if not restore:
                old = signal.SIG_IGN
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        _state = saved_state
