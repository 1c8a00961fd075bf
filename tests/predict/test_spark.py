"""Spark: the registered model scores a raw panel through mlflow.pyfunc.spark_udf (local[2]).

Runs docs/examples/spark_score.py; skipped when pyspark or Java is not installed (pyspark
is the optional extra ``cytoresp[spark]``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

pytest.importorskip("pyspark")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs Java (JAVA_HOME or java on PATH)", allow_module_level=True)

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "spark_score.py"


def _example():
    spec = importlib.util.spec_from_file_location("spark_score", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def spark_env(monkeypatch):
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    monkeypatch.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")


def test_spark_udf_scores_raw_panels_like_the_model(
    trained, cohort, mlflow_store, spark_env, tmp_path
):
    """The example script end to end (CSV in, Parquet folder out) gives the model's answers.

    One Spark session on one core: the session's start-up and the Python workers'
    imports are the cost of this test, and the script's ``score`` and ``parse_panels``
    are what runs inside it.
    """
    import mlflow

    from cytoresp.datasets import simulate_cohort
    from cytoresp.models.mlflow_flavour import log_response_model
    from cytoresp.train.tracking import configure_tracking

    model, _ = trained
    configure_tracking(mlflow_store)
    with mlflow.start_run():
        info = log_response_model(
            model, model.model_frame(cohort.panel).head(5), registered_model_name="spark-test"
        )
    mlflow.MlflowClient().set_registered_model_alias(
        "spark-test", "champion", str(info.registered_model_version)
    )

    new = simulate_cohort(120, seed=31).panel
    csv = tmp_path / "new.csv"
    new.to_csv(csv, index=False)
    out = tmp_path / "pred.parquet"
    args = ["--model", "models:/spark-test@champion", "--input", str(csv), "--output", str(out),
            "--master", "local[1]"]  # fmt: skip
    assert _example().main(args) == 0

    expected = model.predict_proba(csv)
    written = pd.read_parquet(out).set_index("sample_id")
    assert sorted(written.index) == sorted(expected.index)
    written = written.loc[expected.index]
    for col in expected.columns:
        np.testing.assert_allclose(written[col].to_numpy(), expected[col].to_numpy(), rtol=1e-12)
