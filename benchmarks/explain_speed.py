"""How fast are cytokine-level explanations, next to XGBoost's own ``pred_contribs``?

For ``--n`` simulated patients (default 10,000) and both therapy heads, times:

- ``xgboost pred_contribs``: the trees' TreeSHAP values on the engineered features, the
  reference (the booster alone, features already built);
- ``cytokine contributions``: :meth:`TherapyHead.cytokine_contributions` from the model
  frame (features, linear SHAP + TreeSHAP, distribution to the cytokines, exact total);
- ``explain table``: :meth:`ResponseModel.explain`, the long table ``explain --output``
  writes (both therapies).

Each timing is the best of ``--repeats`` runs, on the same rows and the same XGBoost
threads. It prints a markdown table and, with ``--write``, replaces the section
"## Explanation speed" of ``docs/results.md`` (other sections are kept).

``--fidelity`` also measures agreement with Shapley values of the whole pipeline on raw
inputs (shap's permutation explainer on the calibrated log-odds, a background of training
rows) for a small sample: slow (minutes).

Usage::

    python benchmarks/explain_speed.py [--n 10000] [--model DIR] [--write] [--fidelity]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results.md"

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import replace_section  # noqa: E402

SECTION = "## Explanation speed"
TARGET_RATIO = 10.0


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def get_model(model_dir: str | None, seed: int):
    from cytoresp.datasets import simulate_cohort
    from cytoresp.models.persistence import load_model_dir
    from cytoresp.train.config import TrainConfig
    from cytoresp.train.fitting import fit_response_model

    if model_dir:
        return load_model_dir(model_dir), None
    cohort = simulate_cohort(600, seed=seed)
    config = TrainConfig(n_repeats=1, n_boot=100, n_ensemble=10, n_jobs=1)
    model, _ = fit_response_model(cohort.panel, config=config)
    return model, cohort


def time_explanations(model, frame: pd.DataFrame, repeats: int) -> pd.DataFrame:
    """Seconds per method, summed over the therapy heads."""
    rows = []
    ref = ours = 0.0
    for t in model.therapies:
        head = model.heads[t]
        feats = np.asarray(head.features.transform(frame[head.input_columns]), dtype=np.float64)
        booster = head.model.booster_
        if booster is not None:  # a head may be linear only (no trees)
            dmat = head.model._dmatrix(feats)
            ref += best_of(lambda b=booster, d=dmat: b.predict(d, pred_contribs=True), repeats)
        ours += best_of(lambda h=head: h.cytokine_contributions(frame), repeats)
    table = best_of(lambda: model.explain(frame), repeats)
    if ref == 0.0:
        raise SystemExit("no head of this model has trees: nothing to compare with")
    n_trees = sum(
        h.model.booster_.num_boosted_rounds()
        for h in model.heads.values()
        if h.model.booster_ is not None
    )
    threads = {h.model.n_jobs for h in model.heads.values()}
    for name, seconds in (
        ("xgboost pred_contribs (trees only)", ref),
        ("cytokine contributions", ours),
        ("explain table (long, both therapies)", table),
    ):
        rows.append(
            {
                "method": name,
                "seconds": f"{seconds:.2f}",
                "patients/s": f"{len(frame) / seconds:,.0f}",
                "x pred_contribs": f"{seconds / ref:.2f}",
            }
        )
    out = pd.DataFrame(rows)
    out.attrs.update(n_trees=n_trees, threads=sorted(threads))
    return out


def fidelity(model, cohort, n_patients: int, seed: int) -> pd.DataFrame:
    """Agreement with permutation Shapley values of the whole pipeline on raw inputs."""
    import shap
    from scipy.stats import spearmanr

    from cytoresp.datasets import simulate_cohort
    from cytoresp.panels.read import read_panel

    train = model.model_frame(read_panel(cohort.panel))
    new = model.model_frame(read_panel(simulate_cohort(n_patients, seed=seed + 1).panel))
    rng = np.random.default_rng(seed)
    rows = []
    for t in model.therapies:
        head = model.heads[t]
        cols = head.input_columns
        background = train.iloc[rng.choice(len(train), 100, replace=False)][cols].to_numpy()

        def game(a: np.ndarray, head=head, cols=cols) -> np.ndarray:
            return head.calibrated_margin(pd.DataFrame(a, columns=cols))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            explainer = shap.PermutationExplainer(
                game, shap.maskers.Independent(background, max_samples=100), seed=seed
            )
            exact = explainer(
                new[cols].to_numpy(), max_evals=2 * len(cols) * 40 + 1, silent=True
            ).values
        ours = head.cytokine_contributions(new)[1].to_numpy()
        pairs = list(zip(ours, exact, strict=True))
        rows.append(
            {
                "therapy": t,
                "patients": len(new),
                "Spearman (median)": np.median([spearmanr(a, b)[0] for a, b in pairs]),
                "top-1 agreement": np.mean(
                    [np.argmax(np.abs(a)) == np.argmax(np.abs(b)) for a, b in pairs]
                ),
                "top-3 overlap": np.mean(
                    [
                        len(set(np.argsort(-np.abs(a))[:3]) & set(np.argsort(-np.abs(b))[:3])) / 3
                        for a, b in pairs
                    ]
                ),
                "Pearson (all values)": np.corrcoef(ours.ravel(), exact.ravel())[0, 1],
            }
        )
    return pd.DataFrame(rows)


def to_markdown(df: pd.DataFrame, floatfmt: str = ".3g") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = [format(v, floatfmt) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_section(text: str, path: Path = RESULTS) -> None:
    """Replace (or append) this benchmark's section, keeping everything else."""
    replace_section(SECTION, text, path)


def _flags(args: argparse.Namespace) -> str:
    flags = f" --n {args.n}" if args.n != 10_000 else ""
    flags += f" --model {args.model}" if args.model else ""
    flags += f" --fidelity {args.fidelity}" if args.fidelity else ""
    return flags


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="patients to explain")
    parser.add_argument("--model", default=None, help="a model directory (default: train one)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="update docs/results.md")
    parser.add_argument(
        "--fidelity",
        type=int,
        nargs="?",
        const=30,
        default=0,
        help="also measure agreement with Shapley values on N patients",
    )
    args = parser.parse_args(argv)

    from cytoresp.datasets import simulate_cohort
    from cytoresp.panels.read import read_panel

    model, cohort = get_model(args.model, args.seed)
    frame = model.model_frame(read_panel(simulate_cohort(args.n, seed=args.seed + 100).panel))
    speed = time_explanations(model, frame, args.repeats)
    ratio = float(speed.loc[1, "seconds"]) / float(speed.loc[0, "seconds"])
    verdict = "within" if ratio < TARGET_RATIO else "NOT within"
    text = [
        SECTION,
        "",
        f"`python benchmarks/explain_speed.py{_flags(args)}`: {args.n:,} simulated patients, "
        f"both therapy heads ({speed.attrs['n_trees']} trees in all, XGBoost threads "
        f"{speed.attrs['threads']}), best of {args.repeats}; {platform.machine()}, "
        f"{os.cpu_count()} CPUs (shared), Python {platform.python_version()}.",
        "",
        to_markdown(speed),
        "",
        f"Cytokine-level explanations take {ratio:.1f}x the time of XGBoost's own "
        f"`pred_contribs` on the same rows: {verdict} the 10x target. They include what "
        "`pred_contribs` does not: building the features from the raw panel, the exact "
        "linear part, the distribution to the cytokines and the exact total.",
    ]
    if args.fidelity:
        if cohort is None:
            print("--fidelity needs the training cohort: run without --model", file=sys.stderr)
            return 2
        fid = fidelity(model, cohort, args.fidelity, args.seed)
        text += [
            "",
            "Agreement with Shapley values of the whole pipeline on raw inputs (shap's "
            "permutation explainer, 40 antithetic permutations, 100 training rows as "
            f"background) on {args.fidelity} new patients, model trained on 600 simulated "
            "patients:",
            "",
            to_markdown(fid),
        ]
    out = "\n".join(text)
    print(out)
    if args.write:
        write_section(out)
        print(f"\nwrote the section {SECTION!r} of {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
