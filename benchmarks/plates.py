"""Per-plate median normalisation on simulated cohorts with strong plate effects.

Trains the default model with and without ``plate_normalisation`` on simulated cohorts
whose plates shift every analyte (``plate_effect_sd``, log scale), and scores one
independent test cohort whose plates were never seen in training (renamed ``new_*``, so
each is normalised by the median of its own rows). Prints ROC AUC per therapy next to the
oracle AUC (the simulator's true probabilities), and with ``--write`` replaces the
"## Plate normalisation" section of ``docs/results.md``.

Usage::

    nice python benchmarks/plates.py [--seeds 3] [--plate-effect-sd 0.5] [--write]
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from sklearn.metrics import roc_auc_score  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import replace_section  # noqa: E402

SECTION = "## Plate normalisation"


def run(seeds: int, sd: float, n_train: int, n_test: int) -> list[dict]:
    from cytoresp.datasets import simulate_cohort
    from cytoresp.panels.read import read_panel
    from cytoresp.train.config import TrainConfig
    from cytoresp.train.fitting import fit_response_model

    test = simulate_cohort(n_test, seed=424243, plate_effect_sd=sd)
    table = test.panel.copy()
    table["plate"] = "new_" + table["plate"].astype(str)
    test_panel = read_panel(table)
    y = test.panel["responder"].to_numpy()
    given = {t: (test.panel["therapy"] == t).to_numpy() for t in ("ifnb", "ga")}
    rows = []
    for seed in range(seeds):
        train = read_panel(simulate_cohort(n_train, seed=5000 + seed, plate_effect_sd=sd).panel)
        for norm in (False, True):
            config = TrainConfig(n_repeats=1, n_boot=100, n_ensemble=10, plate_normalisation=norm)
            model, _ = fit_response_model(train, config=config)
            proba = model.predict_proba(test_panel)
            for t, rows_t in given.items():
                rows.append(
                    {
                        "seed": seed,
                        "normalised": norm,
                        "therapy": t,
                        "auc": roc_auc_score(
                            y[rows_t], proba[f"p_response_{t}"].to_numpy()[rows_t]
                        ),
                        "oracle": roc_auc_score(
                            y[rows_t], test.truth[f"p_response_{t}"].to_numpy()[rows_t]
                        ),
                    }
                )
            print(f"seed {seed} normalised={norm}: done", file=sys.stderr, flush=True)
    return rows


def section(rows: list[dict], seeds: int, sd: float, n_train: int, n_test: int) -> str:
    import pandas as pd

    df = pd.DataFrame(rows)
    lines = [
        SECTION,
        "",
        f"`nice python benchmarks/plates.py --seeds {seeds} --plate-effect-sd {sd}`: "
        f"{seeds} simulated training cohorts of {n_train} patients (seeds 5000+), plate "
        f"offsets with SD {sd} (log scale) on every analyte; one test cohort of {n_test:,} "
        "patients on plates never seen in training. ROC AUC, mean (min-max) over training "
        "cohorts; the model is the default one (one CV repeat, 10 ensemble members: the "
        "heads are the same).",
        "",
        "| therapy | oracle AUC | without normalisation | with `--plate-normalise` | difference |",
        "|---|---|---|---|---|",
    ]
    for t in ("ifnb", "ga"):
        sub = df[df.therapy == t]
        off = sub[~sub.normalised].set_index("seed")["auc"]
        on = sub[sub.normalised].set_index("seed")["auc"]
        diff = on - off
        lines.append(
            f"| {t} | {sub.oracle.iloc[0]:.3f} | {off.mean():.3f} ({off.min():.3f}-{off.max():.3f})"
            f" | {on.mean():.3f} ({on.min():.3f}-{on.max():.3f})"
            f" | {diff.mean():+.3f} ({diff.min():+.3f} to {diff.max():+.3f}) |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--plate-effect-sd", type=float, default=0.5)
    parser.add_argument("--n-train", type=int, default=600)
    parser.add_argument("--n-test", type=int, default=4000)
    parser.add_argument("--write", action="store_true", help="update docs/results.md")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    rows = run(args.seeds, args.plate_effect_sd, args.n_train, args.n_test)
    text = section(rows, args.seeds, args.plate_effect_sd, args.n_train, args.n_test)
    print(text)
    if args.write:
        replace_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
