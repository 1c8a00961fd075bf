"""Faults: signals during predict and train, a full disk, an unwritable output path."""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys

import pytest

from cytoresp.cli import main


def _temp_files(folder, name):
    return [p for p in folder.iterdir() if p.name.startswith(f".{name}.")]


# -- signals during predict -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "previous"),
    [(signal.SIGKILL, None), (signal.SIGINT, None), (signal.SIGTERM, "previous predictions\n")],
    ids=["SIGKILL", "SIGINT", "SIGTERM-over-an-existing-file"],
)
def test_signal_while_predict_writes(
    rel, tmp_path, small_model, big_csv, cpu_load, sig, previous
):
    """Killed mid-write, on busy cores: no (new) file at the destination.

    SIGINT / SIGTERM: exit 130 exactly, no temp file. The signal is sent as soon as the
    temp file appears, seconds before the rename (the commit), so the one documented
    outcome is "not written" (docs/reliability.md, "Interrupts").
    """
    dest = tmp_path / "pred.csv"
    for _attempt in range(3):  # retried only if the run finished before it could be hit
        if previous is not None:
            dest.write_text(previous)
        proc = rel.start(
            ["predict", "--model", str(small_model), "--input", str(big_csv),
             "--output", str(dest)],
            tmp_path, tag="predict",
        )  # fmt: skip
        writing = rel.wait_for(
            lambda proc=proc: (
                proc.poll() is not None
                or any(p.suffix == ".tmp" for p in _temp_files(tmp_path, dest.name))
            ),
            timeout=240,
            interval=0.002,
        )
        assert writing
        if proc.poll() is None:
            proc.send_signal(sig)
            result = rel.finish(proc, timeout=60)
            break
        rel.finish(proc)
        dest.unlink(missing_ok=True)
    else:
        pytest.fail("predict always finished before the temp file could be seen")
    if previous is None:
        assert not dest.exists()
    else:
        assert dest.read_text() == previous  # the old file is untouched
    if sig == signal.SIGKILL:
        assert result.code == -signal.SIGKILL
        # a hidden .pred.csv.*.tmp may stay behind after SIGKILL: never the destination
    else:
        assert result.code == 130, (result.code, result.stderr[-3000:])
        assert "interrupted" in result.stderr, result.stderr[-3000:]
        assert "written in full" not in result.stderr, result.stderr[-3000:]
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
        assert "Exception ignored" not in result.stderr, result.stderr[-3000:]
        assert _temp_files(tmp_path, dest.name) == []
    rel.record(
        f"{signal.Signals(sig).name} while `predict` writes (50k rows)"
        + (", destination already exists" if previous else ""),
        f"exit {result.code}; destination "
        + ("unchanged" if previous else "absent")
        + ("" if sig == signal.SIGKILL else "; temp file removed"),
    )


# -- signals during train ---------------------------------------------------------------


def _run_statuses(db) -> list[str]:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as c:
            return [row[0] for row in c.execute("SELECT status FROM runs")]
    except sqlite3.Error:
        return []


@pytest.mark.slow
def test_signal_during_train_marks_the_run_killed(
    rel, tmp_path, cohort_csv, small_config, cpu_load, store_copy
):
    """SIGINT and SIGTERM (two jobs side by side, each on its own store, busy cores)."""
    jobs = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        work = tmp_path / signal.Signals(sig).name
        work.mkdir()
        uri = store_copy(work / "mlflow.db")
        proc = rel.start(
            ["train", "--data", str(cohort_csv), "--config", str(small_config),
             "--register", "never", "--out", "model_out", "--tracking-uri", uri],
            work, tag="train",
        )  # fmt: skip
        jobs[sig] = (proc, work, uri)
    for sig, (proc, work, _) in jobs.items():
        stderr = proc._files[3]

        def fitting(work=work, stderr=stderr) -> bool:  # the run exists, the CV has started
            return "RUNNING" in _run_statuses(work / "mlflow.db") and (
                "cross-validation" in stderr.read_text()
            )

        assert rel.wait_for(fitting, timeout=240, interval=0.05), stderr.read_text()
        proc.send_signal(sig)
    from mlflow import MlflowClient

    for sig, (proc, work, uri) in jobs.items():
        result = rel.finish(proc, timeout=120)
        rel.fail(result, 130, "interrupted")
        assert "written in full" not in result.stderr, result.stderr[-3000:]
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
        parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
        assert [r.info.status for r in parents] == ["KILLED"]
        assert "RUNNING" not in {r.info.status for r in runs}
        assert client.search_registered_models() == []
        assert not (work / "model_out").exists()
        rel.record(
            f"{signal.Signals(sig).name} during `train` (while fitting)",
            "exit 130; MLflow run KILLED; nothing registered, no model written",
        )


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_ctrl_c_reaches_the_workers_too(rel, tmp_path, cohort_csv, cpu_load, store_copy):
    """Ctrl-C on a terminal: SIGINT to the whole process group, loky workers included.

    With ``n_jobs=2`` the outer folds run in worker processes. The workers ignore SIGINT
    (only the parent acts): exit 130, no other error, run KILLED, nothing registered, and
    no process of the group is left behind.
    """
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**rel.SMALL_CONFIG, "n_jobs": 2, "n_repeats": 2}))
    uri = store_copy(tmp_path / "mlflow.db")
    stderr = tmp_path / "train.stderr"
    with open(stderr, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cytoresp.cli", "train", "--data", str(cohort_csv),
             "--config", str(config), "--register", "never", "--out", "model_out",
             "--tracking-uri", uri],
            cwd=tmp_path, env=rel.env(), stdout=subprocess.DEVNULL, stderr=err,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )  # fmt: skip
        try:
            workers = []

            def fitting() -> bool:
                # every child started (2 loky workers + the resource tracker) and past its
                # start-up: it ignores SIGINT. A worker still starting up when Ctrl-C
                # arrives dies noisily (docs/reliability.md, "Known limits").
                workers[:] = _children(proc.pid)
                return (
                    "cross-validation" in stderr.read_text()
                    and len(workers) >= 3
                    and all(_ignores_sigint(pid) for pid in workers)
                )

            assert rel.wait_for(fitting, timeout=240, interval=0.05), stderr.read_text()
            os.killpg(proc.pid, signal.SIGINT)
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    text = stderr.read_text()
    assert code == 130, (code, text[-3000:])
    assert "interrupted" in text and "Traceback" not in text, text[-3000:]
    assert "internal error" not in text, text[-3000:]
    assert rel.wait_for(lambda: not _group_alive(proc.pid), timeout=30), "workers left behind"
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.status for r in runs if "mlflow.parentRunId" not in r.data.tags] == [
        "KILLED"
    ]
    assert client.search_registered_models() == []
    assert not (tmp_path / "model_out").exists()
    rel.record(
        "Ctrl-C (SIGINT to the process group) during `train` with 2 worker processes",
        "exit 130; run KILLED; nothing registered; no worker left",
    )


def _ignores_sigint(pid: int) -> bool:
    """Whether process ``pid`` ignores SIGINT (the SigIgn mask of /proc/PID/status)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("SigIgn:"):
                    return bool(int(line.split()[1], 16) >> (signal.SIGINT - 1) & 1)
    except OSError:
        pass
    return False


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


# -- a full disk, a file size limit -----------------------------------------------------


def _can_mount() -> bool:
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


needs_mount = pytest.mark.skipif(
    not _can_mount(), reason="needs unshare + tmpfs mounts (a private mount namespace)"
)


def _on_tiny_disk(rel, disk, size: str, setup: str, args: list[str]) -> tuple[int, str, str]:
    """Run the CLI with ``disk`` a private tmpfs of ``size``; report what is left on it."""
    cli = " ".join(f"'{a}'" for a in [sys.executable, "-m", "cytoresp.cli", *args])
    script = (
        f"mount -t tmpfs -o size={size} tmpfs '{disk}' || exit 99\n"
        f"{setup}\n"
        f"{cli}\n"
        'echo "RC=$?"\n'
        f"echo \"FILES=$(ls -A '{disk}' | tr '\\n' ' ')\"\n"
    )
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script],
        capture_output=True,
        text=True,
        env=rel.env(),
        timeout=300,
    )
    lines = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    assert "RC" in lines, proc.stderr[-3000:]
    return int(lines["RC"]), lines.get("FILES", "").split(), proc.stderr


@needs_mount
@pytest.mark.slow
def test_disk_fills_up_while_writing(rel, tmp_path, small_model, mid_csv):
    """ENOSPC mid-write: exit 1 with a clear message; the previous file is kept, no temp."""
    disk = tmp_path / "disk"
    disk.mkdir()
    code, files, stderr = _on_tiny_disk(
        rel,
        disk,
        "256k",
        f"printf 'previous\\n' > '{disk}/pred.csv'",
        ["predict", "--model", str(small_model), "--input", str(mid_csv),
         "--output", str(disk / "pred.csv")],
    )  # fmt: skip
    assert code == 1, stderr[-3000:]
    assert "no space left on the device" in stderr
    assert "Traceback" not in stderr
    assert files == ["pred.csv"]  # the previous file, and no temp file
    rel.record("disk full while `predict` writes", "exit 1, clear message, previous file kept")


@needs_mount
def test_full_disk_is_reported_before_any_work(rel, tmp_path):
    """The output folder is already full: refused before the model is even looked at."""
    disk = tmp_path / "disk"
    disk.mkdir()
    code, files, stderr = _on_tiny_disk(
        rel,
        disk,
        "64k",
        f"dd if=/dev/zero of='{disk}/filler' bs=4k 2>/dev/null",
        ["predict", "--model", "/nonexistent/model", "--input", "/nonexistent.csv",
         "--output", str(disk / "pred.csv")],
    )  # fmt: skip
    assert code == 1, stderr[-3000:]
    assert "no space left on the device" in stderr
    assert "nonexistent" not in stderr  # the output was checked first
    assert files == ["filler"]
    rel.record("output folder on a full disk", "exit 1 before loading the model")


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG instead


@pytest.mark.slow
def test_file_size_limit_while_writing(rel, tmp_path, small_model, mid_csv):
    """The same path without mounts: a write fails (EFBIG) half-way through the output."""
    proc = subprocess.run(
        [sys.executable, "-m", "cytoresp.cli", "predict", "--model", str(small_model),
         "--input", str(mid_csv), "--output", "pred.csv"],
        cwd=tmp_path, env=rel.env(), capture_output=True, text=True, timeout=300,
        preexec_fn=_limit_file_size,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "largest file size" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# -- unwritable output paths: refused before any work -------------------------------------


def _main(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    return code, err.getvalue()


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("missing/folder/pred.csv", "does not exist"),
        ("a_folder", "is a directory"),
        ("a_file.txt/pred.csv", "does not exist"),
        ("pred.xlsx", "unsupported output format"),
    ],
)
def test_unwritable_output_is_refused_before_any_work(tmp_path, monkeypatch, output, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "a_file.txt").write_text("x")
    code, err = _main(
        ["predict", "--model", "/nonexistent/model", "--input", "/nonexistent.csv",
         "--output", output]
    )  # fmt: skip
    assert code == 2, err
    assert message in err and "nonexistent" not in err, err  # checked before the model
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file.txt", "a_folder"]


@pytest.mark.parametrize(
    ("out", "message"),
    [("a_file.txt", "exists and is not a folder"), ("a_file.txt/model", "is not a folder")],
)
def test_unwritable_model_folder_is_refused_before_training(tmp_path, monkeypatch, out, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file.txt").write_text("x")
    (tmp_path / "data.csv").write_text("sample_id,IFNG\nP1,1\n")
    code, err = _main(["train", "--data", "data.csv", "--out", out])
    assert code == 2, err
    assert message in err
    assert not (tmp_path / "mlflow.db").exists()  # nothing started


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX only")
def test_read_only_output_folder(rel, tmp_path):
    """A read-only folder (chmod, or a read-only mount when running as root)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    args = ["predict", "--model", "/nonexistent/model", "--input", "/nonexistent.csv",
            "--output", str(ro / "pred.csv")]  # fmt: skip
    if os.geteuid() != 0:
        ro.chmod(0o555)
        try:
            code, err = _main(args)
        finally:
            ro.chmod(0o755)
    elif _can_mount():
        cli = " ".join(f"'{a}'" for a in [sys.executable, "-m", "cytoresp.cli", *args])
        proc = subprocess.run(
            ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o ro tmpfs '{ro}' && {cli}"],
            capture_output=True, text=True, env=rel.env(), timeout=120,
        )  # fmt: skip
        code, err = proc.returncode, proc.stderr
    else:
        pytest.skip("root without mount namespaces: cannot make a read-only folder")
    assert code == 2, err
    assert "not writable" in err or "Read-only file system" in err
    assert "nonexistent" not in err
    assert list(ro.iterdir()) == []
