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
def spark(monkeypatch):
    from pyspark.sql import SparkSession

    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    monkeypatch.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("cytoresp-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    yield session
    session.stop()


def test_spark_udf_scores_raw_panels_like_the_model(trained, cohort, mlflow_store, spark, tmp_path):
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

    new = simulate_cohort(300, seed=31).panel
    csv = tmp_path / "new.csv"
    new.to_csv(csv, index=False)
    example = _example()
    raw = spark.read.csv(str(csv), header=True, inferSchema=False).repartition(2)
    got = example.score(spark, raw, "models:/spark-test@champion").toPandas()

    expected = model.predict_proba(csv)
    got = got.set_index("sample_id").loc[expected.index]
    assert len(got) == 300
    for col in expected.columns:
        np.testing.assert_allclose(got[col].to_numpy(), expected[col].to_numpy(), rtol=1e-12)

    # and the script end to end: CSV in, Parquet folder out
    out = tmp_path / "pred.parquet"
    spark.stop()
    assert (
        example.main(
            [
                "--model",
                "models:/spark-test@champion",
                "--input",
                str(csv),
                "--output",
                str(out),
                "--master",
                "local[2]",
            ]
        )
        == 0
    )
    written = pd.read_parquet(out).set_index("sample_id").loc[expected.index]
    np.testing.assert_allclose(written["p_response_ga"], expected["p_response_ga"], rtol=1e-12)
