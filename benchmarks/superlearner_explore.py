"""Exploration for the default head (issue 14 items 2-3): AUC per truth scenario on
simulated cohorts, exploration seeds only (0-99), never the real data.

Models, each fitted on one therapy's patients of a training cohort and scored on the
same therapy's patients of an independent test cohort of the same scenario:
``logistic`` (L2, PanelFeatures without axes, as train/cv.py's baseline), ``xgb`` (untuned:
depth 2, 200 trees, lr 0.05, subsample 0.8), with ``--extra tuned`` ``tuned``
(TunedXGBClassifier, n_iter 8),
``default`` (make_head(TrainConfig()): the linear-boosted head), ``sl`` (the super learner
head: make_head with model.classifier = superlearner). Also the super learner's
calibration on the test cohort (intercept and slope of a logistic recalibration of its
raw log-odds, which the training job calibrates on its out-of-fold log-odds).

    nice -n 5 .venv/bin/python benchmarks/superlearner_explore.py --sizes 150 400 \
        --seeds 0 --test-n 3000 --jobs 2 --out /tmp/s5/sl_explore.csv   # then --seeds 1
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from cytoresp.datasets import simulate_cohort
from cytoresp.features.builder import PanelFeatures
from cytoresp.models.estimator import LinearBoostedClassifier
from cytoresp.models.superlearner import CANDIDATES
from cytoresp.panels.read import read_panel
from cytoresp.train.config import TrainConfig
from cytoresp.train.cv import make_head
from cytoresp.train.tuning import TunedXGBClassifier

MECHANISMS = ("default", "dense", "threshold", "other", "null")
THERAPIES = ("ifnb", "ga")
TEST_SEED = 99  # exploration seeds only (the benchmark's confirmation seeds are >= 1000)


def frame_of(panel, therapy):
    mask = (panel.therapy == therapy).to_numpy() & panel.responder.notna().to_numpy()
    return panel.to_model_frame().loc[mask], panel.responder.to_numpy()[mask].astype(int)


def models(seed: int, extra: tuple[str, ...] = ()) -> dict:
    out = {
        "logistic": Pipeline([("features", PanelFeatures(axes=[])), (
            "model", LinearBoostedClassifier(l1_ratio=0.0, n_estimators=0, random_state=seed))]),
        "xgb": Pipeline([("features", PanelFeatures()), (
            "model", LinearBoostedClassifier(random_state=seed, **CANDIDATES["xgb"]))]),
        "default": make_head(TrainConfig(), seed),
        "sl": make_head(TrainConfig(model={"classifier": "superlearner"}), seed),
    }
    if "tuned" in extra:
        out["tuned"] = Pipeline([("features", PanelFeatures()), (
            "model", TunedXGBClassifier(n_iter=8, random_state=seed))])
    variants = {
        "sl_nested": {"oof_choices": "nested"},
        "sl_lasso": {"candidates": ["ridge", "lasso", "xgb", "boosted"]},
        "sl_nob": {"candidates": ["ridge", "xgb"]},
    }
    for name in (e for e in extra if e != "tuned"):
        model = {"classifier": "superlearner", **variants[name]}
        out[name] = make_head(TrainConfig(model=model), seed)
    return out


def job(mech: str, n: int, seed: int, test_n: int, extra=()) -> list[dict]:
    warnings.simplefilter("ignore")
    test_cohort = simulate_cohort(test_n, seed=TEST_SEED, mechanism=mech)
    test = read_panel(test_cohort.panel)
    panel = read_panel(simulate_cohort(2 * n, seed=seed, mechanism=mech).panel)
    rows = []
    for t in THERAPIES:
        X, y = frame_of(panel, t)
        Xt, yt = frame_of(test, t)
        row = {"mechanism": mech, "n_per_therapy": n, "seed": seed, "therapy": t,
               "n_train": len(y), "oracle": test_cohort.oracle_auc(t)}
        for name, model in models(seed, extra).items():
            start = time.process_time()
            model.fit(X, y)
            row[f"{name}_cpu"] = time.process_time() - start
            margin = model.decision_function(Xt) if hasattr(model, "decision_function") else None
            p = model.predict_proba(Xt)[:, 1]
            row[name] = roc_auc_score(yt, p)
            if name.startswith("sl"):
                clf = model.named_steps["model"]
                row[f"{name}_weights"] = " ".join(f"{w:.2f}" for w in clf.weights_)
                lr = LogisticRegression(penalty=None).fit(margin[:, None], yt)
                row[f"{name}_cal_slope"] = float(lr.coef_[0, 0])
                # calibration in the large: intercept with the slope fixed at 1
                row[f"{name}_citl"] = float(np.mean(yt) - np.mean(p))
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[150, 400])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--mechanisms", nargs="+", default=list(MECHANISMS))
    ap.add_argument("--test-n", type=int, default=5000)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default="sl_explore.csv")
    ap.add_argument("--extra", nargs="*", default=[],
                    help="sl_nested sl_lasso sl_nob")
    a = ap.parse_args()
    grid = [(m, n, s) for s in a.seeds for n in a.sizes for m in a.mechanisms]
    extra = tuple(a.extra)
    out = Parallel(n_jobs=a.jobs, verbose=5)(
        delayed(job)(m, n, s, a.test_n, extra) for m, n, s in grid
    )
    df = pd.DataFrame([r for rows in out for r in rows])
    df.to_csv(a.out, index=False)
    names = ["logistic", "xgb", "default", "sl", *a.extra]
    base = [b for b in ("logistic", "xgb", "tuned") if b in names]
    cal = [c for c in df.columns if c.endswith(("_cal_slope", "_citl"))]
    g = df.groupby(["mechanism", "n_per_therapy"])[["oracle", *names, *cal]]
    summary = g.mean()
    summary["best_of_3"] = summary[base].max(axis=1)  # the best comparator's mean AUC
    for name in ["sl", *(e for e in a.extra if e != "tuned")]:
        summary[f"{name}_minus_best"] = summary[name] - summary["best_of_3"]
    summary["default_minus_best"] = summary["default"] - summary["best_of_3"]
    summary["sl_over_oracle"] = summary["sl"] / summary["oracle"]
    pd.set_option("display.width", 200)
    print(summary.round(3).to_string())
    print(df.groupby("n_per_therapy")[[f"{k}_cpu" for k in names]].mean().round(2).to_string())


if __name__ == "__main__":
    main()
