"""What a model sees of the simulator's on-treatment signal: measured changes by response.

For ``simulate_longitudinal(n, seed, visits=(0, 3, 6), on_treatment=...)``, per therapy and
analyte of ``ON_TREATMENT_EFFECTS``: the mean measured log2 change from baseline
(``ChangeFromBaseline`` on ``landmark_table``, so censoring included) of responders and
non-responders at the 3- and 6-month landmarks, and d = (mean R - mean NR) / pooled sd.
Prints a markdown table (the one in docs/simulator.md, "On-treatment visits")::

    python benchmarks/visit_changes.py [--n 20000] [--seed 0]

About 20 s at n = 20,000 on the 2-core development machine.

With ``--gain``, instead: how much the changes add for a plain model (not cytoresp's
head): an L2 logistic regression (``LogisticRegressionCV``, 5 folds, after median
imputation and standardisation) on ``PanelFeatures`` alone vs ``PanelFeatures`` +
``ChangeFromBaseline``, trained per therapy on a cohort of 400 (about 200 per therapy)
and scored on an independent cohort of 4,000, seeds 1-3, at the 3- and 6-month
landmarks, for ``on_treatment`` "literature" and "none" (``--strength`` sets
``on_treatment_strength``)::

    python benchmarks/visit_changes.py --gain [--strength 1.0]

About 5 minutes per strength.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from cytoresp.datasets import simulate_longitudinal
from cytoresp.datasets.longitudinal import ON_TREATMENT_EFFECTS
from cytoresp.features.change import ChangeFromBaseline
from cytoresp.features.landmark import landmark_table
from cytoresp.panels import read_panel


def separation(n: int, seed: int, on_treatment: str) -> pd.DataFrame:
    """One row per (landmark, therapy, analyte): mean change R / NR, pooled sd, d."""
    cohort = simulate_longitudinal(n, seed=seed, visits=(0, 3, 6), on_treatment=on_treatment)
    panel = read_panel(cohort.panel)
    info = cohort.panel.drop_duplicates("patient_id").set_index("patient_id")
    rows = []
    for landmark in (3, 6):
        table = landmark_table(panel, landmark)
        change = ChangeFromBaseline(ratios=None, add_indicators=False).fit(table)
        d = change.set_output(transform="pandas").transform(table)
        d = d.join(info[["therapy", "responder"]])
        for therapy, effects in ON_TREATMENT_EFFECTS.items():
            x = d[d["therapy"] == therapy]
            for analyte in effects:
                r = x.loc[x["responder"] == 1, f"{analyte} Δ"].dropna()
                nr = x.loc[x["responder"] == 0, f"{analyte} Δ"].dropna()
                sd = float(np.sqrt((r.var() + nr.var()) / 2))
                rows.append({"landmark": landmark, "therapy": therapy, "analyte": analyte,
                             "R": r.mean(), "NR": nr.mean(), "sd": sd,
                             "d": (r.mean() - nr.mean()) / sd})
    return pd.DataFrame(rows)


def _landmark_rows(n: int, seed: int, mode: str, strength: float, landmark: int):
    cohort = simulate_longitudinal(n, seed=seed, visits=(0, 3, 6), on_treatment=mode,
                                   on_treatment_strength=strength)
    table = landmark_table(read_panel(cohort.panel), landmark)
    info = cohort.panel.drop_duplicates("patient_id").set_index("patient_id").loc[table.index]
    return table, info["therapy"].to_numpy(), info["responder"].astype(int).to_numpy()


def logistic_gain(strength: float) -> pd.DataFrame:
    """Test AUC of a plain logistic regression without and with the change features."""
    import warnings

    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.preprocessing import StandardScaler

    from cytoresp.features.builder import PanelFeatures

    def model(with_change: bool):
        features = make_union(PanelFeatures(), ChangeFromBaseline()) if with_change \
            else PanelFeatures()
        return make_pipeline(features, SimpleImputer(), StandardScaler(),
                             LogisticRegressionCV(Cs=10, cv=5, max_iter=2000))

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mode in ("literature", "none"):
            for seed in (1, 2, 3):
                for landmark in (3, 6):
                    tr, t_tr, y_tr = _landmark_rows(400, seed, mode, strength, landmark)
                    te, t_te, y_te = _landmark_rows(4000, 1000 + seed, mode, strength,
                                                    landmark)
                    base = [c for c in tr.columns if "@on" not in c and c != "month_on"]
                    for therapy in ("ifnb", "ga"):
                        a, b = t_tr == therapy, t_te == therapy
                        m0 = model(False).fit(tr.loc[a, base], y_tr[a])
                        m1 = model(True).fit(tr.loc[a], y_tr[a])
                        auc0 = roc_auc_score(y_te[b], m0.predict_proba(te.loc[b, base])[:, 1])
                        auc1 = roc_auc_score(y_te[b], m1.predict_proba(te.loc[b])[:, 1])
                        rows.append({"on_treatment": mode, "seed": seed, "landmark": landmark,
                                     "therapy": therapy, "auc_baseline": auc0,
                                     "auc_with_change": auc1, "gain": auc1 - auc0})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gain", action="store_true")
    parser.add_argument("--strength", type=float, default=1.0)
    args = parser.parse_args()
    if args.gain:
        g = logistic_gain(args.strength)
        summary = g.groupby(["on_treatment", "landmark", "therapy"]).agg(
            auc_baseline=("auc_baseline", "mean"), auc_with_change=("auc_with_change", "mean"),
            gain=("gain", "mean"), gain_min=("gain", "min"), gain_max=("gain", "max"))
        print(f"on_treatment_strength = {args.strength}; means over seeds 1-3\n")
        print("| on_treatment | landmark | therapy | AUC baseline | AUC with changes | "
              "gain (min to max) |")
        print("|---|---|---|---|---|---|")
        for (mode, landmark, therapy), r in summary.iterrows():
            print(f"| {mode} | {landmark} | {therapy} | {r.auc_baseline:.3f} | "
                  f"{r.auc_with_change:.3f} | {r.gain:+.3f} ({r.gain_min:+.3f} to "
                  f"{r.gain_max:+.3f}) |")
        return
    lit = separation(args.n, args.seed, "literature").set_index(["therapy", "analyte",
                                                                 "landmark"])
    none = separation(args.n, args.seed, "none").set_index(["therapy", "analyte", "landmark"])
    print(f"n = {args.n}, seed {args.seed}, luminex_hs; mean measured log2 change, "
          f"responders / non-responders (d)\n")
    print("| therapy | analyte | 3 months: R / NR (d) | 6 months: R / NR (d) | `none`, d at "
          "3 / 6 |")
    print("|---|---|---|---|---|")
    for therapy, effects in ON_TREATMENT_EFFECTS.items():
        for analyte in effects:
            cells = []
            for m in (3, 6):
                row = lit.loc[(therapy, analyte, m)]
                cells.append(f"{row['R']:+.2f} / {row['NR']:+.2f} ({row['d']:.2f})")
            nd = " / ".join(f"{none.loc[(therapy, analyte, m), 'd']:.2f}" for m in (3, 6))
            print(f"| {therapy} | {analyte} | {cells[0]} | {cells[1]} | {nd} |")
    print(f"\npooled sd of a measured change: {lit['sd'].min():.2f} to {lit['sd'].max():.2f}")


if __name__ == "__main__":
    main()
