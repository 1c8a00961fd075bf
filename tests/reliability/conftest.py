"""Shared helpers of the reliability tests: run the real CLI, small configs, a big input.

Most tests here run ``python -m cytoresp.cli`` in a subprocess, as a user would, and
check the exit code, the message on stderr (never a traceback), and which files exist
afterwards. ``CYTORESP_RELIABILITY_REPORT=FILE`` makes them append what they measured to
FILE (JSON lines), which is where the figures of docs/reliability.md come from.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
BAD = REPO / "tests" / "data" / "bad"
CLI = [sys.executable, "-m", "cytoresp.cli"]

#: The smallest training that still exercises the whole job (MLflow logging, registry):
#: the reliability tests are about processes and files, not model quality.
SMALL_CONFIG = {
    "n_repeats": 1,
    "n_boot": 100,
    "n_jobs": 1,
    "n_splits": 2,
    "inner_splits": 2,
    "model": {"n_estimators": 20, "early_stopping": False, "C": 1.0},
    "n_ensemble": 0,
}

#: SMALL_CONFIG without the inner search of the ridge penalty (about 2.5 times faster), for
#: the tests that only need a job to run to the end. The signal tests keep SMALL_CONFIG:
#: they need a training that is still fitting when the signal arrives.
QUICK_CONFIG = {**SMALL_CONFIG, "model": {**SMALL_CONFIG["model"], "C_ridge": 1.0}}


@dataclass
class CliResult:
    """What a CLI run did."""

    code: int
    stdout: str
    stderr: str
    seconds: float


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: no tracking URI, no telemetry, one BLAS thread."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CYTORESP_"))}
    env.update(
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        MPLBACKEND="Agg",
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",  # the suite runs on 2 busy cores: no thread oversubscription
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra)
    return env


def run_cli(
    args: Sequence[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> CliResult:
    """Run ``cytoresp ARGS`` to completion."""
    start = time.perf_counter()
    proc = subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - start)


def start_cli(args: Sequence[str], cwd: Path, env: dict[str, str] | None = None, tag: str = "cli"):
    """Start ``cytoresp ARGS`` in the background; stdout/stderr go to files in ``cwd``."""
    out = open(cwd / f"{tag}.stdout", "w")  # noqa: SIM115 - closed by finish()
    err = open(cwd / f"{tag}.stderr", "w")  # noqa: SIM115
    proc = subprocess.Popen([*CLI, *args], cwd=cwd, env=env or cli_env(), stdout=out, stderr=err)
    proc._files = (out, err, cwd / f"{tag}.stdout", cwd / f"{tag}.stderr")  # type: ignore[attr-defined]
    proc._start = time.perf_counter()  # type: ignore[attr-defined]
    return proc


def finish(proc, timeout: float = 180) -> CliResult:
    """Wait for a process from :func:`start_cli` and collect its result."""
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    seconds = time.perf_counter() - proc._start
    out, err, out_path, err_path = proc._files
    out.close()
    err.close()
    return CliResult(code, out_path.read_text(), err_path.read_text(), seconds)


def finish_all(procs: Sequence, timeout: float = 300) -> list[CliResult]:
    """Wait for several processes from :func:`start_cli`; each one's own time is kept."""
    deadline = time.monotonic() + timeout
    ended: dict[int, float] = {}
    while len(ended) < len(procs) and time.monotonic() < deadline:
        for i, proc in enumerate(procs):
            if i not in ended and proc.poll() is not None:
                ended[i] = time.perf_counter()
        time.sleep(0.05)
    results = []
    for i, proc in enumerate(procs):
        result = finish(proc, timeout=1 if i not in ended else 0.1)
        if i in ended:
            result.seconds = ended[i] - proc._start
        results.append(result)
    return results


def assert_clean_failure(result: CliResult, code: int, fragment: str) -> None:
    """Exit ``code``, ``fragment`` in the message, and no traceback."""
    assert result.code == code, (result.code, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "internal error" not in result.stderr, result.stderr[-3000:]
    assert fragment.lower() in result.stderr.lower(), result.stderr[-3000:]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def record(case: str, result: str, **measured: object) -> None:
    """Append a measured case to ``$CYTORESP_RELIABILITY_REPORT`` (if set)."""
    path = os.environ.get("CYTORESP_RELIABILITY_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"case": case, "result": result, **measured}) + "\n")


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """In-process work on one BLAS/OpenMP thread (tiny fits crawl with thread hand-offs)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def rel_dir(tmp_path_factory) -> Path:
    """A session folder holding the shared inputs below."""
    return tmp_path_factory.mktemp("reliability")


@pytest.fixture(scope="session")
def small_config(rel_dir) -> Path:
    path = rel_dir / "small_config.json"
    path.write_text(json.dumps(SMALL_CONFIG))
    return path


@pytest.fixture(scope="session")
def quick_config(rel_dir) -> Path:
    path = rel_dir / "quick_config.json"
    path.write_text(json.dumps(QUICK_CONFIG))
    return path


@pytest.fixture(scope="session")
def cohort_csv(rel_dir) -> Path:
    """A simulated training cohort of 200 patients as CSV (``cytoresp simulate --n 200``)."""
    from cytoresp.datasets import simulate_cohort

    path = rel_dir / "cohort.csv"
    simulate_cohort(200, seed=5).panel.to_csv(path, index=False, lineterminator="\n")
    return path


@pytest.fixture(scope="session")
def small_model(cohort_csv, rel_dir) -> Path:
    """A standalone model directory trained (in-process) with QUICK_CONFIG on the cohort."""
    from cytoresp.panels.read import read_panel
    from cytoresp.train.config import TrainConfig
    from cytoresp.train.fitting import fit_response_model

    model, _ = fit_response_model(read_panel(cohort_csv), config=TrainConfig(**QUICK_CONFIG))
    path = rel_dir / "model"
    model.save(path)
    return path


def _tiled(cohort_csv: Path, n: int, path: Path) -> Path:
    import numpy as np
    import pandas as pd

    raw = pd.read_csv(cohort_csv, dtype=str, keep_default_na=False)
    big = raw.iloc[np.arange(n) % len(raw)].reset_index(drop=True)
    big["sample_id"] = [f"S{i:07d}" for i in range(n)]
    big.to_csv(path, index=False, lineterminator="\n")
    return path


@pytest.fixture(scope="session")
def big_csv(cohort_csv, rel_dir) -> Path:
    """A 50,000-row panel (the cohort tiled, unique ids): long enough to kill mid-way."""
    return _tiled(cohort_csv, 50_000, rel_dir / "big.csv")


@pytest.fixture(scope="session")
def mid_csv(cohort_csv, rel_dir) -> Path:
    """A 5,000-row panel: its predictions are about 1 MB."""
    return _tiled(cohort_csv, 5_000, rel_dir / "mid.csv")


#: Processes that keep the cores busy during the signal tests (``CYTORESP_LOAD_BURNERS``
#: overrides; 0 turns the load off).
LOAD_BURNERS = 2


@pytest.fixture
def cpu_load() -> Iterator[list[subprocess.Popen]]:
    """Keep the machine busy: one CPU burner per core (2), stopped whatever happens.

    Issue #12: the signal races showed only on a loaded machine, so the signal tests run
    while these processes compete for the cores.
    """
    n = int(os.environ.get("CYTORESP_LOAD_BURNERS", LOAD_BURNERS))
    burners: list[subprocess.Popen] = []
    try:
        for _ in range(n):
            burners.append(
                subprocess.Popen(
                    [sys.executable, "-c", "while True: pass"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(0.2)
        assert all(b.poll() is None for b in burners), "a CPU burner did not start"
        yield burners
    finally:
        for burner in burners:
            burner.kill()
        for burner in burners:
            burner.wait(timeout=30)


@pytest.fixture(scope="session")
def rel() -> SimpleNamespace:
    """The helpers above, for test modules (conftest is not importable by name)."""
    return SimpleNamespace(
        run=run_cli,
        start=start_cli,
        finish=finish,
        finish_all=finish_all,
        fail=assert_clean_failure,
        env=cli_env,
        port=free_port,
        wait_for=wait_for,
        record=record,
        BAD=BAD,
        REPO=REPO,
        SMALL_CONFIG=SMALL_CONFIG,
        QUICK_CONFIG=QUICK_CONFIG,
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``CYTORESP_REPEAT=N`` runs every test of this folder N times (like pytest-repeat's
    ``--count``), sharing the session's fixtures: how the signal tests are shown to pass
    many times in a row under load."""
    n = int(os.environ.get("CYTORESP_REPEAT", "1"))
    if n > 1:
        metafunc.fixturenames.append("_repeat")
        metafunc.parametrize("_repeat", range(n), ids=[f"run{i + 1}" for i in range(n)])
