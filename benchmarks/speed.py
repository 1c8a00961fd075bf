"""Scoring speed and memory of ``cytoresp predict`` at scale, next to the floors.

For each size in ``--rows`` (default 250,000 and 1,000,000 simulated patients, written as a
canonical panel CSV to a temporary folder), each in a fresh child process, in the same run:

- ``pandas floor``: ``pd.read_csv`` of the panel and ``to_csv`` of the same table: the
  cost of just reading and writing the file;
- ``cytoresp predict``: the command line, CSV -> CSV, both therapies (probabilities,
  recommendation, warnings), then with ``--explain 3``;
- ``predict --therapy ifnb``: one head, so no recommendation (largest size only);
- ``xgboost inplace_predict``: the boosters alone on the model's features, already built
  (not timed), on one thread: the therapy heads with trees, and those plus the merged trees
  of the bootstrap members (used only by the patient report since issue 15: the
  recommendation needs the heads and a few stored numbers, ``cytoresp.models.choice``).

Wall time includes the child's start (imports, model loading). Peak memory is the largest
resident set of the child and its children, sampled every 20 ms (psutil). The model is
trained on 600 simulated patients with the default configuration, or given with
``--model``.

Targets (2 cores): at the largest size, both therapies, ``predict`` <= 2x the floor and
``predict --explain 3`` <= 5x the floor; peak memory at 1M rows <= 1.3x at 250k rows.

``--cohort messy`` scores instead a cohort written the way instrument exports and
registries write them (issue 15, item 7): the same simulated patients, but instrument-style
headers with units (``IL-17A (pg/mL)``), brand names in the therapy column (``Avonex``,
``Copaxone``...), an extra column the model does not know, about 12% of each cytokine's
cells censored as text (``<0.41``, ``OOR <``, ``> 2500``), 1% extrapolated (``*12.3``)
and 5% missing (empty, ``NA``, ``N/A``). The floor reads and writes that same file.

Usage::

    nice python benchmarks/speed.py [--rows 250000 1000000] [--model DIR] [--write]
    nice python benchmarks/speed.py --cohort messy [--rows ...] [--write]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results.md"

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import replace_section  # noqa: E402

SECTION = "## Scoring speed"
SECTION_MESSY = "## Scoring speed on a messy cohort (issue 15)"
SECTION_RACE = "## Scoring speed on a real instrument export (issue 15)"
RACE_CSV = REPO / ".." / "shared" / "data" / "race_septic_shock_cytokines" / "RACE_CytokineData.csv"
BRANDS = {"ifnb": ("Avonex", "Rebif", "Betaferon", "interferon beta-1a"),
          "ga": ("Copaxone", "Glatopa", "glatiramer acetate")}
TARGET_PLAIN, TARGET_EXPLAIN, TARGET_MEMORY = 2.0, 5.0, 1.3

FLOOR = """
import sys, pandas as pd
df = pd.read_csv(sys.argv[1])
df.to_csv(sys.argv[2], index=False)
"""

INPLACE = """
import json, sys, time
import numpy as np
from cytoresp.panels.read import read_panel
from cytoresp.models.persistence import load_model_dir
model = load_model_dir(sys.argv[1])
frame = model.model_frame(read_panel(sys.argv[2]))
feats = {t: np.asarray(h.features.transform(frame[h.input_columns]), np.float32)
         for t, h in model.heads.items()}
def run(boosters):
    start = time.perf_counter()
    for t, b in boosters:
        b.inplace_predict(feats[t], predict_type="margin", missing=np.nan)
    return time.perf_counter() - start
heads = [(t, h.model.booster_) for t, h in model.heads.items() if h.model.booster_ is not None]
for _, b in heads:
    b.set_param({"nthread": 1})
print(json.dumps({"heads": run(heads), "n_heads": len(heads),
                  "n_trees": sum(b.num_boosted_rounds() for _, b in heads)}))
"""


def measure(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) of the process tree, stdout."""
    import psutil

    start = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        rss = 0
        try:
            procs = [proc, *proc.children(recursive=True)]
            for p in procs:
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak = max(peak, rss)
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    return seconds, peak / 2**20, out.decode()


def cytoresp_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("cytoresp")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cytoresp.cli"]


def messy_panel(panel, seed: int = 11):
    """The simulated panel rewritten as a messy export (see the module docstring)."""
    import numpy as np

    from cytoresp.datasets.simulator import ANALYTES
    from cytoresp.panels.registry import display_name

    rng = np.random.default_rng(seed)
    out = panel.copy()
    n = len(out)
    therapy = out["therapy"].to_numpy(dtype=object)
    for code, names in BRANDS.items():
        rows = np.flatnonzero(therapy == code)
        therapy[rows] = np.asarray(names, dtype=object)[rng.integers(len(names), size=rows.size)]
    out["therapy"] = therapy
    out.insert(2, "site_comment", np.where(rng.random(n) < 0.3, "re-run, see log", ""))
    renames = {}
    for spec in ANALYTES:
        cells = out[spec.id].to_numpy(dtype=object).copy()
        values = np.asarray(
            [float(c) if isinstance(c, str) and c[:1].isdigit() else np.nan for c in cells]
        )
        low = np.nanquantile(values, 0.10)
        u = rng.random(n)
        below = (values < low) & (u < 0.8)
        cells[below] = f"<{low:.3g}"
        cells[(values < low) & (u >= 0.8)] = "OOR <"
        high = np.nanquantile(values, 0.98)
        cells[values > high] = f"> {high:.4g}"
        flag = ~np.isnan(values) & (values >= low) & (values <= high) & (rng.random(n) < 0.01)
        cells[flag] = ["*" + c for c in cells[flag]]
        gone = rng.random(n)
        cells[gone < 0.05] = np.asarray(["", "NA", "N/A"], dtype=object)[
            rng.integers(3, size=int((gone < 0.05).sum()))
        ]
        out[spec.id] = cells
        renames[spec.id] = f"{display_name(spec.id)} (pg/mL)"
    return out.rename(columns=renames)


def race_panel(n: int):
    """The RACE septic-shock export as published (all columns, cells as written), tiled to
    ``n`` rows with unique sample ids."""
    import numpy as np
    import pandas as pd

    raw = pd.read_csv(RACE_CSV, dtype=str, keep_default_na=False)
    big = pd.concat([raw] * int(np.ceil(n / len(raw))), ignore_index=True).iloc[:n]
    big["sampleid"] = [f"S{i:07d}" for i in range(n)]
    return big


def get_model(model_dir: str | None, workdir: Path) -> Path:
    if model_dir:
        return Path(model_dir)
    from cytoresp.datasets import simulate_cohort
    from cytoresp.train.config import TrainConfig
    from cytoresp.train.fitting import fit_response_model

    path = workdir / "model"
    # one CV repeat and fewer bootstrap resamples of the *reports* only: the fitted heads
    # and the therapy-choice gate are those of the default configuration
    model, _ = fit_response_model(
        simulate_cohort(600, seed=0).panel, config=TrainConfig(n_repeats=1, n_boot=100)
    )
    model.save(path)
    return path


def to_markdown(rows: list[dict]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        lines.append("| " + " | ".join(str(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def write_section(text: str, path: Path = RESULTS, section: str = SECTION) -> None:
    """Replace (or append) this benchmark's section, keeping everything else."""
    replace_section(section, text, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--model", default=None, help="a model directory (default: train one)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", default=None, help="where the big files go (default: temp)")
    parser.add_argument("--cohort", choices=("simulated", "messy", "race"),
                        default="simulated",
                        help="messy: censored text cells, missing values, brand names; "
                        "race: the RACE septic-shock export of ../shared/data, tiled")
    parser.add_argument("--write", action="store_true", help="update docs/results.md")
    args = parser.parse_args(argv)

    import json

    from cytoresp.datasets import simulate_cohort

    if args.cohort == "race" and not RACE_CSV.exists():
        print(f"skipped: {RACE_CSV} not found", file=sys.stderr)
        return 0

    tmp = tempfile.TemporaryDirectory(dir=args.workdir)
    work = Path(tmp.name)
    model = get_model(args.model, work)
    load_before = os.getloadavg()
    rows: list[dict] = []
    peaks: dict[int, float] = {}
    ratios: dict[str, float] = {}
    sizes = sorted(args.rows)
    for n in sizes:
        src = work / f"panel_{n}.csv"
        if args.cohort == "race":
            panel = race_panel(n)
        else:
            panel = simulate_cohort(n, seed=args.seed).panel
        if args.cohort == "messy":
            panel = messy_panel(panel, seed=args.seed)
        panel.to_csv(src, index=False)
        mb = src.stat().st_size / 2**20
        with open(src, encoding="utf-8") as fh:
            n_cols = len(fh.readline().split(","))
        out = work / "out.csv"
        t_floor, m_floor, _ = measure([sys.executable, "-c", FLOOR, str(src), str(out)])
        base = [
            *cytoresp_cmd(),
            "predict",
            "--model",
            str(model),
            "--input",
            str(src),
            "--output",
            str(out),
        ]
        t_plain, m_plain, _ = measure(base)
        t_expl, m_expl, _ = measure([*base, "--explain", "3"])
        _, _, text = measure([sys.executable, "-c", INPLACE, str(model), str(src)])
        xgb = json.loads(text)
        peaks[n] = m_plain
        label = f"{n:,} rows ({mb:.0f} MB CSV)"

        def row(what, seconds, peak, label=label, n=n, t_floor=t_floor):
            rows.append(
                {
                    "input": label,
                    "run": what,
                    "seconds": f"{seconds:.2f}" if seconds < 10 else f"{seconds:.1f}",
                    "rows/s": f"{n / seconds:,.0f}",
                    "x floor": f"{seconds / t_floor:.2f}",
                    "peak MiB": "" if peak is None else f"{peak:.0f}",
                }
            )

        row("pandas floor (read_csv + to_csv)", t_floor, m_floor)
        row("`cytoresp predict`, both therapies", t_plain, m_plain)
        row("`cytoresp predict --explain 3`", t_expl, m_expl)
        if n == sizes[-1]:
            t_one, m_one, _ = measure([*base, "--therapy", "ifnb"])
            row("`cytoresp predict --therapy ifnb` (no recommendation)", t_one, m_one)
        row(
            f"xgboost inplace_predict, {xgb['n_heads']} heads ({xgb['n_trees']} trees, 1 thread)",
            xgb["heads"],
            None,
        )
        ratios = {"plain": t_plain / t_floor, "explain": t_expl / t_floor}
        print(to_markdown(rows[-(7 if n == sizes[-1] else 6) :]), flush=True)
    load_after = os.getloadavg()

    big, small = sizes[-1], sizes[0]
    mem_ratio = peaks[big] / peaks[small] if big != small else float("nan")

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    cohort_opt = "" if args.cohort == "simulated" else f"--cohort {args.cohort} "
    inputs = {
        "simulated": f"simulated panels (canonical CSV, {n_cols} columns)",
        "messy": f"simulated panels written as a messy export ({n_cols} columns: instrument "
                 "headers with units, brand names, an unknown column, ~12% censored text "
                 "cells, 1% extrapolated, 5% missing; see the module docstring)",
        "race": f"the RACE septic-shock cytokine export of ../shared/data as published "
                f"({n_cols} columns: 10 cytokines with their own header spellings, plate "
                "layout, clinical and follow-up columns), tiled to the row count with "
                "unique sample ids; the model's other cytokines are absent (scored as "
                "unknown)",
    }[args.cohort]
    text = [
        {"simulated": SECTION, "messy": SECTION_MESSY, "race": SECTION_RACE}[args.cohort],
        "",
        f"`nice python benchmarks/speed.py {cohort_opt}--rows "
        f"{' '.join(map(str, sizes))}`: {inputs}, model trained on 600 simulated "
        f"patients with the default configuration; each run a fresh process, wall time "
        f"including start-up and model loading; {platform.machine()}, {os.cpu_count()} CPUs "
        f"shared with other work (load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after), Python {platform.python_version()}.",
        "",
        to_markdown(rows),
        "",
        f"Targets at {big:,} rows: `predict` {ratios['plain']:.2f}x the floor (target <= "
        f"{TARGET_PLAIN:g}x: {verdict(ratios['plain'] <= TARGET_PLAIN)}); `--explain 3` "
        f"{ratios['explain']:.2f}x (target <= {TARGET_EXPLAIN:g}x: "
        f"{verdict(ratios['explain'] <= TARGET_EXPLAIN)}); peak memory {peaks[big]:.0f} MiB "
        f"vs {peaks[small]:.0f} MiB at {small:,} rows = {mem_ratio:.2f}x (target <= "
        f"{TARGET_MEMORY:g}x: {verdict(mem_ratio <= TARGET_MEMORY)}).",
    ]
    out = "\n".join(text)
    print(out)
    if args.write:
        write_section(out, section=text[0])
        print(f"\nwrote the section {text[0]!r} of {RESULTS}", file=sys.stderr)
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
