"""How the therapy choice's BLP inference behaves on whole training runs (session 6).

For each training cohort (the policy benchmark's simulated cohorts and seeds, ``--quick``
heads) the out-of-fold predictions, folds and outcomes are taken from the training run,
and the BLP of the therapy choice is refitted three ways on the *same* predictions:

* ``pooled``: one regression over all patients (the method before session 6);
* ``moment``: per-fold regressions, averaged, covariance ``mean V_k - (K-1)/K S``
  (``S`` the sample covariance of the folds' coefficients), kept between ``mean V_k / K``
  and ``mean V_k``;
* ``bound``: per-fold regressions, averaged, covariance ``mean V_k`` (the method now).

Printed per cohort and summarised: the slope's z-statistic (its standard deviation over
cohorts should be at most 1 under ``none``), how many cohorts pass the gate (5%), and the
pointwise coverage of the 90% interval of the calibrated difference, on an independent
test cohort, of the best linear approximation of the true difference given the final
heads' predicted difference, without and with the score rescaling.

Usage::

    python benchmarks/choice_inference.py --scenario none --size 300 --seeds 30
    python benchmarks/choice_inference.py --scenario large --size 100 --seeds 30
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from policy import QUICK_MODEL, SCENARIOS, training_cohort  # noqa: E402

from cytoresp.datasets import simulate_cohort  # noqa: E402
from cytoresp.models.choice import PairCalibration  # noqa: E402
from cytoresp.panels import read_panel  # noqa: E402
from cytoresp.train.choice import (  # noqa: E402
    blp_regression,
    combine_folds,
    crossfit_by_repeat,
    dr_pseudo_outcomes,
    fold_fits,
    propensity_matrix,
    score_rescaling,
)
from cytoresp.train.config import TrainConfig  # noqa: E402
from cytoresp.train.fitting import fit_response_model, labelled_therapies  # noqa: E402

Z90 = NormalDist().inv_cdf(0.95)


def moment(fits):
    """The moment estimate of the averaged coefficients' covariance (tried, not used)."""
    B = np.array([[f[0], f[1]] for f in fits])
    k = len(fits)
    mean_v = np.mean([f[2] for f in fits], axis=0)
    cov = mean_v - (k - 1) / k * np.cov(B.T, ddof=1)
    for i in (0, 1):
        cov[i, i] = min(max(cov[i, i], mean_v[i, i] / k), mean_v[i, i])
    lim = np.sqrt(cov[0, 0] * cov[1, 1])
    cov[0, 1] = cov[1, 0] = float(np.clip(cov[0, 1], -lim, lim))
    b0, b1 = B.mean(axis=0)
    return float(b0), float(b1), cov, 1.0 - NormalDist().cdf(b1 / np.sqrt(cov[1, 1]))


def one(scn, size: int, seed: int, test, config) -> dict:
    panel = read_panel(training_cohort(scn, seed, size).panel)
    model, reports = fit_response_model(panel, config=config)
    a, b = model.therapies[:2]
    given = labelled_therapies(panel, model.therapies)
    (mu, fold), *_ = crossfit_by_repeat({t: reports[t].cv for t in model.therapies}, given)
    mask = (panel.therapy.isin(model.therapies) & panel.responder.notna()).to_numpy()
    y = panel.responder.to_numpy(dtype=np.float64)[mask]
    pseudo = dr_pseudo_outcomes(y, given, mu, propensity_matrix(given, model.therapies))
    g = (pseudo[a] - pseudo[b]).to_numpy()
    tau = (mu[a] - mu[b]).to_numpy()
    center = float(tau.mean())
    fits = fold_fits(g, tau, fold, center)
    b0, b1, cov, _, p = blp_regression(g, tau)
    lines = {"pooled": (b0, b1, cov, p), "moment": moment(fits), "bound": combine_folds(fits)}
    final_train = model.predict_proba(panel).loc[given.index]
    tau_final = (final_train[f"p_response_{a}"] - final_train[f"p_response_{b}"]).to_numpy()
    sc, ss = score_rescaling(tau, tau_final)
    proba = model.predict_proba(test.panel)
    t_test = (proba[f"p_response_{a}"] - proba[f"p_response_{b}"]).to_numpy()
    truth = test.truth.set_index("sample_id").loc[proba.index]
    d_true = (truth[f"p_response_{a}"] - truth[f"p_response_{b}"]).to_numpy()
    slope, icpt = np.polyfit(t_test, d_true, 1)
    target = icpt + slope * t_test
    out = {"seed": seed, "score_scale": ss}
    for name, (i0, i1, v, pv) in lines.items():
        v = np.asarray(v)
        out[f"{name}_z"] = i1 / np.sqrt(v[1, 1])
        out[f"{name}_pass"] = pv <= 0.05
        for scaled in (False, True):
            pc = PairCalibration(
                a, b, i0, i1, ((v[0, 0], v[0, 1]), (v[1, 0], v[1, 1])), center, len(g), pv,
                True, sc if scaled else None, ss if scaled else 1.0,
            )
            d, se = pc.calibrated(t_test)
            key = f"{name}_cover{'_scaled' if scaled else ''}"
            out[key] = float(np.mean(np.abs(d - target) <= Z90 * se))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="none")
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--n-test", type=int, default=3000)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    scn = {s.name: s for s in SCENARIOS}[args.scenario]
    config = TrainConfig(n_repeats=1, n_splits=5, inner_splits=2, n_boot=0, n_ensemble=0,
                         n_jobs=1, model=dict(QUICK_MODEL))
    test = simulate_cohort(args.n_test, seed=424242, heterogeneity=scn.heterogeneity,
                           **scn.prevalences())
    rows = []
    for seed in range(args.seeds):
        rows.append(one(scn, args.size, seed, test, config))
        r = rows[-1]
        print(f"seed {seed}: z pooled {r['pooled_z']:+.2f} moment {r['moment_z']:+.2f} "
              f"bound {r['bound_z']:+.2f}", file=sys.stderr, flush=True)
    df = pd.DataFrame(rows)
    print(f"{args.scenario}, {args.size} per therapy, {len(df)} cohorts (quick heads)")
    for name in ("pooled", "moment", "bound"):
        z = df[f"{name}_z"]
        print(
            f"  {name:>6}: slope z mean {z.mean():+.2f} sd {z.std():.2f}; gate passed "
            f"{int(df[f'{name}_pass'].sum())}/{len(df)}; coverage of the BLP target "
            f"{df[f'{name}_cover'].mean():.3f} unscaled, "
            f"{df[f'{name}_cover_scaled'].mean():.3f} rescaled"
        )
    print(f"  score scale: {df['score_scale'].min():.2f} to {df['score_scale'].max():.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
