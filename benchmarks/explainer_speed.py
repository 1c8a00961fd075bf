"""Microseconds per row of the Shapley explainer (``HeadExplainer``), per therapy head.

Explains ``--n`` simulated patients (seed 7) with each head of a saved model (format 3,
with its stored background), in this process, BLAS on one thread. Per head it prints the
first call on the batch (after a 50-row warm-up: includes building the per-pattern maps
the batch needs) and the steady state (best of 3 further calls). With ``--against REV``
it also loads ``models/shapley.py`` of git revision ``REV`` (``git show``) and times it
on the same rows in the same process, and prints the largest difference of the values.

Usage::

    python benchmarks/explainer_speed.py --model DIR [--n 50000] [--against REV]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def load_revision(rev: str):
    """``models/shapley.py`` at git revision ``rev``, as a module."""
    text = subprocess.run(
        ["git", "show", f"{rev}:models/shapley.py"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "shapley_at_rev.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("shapley_at_rev", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["shapley_at_rev"] = module
    spec.loader.exec_module(module)
    return module


def build(mod, head):
    """``mod.HeadExplainer`` of a head (as ``attribution.head_explainer`` builds it)."""
    from cytoresp.models.attribution import head_background

    feats = head.pipeline.named_steps["features"]
    clf = head.pipeline.named_steps["model"]
    linear = mod.Linear(
        float(clf.linear_intercept_),
        np.asarray(clf.linear_coef_, dtype=np.float64),
        np.asarray(clf.linear_mean_, dtype=np.float64),
        np.asarray(clf.linear_scale_, dtype=np.float64),
    )
    return mod.HeadExplainer(
        mod.feature_spec(feats),
        mod.TreeTable.from_booster(clf.booster_),
        linear,
        head_background(head),
    )


def timings(explainer, Z, cens) -> tuple[float, float, np.ndarray]:
    explainer(Z[:50], cens[:50])
    start = time.perf_counter()
    _, phi = explainer(Z, cens)
    first = time.perf_counter() - start
    steady = min(_timed(explainer, Z, cens) for _ in range(3))
    return first / len(Z) * 1e6, steady / len(Z) * 1e6, phi


def _timed(explainer, Z, cens) -> float:
    start = time.perf_counter()
    explainer(Z, cens)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a saved model directory")
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--against", default=None, help="a git revision to compare with")
    args = parser.parse_args()

    from cytoresp.datasets import simulate_cohort
    from cytoresp.models import shapley
    from cytoresp.models.attribution import _censored_flags
    from cytoresp.models.response_model import ResponseModel
    from cytoresp.panels.read import read_panel

    model = ResponseModel.load(args.model)
    frame = model.model_frame(read_panel(simulate_cohort(args.n, seed=7).panel))
    versions = [("current", shapley)]
    if args.against:
        versions.insert(0, (args.against, load_revision(args.against)))
    print(f"{args.n:,} rows; us per row (first call, steady best of 3)")
    for t, head in model.heads.items():
        feats = head.pipeline.named_steps["features"]
        X = frame[head.input_columns]
        Z = np.asarray(feats.transform_inputs(X), dtype=np.float64)
        cens = _censored_flags(feats, X, Z)
        values = []
        for name, mod in versions:
            explainer = build(mod, head)
            first, steady, phi = timings(explainer, Z, cens)
            values.append(phi)
            n_trees = len(explainer.trees.trees)
            print(f"{t:6s} {name:10s} {n_trees:4d} trees  first {first:7.2f}  steady {steady:7.2f}")
        if len(values) == 2:
            print(
                f"{t:6s} max |current - {args.against}| = {np.abs(values[1] - values[0]).max():.1e}"
            )


if __name__ == "__main__":
    main()
