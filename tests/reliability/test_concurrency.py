"""Concurrent jobs: four trainings on one new sqlite store, two predictions from one model."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from cytoresp.errors import TrackingError
from cytoresp.train.locking import (
    is_locked_error,
    lock_path,
    retry_if_locked,
    sqlite_path,
    store_lock,
)


@pytest.mark.slow
def test_four_trainings_on_one_new_sqlite_store(rel, tmp_path, cohort_csv, quick_config):
    """All four succeed and register four distinct versions (no "database is locked")."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert not (tmp_path / "mlflow.db").exists()  # the hardest case: the store is created
    procs = [
        rel.start(
            [
                "train",
                "--data",
                str(cohort_csv),
                "--config",
                str(quick_config),
                "--register",
                "shared",
                "--experiment",
                "concurrent",
                "--tracking-uri",
                uri,
            ],
            tmp_path,
            tag=f"train{i}",
        )  # fmt: skip
        for i in range(4)
    ]
    start = time.perf_counter()
    results = rel.finish_all(procs, timeout=400)
    wall = time.perf_counter() - start
    for r in results:
        assert r.code == 0, r.stderr[-3000:]
        assert "locked" not in r.stderr.lower()
    said = sorted(
        int(line.split(" version ")[1].split()[0])
        for r in results
        for line in r.stderr.splitlines()
        if "registered shared version" in line
    )
    assert said == [1, 2, 3, 4]

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = client.search_model_versions("name='shared'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3, 4]
    assert len({v.run_id for v in versions}) == 4
    exp = client.get_experiment_by_name("concurrent")
    parents = client.search_runs([exp.experiment_id], filter_string="tags.`cytoresp.job` = 'train'")
    assert sorted(r.info.status for r in parents) == ["FINISHED"] * 4
    rel.record(
        "4 concurrent `train` on one new sqlite store",
        "4 x exit 0, versions 1-4, 4 runs FINISHED",
        wall_s=round(wall, 1),
    )


@pytest.mark.slow
def test_two_predictions_from_one_model_do_not_interfere(rel, tmp_path, small_model, big_csv):
    procs = [
        rel.start(
            [
                "predict",
                "--model",
                str(small_model),
                "--input",
                str(big_csv),
                "--output",
                f"out{i}.csv",
            ],
            tmp_path,
            tag=f"predict{i}",
        )  # fmt: skip
        for i in range(2)
    ]
    results = rel.finish_all(procs, timeout=300)
    for r in results:
        assert r.code == 0, r.stderr[-3000:]
    a = pd.read_csv(tmp_path / "out0.csv")
    b = pd.read_csv(tmp_path / "out1.csv")
    assert len(a) == 50_000
    pd.testing.assert_frame_equal(a, b)
    assert not list(tmp_path.glob(".out*"))  # no temp files left
    rel.record(
        "2 concurrent `predict` (50k rows each), same model, different outputs",
        "2 x exit 0, identical complete outputs",
        wall_s=round(max(r.seconds for r in results), 1),
    )


# -- the lock and the retry, in isolation ------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:////data/x/mlflow.db", "/data/x/mlflow.db"),
        ("sqlite:////data/x/mlflow.db?timeout=20", "/data/x/mlflow.db"),
        ("sqlite:////data/my%20db.db", "/data/my db.db"),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("http://127.0.0.1:5000", None),
        ("postgresql://u@h/db", None),
    ],
)
def test_sqlite_path(uri, expected):
    got = sqlite_path(uri)
    assert (None if got is None else str(got)) == expected


def test_relative_sqlite_path_resolves_against_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sqlite_path("sqlite:///mlflow.db") == tmp_path / "mlflow.db"
    assert lock_path("sqlite:///mlflow.db") == tmp_path / "mlflow.db.lock"


def test_lock_is_a_no_op_for_a_server():
    with store_lock("http://127.0.0.1:1") as held:
        assert held is None


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from cytoresp.train.locking import store_lock
    with store_lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(120)
    """
)


def _hold_lock_in_child(uri: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, uri], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_lock_excludes_other_processes_and_times_out(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    holder = _hold_lock_in_child(uri)
    try:
        start = time.monotonic()
        with pytest.raises(TrackingError, match=r"waited 1 s for the lock .*another cytoresp job"):
            with store_lock(uri, timeout=1.0):
                pass
        assert 0.9 < time.monotonic() - start < 10
    finally:
        holder.kill()
        holder.wait()


def test_lock_of_a_killed_process_is_released(tmp_path):
    """SIGKILL while holding the lock: the kernel releases it, nobody waits forever."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    holder = _hold_lock_in_child(uri)
    holder.kill()
    holder.wait()
    with store_lock(uri, timeout=5.0) as held:
        assert held == tmp_path / "mlflow.db.lock"


def test_lock_is_reentrant_within_a_process(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with store_lock(uri, timeout=1.0), store_lock(uri, timeout=1.0):
        pass
    with store_lock(uri, timeout=1.0):  # released after the outer block
        pass


def test_retry_if_locked_retries_only_lock_errors():
    calls = []

    def locked_twice():
        calls.append(1)
        if len(calls) <= 2:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "done"

    assert retry_if_locked(locked_twice, first_delay=0.001) == "done"
    assert len(calls) == 3

    def broken():
        calls.append(1)
        raise ValueError("no such table: runs")

    calls.clear()
    with pytest.raises(ValueError, match="no such table"):
        retry_if_locked(broken, first_delay=0.001)
    assert len(calls) == 1


def test_retry_if_locked_gives_up():
    def always_locked():
        raise RuntimeError("database is locked")

    with pytest.raises(RuntimeError, match="database is locked"):
        retry_if_locked(always_locked, attempts=3, first_delay=0.001)


def test_is_locked_error_follows_the_cause():
    try:
        try:
            raise RuntimeError("database is locked")
        except RuntimeError as inner:
            raise ValueError("MLflow said something") from inner
    except ValueError as outer:
        assert is_locked_error(outer)
    assert not is_locked_error(ValueError("other"))
