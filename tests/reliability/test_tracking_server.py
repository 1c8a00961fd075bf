"""A real ``mlflow server`` over HTTP, and a tracking server that cannot be reached."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest


def _start_server(rel, root):
    """``mlflow server`` (sqlite backend, local artifact root) on a free loopback port."""
    for _attempt in range(3):
        port = rel.port()
        log = open(root / "server.log", "w")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                f"sqlite:///{root / 'server.db'}",
                "--artifacts-destination",
                str(root / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            cwd=root,
            # no job runner: MLflow 3 starts eight huey worker processes for its GenAI jobs,
            # which tracking and the registry never use (they doubled the start-up time)
            env=rel.env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers share one process group: stopped together
        )

        def healthy(port=port) -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None and not healthy():
            time.sleep(0.25)
        if proc.poll() is None and healthy():
            return proc, port, log
        _stop_server(proc, log)
    pytest.fail(f"mlflow server did not start:\n{(root / 'server.log').read_text()[-3000:]}")


def _stop_server(proc, log) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the group of the server we started
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    log.close()


@pytest.fixture
def mlflow_server(rel, tmp_path, store_copy):
    root = tmp_path / "server"
    root.mkdir()
    store_copy(root / "server.db")  # an empty store: the server skips the schema migrations
    proc, port, log = _start_server(rel, root)
    yield f"http://127.0.0.1:{port}", root
    _stop_server(proc, log)


@pytest.mark.slow
def test_train_register_and_score_over_http(rel, mlflow_server, tmp_path, cohort_csv, quick_config):
    """Train + register against the server; another process scores models:/NAME@candidate."""
    uri, server_root = mlflow_server
    client_dir = tmp_path / "client"
    client_dir.mkdir()
    env = rel.env(MLFLOW_TRACKING_URI=uri)
    train = rel.run(
        ["train", "--data", str(cohort_csv), "--config", str(quick_config),
         "--register", "cyto-http", "--out", "standalone"],
        cwd=client_dir, env=env,
    )  # fmt: skip
    assert train.code == 0, train.stderr[-3000:]
    assert "registered cyto-http version 1 (alias @candidate)" in train.stderr
    # everything went over HTTP: no local store, artifacts under the server's root
    assert not (client_dir / "mlflow.db").exists()
    assert not (client_dir / "mlruns").exists()
    assert any((server_root / "artifacts").rglob("MLmodel"))

    scorer_dir = tmp_path / "scorer"  # a different process in a different folder
    scorer_dir.mkdir()
    score = rel.run(
        ["predict", "--model", "models:/cyto-http@candidate", "--input", str(cohort_csv),
         "--output", "remote.csv"],
        cwd=scorer_dir, env=env,
    )  # fmt: skip
    assert score.code == 0, score.stderr[-3000:]
    local = rel.run(
        ["predict", "--model", str(client_dir / "standalone"), "--input", str(cohort_csv),
         "--output", "local.csv"],
        cwd=scorer_dir,
    )  # fmt: skip
    assert local.code == 0, local.stderr[-3000:]
    remote_table = pd.read_csv(scorer_dir / "remote.csv")
    local_table = pd.read_csv(scorer_dir / "local.csv")
    assert len(remote_table) == 200
    pd.testing.assert_frame_equal(remote_table, local_table)
    rel.record(
        "real mlflow server: train + register over HTTP, score models:/NAME@candidate",
        "exit 0; same probabilities as the standalone model",
        train_s=round(train.seconds, 1),
        predict_s=round(score.seconds, 1),
    )


@pytest.fixture
def silent_port():
    """A port that accepts connections but never answers (a hung server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


@pytest.mark.slow
def test_unreachable_server_fails_fast_without_output(
    rel, tmp_path, cohort_csv, quick_config, silent_port
):
    """train and predict, against a closed port and a silent one: exit 1, no hang.

    The preflight check waits at most 2 x 5 s; MLflow's own defaults (7 retries, 120 s
    timeout) would hang for many minutes. The bound below only tells those apart: it is
    generous because start-up (imports) on a loaded 2-core machine alone took 20 s.
    """
    cases = {
        "refused": f"http://127.0.0.1:{rel.port()}",
        "silent": f"http://127.0.0.1:{silent_port}",
    }
    for kind, uri in cases.items():  # train and predict side by side, one kind at a time
        procs = {}
        for command in ("train", "predict"):
            work = tmp_path / f"{kind}-{command}"
            work.mkdir()
            args = (
                ["train", "--data", str(cohort_csv), "--config", str(quick_config),
                 "--register", "never", "--out", "model_out"]
                if command == "train"
                else ["predict", "--model", "models:/never@candidate", "--input",
                      str(cohort_csv), "--output", "out.csv"]
            )  # fmt: skip
            env = rel.env(MLFLOW_TRACKING_URI=uri)
            procs[command] = (rel.start(args, work, env=env), work)
        results = rel.finish_all([proc for proc, _ in procs.values()], timeout=180)
        for (command, (_, work)), result in zip(procs.items(), results, strict=True):
            rel.fail(result, 1, f"cannot reach the MLflow tracking store {uri}")
            assert result.seconds < 90, (kind, command, result.seconds)
            left = sorted(p.name for p in work.iterdir() if p.suffix not in (".stdout", ".stderr"))
            assert left == [], (kind, command, left)  # no output, no model, no local store
            rel.record(
                f"unreachable tracking server ({kind}), {command}",
                "exit 1, message names the URI, no output",
                seconds=round(result.seconds, 1),
            )


def test_switching_stores_in_one_process(tmp_path, monkeypatch, store_copy):
    """An experiment set on one store does not follow MLflow onto the next one."""
    import mlflow

    from cytoresp.train.tracking import configure_tracking

    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    first = configure_tracking(store_copy(tmp_path / "a.db"))
    mlflow.set_experiment("only-in-a")  # experiment id 1 exists in a.db only
    second = configure_tracking(store_copy(tmp_path / "b.db"))
    assert first != second
    with mlflow.start_run() as run:  # MLflow alone: "No Experiment with id=1 exists"
        pass
    assert mlflow.get_run(run.info.run_id).info.experiment_id == "0"
    assert "MLFLOW_EXPERIMENT_ID" not in os.environ
