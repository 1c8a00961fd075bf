"""Serving: ``mlflow models serve`` of the registered model answers with probabilities.

A real server process on loopback, started the way docs/scale.md says:
``mlflow models serve -m models:/NAME@ALIAS --env-manager local -p PORT``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

pytestmark = pytest.mark.slow

STARTUP_SECONDS = 180


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, payload: dict) -> tuple[int, dict]:
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture
def served(trained, cohort, mlflow_store, tmp_path):
    """The trained model registered as serve-test@champion and served on loopback."""
    import mlflow

    from cytoresp.models.mlflow_flavour import log_response_model
    from cytoresp.train.tracking import configure_tracking

    model, _ = trained
    configure_tracking(mlflow_store)
    frame = model.model_frame(cohort.panel)
    with mlflow.start_run():
        info = log_response_model(model, frame.head(5), registered_model_name="serve-test")
    mlflow.MlflowClient().set_registered_model_alias(
        "serve-test", "champion", str(info.registered_model_version)
    )

    port = _free_port()
    # MLflow starts the server as `uvicorn ...`: the environment's bin folder must be on PATH
    # (it is, in an activated virtualenv)
    env = {
        **os.environ,
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
        "MLFLOW_TRACKING_URI": mlflow_store,
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            "models:/serve-test@champion",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            "1",
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                log.flush()
                pytest.fail("the server exited:\n" + (tmp_path / "server.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(base + "/ping", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    "the server did not answer /ping in time:\n"
                    + (tmp_path / "server.log").read_text()[-3000:]
                )
            time.sleep(0.5)
        yield base, model, frame
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def test_served_model_answers_probabilities_per_therapy_and_checks_schema(served):
    base, model, frame = served
    rows = frame.iloc[:25]
    payload = {
        "dataframe_split": {
            "columns": list(rows.columns),
            "data": [[None if np.isnan(v) else float(v) for v in row] for row in rows.to_numpy()],
        }
    }
    status, body = _post(base + "/invocations", payload)
    assert status == 200, body
    preds = body["predictions"]
    assert len(preds) == 25
    assert set(preds[0]) == {"p_response_ifnb", "p_response_ga"}
    expected = model.predict_proba_frame(rows)
    for therapy in ("ifnb", "ga"):
        got = np.array([p[f"p_response_{therapy}"] for p in preds])
        np.testing.assert_allclose(got, expected[f"p_response_{therapy}"].to_numpy(), rtol=1e-12)
        assert ((got > 0) & (got < 1)).all()

    # a request that does not match the logged signature is a 400 with MLflow's error body
    status, body = _post(
        base + "/invocations", {"dataframe_split": {"columns": ["nonsense"], "data": [["x"]]}}
    )
    assert status == 400
    assert "error_code" in body
