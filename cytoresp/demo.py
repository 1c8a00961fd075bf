"""``cytoresp demo``: the whole path on the built-in simulated cohort, in the working directory."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

DEMO_MODEL_NAME = "cytoresp-demo"


def run_demo(
    n: int = 600,
    seed: int = 0,
    tracking_uri: str | None = None,
    log: Callable[[str], None] = print,
    console: Console | None = None,
    workdir: str | Path = ".",
) -> dict[str, str]:
    """Simulate, train both therapies, register, score a new batch with explanations.

    Returns
    -------
    dict
        Paths of what was written, by name.
    """
    from cytoresp.datasets import simulate_cohort
    from cytoresp.models.mlflow_flavour import load_model
    from cytoresp.models.plots import plot_waterfall
    from cytoresp.panels.write import atomic_output, write_table
    from cytoresp.predict.batch import score_file
    from cytoresp.train.job import run_training_job
    from cytoresp.train.metrics import roc_auc

    console = console or Console(highlight=False)
    root = Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    paths = {
        "training cohort": root / "cohort_train.csv",
        "training truth": root / "cohort_train_truth.csv",
        "new patients": root / "new_patients.csv",
        "new patients truth": root / "new_patients_truth.csv",
        "standalone model": root / "model",
        "predictions": root / "predictions.csv",
        "explanations": root / "explanations.csv",
        "waterfall plot": root / "waterfall.png",
    }
    cohort = simulate_cohort(n, seed)
    cohort.to_csv(paths["training cohort"], paths["training truth"])
    log(f"simulated {n} patients -> {paths['training cohort']}")

    result = run_training_job(
        paths["training cohort"],
        "all",
        register=DEMO_MODEL_NAME,
        out_dir=paths["standalone model"],
        tracking_uri=tracking_uri,
        log=log,
    )
    uri = f"models:/{DEMO_MODEL_NAME}/{result.registered_version}"

    new = simulate_cohort(1000, seed + 1)
    new.to_csv(paths["new patients"], paths["new patients truth"])
    model = load_model(uri)
    score_file(model, paths["new patients"], paths["predictions"], explain=3)
    log(f"scored 1000 new patients with {uri} -> {paths['predictions']}")
    explanations = model.explain(paths["new patients"])
    write_table(explanations, paths["explanations"])

    import pandas as pd

    predictions = pd.read_csv(paths["predictions"])
    first = predictions["sample_id"].iloc[0]
    frame = model.model_frame(paths["new patients"])
    base, contrib = model.heads["ifnb"].cytokine_contributions(frame.loc[[first]])
    fig = plot_waterfall(float(base[0]), contrib.iloc[0], title=f"{first}: response to IFN-β")
    with atomic_output(paths["waterfall plot"], "wb") as fh:
        fig.savefig(fh, format="png", dpi=120, bbox_inches="tight")

    console.print("\n[bold]cytoresp demo[/bold]")
    for t, report in result.reports.items():
        truth = new.truth
        given = new.panel["therapy"] == t
        held_out = roc_auc(
            new.panel.loc[given, "responder"], predictions.loc[given, f"p_response_{t}"]
        )
        oracle = roc_auc(new.panel.loc[given, "responder"], truth.loc[given, f"p_response_{t}"])
        console.print(
            f"  {t:>4}: cross-validated AUC {report.metrics['roc_auc']} "
            f"(oracle {cohort.oracle_auc(t):.3f}) | "
            f"new patients AUC {held_out:.3f} (oracle {oracle:.3f})"
        )
    console.print(f"  registered model: {uri} (alias @candidate)")
    console.print(f"  MLflow store: {result.tracking_uri}, run {result.run_id}")
    console.print(f"    browse it with: mlflow ui --backend-store-uri {result.tracking_uri}")
    for name, path in paths.items():
        console.print(f"  {name}: {path}")
    console.print(f"  done in {time.perf_counter() - start:.0f} s")
    return {k: str(v) for k, v in paths.items()}
