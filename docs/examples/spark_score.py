"""Score a cytokine panel table on Apache Spark with a registered cytoresp model.

Runnable example for docs/scale.md::

    pip install "cytoresp[spark]"        # pyspark; Java 17+ on the machine
    python docs/examples/spark_score.py --model models:/cytoresp@champion \\
        --input panel.csv --output predictions.parquet --master "local[*]"

Two steps, both distributed:

1. :func:`parse_panels` reads the raw panel cells (``"3.2"``, ``"<0.64"``, ``"OOR >"``,
   ``"F"``) with cytoresp's own reader inside ``mapInPandas``, one Arrow batch at a time,
   and emits the model frame: one float column per model input (pg/mL, ``-L`` for a value
   censored below ``L``, clinical covariates), named as in the model's signature.
2. :func:`score` applies the registered model through ``mlflow.pyfunc.spark_udf``: the
   result is a struct with one probability per therapy (``p_response_ifnb``,
   ``p_response_ga``).

The executors need the same Python environment as the driver (``PYSPARK_PYTHON``) with
cytoresp installed, and must reach the MLflow tracking store (``MLFLOW_TRACKING_URI``)
only on the driver: ``spark_udf`` downloads the model once and ships it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession


def model_columns(model_uri: str) -> tuple[list[str], list[str]]:
    """The model's input columns and output columns, from its MLflow signature."""
    import mlflow

    signature = mlflow.models.get_model_info(model_uri).signature
    return signature.inputs.input_names(), signature.outputs.input_names()


def parse_panels(df: DataFrame, input_columns: list[str]) -> DataFrame:
    """Raw panel rows (text cells) -> ``sample_id`` and the float model-frame columns.

    Each Arrow batch is validated by :func:`cytoresp.read_panel`: a bad cell fails the
    job with cytoresp's message (rows are counted within the batch; run ``cytoresp
    validate`` on the file first for file-wide row numbers). Duplicate sample ids are
    only detected within a batch.
    """
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    schema = StructType(
        [StructField("sample_id", StringType(), False)]
        + [StructField(c, DoubleType(), True) for c in input_columns]
    )

    def parse(batches):
        from cytoresp.models.response_model import align_frame
        from cytoresp.panels.read import read_panel

        for pdf in batches:
            if len(pdf) == 0:
                continue
            frame = align_frame(read_panel(pdf).to_model_frame(), input_columns)
            out = frame.reset_index()
            out["sample_id"] = out["sample_id"].astype(str)
            yield out

    return df.mapInPandas(parse, schema)


def score(spark: SparkSession, df: DataFrame, model_uri: str) -> DataFrame:
    """``sample_id`` and ``p_response_<therapy>`` for every row of a raw panel table."""
    import mlflow
    from pyspark.sql import functions as F

    inputs, outputs = model_columns(model_uri)
    predict = mlflow.pyfunc.spark_udf(
        spark,
        model_uri,
        result_type=", ".join(f"{c} double" for c in outputs),
        env_manager="local",
    )
    frame = parse_panels(df, inputs)
    scored = frame.select("sample_id", predict(*[F.col(c) for c in inputs]).alias("p"))
    return scored.select("sample_id", *[F.col(f"p.{c}").alias(c) for c in outputs])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="models:/NAME@ALIAS or models:/NAME/N")
    parser.add_argument("--input", required=True, help="panel CSV (header row, one sample a row)")
    parser.add_argument("--output", required=True, help="predictions folder (Parquet)")
    parser.add_argument("--master", default=None, help='e.g. "local[*]" (default: spark-submit)')
    args = parser.parse_args(argv)

    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("cytoresp-score")
    if args.master:
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    try:
        # every cell as text: cytoresp parses censored values and units itself
        raw = spark.read.csv(args.input, header=True, inferSchema=False)
        score(spark, raw, args.model).write.mode("overwrite").parquet(args.output)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
