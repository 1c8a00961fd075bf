"""Policy benchmark: how good are cytoresp's therapy recommendations?

On simulated cohorts both potential outcomes are known, so a recommendation policy can be
scored exactly: train on a cohort of 600 patients (about 300 per therapy), recommend for an
independent test cohort of 5,000, and compare the response rate of following the
recommendation with treating everyone with IFN-beta, everyone with GA, and the oracle
(every patient on their truly better therapy). Response rates are expectations: the mean
true probability of response under the therapy given.

Scenarios: randomised training cohorts, and confounded ones (IFN-beta given more often to
patients with more relapses and higher EDSS; ``confounding_strength`` 1 and 2) trained with
and without inverse-propensity weighting. The test cohort is always the whole population.

The training configuration is ``TrainConfig(n_repeats=1, n_boot=200)``: the fitted model
(heads, calibration, bootstrap ensemble) is identical to the default configuration's, since
the final fit and the calibration use the first cross-validation repeat only; the extra
repeats only sharpen the reported metrics.

Usage::

    python benchmarks/policy.py                   # print the tables
    python benchmarks/policy.py --write           # also write docs/results.md, section
                                                  # "## Choosing a therapy"
    python benchmarks/policy.py --seeds 2 --quick # smaller and faster
    python benchmarks/policy.py --timing          # time the default training on 600 patients
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from cytoresp.datasets import simulate_cohort  # noqa: E402
from cytoresp.models.recommend import evaluate_policy  # noqa: E402
from cytoresp.panels import read_panel  # noqa: E402
from cytoresp.train.config import TrainConfig  # noqa: E402
from cytoresp.train.fitting import fit_response_model  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results.md"

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import replace_section  # noqa: E402

SECTION = "## Choosing a therapy"


@dataclass(frozen=True)
class Scenario:
    name: str
    assignment: str = "randomised"
    strength: float = 0.0
    ipw: bool = False


SCENARIOS = (
    Scenario("randomised"),
    Scenario("confounded s=1", "confounded", 1.0),
    Scenario("confounded s=1, --ipw", "confounded", 1.0, True),
    Scenario("confounded s=2", "confounded", 2.0),
    Scenario("confounded s=2, --ipw", "confounded", 2.0, True),
)


def run_one(scn: Scenario, seed: int, n_train: int, test, config: TrainConfig) -> dict:
    train = simulate_cohort(
        n_train,
        seed=1000 + seed,
        assignment=scn.assignment,
        confounding_strength=scn.strength or 1.0,
    )
    panel = read_panel(train.panel)
    cfg = TrainConfig(**{**config.to_dict(), "ipw": scn.ipw})
    start = time.perf_counter()
    model, _ = fit_response_model(panel, config=cfg)
    seconds = time.perf_counter() - start
    rec = model.recommend(test.panel)
    ev = evaluate_policy(rec, test.truth["p_response_ifnb"], test.truth["p_response_ga"])
    out = ev.as_dict()
    assignment = model.metadata.get("assignment", {})
    out.update(
        scenario=scn.name,
        seed=seed,
        fit_seconds=seconds,
        propensity_auc=assignment.get("propensity_auc", np.nan),
        warned=bool(assignment.get("warnings")),
    )
    return out


def fmt(values: pd.Series, pct: bool = True) -> str:
    k = 100.0 if pct else 1.0
    mean, lo, hi = k * values.mean(), k * values.min(), k * values.max()
    digits = 1 if pct else 3
    if len(values) == 1 or round(lo, digits) == round(hi, digits):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def tables(results: pd.DataFrame, n_train: int, n_test: int) -> str:
    lines = [
        f"Training cohorts of {n_train} simulated patients (about {n_train // 2} per therapy; "
        f"*cohorts*: how many, each with its own seed); recommendations for one independent "
        f"test cohort of {n_test:,} patients. Mean (min-max) over training cohorts; rates in %.",
        "",
        "| scenario | cohorts | all IFN-β | all GA | oracle | follow recommendation "
        "| gain captured | gain captured, `either` → best single | confident "
        "| agree (confident) | agree (all) | interval covers truth |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, g in results.groupby("scenario", sort=False):
        lines.append(
            f"| {name} | {len(g)} | {fmt(g['rate_all_ifnb'])} | {fmt(g['rate_all_ga'])} "
            f"| {fmt(g['rate_oracle'])} | {fmt(g['rate_recommendation'])} "
            f"| {fmt(g['gain_captured'])} | {fmt(g['gain_captured_default'])} "
            f"| {fmt(g['confident_share'])} | {fmt(g['agreement_confident'])} "
            f"| {fmt(g['agreement_all'])} | {fmt(g['interval_coverage'])} |"
        )
    lines += [
        "",
        "| scenario | propensity AUC (cross-validated) | assignment warning | fit time, s |",
        "|---|---|---|---|",
    ]
    for name, g in results.groupby("scenario", sort=False):
        lines.append(
            f"| {name} | {fmt(g['propensity_auc'], pct=False)} "
            f"| {int(g['warned'].sum())}/{len(g)} | {g['fit_seconds'].mean():.0f} |"
        )
    return "\n".join(lines)


def write_section(body: str, path: Path = RESULTS) -> None:
    """Replace (or append) the "## Choosing a therapy" section, leaving the rest intact."""
    replace_section(SECTION, f"{SECTION}\n\n{body.strip()}\n", path)


def timing(n: int = 600) -> str:
    """Wall time of the default training (3x5 nested CV + ensemble) on ``n`` patients."""
    panel = read_panel(simulate_cohort(n, seed=0).panel)
    marks: list[tuple[float, str]] = []
    start = time.perf_counter()
    model, _ = fit_response_model(
        panel, config=TrainConfig(), log=lambda m: marks.append((time.perf_counter(), m))
    )
    total = time.perf_counter() - start
    ens_start = next(t for t, m in marks if m.startswith("bootstrap ensemble"))
    ensemble = time.perf_counter() - ens_start if ens_start else float("nan")
    cpu = os.cpu_count()
    load = os.getloadavg()[0]
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return (
        f"default TrainConfig() on {n} patients (both therapies): {total:.0f} s wall, of which "
        f"the bootstrap ensemble ({model.ensemble.n_members} refits per head) "
        f"{ensemble:.0f} s; {cpu} cores, load average {load:.1f} at the end; main-process "
        f"CPU {ru.ru_utime + ru.ru_stime:.0f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="randomised training cohorts")
    parser.add_argument(
        "--confounded-seeds", type=int, default=3, help="training cohorts per confounded scenario"
    )
    parser.add_argument("--n-train", type=int, default=600)
    parser.add_argument("--n-test", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="randomised scenario only")
    parser.add_argument("--write", action="store_true", help="write docs/results.md")
    parser.add_argument("--timing", action="store_true")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")

    if args.timing:
        print(timing(args.n_train))
        return 0
    test = simulate_cohort(args.n_test, seed=424242)
    config = TrainConfig(n_repeats=1, n_boot=200)
    rows = []
    scenarios = SCENARIOS[:1] if args.quick else SCENARIOS
    for scn in scenarios:
        n_seeds = args.seeds if scn.assignment == "randomised" else args.confounded_seeds
        for seed in range(n_seeds):
            row = run_one(scn, seed, args.n_train, test, config)
            rows.append(row)
            print(
                f"{scn.name:>24} seed {seed}: gain {row['gain_captured']:.3f}, confident "
                f"{row['confident_share']:.3f}, agree {row['agreement_confident']:.3f} "
                f"({row['fit_seconds']:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    results = pd.DataFrame(rows)
    body = tables(results, args.n_train, args.n_test)
    print(body)
    if args.write:
        write_section(body + "\n\n" + EXPLANATION)
        print(f"wrote {RESULTS} ({SECTION})", file=sys.stderr)
    return 0


EXPLANATION = """\
Command: `python benchmarks/policy.py --write` (5 randomised training cohorts, 3 per
confounded scenario; the model is the default one, trained with one cross-validation
repeat, which gives the same fitted heads, calibration and ensemble as three).
How to read it (method in `docs/methods.md`, "Choosing a therapy and observational data"):

- *follow recommendation*: the therapy recommended; for `either`, the therapy with the
  higher predicted probability. *gain captured* = (that rate − the better of all-IFN-β and
  all-GA) / (oracle − the better single therapy). The next column gives `either` patients
  the therapy with the higher mean predicted probability instead (usually IFN-β).
- *confident*: share of patients recommended `ifnb` or `ga` (the 90% bootstrap interval of
  the difference excludes zero); *agree (confident)*: among them, the share whose
  recommended therapy is truly better; *agree (all)*: the same for the higher point
  estimate over all patients.
- *interval covers truth*: share of patients whose true difference lies in their 90%
  interval. It is well below 90%: the bootstrap measures how much the heads would change
  with another training cohort, not the bias of regularised heads (which shrink large
  differences), so read the interval as a stability check on the sign, not as a calibrated
  confidence interval of the size of the difference.
- Confounded scenarios: the test cohort is the whole population. The simulator's
  confounders (prior relapses, EDSS) are measured and are model inputs, which is the
  setting where adjustment can work; unmeasured confounding cannot be assessed this way.
  Here the unweighted heads already adjust for the confounders (they are inputs), so the
  recommendations are as good as on randomised cohorts, and inverse-propensity weighting
  (`--ipw`) only adds variance: it lowered the gain captured in both confounded scenarios
  above. It is an option for heads that fit poorly where the groups overlap little, not a
  default.
- *assignment warning*: training cohorts for which training warned that the therapy groups
  differ strongly (`docs/methods.md`); *fit time*: wall time of one training with
  `TrainConfig(n_repeats=1)` on the shared 2-core development machine (indicative only).
"""


if __name__ == "__main__":
    sys.exit(main())
