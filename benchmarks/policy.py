"""Policy benchmark: how honest and how useful are cytoresp's therapy recommendations?

On simulated cohorts both potential outcomes are known, so a recommendation policy can be
scored exactly. Each training cohort (``size`` patients per therapy on average) is drawn
with one of the simulator's effect-heterogeneity levels (``none``: both therapies share
one mechanism, the true difference is 0 for everybody; ``small``: shared mechanism plus
small therapy-specific terms; ``large``: two separate mechanisms, the simulator's default)
and randomised or confounded assignment. Recommendations are scored on an independent test
cohort of the same heterogeneity (the whole population, randomised).

Per training cohort: the cohort gate (did the heterogeneity test pass?), the share of
confident calls, the share of confident calls naming the truly better therapy, the gain
captured ((rate following the recommendation, ``either`` given the leading therapy) minus
the best single therapy, over oracle minus best single therapy), and two coverages of the
interval on the calibrated difference: of each patient's true difference (the latent
truth), and of the quantity the interval is built for, the best linear approximation of
the true difference given the heads' predicted difference (computed on the test cohort).

Usage::

    python benchmarks/policy.py                         # the full grid (slow: hours)
    python benchmarks/policy.py --seeds 5 --sizes 100 300 --quick
    python benchmarks/policy.py ... --write             # also write docs/results.md,
                                                        # section "## Choosing a therapy"

The grid can be run in pieces: ``--out FILE`` appends every training cohort's row to
``FILE`` as soon as it is scored, and skips the (scenario, size, seed) cells already there
(so an interrupted run resumes where it stopped); ``--from-csv FILE ...`` fits nothing and
builds the table from the rows of one or more such files::

    python benchmarks/policy.py --quick --scenarios none --sizes 100 --out /tmp/a.csv
    python benchmarks/policy.py --quick --scenarios large --sizes 300 --out /tmp/b.csv
    python benchmarks/policy.py --from-csv /tmp/a.csv /tmp/b.csv --write
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from cytoresp.datasets import simulate_cohort  # noqa: E402
from cytoresp.errors import UsageError  # noqa: E402
from cytoresp.panels import read_panel  # noqa: E402
from cytoresp.train.config import TrainConfig  # noqa: E402
from cytoresp.train.fitting import fit_response_model  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results.md"

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import replace_section  # noqa: E402

SECTION = "## Choosing a therapy"
EITHER = "either"

#: Head configuration of ``--quick``: fixed penalties and tree count (no inner tuning),
#: one repeat of 5 outer folds; the therapy choice itself is fitted exactly as by default.
QUICK_MODEL = {"n_estimators": 100, "early_stopping": False, "C": 0.1, "C_ridge": 1.0}


# --------------------------------------------------------------------------------------
# Policy evaluation against known potential outcomes
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicyEvaluation:
    """How good a set of recommendations is, judged by the true response probabilities.

    Response rates are expectations: the mean true probability of response under the
    therapy a policy gives, over the evaluated patients.

    Attributes
    ----------
    n : int
    best_single : str
        The therapy with the highest true mean response rate.
    rate_best_single, rate_oracle : float
        Everyone on ``best_single``; everyone on their truly best therapy.
    rate_recommendation : float
        Confident recommendations followed, ``either`` given the leading therapy.
    gain_captured : float
        ``(rate_recommendation - rate_best_single) / (rate_oracle - rate_best_single)``
        (NaN when the oracle gains nothing, e.g. no heterogeneity).
    confident_share : float
        Share of patients with a therapy named (not ``either``).
    agreement_confident : float
        Among confident calls, the share naming a therapy at least as good as the other
        compared one (NaN without confident calls).
    interval_coverage : float
        Share of patients whose true difference (leading minus runner-up) lies in their
        interval.
    target_coverage : float
        Share of patients for whom the interval holds the best linear approximation of
        the true difference given the predicted one (``blp_target``); NaN without it.
    """

    n: int
    best_single: str
    rate_best_single: float
    rate_oracle: float
    rate_recommendation: float
    gain_captured: float
    confident_share: float
    agreement_confident: float
    interval_coverage: float
    target_coverage: float

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for tables)."""
        return dict(self.__dict__)


def true_matrix(truth: pd.DataFrame, therapies: list[str]) -> np.ndarray:
    """``(n, T)`` true probabilities from ``p_response_<therapy>`` columns."""
    cols = [f"p_response_{t}" for t in therapies]
    missing = [c for c in cols if c not in truth.columns]
    if missing:
        raise UsageError(f"the truth lacks {', '.join(missing)}")
    return truth[cols].to_numpy(dtype=np.float64)


def blp_target(rec: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """Per patient, the best linear approximation of the true difference given the heads'.

    For each pair of therapies compared, the true difference (first minus second, in the
    leading / runner-up orientation of each row) is regressed on the heads' predicted
    difference over the rows comparing that pair: the population version of what the
    model's calibrated difference estimates.
    """
    therapies = [c[len("p_response_") :] for c in rec.columns if c.startswith("p_response_")]
    P = rec[[f"p_response_{t}" for t in therapies]].to_numpy(dtype=np.float64)
    T = true_matrix(truth, therapies)
    lead = rec["leading_therapy"].to_numpy(dtype=object)
    run = rec["runner_up"].to_numpy(dtype=object)
    out = np.full(len(rec), np.nan)
    for i, a in enumerate(therapies):
        for j in range(i + 1, len(therapies)):
            b = therapies[j]
            rows = ((lead == a) & (run == b)) | ((lead == b) & (run == a))
            if rows.sum() < 3:
                continue
            pred = P[rows, i] - P[rows, j]
            true = T[rows, i] - T[rows, j]
            if np.ptp(pred) > 0:
                slope, icpt = np.polyfit(pred, true, 1)
            else:
                slope, icpt = 0.0, float(true.mean())
            fitted = icpt + slope * pred
            out[rows] = np.where(lead[rows] == a, fitted, -fitted)
    return out


def evaluate_policy(rec: pd.DataFrame, truth: pd.DataFrame) -> PolicyEvaluation:
    """Score a recommendation table against the true response probabilities.

    Parameters
    ----------
    rec : DataFrame
        :meth:`cytoresp.ResponseModel.recommend` output.
    truth : DataFrame
        ``p_response_<therapy>`` for the same rows, in the same order.

    Examples
    --------
    >>> rec = pd.DataFrame({"p_response_ifnb": [0.8, 0.3, 0.55],
    ...     "p_response_ga": [0.4, 0.6, 0.5], "leading_therapy": ["ifnb", "ga", "ifnb"],
    ...     "runner_up": ["ga", "ifnb", "ga"], "difference": [0.3, 0.2, 0.05],
    ...     "difference_lower": [0.1, 0.05, -0.1], "difference_upper": [0.5, 0.35, 0.2],
    ...     "recommended_therapy": ["ifnb", "ga", "either"]})
    >>> truth = pd.DataFrame({"p_response_ifnb": [0.9, 0.2, 0.5],
    ...                       "p_response_ga": [0.4, 0.6, 0.6]})
    >>> ev = evaluate_policy(rec, truth)
    >>> round(ev.rate_oracle, 3), round(ev.gain_captured, 3), ev.agreement_confident
    (0.7, 0.8, 1.0)
    """
    therapies = [c[len("p_response_") :] for c in rec.columns if c.startswith("p_response_")]
    T = true_matrix(truth, therapies)
    if len(T) != len(rec):
        raise UsageError("the truth must have one row per recommendation row")
    col = {t: k for k, t in enumerate(therapies)}
    rows = np.arange(len(rec))
    chosen = rec["recommended_therapy"].to_numpy(dtype=object)
    lead = rec["leading_therapy"].to_numpy(dtype=object)
    run = rec["runner_up"].to_numpy(dtype=object)
    confident = chosen != EITHER
    follow = np.where(confident, chosen, lead)
    rate_follow = float(T[rows, [col[t] for t in follow]].mean())
    means = T.mean(axis=0)
    best = int(np.argmax(means))
    r_best, r_oracle = float(means[best]), float(T.max(axis=1).mean())
    span = r_oracle - r_best
    i_lead = np.array([col[t] for t in lead])
    i_run = np.array([col[t] for t in run])
    true_diff = T[rows, i_lead] - T[rows, i_run]
    lo = rec["difference_lower"].to_numpy(dtype=np.float64)
    hi = rec["difference_upper"].to_numpy(dtype=np.float64)
    has = np.isfinite(lo) & np.isfinite(hi)
    coverage = float(np.mean((true_diff >= lo) & (true_diff <= hi))) if has.any() else np.nan
    target = blp_target(rec, truth)
    ok = has & np.isfinite(target)
    target_cov = (
        float(np.mean((target[ok] >= lo[ok]) & (target[ok] <= hi[ok]))) if ok.any() else np.nan
    )
    agree = np.nan
    if confident.any():
        other = np.where(chosen == lead, i_run, i_lead)
        i_chosen = np.array([col[t] for t in chosen[confident]])
        agree = float(np.mean(T[rows[confident], i_chosen] >= T[rows[confident], other[confident]]))
    return PolicyEvaluation(
        n=len(rec),
        best_single=therapies[best],
        rate_best_single=r_best,
        rate_oracle=r_oracle,
        rate_recommendation=rate_follow,
        gain_captured=(rate_follow - r_best) / span if span > 1e-9 else float("nan"),
        confident_share=float(confident.mean()) if len(rec) else float("nan"),
        agreement_confident=agree,
        interval_coverage=coverage,
        target_coverage=target_cov,
    )


# --------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    heterogeneity: str
    assignment: str = "randomised"
    strength: float = 1.0

    @property
    def name(self) -> str:
        tail = "" if self.assignment == "randomised" else f", confounded s={self.strength:g}"
        return f"{self.heterogeneity}{tail}"

    def prevalences(self) -> dict[str, float]:
        # REGARD / BEYOND: almost no average difference between IFN-beta and GA, so the
        # none and small scenarios use one prevalence; large keeps the simulator default.
        if self.heterogeneity == "large":
            return {}
        return {"prevalence_ifnb": 0.6, "prevalence_ga": 0.6}


SCENARIOS = tuple(
    Scenario(h, a) for h in ("none", "small", "large") for a in ("randomised", "confounded")
)


def training_cohort(scn: Scenario, seed: int, size: int):
    """The training cohort of ``2 * size`` patients of one scenario and seed."""
    return simulate_cohort(
        2 * size,
        seed=10_000 + 97 * seed + size,
        assignment=scn.assignment,
        confounding_strength=scn.strength,
        heterogeneity=scn.heterogeneity,
        **scn.prevalences(),
    )


def run_one(scn: Scenario, seed: int, size: int, test, config: TrainConfig) -> dict:
    """Train on one cohort of ``2 * size`` patients and score the test cohort."""
    train = training_cohort(scn, seed, size)
    start = time.perf_counter()
    model, _ = fit_response_model(read_panel(train.panel), config=config)
    seconds = time.perf_counter() - start
    rec = model.recommend(test.panel)
    truth = test.truth.set_index("sample_id").loc[rec.index]
    out = evaluate_policy(rec, truth).as_dict()
    pair = model.choice.pairs[0]
    out.update(
        scenario=scn.name,
        size=size,
        seed=seed,
        gate_passed=model.choice.gate_passed,
        gate_p=pair.p_value,
        slope=pair.slope,
        slope_se=pair.slope_se,
        average_difference=pair.intercept,
        score_scale=pair.score_scale,
        fit_seconds=seconds,
    )
    return out


def fmt(values: pd.Series, pct: bool = True, digits: int = 1) -> str:
    values = values.dropna()
    if values.empty:
        return "–"
    k = 100.0 if pct else 1.0
    return f"{k * values.mean():.{digits}f}"


def tables(results: pd.DataFrame, n_test: int, command: str) -> str:
    """The markdown table of ``results`` (one raw row per training cohort)."""
    heads = sorted(set(results["heads"])) if "heads" in results else ["?"]
    lines = [
        f"Command: `{command}`. Heads: {', '.join(heads)}. Independent test cohort of "
        f"{n_test:,} patients per heterogeneity level (randomised). Per row: mean over "
        "training cohorts; rates in %.",
        "",
        "| scenario | per therapy | cohorts | gate passed | confident, mean (max) "
        "| cohorts with ≤ 5% confident | confident calls right (cohorts) | gain captured "
        "| covers BLP target | covers true difference | slope z: mean, sd | fit s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (name, size), g in results.groupby(["scenario", "size"], sort=False):
        conf = g["confident_share"]
        right = g["agreement_confident"].dropna()
        z = g["slope"] / g["slope_se"] if "slope_se" in g else pd.Series(dtype=float)
        zt = f"{z.mean():+.2f}, {z.std():.2f}" if len(z.dropna()) > 1 else "–"
        lines.append(
            f"| {name} | {size} | {len(g)} | {int(g['gate_passed'].sum())}/{len(g)} "
            f"| {100 * conf.mean():.1f} ({100 * conf.max():.1f}) "
            f"| {int((conf <= 0.05).sum())}/{len(g)} | {fmt(right)} ({len(right)}) "
            f"| {fmt(g['gain_captured'])} | {fmt(g['target_coverage'])} "
            f"| {fmt(g['interval_coverage'])} | {zt} | {g['fit_seconds'].mean():.0f} |"
        )
    return "\n".join(lines)


def write_section(body: str, path: Path = RESULTS) -> None:
    """Replace (or append) the "## Choosing a therapy" section, leaving the rest intact."""
    replace_section(SECTION, f"{SECTION}\n\n{body.strip()}\n", path)


KEY = ["scenario", "size", "seed"]


def done_cells(path: Path | None) -> set[tuple[str, int, int]]:
    """The (scenario, size, seed) cells already in a raw-rows CSV (empty if none)."""
    if path is None or not path.exists() or path.stat().st_size == 0:
        return set()
    old = pd.read_csv(path, usecols=KEY)
    return {(str(a), int(b), int(c)) for a, b, c in old.itertuples(index=False)}


def append_row(path: Path, row: dict) -> None:
    """Append one raw row to ``path`` (header when the file is new), flushed at once."""
    new = not path.exists() or path.stat().st_size == 0
    frame = pd.DataFrame([row])
    if not new:
        # keep the file's column order; a column the file lacks is an error, not a shift
        columns = list(pd.read_csv(path, nrows=0).columns)
        if set(columns) != set(frame.columns):
            differ = sorted(set(columns) ^ set(frame.columns))
            raise UsageError(f"{path} holds rows with other columns ({differ}); use a new file")
        frame = frame[columns]
    with open(path, "a", encoding="utf-8") as fh:
        frame.to_csv(fh, header=new, index=False)


def load_rows(paths: list[Path]) -> pd.DataFrame:
    """Raw rows of one or more ``--out`` files, one row per (scenario, size, seed).

    A cell present in several files is kept once (the last file wins); cells are ordered
    by scenario (in the order first seen), size and seed.
    """
    frames = [pd.read_csv(p) for p in paths]
    rows = pd.concat(frames, ignore_index=True).drop_duplicates(KEY, keep="last")
    order = {name: k for k, name in enumerate(dict.fromkeys(rows["scenario"]))}
    rows = rows.assign(_o=rows["scenario"].map(order))
    return rows.sort_values(["_o", "size", "seed"]).drop(columns="_o").reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="training cohorts per cell")
    parser.add_argument("--first-seed", type=int, default=0, help="first training seed")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 800])
    parser.add_argument("--scenarios", nargs="+", default=[s.name for s in SCENARIOS])
    parser.add_argument("--n-test", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="fixed-penalty heads (QUICK_MODEL)")
    parser.add_argument(
        "--out", type=Path,
        help="append the raw rows to this CSV as they come; cells already there are skipped",
    )
    parser.add_argument(
        "--from-csv", type=Path, nargs="+", metavar="FILE",
        help="fit nothing: build the table from these --out files",
    )
    parser.add_argument("--write", action="store_true", help="write docs/results.md")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    command = "python benchmarks/policy.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.from_csv:
        missing = [str(p) for p in args.from_csv if not p.exists()]
        if missing:
            parser.error(f"no such file: {', '.join(missing)}")
        results = load_rows(args.from_csv)
        sizes = sorted(set(results["n_test"])) if "n_test" in results else [args.n_test]
        if len(sizes) > 1:
            parser.error(f"the files hold rows scored on test cohorts of {sizes} patients")
        body = tables(results, int(sizes[0]), command.strip())
        print(body)
        if args.write:
            write_section(body + "\n\n" + EXPLANATION)
            print(f"wrote {RESULTS} ({SECTION})", file=sys.stderr)
        return 0
    known = {s.name: s for s in SCENARIOS}
    unknown = [s for s in args.scenarios if s not in known]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; known: {list(known)}")

    config = TrainConfig(n_repeats=1, n_boot=0, n_ensemble=0, n_jobs=1)
    if args.quick:
        config = TrainConfig(
            n_repeats=1,
            n_splits=5,
            inner_splits=2,
            n_boot=0,
            n_ensemble=0,
            n_jobs=1,
            model=dict(QUICK_MODEL),
        )
    done = done_cells(args.out)
    tests: dict[str, Any] = {}
    rows = []
    for name in args.scenarios:
        scn = known[name]
        for size in args.sizes:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                if (scn.name, size, seed) in done:
                    continue
                if scn.heterogeneity not in tests:
                    tests[scn.heterogeneity] = simulate_cohort(
                        args.n_test, seed=424242, heterogeneity=scn.heterogeneity,
                        **scn.prevalences(),
                    )
                row = run_one(scn, seed, size, tests[scn.heterogeneity], config)
                row.update(heads="quick" if args.quick else "default", n_test=args.n_test)
                rows.append(row)
                if args.out:
                    append_row(args.out, row)
                print(
                    f"{scn.name:>24} {size:>4}/therapy seed {seed}: gate "
                    f"{'pass' if row['gate_passed'] else 'fail'} (p {row['gate_p']:.3f}, slope "
                    f"{row['slope']:.2f}), confident {row['confident_share']:.3f}, right "
                    f"{row['agreement_confident']:.3f}, gain {row['gain_captured']:.3f}, "
                    f"cover {row['interval_coverage']:.3f}/{row['target_coverage']:.3f} "
                    f"({row['fit_seconds']:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    results = load_rows([args.out]) if args.out and args.out.exists() else pd.DataFrame(rows)
    if results.empty:
        print("nothing to do: every cell is already in --out", file=sys.stderr)
        return 0
    body = tables(results, args.n_test, command.strip())
    print(body)
    if args.write:
        write_section(body + "\n\n" + EXPLANATION)
        print(f"wrote {RESULTS} ({SECTION})", file=sys.stderr)
    return 0


EXPLANATION = """\
How to read it (method in `docs/methods.md`, "Choosing a therapy"):

- *gate passed*: training cohorts whose heterogeneity test (averaged per-fold BLP slope,
  one-sided, 5%, against the covariance bound) passed; when it fails every
  recommendation is `either`.
- *confident*: share of test patients given a therapy rather than `either`; the issue-15
  target for `none` is at most 5% in at least 19 of 20 cohorts at every size (next column).
- *confident calls right (cohorts)*: among confident calls, the share naming a therapy at
  least as good as the other (mean over the cohorts that made confident calls, their
  number in brackets; – when none did); target for `small`: at least 80%.
- *gain captured*: (response rate following the recommendation, `either` given the
  leading therapy, minus the best single therapy) / (oracle minus best single therapy);
  undefined for `none` (the oracle gains nothing). Target for `large` at 300 per therapy:
  no worse than the 85% of the previous (bootstrap-ensemble) method.
- *covers BLP target*: share of test patients for whom the 90% interval holds the best
  linear approximation of the true difference given the heads' predicted difference
  (computed on the test cohort): the quantity the interval is built for. Under `none`
  that is 0.
- *covers true difference*: share of test patients whose own true difference lies in the
  90% interval. The interval is not built for this (it is a confidence interval for an
  average over patients with the same predicted difference), so expect less than 90%
  wherever the true difference varies among such patients.
- *slope z*: the averaged slope over its bounded standard error, mean and standard
  deviation over the cohorts; under `none` the standard deviation is below 1 because the
  bound is conservative.
"""


if __name__ == "__main__":
    sys.exit(main())
