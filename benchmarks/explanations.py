"""Cytokine contributions (exact interventional Shapley values on raw inputs): the checks.

For simulated cohorts (the simulator's truths have thresholds and interactions: the IL-17F
threshold, IFN-gamma x Th17, IFN-gamma x IL-4), both therapy heads are fitted on a
training cohort (``make_head(TrainConfig(...))`` on the rows given each therapy; identity
calibration) in two variants, ``default`` (early-stopped trees) and ``300 trees``
(``early_stopping=False, n_estimators=300``), and explained on new patients by

* ``cytoresp``: :meth:`TherapyHead.cytokine_contributions`, what every output uses (the
  fast path :class:`cytoresp.models.shapley.HeadExplainer`), against a background of
  ``--background`` training rows stored in the head as training does;
* ``median game``: the same with a one-row background at the training medians (baseline
  Shapley against the reference the issue's sign test uses), for comparison.

Measured per method and head:

* **sign agreement (median ref)**, as issue 16 measures it: for each cytokine-patient pair,
  set that cytokine alone to the training median and re-score; agreement of the sign of
  the change with the sign of the contribution where ``|change| > 0.1`` log-odds and
  ``|contribution| > 0.05``;
* **sign agreement (background ref)**: the same, with the change to the mean log-odds over
  the background rows' values of that cytokine (the reference of the Shapley game); both
  changes are computed by re-scoring through the pipeline, not by the game code;
* **exactness**: largest ``|base + sum(contributions) - calibrated log-odds|``;
* **against the reference enumeration** (:func:`cytoresp.models.shapley.head_shapley`
  with unlimited exact enumeration, on ``--n-exact`` patients; tests check it equals
  shap's ``ExactExplainer`` on raw inputs): median per-patient Spearman, top-3 overlap (by
  ``|value|``), sign agreement where both ``|values| > 0.05``, largest difference;
* **time per 10k rows** of each method (``--n-time`` rows).

Usage::

    nice python benchmarks/explanations.py --quick     # 1 cohort, small sizes
    nice python benchmarks/explanations.py             # 3 cohorts
    nice python benchmarks/explanations.py --mechanisms default threshold other dense
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from cytoresp.datasets import simulate_cohort
from cytoresp.models.response_model import TherapyHead
from cytoresp.models.shapley import (
    Background,
    Linear,
    TreeTable,
    background_sample,
    components,
    explanation_inputs,
    feature_spec,
    head_shapley,
)
from cytoresp.panels.panel import THERAPIES
from cytoresp.panels.read import read_panel
from cytoresp.train.config import TrainConfig
from cytoresp.train.cv import make_head
from cytoresp.train.fitting import therapy_rows

HEADS = {
    "default": {},  # the default head (the super learner)
    "300 trees": {"early_stopping": False, "n_estimators": 300},  # linear-boosted, 300 trees
}


@dataclass
class Case:
    therapy: str
    kind: str
    head: TherapyHead
    train: pd.DataFrame
    new: pd.DataFrame


def fit_cases(
    seed: int, n_train: int, n_new: int, mechanism: str = "default", heads: tuple = tuple(HEADS)
) -> list[Case]:
    """Both heads of both kinds on one training cohort, with new patients to explain."""
    panel = read_panel(simulate_cohort(n_train, seed=seed, mechanism=mechanism).panel)
    new_panel = read_panel(simulate_cohort(n_new, seed=seed + 1000, mechanism=mechanism).panel)
    out = []
    for therapy in THERAPIES:
        frame, y = therapy_rows(panel, therapy)
        new = new_panel.to_model_frame()[list(frame.columns)]
        for kind, params in ((k, HEADS[k]) for k in heads):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pipe = make_head(TrainConfig(model=params)).fit(frame, y)
            feats = pipe.named_steps["features"]
            mean = np.nanmean(feats.transform_inputs(frame).to_numpy(), axis=0)
            head = TherapyHead(therapy, pipe, list(frame.columns), np.nan_to_num(mean))
            out.append(Case(therapy, kind, head, frame, new))
    return out


def one_at_a_time(case: Case, reference: str, bg_rows: pd.DataFrame) -> pd.DataFrame:
    """Change of the log-odds when each input alone goes from the reference to the patient."""
    head, new = case.head, case.new
    feats = head.pipeline.named_steps["features"]
    margin = head.calibrated_margin(new)
    median = np.nanmedian(feats.transform_inputs(case.train).to_numpy(), axis=0)
    n_analytes = len(feats.analyte_columns_)
    out = {}
    for j, col in enumerate(feats.input_names_):
        if reference == "median":  # the median log2 value (a measured cell) or covariate
            moved = new.copy()
            moved[col] = 2.0 ** median[j] if j < n_analytes else median[j]
            out[col] = margin - head.calibrated_margin(moved)
        else:
            rep = new.loc[new.index.repeat(len(bg_rows))].copy()
            rep[col] = np.tile(bg_rows[col].to_numpy(), len(new))
            moved = head.calibrated_margin(rep).reshape(len(new), len(bg_rows)).mean(axis=1)
            out[col] = margin - moved
    return pd.DataFrame(out, index=new.index)


def sign_agreement(contrib: pd.DataFrame, delta: pd.DataFrame) -> tuple[float, int, dict]:
    """Agreement where |change| > 0.1 and |contribution| > 0.05; per-input agreement too."""
    c, d = contrib[delta.columns].to_numpy(), delta.to_numpy()
    clear = (np.abs(d) > 0.1) & (np.abs(c) > 0.05)
    same = np.sign(c) == np.sign(d)
    per = {
        col: (float(same[clear[:, j], j].mean()), int(clear[:, j].sum()))
        for j, col in enumerate(delta.columns)
        if clear[:, j].sum() >= 10
    }
    return float(same[clear].mean()), int(clear.sum()), per


def against_exact(ours: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    rho = [spearmanr(a, b)[0] for a, b in zip(ours, exact, strict=True)]
    top3 = [
        len(set(np.argsort(-np.abs(a))[:3]) & set(np.argsort(-np.abs(b))[:3])) / 3
        for a, b in zip(ours, exact, strict=True)
    ]
    both = (np.abs(ours) > 0.05) & (np.abs(exact) > 0.05)
    return {
        "spearman": float(np.nanmedian(rho)),
        "top3": float(np.mean(top3)),
        "sign": float((np.sign(ours[both]) == np.sign(exact[both])).mean()),
    }


def per_10k(fn, rows: pd.DataFrame) -> float:
    start = time.perf_counter()
    fn(rows)
    return (time.perf_counter() - start) * 10_000 / len(rows)


def run(
    seeds: list[int],
    n_train: int,
    n_new: int,
    n_exact: int,
    n_bg: int,
    n_time: int,
    mechanisms: tuple[str, ...] = ("default",),
    heads: tuple[str, ...] = tuple(HEADS),
):
    rows = []
    worst: dict[tuple[str, ...], dict] = {}
    for mechanism, seed in ((m, s) for m in mechanisms for s in seeds):
        for case in fit_cases(seed, n_train, n_new, mechanism, heads):
            head = case.head
            feats = head.pipeline.named_steps["features"]
            sample = np.random.default_rng(seed).choice(len(case.train), n_bg, replace=False)
            bg_rows = case.train.iloc[np.sort(sample)]
            bg = background_sample(feats, bg_rows, size=n_bg)
            Zt, _ = explanation_inputs(feats, case.train)
            median = Background(np.nanmedian(Zt, axis=0)[None, :], np.zeros((1, Zt.shape[1])))
            stored = dataclasses.replace(head, background_sample=bg)
            at_median = dataclasses.replace(head, background_sample=median)
            methods = {
                "cytoresp": lambda f, h=stored: h.cytokine_contributions(f)[1],
                "median game": lambda f, h=at_median: h.cytokine_contributions(f)[1],
            }
            deltas = {ref: one_at_a_time(case, ref, bg_rows) for ref in ("median", "background")}
            sub = case.new.iloc[:n_exact]
            exact = head_shapley(head, sub, bg, max_exact=64)[1].to_numpy()
            clf = head.pipeline.named_steps["model"]
            comps = components(
                feature_spec(feats),
                TreeTable.from_booster(clf.booster_),
                Linear(0.0, clf.linear_coef_, clf.linear_mean_, clf.linear_scale_),
            )
            big = max(len(c.inputs) for c in comps)
            timing = case.new.sample(n_time, replace=True, random_state=0)
            timing_heads = {"cytoresp": stored, "median game": at_median}
            for name, fn in methods.items():
                contrib = fn(case.new)
                row = {
                    "truth": mechanism,
                    "seed": seed,
                    "therapy": case.therapy,
                    "head": case.kind,
                    "trees": clf.n_trees_,
                    "largest J": big,
                    "method": name,
                }
                for ref, delta in deltas.items():
                    agree, n_pairs, per = sign_agreement(contrib, delta)
                    row[f"agree {ref}"] = agree
                    row[f"pairs {ref}"] = n_pairs
                    worst[(mechanism, case.therapy, case.kind, name, ref)] = per
                base = timing_heads[name].cytokine_contributions(case.new)[0]
                total = base + contrib.sum(axis=1).to_numpy()
                row["max |sum - log-odds|"] = float(
                    np.abs(total - head.calibrated_margin(case.new)).max()
                )
                row.update(against_exact(contrib.iloc[:n_exact].to_numpy(), exact))
                row["max |diff| vs exact"] = float(
                    np.abs(contrib.iloc[:n_exact].to_numpy() - exact).max()
                )
                fresh = dataclasses.replace(timing_heads[name])  # no cached explainer
                row["s / 10k rows"] = per_10k(
                    lambda f, h=fresh: h.cytokine_contributions(f), timing
                )
                rows.append(row)
                print(row, flush=True)
    table = pd.DataFrame(rows)
    return table, worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, nargs="*", default=None)
    ap.add_argument("--n-train", type=int, default=600)
    ap.add_argument("--n-new", type=int, default=300)
    ap.add_argument("--n-exact", type=int, default=50)
    ap.add_argument("--background", type=int, default=100)
    ap.add_argument("--n-time", type=int, default=2000)
    ap.add_argument(
        "--mechanisms",
        nargs="*",
        default=["default"],
        help="simulated truths (simulate_cohort's mechanism=): default dense threshold other",
    )
    ap.add_argument("--heads", nargs="*", default=list(HEADS), choices=list(HEADS))
    args = ap.parse_args()
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    table, worst = run(
        seeds,
        args.n_train,
        args.n_new,
        args.n_exact,
        args.background,
        args.n_time,
        tuple(args.mechanisms),
        tuple(args.heads),
    )
    cols = [
        "agree median",
        "pairs median",
        "agree background",
        "pairs background",
        "spearman",
        "top3",
        "sign",
        "max |diff| vs exact",
        "max |sum - log-odds|",
        "s / 10k rows",
    ]
    agg = {c: ("sum" if c.startswith("pairs") else "mean") for c in cols}
    agg.update({c: "max" for c in cols if c.startswith("max")})
    keys = ["truth", "head", "method"]
    summary = table.groupby(keys)[cols].agg(agg)
    for ref in ("median", "background"):  # pooled over cases, not a mean of rates
        agreeing = (
            (table[f"agree {ref}"] * table[f"pairs {ref}"]).groupby([table[k] for k in keys]).sum()
        )
        summary[f"agree {ref}"] = agreeing / summary[f"pairs {ref}"]
    print(table.round(3).to_string(index=False))
    print()
    print(summary.round(3).to_string())
    print()
    for key, per in worst.items():
        low = {k: v for k, v in per.items() if v[0] < 0.95}
        if low:
            print(key, low)


if __name__ == "__main__":
    main()
