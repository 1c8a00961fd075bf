"""Shared fixtures: a small simulated cohort, a trained model, an isolated MLflow store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# One BLAS thread per process: tests run on 2 pytest workers plus joblib processes, and
# oversubscribed OpenBLAS threads made training many times slower (as in cytoresp.cli.main).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()

#: A fast configuration for tests: one repeat, few bootstrap resamples, one process.
FAST_CONFIG = {"n_repeats": 1, "n_boot": 100, "n_jobs": 1}


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """An isolated sqlite tracking store in a temp working directory."""
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # MLflow keeps the active experiment in process globals (and MLFLOW_EXPERIMENT_ID):
    # an id from another test's store must not leak into this one.
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    _forget_active_experiment()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    yield uri
    if mlflow.active_run():
        mlflow.end_run()
    _forget_active_experiment()


def _forget_active_experiment() -> None:
    from mlflow.tracking import fluent

    if hasattr(fluent, "_active_experiment_id"):
        fluent._active_experiment_id = None


@pytest.fixture(scope="session")
def cohort():
    from cytoresp.datasets import simulate_cohort

    return simulate_cohort(400, seed=11)


@pytest.fixture(scope="session")
def trained(cohort):
    """A ResponseModel trained (without MLflow) on the session cohort, and its reports."""
    from cytoresp.train.config import TrainConfig
    from cytoresp.train.fitting import fit_response_model

    return fit_response_model(cohort.panel, config=TrainConfig(**FAST_CONFIG))


@pytest.fixture(scope="session")
def model_dir(trained, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model"
    trained[0].save(path)
    return path


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test when the folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path
