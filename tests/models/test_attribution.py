"""The fast exact path (HeadExplainer) behind every cytoresp contribution, on a hand-built head
whose exact values come from the reference enumeration (cytoresp.models.shapley)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cytoresp.models.attribution import head_background, snap_to_total
from cytoresp.models.shapley import (
    AFFINE,
    AXIS,
    INDICATOR,
    Background,
    FeatureSpec,
    HeadExplainer,
    Linear,
    TreeTable,
    interventional_shapley,
    shapley_matrix,
)

# Inputs: A, B, C, D, age. Features: log A, A/B, axis(A, B, C, D), age, A below LLOQ.
SPEC = FeatureSpec(
    kinds=np.array([AFFINE, AFFINE, AXIS, AFFINE, INDICATOR]),
    sources=(np.array([0]), np.array([0, 1]), np.array([0, 1, 2, 3]), np.array([4]), np.array([0])),
    weights=(np.ones(1), np.array([1.0, -1.0]), np.full(4, 0.25), np.ones(1), np.zeros(1)),
    centers=(np.empty(0), np.empty(0), np.array([1.0, 2.0, 0.5, 0.0]), np.empty(0), np.empty(0)),
    offsets=np.array([0.0, 0.3, 0.0, -40.0, 0.0]),
)
LINEAR = Linear(
    0.2,
    coef=np.array([0.5, -0.8, 1.1, 0.3, 0.4]),
    mean=np.array([1.0, -0.5, 0.1, 0.0, 0.2]),
    scale=np.array([2.0, 1.5, 0.7, 10.0, 0.4]),
)


def tree(feature, split, children=None, values=(-1.0, 1.0), missing_left=True):
    """A stump on ``feature``, or a depth-2 tree with ``children`` = (feature, split) pairs."""
    if children is None:
        return dict(
            left=[1, -1, -1],
            right=[2, -1, -1],
            missing=[1 if missing_left else 2, -1, -1],
            feature=[feature, -1, -1],
            split=[split, 0, 0],
            value=[0.0, *values],
        )
    (f1, s1), (f2, s2) = children
    return dict(
        left=[1, 3, 5, -1, -1, -1, -1],
        right=[2, 4, 6, -1, -1, -1, -1],
        missing=[1, 4, 5, -1, -1, -1, -1] if missing_left else [2, 3, 6, -1, -1, -1, -1],
        feature=[feature, f1, f2, -1, -1, -1, -1],
        split=[split, s1, s2, 0, 0, 0, 0],
        value=[0, 0, 0, -0.7, 0.2, 0.4, 1.3],
    )


TREES = TreeTable.from_arrays(
    [
        tree(1, 0.25),  # the ratio
        tree(1, -0.5, children=((2, 0.1), (3, 5.0))),  # ratio, then axis / age
        tree(2, 0.0, missing_left=False),  # the axis
        tree(4, 0.5, values=(0.0, 0.6)),  # the indicator
        tree(0, 1.5, children=((1, 0.0), (0, 3.0)), missing_left=False),
    ]
)


def background(n=15, seed=0) -> Background:
    rng = np.random.default_rng(seed)
    Z = rng.normal([1.0, 2.0, 0.5, 0.0, 40.0], [1.5, 1.5, 1.0, 1.0, 10.0], size=(n, 5))
    Z[rng.random(Z.shape) < 0.15] = np.nan
    cens = np.where(np.isnan(Z), np.nan, 0.0)
    cens[:, 0] = np.where(np.isnan(Z[:, 0]), np.nan, (Z[:, 0] < 0.0).astype(float))
    return Background(Z, cens, rng.uniform(0.5, 2.0, size=n))


def log_odds(Z, cens):
    """The head's log-odds in float64 (linear part + trees), the game's full coalition."""

    def value(f):
        return SPEC.value(f, lambda j: Z[:, j], lambda j: cens[:, j])

    g = LINEAR.intercept + sum(LINEAR.term(f, value(f)) for f in range(5))
    return g + sum(TREES.evaluate(t, value) for t in range(len(TREES.trees)))


values = st.floats(-4, 6, allow_nan=False) | st.just(np.nan)


@settings(max_examples=25, deadline=None)
@given(
    Z=arrays(np.float64, (6, 5), elements=values),
    flags=st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_fast_path_equals_the_enumeration_and_adds_up_on_random_panels(Z, flags):
    Z[:, 4] = np.where(np.isnan(Z[:, 4]), np.nan, 30.0 + 5.0 * Z[:, 4])  # age
    cens = np.where(np.isnan(Z), np.nan, 0.0)
    cens[:, 0] = np.where(np.isnan(Z[:, 0]), np.nan, np.asarray(flags, dtype=float))
    bg = background()
    base, phi = HeadExplainer(SPEC, TREES, LINEAR, bg)(Z, cens)
    ref_base, ref = interventional_shapley(Z, cens, bg, SPEC, TREES, LINEAR, fast=False)
    np.testing.assert_allclose(phi, ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(base, ref_base, rtol=0, atol=1e-12)
    # (a) exact additivity in float64: base + contributions = the log-odds
    np.testing.assert_allclose(base + phi.sum(axis=1), log_odds(Z, cens), rtol=0, atol=1e-10)


def test_a_linear_ratio_term_is_affine_in_each_constituent_per_missing_pattern():
    """The cached per-pattern maps: a row pattern first seen later reuses nothing wrong."""
    bg = background(seed=1)
    explainer = HeadExplainer(SPEC, TreeTable(()), LINEAR, bg)
    rng = np.random.default_rng(5)
    Z = rng.normal(1.0, 2.0, size=(200, 5))
    Z[rng.random(Z.shape) < 0.3] = np.nan
    cens = np.where(np.isnan(Z), np.nan, 0.0)
    _, first = explainer(Z[:100], cens[:100])
    _, both = explainer(Z, cens)  # maps of the first call reused
    _, ref = interventional_shapley(Z, cens, bg, SPEC, TreeTable(()), LINEAR, fast=False)
    np.testing.assert_allclose(both, ref, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(first, both[:100])
    assert len({p for f, p in explainer._maps if f == 2}) > 4  # many axis patterns seen


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_shapley_matrix_gives_the_permutation_definition(k):
    rng = np.random.default_rng(k)
    v = rng.normal(size=(3, 1 << k))
    expected = np.zeros((3, k))
    from itertools import permutations
    from math import factorial

    for order in permutations(range(k)):
        mask = 0
        for i in order:
            expected[:, i] += v[:, mask | (1 << i)] - v[:, mask]
            mask |= 1 << i
    np.testing.assert_allclose(v @ shapley_matrix(k), expected / factorial(k), atol=1e-12)


def test_a_model_saved_without_a_background_sample_is_explained_against_its_means():
    class OldHead:  # what a format-2 model loads as: means only
        background = np.array([1.0, 2.0, 0.5, 0.0, 40.0])
        background_sample = None

    bg = head_background(OldHead())
    assert bg.Z.shape == (1, 5) and bg.weights.tolist() == [1.0]
    np.testing.assert_array_equal(bg.Z[0], OldHead.background)
    Z = np.array([[3.0, 0.0, np.nan, 1.0, 55.0]])
    cens = np.zeros_like(Z)
    base, phi = HeadExplainer(SPEC, TREES, LINEAR, bg)(Z, cens)
    np.testing.assert_allclose(base, log_odds(bg.Z, bg.censored), atol=1e-12)
    np.testing.assert_allclose(base + phi.sum(axis=1), log_odds(Z, cens), atol=1e-10)


def test_snap_to_total_spreads_the_gap_by_size():
    out = snap_to_total(
        np.array([[1.0, -3.0, 0.0], [0.0, 0.0, 0.0]]), np.array([-2.000004, 0.00003])
    )
    np.testing.assert_allclose(
        out, [[0.999999, -3.000003, 0.0], [1e-5, 1e-5, 1e-5]], rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("gap", [1e-3, -0.5, 2.0])
def test_snap_to_total_refuses_a_gap_larger_than_rounding(gap):
    """An explainer that disagrees with the model must not be hidden by the snap."""
    with pytest.raises(RuntimeError, match="more than rounding"):
        snap_to_total(np.array([[1.0, -3.0]]), np.array([-2.0 + gap]))


def test_a_format_2_model_directory_loads_and_explains_against_its_means(model_dir, tmp_path):
    """Models saved before the background sample was stored still load and add up."""
    import json
    import shutil

    from cytoresp.models.persistence import MANIFEST, load_model_dir, sha256_file

    old = tmp_path / "old"
    shutil.copytree(model_dir, old)
    spec = json.loads((old / "model.json").read_text())
    for head in spec["heads"].values():
        del head["background_sample"]
    (old / "model.json").write_text(json.dumps(spec))
    manifest = json.loads((old / MANIFEST).read_text())
    manifest["format_version"] = 2
    manifest["files"]["model.json"] = sha256_file(old / "model.json")
    (old / MANIFEST).write_text(json.dumps(manifest))
    model = load_model_dir(old)
    from cytoresp.datasets import simulate_cohort

    frame = model.model_frame(simulate_cohort(20, seed=3).panel)
    for head in model.heads.values():
        assert head.background_sample is None
        base, contrib = head.cytokine_contributions(frame)
        np.testing.assert_allclose(
            base + contrib.sum(axis=1), head.calibrated_margin(frame), rtol=0, atol=1e-12
        )
        assert head_background(head).Z.shape == (1, contrib.shape[1])


@pytest.mark.parametrize("size", [0, -3, 2.5, True, "100"])
def test_explain_background_must_be_a_positive_integer(size):
    from cytoresp.errors import UsageError
    from cytoresp.train.config import TrainConfig

    with pytest.raises(UsageError, match="explain_background must be an integer >= 1"):
        TrainConfig(explain_background=size)
