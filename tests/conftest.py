"""Shared fixtures: a small simulated cohort, a trained model, an isolated MLflow store."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# One BLAS thread per process: tests run on 2 pytest workers plus joblib processes, and
# oversubscribed OpenBLAS threads made training many times slower (as in cytoresp.cli.main).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()

#: A fast configuration for tests: one repeat of a 3-fold nested CV (2 inner folds for the
#: calibration), few bootstrap resamples, one process, and fixed penalties of the linear
#: part (no inner search of C: tests/models/test_estimator.py covers the search). The trees'
#: early stopping is the default config's; a 10-member ensemble (off by default) is asked
#: for, so that the report's spread and the ensemble's persistence are tested.
FAST_CONFIG = {
    "n_repeats": 1, "n_splits": 3, "inner_splits": 2, "n_boot": 100, "n_jobs": 1,
    "model": {"C": 0.3, "C_ridge": 0.3}, "n_ensemble": 10,
}


#: The SIGINT / SIGTERM handlers at start-up (Python's own), before any test module or
#: library is imported.
_START_HANDLERS = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}


@pytest.fixture(autouse=True)
def _start_up_signal_handlers():
    """Every test starts and ends with the start-up SIGINT / SIGTERM handlers.

    Tests leave handlers behind: pyspark's SparkContext installs its own SIGINT handler
    (recorded after tests/predict/test_spark.py). Note that the start-up handler of an
    xdist worker may be SIG_IGN, so a test that needs Python's own SIGINT handler installs
    it (tests/test_interrupts.py). Tests must not depend on what ran before them.
    """

    def reset() -> None:
        # Unconditionally: signal.getsignal reports Python's record, not the C-level
        # handler, so a library that replaced the C handler behind Python's back would
        # otherwise go unnoticed (signal.signal re-installs Python's trampoline).
        for sig, handler in _START_HANDLERS.items():
            if handler is not None:
                signal.signal(sig, handler)

    reset()
    yield
    reset()


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """A new, empty sqlite MLflow store, created once per test run: copy it, do not open it.

    Creating a store runs MLflow's schema migrations: about 2 s of CPU and 7 s of wall
    time (sqlite commits) on the 2-core machine, per store. Tests about something else
    start from a copy; the tests about creating a store (tests/reliability/
    test_concurrency.py, the default store of ``cytoresp train``) still create theirs.
    """
    from filelock import FileLock

    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = tmp_path_factory.getbasetemp().parent
    else:
        root = tmp_path_factory.getbasetemp()
    path = root / "empty-mlflow.db"
    with FileLock(f"{path}.lock"):
        if not path.exists():
            from mlflow import MlflowClient

            building = root / "empty-mlflow.db.part"
            building.unlink(missing_ok=True)
            MlflowClient(tracking_uri=f"sqlite:///{building}").search_experiments()
            building.rename(path)
    return path


def copy_store(empty_store: Path, where: Path) -> str:
    """A copy of :func:`empty_store` at ``where`` (a file path); its tracking URI."""
    import shutil

    where.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(empty_store, where)
    return f"sqlite:///{where}"


@pytest.fixture
def store_copy(empty_store):
    """``store_copy(path)``: a copy of :func:`empty_store` at ``path``; its tracking URI."""
    return lambda where: copy_store(empty_store, Path(where))


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch, empty_store):
    """An isolated sqlite tracking store (a copy of an empty one) in a temp working folder."""
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # MLflow keeps the active experiment in process globals (and MLFLOW_EXPERIMENT_ID):
    # an id from another test's store must not leak into this one.
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    _forget_active_experiment()
    uri = copy_store(empty_store, tmp_path / "mlflow.db")
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
def trained_cache(cohort, tmp_path_factory) -> Path:
    """The folder holding the session model, trained once per test run (see ``trained``)."""
    from cytoresp.train.config import TrainConfig

    return shared_training(
        "session-model", cohort.panel, TrainConfig(**FAST_CONFIG), tmp_path_factory
    )


@pytest.fixture(scope="session")
def trained(trained_cache):
    """A ResponseModel trained (without MLflow) on the session cohort, and its reports.

    Trained once per test run, not once per xdist worker (:func:`shared_training`); every
    worker loads the saved model and rebuilds the reports from the out-of-fold tables, so
    all workers test the same object. ``reference.parquet`` in ``trained_cache`` holds the
    freshly trained model's own answers: tests/models/test_response_model.py checks that
    the loaded model gives exactly those.
    """
    from cytoresp.train.config import TrainConfig

    return load_training(trained_cache, TrainConfig(**FAST_CONFIG))


def shared_training(name: str, table, config, tmp_path_factory) -> Path:
    """Run ``fit_response_model(table, config=config)`` once per test run; its folder.

    The first xdist worker to ask trains under a file lock and writes the folder (the
    model by ``model.save``, the out-of-fold tables, the model's own answers on ``table``)
    under this run's temp root, shared by the run's workers; the others wait and reuse
    it. Without xdist the folder lives in the process's own temp folder, so nothing
    leaks from one run into the next.
    """
    from filelock import FileLock

    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = tmp_path_factory.getbasetemp().parent
    else:
        root = tmp_path_factory.getbasetemp()
    cache = root / f"cache-{name}"
    with FileLock(f"{cache}.lock"):
        if not (cache / "done").exists():
            _train_into(cache, table, config)
    return cache


def _train_into(cache: Path, table, config) -> None:
    import json
    import shutil

    from cytoresp.panels.read import read_panel
    from cytoresp.train.fitting import fit_response_model

    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    model, reports = fit_response_model(table, config=config)
    model.save(cache / "model")
    for t, report in reports.items():
        report.cv.oof.to_parquet(cache / f"oof_{t}.parquet")
        if report.cv.scored is not None:  # the other therapies' patients (train/choice.py)
            report.cv.scored.to_parquet(cache / f"scored_{t}.parquet")
        (cache / f"folds_{t}.json").write_text(json.dumps(report.cv.folds))
    panel = read_panel(table)
    if len(model.therapies) == 2:
        model.recommend(panel).to_parquet(cache / "reference.parquet")
    else:
        model.predict_proba(panel).to_parquet(cache / "reference.parquet")
    model.explain(panel).to_parquet(cache / "reference_explain.parquet")
    (cache / "done").touch()


def load_training(cache: Path, config):
    """``(model, reports)`` from a folder written by :func:`shared_training`."""
    import json

    import pandas as pd

    from cytoresp.models.response_model import ResponseModel
    from cytoresp.train.cv import CVResult
    from cytoresp.train.fitting import evaluate_cv

    model = ResponseModel.load(cache / "model")
    reports = {}
    for t in model.therapies:
        folds = json.loads((cache / f"folds_{t}.json").read_text())
        for fold in folds:
            fold["calibration"] = tuple(fold["calibration"])
        scored = cache / f"scored_{t}.parquet"
        cv = CVResult(
            oof=pd.read_parquet(cache / f"oof_{t}.parquet"),
            folds=folds,
            scored=pd.read_parquet(scored) if scored.exists() else None,
        )
        reports[t] = evaluate_cv(cv, t, config)
    return model, reports


#: The landmark model's configuration (tests of issue 17's landmark heads): FAST_CONFIG
#: without the ensemble, landmarks at months 0, 3 and 6.
LANDMARK_CONFIG = {**FAST_CONFIG, "n_ensemble": 0, "landmarks": [0, 3, 6]}


@pytest.fixture(scope="session")
def visits_cohort():
    """A simulated cohort with visits at months 0, 3 and 6 (a fifth of visits missed)."""
    from cytoresp.datasets import simulate_longitudinal

    return simulate_longitudinal(160, seed=21, visits=(0, 3, 6), missed_visit_rate=0.2)


@pytest.fixture(scope="session")
def landmark_cache(visits_cohort, tmp_path_factory) -> Path:
    """The folder of a model with landmark heads, trained once per test run."""
    from cytoresp.train.config import TrainConfig

    return shared_training(
        "landmark-model", visits_cohort.panel, TrainConfig(**LANDMARK_CONFIG), tmp_path_factory
    )


@pytest.fixture(scope="session")
def landmark_model(landmark_cache):
    """The saved landmark model, loaded (landmark heads at months 3 and 6)."""
    from cytoresp.models.response_model import ResponseModel

    return ResponseModel.load(landmark_cache / "model")


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
