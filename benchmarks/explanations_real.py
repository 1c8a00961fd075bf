"""Sign agreement and exactness of the shipped attributions on a real panel (issue 16).

The septic-shock T0 cytokines (``../shared/data/race_septic_shock_cytokines``, 69 patients,
28-day mortality; :func:`_realdata.load_septic_shock`), 5-fold: each held-out fold is
explained by a head fitted on the other four (identity calibration, the stored background
of up to 100 training rows), for the heads of ``benchmarks/explanations.py`` (``default``
and ``300 trees``). Measured as there: sign agreement of each contribution with the
re-scored change when the cytokine alone moves from the training median / from the
training population (pairs with ``|change| > 0.1`` and ``|contribution| > 0.05``), the
largest ``|base + sum - log-odds|``, and the largest difference from the reference
enumeration (:func:`cytoresp.models.shapley.head_shapley`, 5 patients per fold).

A benchmark only: nothing is chosen on it. Skipped (exit 0 with a note) without the data.

Usage::

    nice python benchmarks/explanations_real.py
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _realdata import DatasetMissing, load_septic_shock  # noqa: E402
from explanations import HEADS, Case, one_at_a_time, sign_agreement  # noqa: E402

from cytoresp.models.response_model import TherapyHead  # noqa: E402
from cytoresp.models.shapley import background_sample, head_shapley  # noqa: E402
from cytoresp.train.config import TrainConfig  # noqa: E402
from cytoresp.train.cv import make_head  # noqa: E402

REFERENCES = ("median", "background")


def run(n_splits: int = 5, seed: int = 0) -> pd.DataFrame:
    """One row per head and reference (see the module docstring)."""
    ds = load_septic_shock()
    X, y = ds.X, ds.y
    rows = []
    folds = list(StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(X, y))
    for kind, params in HEADS.items():
        contribs: dict[str, list] = {r: [] for r in REFERENCES}
        deltas: dict[str, list] = {r: [] for r in REFERENCES}
        gap = exact_gap = 0.0
        trees = []
        for tr, te in folds:
            train, new = X.iloc[tr], X.iloc[te]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pipe = make_head(TrainConfig(model=params)).fit(train, y[tr])
            feats = pipe.named_steps["features"]
            mean = np.nanmean(feats.transform_inputs(train).to_numpy(), axis=0)
            bg = background_sample(feats, train, size=min(100, len(train)))
            head = TherapyHead("outcome", pipe, list(train.columns), np.nan_to_num(mean))
            head = dataclasses.replace(head, background_sample=bg)
            base, c = head.cytokine_contributions(new)
            total = base + c.sum(axis=1).to_numpy()
            gap = max(gap, float(np.abs(total - head.calibrated_margin(new)).max()))
            exact = head_shapley(head, new.iloc[:5], bg, max_exact=64)[1].to_numpy()
            exact_gap = max(exact_gap, float(np.abs(c.iloc[:5].to_numpy() - exact).max()))
            trees.append(int(getattr(pipe.named_steps["model"], "n_trees_", -1)))
            case = Case("outcome", kind, head, train, new)
            for ref in REFERENCES:
                d = one_at_a_time(case, ref, train)
                deltas[ref].append(d)
                contribs[ref].append(c[d.columns])
        for ref in REFERENCES:
            agree, n, _ = sign_agreement(pd.concat(contribs[ref]), pd.concat(deltas[ref]))
            rows.append(
                {
                    "head": kind,
                    "trees per fold": trees,
                    "reference": ref,
                    "sign agreement": round(agree, 3),
                    "pairs": n,
                    "max |sum - log-odds|": gap,
                    "max |diff| vs exact": exact_gap,
                }
            )
    return pd.DataFrame(rows)


def main() -> int:
    try:
        table = run()
    except DatasetMissing as exc:
        print(f"skipped: {exc}")
        return 0
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
