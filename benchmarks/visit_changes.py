"""What a model sees of the simulator's on-treatment signal: measured changes by response.

For ``simulate_longitudinal(n, seed, visits=(0, 3, 6), on_treatment=...)``, per therapy and
analyte of ``ON_TREATMENT_EFFECTS``: the mean measured log2 change from baseline
(``ChangeFromBaseline`` on ``landmark_table``, so censoring included) of responders and
non-responders at the 3- and 6-month landmarks, and d = (mean R - mean NR) / pooled sd.
Prints a markdown table (the one in docs/simulator.md, "On-treatment visits")::

    python benchmarks/visit_changes.py [--n 20000] [--seed 0]

About 20 s at n = 20,000 on the 2-core development machine.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
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
