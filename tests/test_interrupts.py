"""cytoresp.interrupts: the flag nothing can swallow, and the commit guard."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import threading
import time

import pytest

from cytoresp import interrupts
from cytoresp.cli import main
from cytoresp.interrupts import Interrupted, commit_guard, handling


def _signal_self(sig: int = signal.SIGINT) -> None:
    """Send ``sig`` to this process and give its Python handler the chance to run.

    The kernel hands a process-directed signal to one of the process's threads that do not
    block it; on a loaded machine that thread may not run at once, and until it does the
    signal stays pending and no Python handler runs. So when this thread does not block
    it, wait (at most 5 s) until the signal has been taken, then give the handler its
    bytecode boundaries. (Blocked here, as inside a commit guard, it may rightly stay
    pending until the guard ends.)
    """
    os.kill(os.getpid(), sig)
    if sig not in signal.pthread_sigmask(signal.SIG_BLOCK, []):
        deadline = time.monotonic() + 5
        while sig in signal.sigpending() and time.monotonic() < deadline:
            time.sleep(0.001)
    for _ in range(1000):  # bytecode boundaries: the handler runs at one of them
        time.sleep(0)


@contextlib.contextmanager
def _another_thread():
    """A thread started now (so it does not block signals); yields "signal it"."""
    ready, done = threading.Event(), threading.Event()

    def target() -> None:
        ready.set()
        done.wait(10)

    thread = threading.Thread(target=target)
    thread.start()
    ready.wait(5)

    def deliver(sig: int = signal.SIGINT) -> None:
        signal.pthread_kill(thread.ident, sig)  # the kernel may pick any such thread
        for _ in range(1000):
            time.sleep(0)

    try:
        yield deliver
    finally:
        done.set()
        thread.join()


@contextlib.contextmanager
def _this_thread():
    yield _signal_self


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_is_recorded_and_interrupts(sig):
    with handling():
        assert not interrupts.interrupted()
        with pytest.raises(Interrupted) as caught:
            _signal_self(sig)
        assert isinstance(caught.value, KeyboardInterrupt)
        assert caught.value.signum == sig
        assert interrupts.received() == sig
        with pytest.raises(Interrupted):
            interrupts.raise_if_interrupted()


def test_the_flag_survives_a_swallowed_keyboard_interrupt(monkeypatch):
    """The failure of issue #12: Python drops an exception raised inside ``__del__``."""
    unraisable = []
    monkeypatch.setattr("sys.unraisablehook", unraisable.append)

    class Finalised:
        def __del__(self):
            _signal_self()  # the handler runs here; its exception cannot leave __del__

    with handling():
        Finalised()  # collected at once: the KeyboardInterrupt is printed and dropped
        assert [type(u.exc_value) for u in unraisable] == [Interrupted]
        assert interrupts.interrupted()
        ran = []
        with pytest.raises(Interrupted), commit_guard("out.csv"):
            ran.append(True)
        assert ran == []  # the commit did not run


def test_commit_guard_commits_without_a_signal(tmp_path):
    tmp, dest = tmp_path / ".out.tmp", tmp_path / "out.csv"
    tmp.write_text("x")
    with handling():
        with commit_guard(str(dest)):
            os.replace(tmp, dest)
        assert not interrupts.interrupted()
        assert interrupts.committed_before_signal() == []
    assert dest.read_text() == "x"


def test_commit_guard_refuses_after_a_signal(tmp_path):
    from cytoresp.panels.write import atomic_output

    dest = tmp_path / "out.csv"
    with handling():
        with contextlib.suppress(Interrupted):
            _signal_self(signal.SIGTERM)
        with pytest.raises(Interrupted), atomic_output(dest) as fh:
            fh.write("complete\n")  # the body ran; the rename is refused
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no file, no temp file


@pytest.mark.parametrize("sender", [_this_thread, _another_thread])
def test_signal_during_the_commit_is_honoured_after_it(tmp_path, sender):
    """Blocked in this thread or delivered to another one: the commit completes, then
    Interrupted is raised, and the commit is reported as done before the signal."""
    tmp, dest = tmp_path / ".out.tmp", tmp_path / "out.csv"
    tmp.write_text("complete\n")
    with handling(), sender() as deliver:
        after = []
        with pytest.raises(Interrupted):
            with commit_guard("out.csv"):
                deliver()
                after.append("still committing")  # the signal did not cut the commit
                os.replace(tmp, dest)
        assert after == ["still committing"]
        assert interrupts.received() == signal.SIGINT
        assert interrupts.committed_before_signal() == ["out.csv"]
        with pytest.raises(Interrupted), commit_guard("another"):  # nothing more after it
            pytest.fail("a second commit ran after the signal")
    assert dest.read_text() == "complete\n"
    assert not tmp.exists()


def test_nested_guards_decide_once():
    with handling():
        with pytest.raises(Interrupted), commit_guard("outer"):
            _signal_self()  # recorded, deferred
            with commit_guard("inner"):  # no second check inside the outer commit
                inner = True
        assert inner
        assert interrupts.committed_before_signal() == ["outer"]


def test_the_signal_mask_and_handlers_are_restored():
    before = {s: signal.getsignal(s) for s in interrupts.SIGNALS}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    with handling():
        with contextlib.suppress(Interrupted), commit_guard("x"):
            _signal_self()
        assert signal.pthread_sigmask(signal.SIG_BLOCK, ()) == mask
    assert {s: signal.getsignal(s) for s in interrupts.SIGNALS} == before
    assert not interrupts.interrupted()  # the state of handling() is gone with it


def test_without_handling_nothing_is_recorded(tmp_path):
    # Python's own SIGINT handler, whatever the process started with (restored after the
    # test by tests/conftest.py): an xdist worker may start with SIGINT ignored (found by
    # recording the handlers around every test), which made this test fail in `make test`
    # only
    signal.signal(signal.SIGINT, signal.default_int_handler)
    assert not interrupts.installed()
    with commit_guard("x"):
        pass
    with pytest.raises(KeyboardInterrupt) as caught:  # Python's own handler
        _signal_self()
    assert not isinstance(caught.value, Interrupted)
    assert not interrupts.interrupted()


# -- through the command line --------------------------------------------------------


def _main(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    return code, err.getvalue()


def test_cli_swallowed_interrupt_still_exits_130_without_output(tmp_path, monkeypatch):
    """A library swallows the KeyboardInterrupt: the command goes on, but writes nothing."""
    import cytoresp.datasets

    real = cytoresp.datasets.simulate_longitudinal  # what `cytoresp simulate` calls

    def swallowing(*args, **kwargs):
        with contextlib.suppress(KeyboardInterrupt):
            _signal_self()
        return real(*args, **kwargs)

    monkeypatch.setattr(cytoresp.datasets, "simulate_longitudinal", swallowing)
    code, err = _main(["simulate", "--n", "20", "--out", str(tmp_path / "cohort.csv")])
    assert code == 130, err
    assert err.strip() == "interrupted"
    assert list(tmp_path.iterdir()) == []


def test_cli_signal_after_the_rename_exits_130_and_says_the_file_is_complete(
    tmp_path, monkeypatch
):
    """The documented late case: the rename had happened; exit 130, the file is whole."""
    real = os.replace

    def replace_then_signal(src, dst):
        real(src, dst)
        os.kill(os.getpid(), signal.SIGINT)  # blocked here: handled when the guard ends

    monkeypatch.setattr(os, "replace", replace_then_signal)
    dest = tmp_path / "cohort.csv"
    code, err = _main(["simulate", "--n", "20", "--out", str(dest)])
    monkeypatch.undo()
    assert code == 130, err
    assert f"interrupted (after the last step had completed: {dest} written in full)" in err
    assert len(dest.read_text().splitlines()) == 21  # header + 20 patients
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort.csv"]


def test_signals_blocked_never_leaves_the_signals_blocked(monkeypatch):
    """A handler that raises inside the blocking call itself (CPython runs pending handlers
    there, after the mask changed): the mask is put back before the exception goes on."""
    real = signal.pthread_sigmask
    before = real(signal.SIG_BLOCK, ())

    def raising_after_blocking(how, mask):
        out = real(how, mask)
        if how == signal.SIG_BLOCK and set(mask) == set(interrupts.SIGNALS):
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(interrupts.signal, "pthread_sigmask", raising_after_blocking)
    with pytest.raises(KeyboardInterrupt), interrupts.signals_blocked():
        pass
    monkeypatch.undo()
    assert real(signal.SIG_BLOCK, ()) == before
