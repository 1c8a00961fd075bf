"""Interventional Shapley values of a therapy head on its raw explanation inputs.

The game: the players are the head's explanation inputs (per analyte its log2 value after
censoring substitution together with its censored-below flag, per clinical covariate its
value); the value of a coalition ``S`` for a patient ``x`` is the background-weighted mean
of the head's log-odds at the hybrid point that takes ``S`` from ``x`` and the rest from a
background row, ``v_x(S) = sum_b w_b g(x_S, b_{-S})`` (interventional / marginal
expectation, as shap's ``Independent`` masker and interventional TreeSHAP). Missing cells
are values like any other: a hybrid inherits NaN from whichever side it takes the cell, and
the head's own rules (NaN ratio, axis mean over the members present, the trees' default
directions, the linear part's mean imputation) apply to the hybrid.

The head's log-odds are a sum of components, each depending on few inputs: the linear
term of each engineered feature (its sources) and each depth-2 tree (the sources of its at
most three split features). Shapley values are linear in the game, and a component does
not depend on the other inputs (null players), so the exact Shapley values of the head are
the sums of the exact Shapley values of its components, each computed by enumerating the
coalitions of its own inputs ``J`` (``2^|J|`` background-averaged evaluations). Components
with the same input set are evaluated together.

Where ``|J|`` exceeds ``max_exact`` (trees splitting on two or three axis scores), the
component gets its **Owen value** with the a-priori unions given by its engineered
features' input sets (made disjoint in feature order): the unions play a Shapley game
among themselves and each union's value is shared by a Shapley game inside it. That costs
``2^(unions-1) * sum_k 2^|U_k|`` evaluations instead of ``2^|J|``, keeps exact additivity
and symmetry within a feature, and equals the Shapley value whenever the component is
additive across the unions.

Every value is float64 and exactly additive: ``base + phi.sum(axis=1)`` equals the head's
log-odds computed from the same trees in float64 (the full coalition is the patient's own
row), up to float64 rounding; :func:`head_shapley` then absorbs XGBoost's float32 sum
(about 1e-6) as :mod:`cytoresp.models.attribution` does.

Examples
--------
A toy component (players: two inputs of a ratio tree) with a one-row background:

>>> import numpy as np
>>> spec = FeatureSpec(kinds=np.array([AFFINE]), sources=(np.array([0, 1]),),
...                    weights=(np.array([1.0, -1.0]),), centers=(np.empty(0),),
...                    offsets=np.zeros(1), min_members=1)
>>> trees = TreeTable.from_arrays([dict(left=[1, -1, -1], right=[2, -1, -1],
...     missing=[1, -1, -1], feature=[0, -1, -1], split=[0.0, 0.0, 0.0],
...     value=[0.0, -1.0, 1.0])])   # +1 if z0 - z1 >= 0 else -1
>>> bg = Background(Z=np.array([[0.0, 1.0]]), censored=np.zeros((1, 2)), weights=np.ones(1))
>>> x = np.array([[1.0, 0.0]])    # ratio +1 (tree +1); background ratio -1 (tree -1)
>>> base, phi = interventional_shapley(x, np.zeros((1, 2)), bg, spec, trees)
>>> base.tolist(), phi.tolist()   # z0 up, z1 down: either alone flips the tree
([-1.0], [[1.0, 1.0]])
"""

from __future__ import annotations

import itertools
import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

#: Kinds of engineered features, as functions of the explanation inputs.
AFFINE, AXIS, INDICATOR = 0, 1, 2
#: Largest component input set enumerated exactly (2^12 coalitions); beyond it: Owen value.
DEFAULT_MAX_EXACT = 12
#: Hybrid points (rows x background rows x inputs) evaluated at once.
CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class FeatureSpec:
    """The engineered features as functions of the explanation inputs.

    Attributes
    ----------
    kinds : ndarray of shape (p,)
        :data:`AFFINE` (log, ratio, covariate: ``sum_j w_j z_j + offset``), :data:`AXIS`
        (mean of ``z_j - center_j`` over the members present, NaN below ``min_members``)
        or :data:`INDICATOR` (the analyte's censored-below flag).
    sources : tuple of p int arrays
        Input indices of each feature.
    weights : tuple of p float arrays
        Affine weights aligned with ``sources`` (unused for axes and indicators).
    centers : tuple of p float arrays
        Axis member centers aligned with ``sources`` (empty for other kinds).
    offsets : ndarray of shape (p,)
        Affine offsets.
    min_members : int
        Fewest members present for an axis score.
    """

    kinds: np.ndarray
    sources: tuple[np.ndarray, ...]
    weights: tuple[np.ndarray, ...]
    centers: tuple[np.ndarray, ...]
    offsets: np.ndarray
    min_members: int = 1

    def value(self, f: int, z: Callable[[int], np.ndarray], c: Callable[[int], np.ndarray]):
        """Feature ``f`` from input columns ``z(j)`` (log2 values) and ``c(j)`` (flags)."""
        src = self.sources[f]
        if self.kinds[f] == INDICATOR:
            return c(int(src[0]))
        if self.kinds[f] == AXIS:
            total: Any = 0.0
            count: Any = 0.0
            for j, center in zip(src, self.centers[f], strict=True):
                zj = z(int(j))
                present = ~np.isnan(zj)
                total = total + np.where(present, zj - center, 0.0)
                count = count + present
            with np.errstate(divide="ignore", invalid="ignore"):
                out = total / count
            return np.where(count < self.min_members, np.nan, out)
        out = 0.0
        for j, w in zip(src, self.weights[f], strict=True):
            out = out + w * z(int(j))
        return out + self.offsets[f]


def feature_spec(features: Any) -> FeatureSpec:
    """:class:`FeatureSpec` of a fitted ``PanelFeatures`` (columns of ``input_names_``).

    Examples
    --------
    >>> import pandas as pd
    >>> from cytoresp.features.builder import PanelFeatures
    >>> X = pd.DataFrame({"IFNG": [8.0, 2.0], "IL10": [2.0, 4.0]})
    >>> pf = PanelFeatures(ratios=[("IFNG", "IL10")], axes=None, covariates=None,
    ...                    analytes=["IFNG", "IL10"]).fit(X)
    >>> spec = feature_spec(pf)
    >>> [s.tolist() for s in spec.sources], [w.tolist() for w in spec.weights]
    ([[0], [1], [0, 1]], [[1.0], [1.0], [1.0, -1.0]])
    """
    names = list(features.get_feature_names_out())
    inputs = list(features.input_names_)
    index_of = {name: i for i, name in enumerate(inputs)}
    W = features.input_weights_.reindex(columns=inputs).to_numpy(dtype=np.float64)
    offsets = features.feature_offsets_.reindex(names).to_numpy(dtype=np.float64)
    kinds = np.full(len(names), AFFINE, dtype=np.intp)
    sources, weights, centers = [], [], []
    for f, name in enumerate(names):
        src = np.asarray([index_of[s] for s in features.feature_sources_[name]], dtype=np.intp)
        sources.append(src)
        weights.append(W[f, src])
        centers.append(np.empty(0))
    for name in features.nonlinear_features_:
        kinds[names.index(name)] = INDICATOR
    axes = features.axes_
    first = (len(features.analytes_) if features.include_log else 0) + len(features.ratio_.pairs_)
    for a, members in enumerate(axes.axes_.values()):
        f = first + a
        kinds[f] = AXIS
        sources[f] = np.asarray([axes.member_columns_[m] for m in members], dtype=np.intp)
        centers[f] = np.asarray(
            [axes.centers_[m] if axes.center else 0.0 for m in members], dtype=np.float64
        )
        weights[f] = np.full(len(members), 1.0 / len(members))
    return FeatureSpec(
        kinds, tuple(sources), tuple(weights), tuple(centers), offsets, int(axes.min_members)
    )


def balance_spec(spec: FeatureSpec) -> FeatureSpec:
    """The game on the engineered features themselves: feature ``f`` is player ``f``.

    Played with the background rows' engineered features (:func:`feature_values`), it has
    the same empty and full coalitions as the raw-input game (the background's mean
    log-odds and the patient's log-odds), so its Shapley values add up to the same total:
    the balance view (contributions by log-ratio, axis score, log cytokine, covariate).

    Examples
    --------
    >>> spec = FeatureSpec(kinds=np.array([AFFINE]), sources=(np.array([0, 1]),),
    ...                    weights=(np.array([1.0, -1.0]),), centers=(np.empty(0),),
    ...                    offsets=np.zeros(1))
    >>> balance_spec(spec).sources
    (array([0]),)
    """
    p = len(spec.kinds)
    return FeatureSpec(
        kinds=np.full(p, AFFINE, dtype=np.intp),
        sources=tuple(np.array([f], dtype=np.intp) for f in range(p)),
        weights=tuple(np.ones(1) for _ in range(p)),
        centers=tuple(np.empty(0) for _ in range(p)),
        offsets=np.zeros(p),
    )


def feature_values(spec: FeatureSpec, Z: np.ndarray, censored: np.ndarray) -> np.ndarray:
    """The engineered features (n, p) of rows of players, as the pipeline computes them."""
    cols = [
        np.broadcast_to(
            spec.value(f, lambda j: Z[:, j], lambda j: censored[:, j]), (len(Z),)
        ).astype(np.float64)
        for f in range(len(spec.kinds))
    ]
    return np.column_stack(cols) if cols else np.empty((len(Z), 0))


def explanation_inputs(
    features: Any, X: pd.DataFrame | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The players' values: ``(Z, censored)``, both float64 of shape (n, len(input_names_)).

    ``Z`` is :meth:`PanelFeatures.transform_inputs`; ``censored`` is 1.0 where an analyte
    cell is censored below (model-frame value <= 0), NaN where it is missing, 0.0 otherwise
    (covariates: 0.0), so that the below-LLOQ indicators are functions of the players.
    """
    Z = np.asarray(features.transform_inputs(X), dtype=np.float64)
    arr = np.asarray(X, dtype=np.float64)
    A = arr[:, features.analyte_indices_]
    cens = np.zeros_like(Z)
    p = A.shape[1]
    cens[:, :p] = np.where(np.isnan(A), np.nan, (A <= 0.0).astype(np.float64))
    return Z, cens


@dataclass(frozen=True)
class Background:
    """A weighted background sample of the players (rows of training inputs).

    Attributes
    ----------
    Z, censored : ndarray of shape (k, m)
        As from :func:`explanation_inputs`.
    weights : ndarray of shape (k,)
        Non-negative, normalised to sum to one on construction.
    """

    Z: np.ndarray
    censored: np.ndarray
    weights: np.ndarray = field(default_factory=lambda: np.empty(0))

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, dtype=np.float64)
        if w.size == 0:
            w = np.ones(len(self.Z))
        # equal weights are exactly 1/k, so that a saved and reloaded sample (whose
        # normalised weights sum to 1 only up to rounding) gives bit-identical values
        equal = w.size > 0 and bool(np.all(w == w[0]))
        w = np.full(w.size, 1.0 / w.size) if equal else w / w.sum()
        object.__setattr__(self, "weights", w)


def background_rows(n: int, size: int = 100, seed: int = 0) -> np.ndarray:
    """Positions of the rows :func:`background_sample` takes from ``n`` rows (sorted).

    Examples
    --------
    >>> background_rows(5, size=10).tolist()
    [0, 1, 2, 3, 4]
    """
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(size, n), replace=False))


def background_sample(features: Any, X: pd.DataFrame, size: int = 100, seed: int = 0) -> Background:
    """An equally weighted random sample of ``size`` training rows (all if fewer)."""
    rows = background_rows(len(X), size, seed)
    Z, cens = explanation_inputs(features, X.iloc[rows] if hasattr(X, "iloc") else X[rows])
    return Background(Z, cens)


@dataclass(frozen=True)
class TreeTable:
    """The trees of a booster as node arrays (children -1 at leaves), float32 splits."""

    trees: tuple[dict[str, np.ndarray], ...]

    @classmethod
    def from_arrays(cls, trees: Sequence[Mapping[str, Sequence[float]]]) -> TreeTable:
        """From per-tree lists ``left, right, missing, feature, split, value``."""
        out = []
        for t in trees:
            out.append(
                {
                    "left": np.asarray(t["left"], dtype=np.intp),
                    "right": np.asarray(t["right"], dtype=np.intp),
                    "missing": np.asarray(t["missing"], dtype=np.intp),
                    "feature": np.asarray(t["feature"], dtype=np.intp),
                    "split": np.asarray(t["split"], dtype=np.float32),
                    "value": np.asarray(t["value"], dtype=np.float32).astype(np.float64),
                }
            )
        return cls(tuple(out))

    @classmethod
    def from_booster(cls, booster: Any) -> TreeTable:
        """From an ``xgboost.Booster`` (its JSON model; None gives no trees)."""
        if booster is None:
            return cls(())
        model = json.loads(bytes(booster.save_raw(raw_format="json")))
        trees = []
        for t in model["learner"]["gradient_booster"]["model"]["trees"]:
            left = np.asarray(t["left_children"], dtype=np.intp)
            right = np.asarray(t["right_children"], dtype=np.intp)
            default_left = np.asarray(t["default_left"], dtype=bool)
            leaf = left < 0
            trees.append(
                {
                    "left": left,
                    "right": right,
                    "missing": np.where(default_left, left, right),
                    "feature": np.where(leaf, -1, np.asarray(t["split_indices"], dtype=np.intp)),
                    "split": np.where(leaf, 0.0, t["split_conditions"]),
                    "value": np.where(leaf, t["split_conditions"], 0.0),
                }
            )
        return cls.from_arrays(trees)

    def features_of(self, t: int) -> list[int]:
        """Engineered features tree ``t`` splits on, in node order."""
        feats = self.trees[t]["feature"]
        return list(dict.fromkeys(int(f) for f in feats[feats >= 0]))

    def evaluate(self, t: int, value: Callable[[int], np.ndarray]) -> np.ndarray:
        """Tree ``t`` at features ``value(f)`` (arrays of one shape), as XGBoost does."""
        tree = self.trees[t]
        internal = np.flatnonzero(tree["left"] >= 0)
        if internal.size == 0:
            return np.asarray(tree["value"][0])
        child = {}
        for nd in internal:
            x = np.asarray(value(int(tree["feature"][nd])), dtype=np.float64)
            goes_left = x.astype(np.float32) < tree["split"][nd]
            nxt = np.where(goes_left, tree["left"][nd], tree["right"][nd])
            child[int(nd)] = np.where(np.isnan(x), tree["missing"][nd], nxt)
        shape = next(iter(child.values())).shape
        node = np.zeros(shape, dtype=np.intp)
        for _ in range(internal.size):
            nxt = node
            for nd, ch in child.items():
                nxt = np.where(node == nd, ch, nxt)
            node = nxt
        return tree["value"][node]


@dataclass(frozen=True)
class Linear:
    """The linear part, ``intercept + sum_f coef_f (f - mean_f) / scale_f`` (NaN f -> mean_f)."""

    intercept: float
    coef: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    def term(self, f: int, x: np.ndarray) -> np.ndarray:
        """The linear term of feature ``f`` at its values ``x``."""
        mu = self.mean[f]
        return self.coef[f] * (np.where(np.isfinite(x), x, mu) - mu) / self.scale[f]


@dataclass
class Component:
    """Trees and linear terms that depend on the same inputs."""

    inputs: tuple[int, ...]
    trees: list[int] = field(default_factory=list)
    linear: list[int] = field(default_factory=list)

    def features(self, trees: TreeTable) -> list[int]:
        """Engineered features used, in order of first use."""
        out = list(self.linear)
        for t in self.trees:
            out += trees.features_of(t)
        return list(dict.fromkeys(out))


def components(spec: FeatureSpec, trees: TreeTable, linear: Linear | None) -> list[Component]:
    """Group trees and non-zero linear terms by the set of inputs they depend on."""
    groups: dict[tuple[int, ...], Component] = {}

    def inputs_of(feats: list[int]) -> tuple[int, ...]:
        return tuple(sorted({int(j) for f in feats for j in spec.sources[f]}))

    for t in range(len(trees.trees)):
        key = inputs_of(trees.features_of(t))
        groups.setdefault(key, Component(key)).trees.append(t)
    if linear is not None:
        for f in np.flatnonzero(linear.coef != 0.0):
            key = inputs_of([int(f)])
            groups.setdefault(key, Component(key)).linear.append(int(f))
    return list(groups.values())


def _weights(size: int) -> np.ndarray:
    """``c(s) = s! (size - s - 1)! / size!`` for s = 0 .. size - 1 (Shapley weights)."""
    return np.asarray(
        [
            math.factorial(s) * math.factorial(size - s - 1) / math.factorial(size)
            for s in range(size)
        ]
    )


def owen_values(
    game: Callable[[int], np.ndarray], unions: Sequence[Sequence[int]], n: int
) -> np.ndarray:
    """Owen values of a game on players ``0..k-1`` with a-priori ``unions`` (a partition).

    Parameters
    ----------
    game : callable
        ``game(mask)`` -> ndarray (n,), the value of the coalition whose players are the
        set bits of ``mask`` (int). Called once per coalition needed (callers cache).
    unions : sequence of sequences of int
        A partition of the players; one union gives the Shapley value.
    n : int
        Rows (length of each value).

    Returns
    -------
    ndarray of shape (n, k)

    Examples
    --------
    >>> v = {0: 0.0, 1: 1.0, 2: 0.0, 3: 3.0}   # v({0,1}) = 3: an interaction of 2
    >>> owen_values(lambda m: np.array([v[m]]), [[0, 1]], 1).tolist()
    [[2.0, 1.0]]
    """
    k = sum(len(u) for u in unions)
    out = np.zeros((n, k))
    m = len(unions)
    outer = _weights(m)
    for a, union in enumerate(unions):
        others = [u for b, u in enumerate(unions) if b != a]
        inner = _weights(len(union))
        for r in range(m):
            for chosen in combinations(others, r):
                base_mask = sum(1 << j for u in chosen for j in u)
                for size in range(len(union) + 1):
                    for T in combinations(union, size):
                        v = game(base_mask | sum(1 << j for j in T))
                        for i in union:
                            if i in T:
                                out[:, i] += outer[r] * inner[size - 1] * v
                            else:
                                out[:, i] -= outer[r] * inner[size] * v
    return out


def _unions(
    comp: Component, spec: FeatureSpec, trees: TreeTable, max_exact: int
) -> list[list[int]]:
    """One union (Shapley) if small enough, else the features' input sets made disjoint."""
    pos = {j: i for i, j in enumerate(comp.inputs)}
    if len(comp.inputs) <= max_exact:
        return [list(range(len(comp.inputs)))]
    seen: set[int] = set()
    out = []
    for f in comp.features(trees):
        u = [pos[int(j)] for j in spec.sources[f] if int(j) not in seen]
        seen.update(int(j) for j in spec.sources[f])
        if u:
            out.append(u)
    return out


def interventional_shapley(
    Z: np.ndarray,
    censored: np.ndarray,
    background: Background,
    spec: FeatureSpec,
    trees: TreeTable,
    linear: Linear | None = None,
    *,
    max_exact: int = DEFAULT_MAX_EXACT,
    fast: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Base value and per-input Shapley (or Owen, see module doc) values of the log-odds.

    Parameters
    ----------
    Z, censored : ndarray of shape (n, m)
        The patients' players (:func:`explanation_inputs`).
    background : Background
        The background sample the absent players are drawn from.
    spec : FeatureSpec
        How engineered features are computed from the players.
    trees : TreeTable
        The boosted trees (on the engineered features).
    linear : Linear, optional
        The linear part (its intercept goes into the base value).
    max_exact : int
        Largest component input set computed exactly; larger ones get Owen values.
    fast : bool
        Aggregate the background (no per-row background loop) for the components that
        allow it (:func:`aggregable`); False evaluates every hybrid point.

    Returns
    -------
    base : ndarray of shape (n,)
        ``E_b[g(b)]`` over the background (the same on every row).
    phi : ndarray of shape (n, m)
        ``base + phi.sum(axis=1)`` equals the model's log-odds at ``Z`` (float64).
    """
    Z = np.asarray(Z, dtype=np.float64)
    censored = np.asarray(censored, dtype=np.float64)
    n, m = Z.shape
    phi = np.zeros((n, m))
    base = 0.0 if linear is None else float(linear.intercept)
    for comp in components(spec, trees, linear):
        J = np.asarray(comp.inputs, dtype=np.intp)
        unions = _unions(comp, spec, trees, max_exact)
        step = max(1, CHUNK_CELLS // max(1, len(background.weights) * max(len(J), 1)))
        for lo in range(0, n, step):
            rows = slice(lo, lo + step)
            kind = _AggregatedGame if fast and aggregable(comp, spec, trees) else _ComponentGame
            game = kind(comp, spec, trees, linear, background, Z[rows], censored[rows])
            phi[rows, J] += owen_values(game, unions, len(game.xz))
            if lo == 0:
                base += float(game(0)[0])
    return np.full(n, base), phi


class _ComponentGame:
    """``mask -> v(S)`` for one component on a block of rows (cached per coalition)."""

    def __init__(
        self,
        comp: Component,
        spec: FeatureSpec,
        trees: TreeTable,
        linear: Linear | None,
        background: Background,
        Z: np.ndarray,
        censored: np.ndarray,
    ) -> None:
        J = np.asarray(comp.inputs, dtype=np.intp)
        self.comp, self.spec, self.trees, self.linear = comp, spec, trees, linear
        self.xz, self.xc = Z[:, J], censored[:, J]
        self.bz, self.bc = background.Z[:, J], background.censored[:, J]
        self.bw = background.weights
        self.pos = {int(j): i for i, j in enumerate(J)}
        self.features = comp.features(trees)
        self.cache: dict[int, np.ndarray] = {}

    def __call__(self, mask: int) -> np.ndarray:
        if mask not in self.cache:
            take = np.asarray([(mask >> i) & 1 for i in range(len(self.pos))], dtype=bool)
            hz = np.where(take, self.xz[:, None, :], self.bz[None, :, :])
            hc = np.where(take, self.xc[:, None, :], self.bc[None, :, :])
            pos = self.pos
            fv = {
                f: self.spec.value(f, lambda j: hz[..., pos[j]], lambda j: hc[..., pos[j]])
                for f in self.features
            }
            total = np.zeros(hz.shape[:2])
            for t in self.comp.trees:
                total = total + self.trees.evaluate(t, fv.__getitem__)
            for f in self.comp.linear:
                total = total + self.linear.term(f, fv[f])
            self.cache[mask] = total @ self.bw
        return self.cache[mask]


def _left_bound(split: np.float32) -> float:
    """The float64 ``t`` with ``float32(h) < split`` iff ``h < t`` (ties aside)."""
    below = np.nextafter(np.float32(split), np.float32(-np.inf))
    return (float(below) + float(split)) / 2.0


def _paths(tree: dict[str, np.ndarray]) -> list[tuple[float, list[tuple[int, bool]]]]:
    """``(leaf value, [(node, goes left), ...])`` for every leaf of a tree."""
    out = []
    stack: list[tuple[int, list[tuple[int, bool]]]] = [(0, [])]
    while stack:
        node, path = stack.pop()
        if tree["left"][node] < 0:
            out.append((float(tree["value"][node]), path))
            continue
        stack.append((int(tree["left"][node]), [*path, (node, True)]))
        stack.append((int(tree["right"][node]), [*path, (node, False)]))
    return out


def aggregable(comp: Component, spec: FeatureSpec, trees: TreeTable) -> bool:
    """Whether :class:`_AggregatedGame` applies: paths of <= 2 splits, and no tree split on
    an axis score with ``min_members > 1``."""
    if spec.min_members > 1 and any(
        spec.kinds[f] == AXIS for t in comp.trees for f in trees.features_of(t)
    ):
        return False
    return all(len(path) <= 2 for t in comp.trees for _, path in _paths(trees.trees[t]))


class _AggregatedGame(_ComponentGame):
    """The same game without a loop over background rows (paths of <= 2 splits).

    For a coalition ``S`` every split separates into a patient part and a background part:
    an affine feature (or an indicator, affine in the censored flags) is
    ``f = p_S(x) + q_{-S}(b)``, so ``float32(f) < s`` is ``q(b) < t - p(x)`` (``t``: the
    float64 bound of the float32 split); an axis score is ``(s_x + r_b) / (n_x + n_b)``
    (sums of ``z - center`` and counts of the members present on each side), so the split
    is ``r_b - t n_b < t n_x - s_x``. A leaf's background share is then a weighted count of
    background rows below one or two thresholds (sorted values, a cumulative 2-D table),
    by class of the rows' missingness at each split. Linear terms use the background sums
    directly. Equal to :class:`_ComponentGame` except where a hybrid feature rounds
    exactly onto a split.
    """

    def _affine(self, f: int, take: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, b = (self.xc, self.bc) if self.spec.kinds[f] == INDICATOR else (self.xz, self.bz)
        weights = [1.0] if self.spec.kinds[f] == INDICATOR else self.spec.weights[f]
        p, q = np.zeros(len(x)), np.zeros(len(b))
        for j, w in zip(self.spec.sources[f], weights, strict=True):
            i = self.pos[int(j)]
            if take[i]:
                p = p + w * x[:, i]
            else:
                q = q + w * b[:, i]
        return p, q + self.spec.offsets[f]

    def _axis(self, f: int, take: np.ndarray):
        """``(s_x, n_x, r_b, n_b)``: sums of ``z - center`` and counts present, each side."""
        sx, nx = np.zeros(len(self.xz)), np.zeros(len(self.xz))
        rb, nb = np.zeros(len(self.bz)), np.zeros(len(self.bz))
        for j, c in zip(self.spec.sources[f], self.spec.centers[f], strict=True):
            i = self.pos[int(j)]
            col = self.xz[:, i] if take[i] else self.bz[:, i]
            present = ~np.isnan(col)
            part = np.where(present, col - c, 0.0)
            if take[i]:
                sx, nx = sx + part, nx + present
            else:
                rb, nb = rb + part, nb + present
        return sx, nx, rb, nb

    def __call__(self, mask: int) -> np.ndarray:
        if mask in self.cache:
            return self.cache[mask]
        take = np.asarray([(mask >> i) & 1 for i in range(len(self.pos))], dtype=bool)
        total = np.zeros(len(self.xz))
        for f in self.comp.linear:
            total = total + self._linear(f, take)
        for t in self.comp.trees:
            tree = self.trees.trees[t]
            nodes = {}
            for value, path in _paths(tree):
                if value == 0.0:
                    continue
                for node, _ in path:
                    if node not in nodes:
                        nodes[node] = self._split(tree, node, take)
                total = total + value * self._share(tree, path, nodes)
        self.cache[mask] = total
        return total

    def _linear(self, f: int, take: np.ndarray) -> np.ndarray:
        """Background mean of ``coef (f - mean) / scale`` (0 where the hybrid f is missing)."""
        slope = self.linear.coef[f] / self.linear.scale[f]
        mu, bw = self.linear.mean[f], self.bw
        if self.spec.kinds[f] != AXIS:
            p, q = self._affine(f, take)
            ok = ~np.isnan(q)
            inner = bw[ok].sum() * (p - mu) + bw[ok] @ q[ok]
            return np.where(np.isnan(p), 0.0, slope * inner)
        sx, nx, rb, nb = self._axis(f, take)
        out = np.zeros(len(sx))
        for c in np.unique(nb):
            g = nb == c
            n = nx + c
            with np.errstate(divide="ignore", invalid="ignore"):
                val = (bw[g].sum() * sx + bw[g] @ rb[g]) / n - mu * bw[g].sum()
            out = out + np.where(n >= self.spec.min_members, slope * val, 0.0)
        return out

    def _split(self, tree, node: int, take: np.ndarray):
        """``(q_b, tau_x, missing_x, missing_b, and_rule)``: left iff ``q_b < tau_x``."""
        f = int(tree["feature"][node])
        t = _left_bound(tree["split"][node])
        if self.spec.kinds[f] == AXIS:  # min_members == 1: missing iff no member either side
            sx, nx, rb, nb = self._axis(f, take)
            return rb - t * nb, t * nx - sx, nx == 0, nb == 0, True
        p, q = self._affine(f, take)
        return q, t - p, np.isnan(p), np.isnan(q), False

    def _share(self, tree, path, splits) -> np.ndarray:
        """Background share of rows whose hybrid follows ``path``, per patient."""
        if not path:
            return np.ones(len(self.xz))
        nodes = []
        for node, left in path:
            q, tau, xm, bm, and_rule = splits[node]
            default = bool(tree["missing"][node] == tree["left"][node]) == left
            nodes.append((q, tau, xm, bm, and_rule, left, float(default)))
        out = np.zeros(len(self.xz))
        for cls in itertools.product([False, True], repeat=len(nodes)):
            rows = np.ones(len(self.bw), dtype=bool)
            for (_, _, _, bm, *_), c in zip(nodes, cls, strict=True):
                rows &= bm == c
            if not rows.any():
                continue
            const = [
                (xm & c) if and_rule else (xm | c)
                for (_, _, xm, _, and_rule, _, _), c in zip(nodes, cls, strict=True)
            ]
            out = out + _class_share(
                [(q[rows], tau, left, d) for q, tau, _, _, _, left, d in nodes],
                const,
                self.bw[rows],
            )
        return out


def _leaf_paths(tree: dict[str, np.ndarray]) -> list[tuple[float, list[tuple]]]:
    """``(leaf value, [(feature, float32 split, missing goes left, goes left), ...])`` of
    every leaf with a non-zero value."""
    out = []
    for value, path in _paths(tree):
        if value == 0.0:
            continue
        steps = []
        for node, left in path:
            f = int(tree["feature"][node])
            default_left = bool(tree["missing"][node] == tree["left"][node])
            steps.append((f, np.float32(tree["split"][node]), default_left, left))
        out.append((value, steps))
    return out


@dataclass
class _Node:
    """One split under one coalition: which side of it the hybrid takes.

    ``kind`` ``"bg"``: the feature comes from the background row alone (``left_b``, per
    background row); ``"x"``: from the patient alone (``left_x``, per row); ``"mixed"``:
    left iff ``q(b) < tau(x)``, missing when (``and_rule``: both, else either of) ``xm`` /
    ``bm``; ``order`` sorts ``q`` (NaN last), ``rank`` is each row's ``searchsorted``.
    """

    kind: str
    default_left: bool
    left_b: np.ndarray | None = None
    left_x: np.ndarray | None = None
    q: np.ndarray | None = None
    xm: np.ndarray | None = None
    bm: np.ndarray | None = None
    and_rule: bool = False
    order: np.ndarray | None = None
    pos: np.ndarray | None = None
    rank: np.ndarray | None = None


class _TreeGame(_AggregatedGame):
    """:class:`_AggregatedGame` for trees, organised for many rows (HeadExplainer).

    The same values; the work is shared: a split is resolved once per coalition of its
    feature's own inputs (``_Node``, cached across coalitions, leaves and trees of the
    group), a split whose feature comes wholly from the patient or wholly from the
    background needs no sorting at all, and a mixed split's ``searchsorted`` over the
    sorted background is done once per row and reused by every leaf below it.
    """

    def __init__(self, comp, spec, trees, linear, background, Z, censored, paths=None) -> None:
        super().__init__(comp, spec, trees, linear, background, Z, censored)
        self.nodes: dict[tuple, _Node] = {}
        if paths is None:
            paths = [leaf for t in comp.trees for leaf in _leaf_paths(trees.trees[t])]
        self.paths = paths

    def _node(self, f: int, split: np.float32, default_left: bool, take: np.ndarray) -> _Node:
        src = [self.pos[int(j)] for j in self.spec.sources[f]]
        sub = tuple(bool(take[i]) for i in src)
        key = (f, float(split), default_left, sub)
        if key in self.nodes:
            return self.nodes[key]
        if not any(sub) or all(sub):
            patient = all(sub)
            z, c = (self.xz, self.xc) if patient else (self.bz, self.bc)
            fv = np.asarray(
                self.spec.value(f, lambda j: z[:, self.pos[j]], lambda j: c[:, self.pos[j]]),
                dtype=np.float64,
            )
            left = np.where(np.isnan(fv), default_left, fv.astype(np.float32) < split)
            node = _Node("x" if patient else "bg", default_left)
            if patient:
                node.left_x = left
            else:
                node.left_b = left
        else:
            t = _left_bound(split)
            if self.spec.kinds[f] == AXIS:
                sx, nx, rb, nb = self._axis(f, take)
                q, tau, xm, bm, and_rule = rb - t * nb, t * nx - sx, nx == 0, nb == 0, True
            else:
                p, q = self._affine(f, take)
                tau, xm, bm, and_rule = t - p, np.isnan(p), np.isnan(q), False
            order = np.argsort(q, kind="stable")  # NaN last
            pos = np.empty(len(q), dtype=np.intp)
            pos[order] = np.arange(len(q))
            rank = np.searchsorted(q[order], np.where(xm | np.isnan(tau), 0.0, tau), side="left")
            node = _Node(
                "mixed",
                default_left,
                q=q,
                xm=xm,
                bm=bm,
                and_rule=and_rule,
                order=order,
                pos=pos,
                rank=rank,
            )
        self.nodes[key] = node
        return node

    def __call__(self, mask: int) -> np.ndarray:
        if mask in self.cache:
            return self.cache[mask]
        take = np.asarray([(mask >> i) & 1 for i in range(len(self.pos))], dtype=bool)
        total = np.zeros(len(self.xz))
        for value, steps in self.paths:
            row = None
            u = self.bw
            mixed = []
            for f, split, default_left, left in steps:
                node = self._node(f, split, default_left, take)
                if node.kind == "x":
                    ok = node.left_x == left
                    row = ok if row is None else row & ok
                elif node.kind == "bg":
                    u = u * (node.left_b == left)
                else:
                    mixed.append((node, left))
            share = self._mixed_share(mixed, u)
            if row is not None:
                share = share * row
            total = total + value * share
        self.cache[mask] = total
        return total

    def _mixed_share(self, mixed: list[tuple[_Node, bool]], u: np.ndarray):
        """``sum_b u_b prod_k [hybrid follows node k's direction]`` per row."""
        if not mixed:
            return np.full(len(self.xz), float(u.sum()))
        out = 0.0
        for cls in itertools.product([False, True], repeat=len(mixed)):
            w = u
            for (node, _), c in zip(mixed, cls, strict=True):
                w = w * (node.bm == c)
            total = float(w.sum())
            if total == 0.0:
                continue
            # per row: is node k missing for this class of background rows
            const = [
                (node.xm & c) if node.and_rule else (node.xm | c)
                for (node, _), c in zip(mixed, cls, strict=True)
            ]
            d = [float(node.default_left == left) for node, left in mixed]
            if len(mixed) == 1:
                (node, left), c0 = mixed[0], const[0]
                cum = np.concatenate([[0.0], np.cumsum(w[node.order])])
                below = cum[node.rank]
                count = below if left else total - below
                out = out + np.where(c0, d[0] * total, count)
                continue
            (n1, l1), (n2, l2) = mixed
            c1, c2 = const
            cum1 = np.concatenate([[0.0], np.cumsum(w[n1.order])])
            cum2 = np.concatenate([[0.0], np.cumsum(w[n2.order])])
            f1, f2 = cum1[n1.rank], cum2[n2.rank]
            table = np.zeros((len(w) + 1, len(w) + 1))
            table[n1.pos + 1, n2.pos + 1] = w
            table = table.cumsum(axis=0).cumsum(axis=1)
            g = table[n1.rank, n2.rank]
            k1 = f1 if l1 else total - f1
            k2 = f2 if l2 else total - f2
            if l1 and l2:
                k12 = g
            elif l1:
                k12 = f1 - g
            elif l2:
                k12 = f2 - g
            else:
                k12 = total - f1 - f2 + g
            out = out + np.where(
                c1 & c2,
                d[0] * d[1] * total,
                np.where(c1, d[0] * k2, np.where(c2, d[1] * k1, k12)),
            )
        return np.broadcast_to(out, (len(self.xz),)) if np.ndim(out) == 0 else out


def _below(sorted_q: np.ndarray, cum: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Weighted count of values < tau (``cum``: cumulative weights, leading 0)."""
    return cum[np.searchsorted(sorted_q, tau, side="left")]


def _class_share(nodes, const: list[np.ndarray], w: np.ndarray) -> np.ndarray:
    """Share of one missingness class of background rows following a path (1 or 2 splits)."""
    total = w.sum()
    if len(nodes) == 1:
        (q, tau, left, d), c = nodes[0], const[0]
        order = np.argsort(q, kind="stable")
        cum = np.concatenate([[0.0], np.cumsum(w[order])])
        below = _below(q[order], cum, np.where(c, 0.0, tau)) if q.size else 0.0
        count = below if left else total - below
        return np.where(c, d * total, count)
    (q1, t1, l1, d1), (q2, t2, l2, d2) = nodes
    c1, c2 = const
    o1 = np.argsort(q1, kind="stable")
    o2 = np.argsort(q2, kind="stable")
    cum1 = np.concatenate([[0.0], np.cumsum(w[o1])])
    cum2 = np.concatenate([[0.0], np.cumsum(w[o2])])
    safe1, safe2 = np.where(c1, 0.0, t1), np.where(c2, 0.0, t2)
    f1 = _below(q1[o1], cum1, safe1)
    f2 = _below(q2[o2], cum2, safe2)
    # 2-D: rows sorted by q1; table[i, r] = weight of the first i rows with rank2 < r
    rank2 = np.empty(len(q2), dtype=np.intp)
    rank2[o2] = np.arange(len(q2))
    onehot = np.zeros((len(q1) + 1, len(q2) + 1))
    onehot[np.arange(1, len(q1) + 1), rank2[o1] + 1] = w[o1]
    table = onehot.cumsum(axis=0).cumsum(axis=1)
    i = np.searchsorted(q1[o1], safe1, side="left")
    r = np.searchsorted(q2[o2], safe2, side="left")
    g = table[i, r]
    k1 = f1 if l1 else total - f1
    k2 = f2 if l2 else total - f2
    both = {(True, True): g, (True, False): f1 - g, (False, True): f2 - g}
    k12 = both.get((l1, l2), total - f1 - f2 + g)
    return np.where(c1 & c2, d1 * d2 * total, np.where(c1, d1 * k2, np.where(c2, d2 * k1, k12)))


class _Ranker:
    """``searchsorted(qs, tau, side="left")`` for many ``tau``, via a uniform grid.

    ``qs`` is sorted with NaN last (only the finite part counts, as in ``searchsorted``
    for finite ``tau``). Each ``tau`` gets the rank at the lower edge of its grid cell,
    checked exactly (``qs[r - 1] < tau <= qs[r]``); the few rows that fail (a value of
    ``qs`` in their cell, or rounding at an edge) go through ``searchsorted``. The same
    ranks, about five times faster than a binary search per row.
    """

    def __init__(self, qs: np.ndarray, cells_per_value: int = 16) -> None:
        finite = qs[~np.isnan(qs)]
        self.qs = qs
        self.L = L = len(finite)
        self.pad = np.concatenate([[-np.inf], finite, [np.inf]])
        self.pad_next = self.pad[1:].copy()
        self.grid = False
        if L >= 2 and np.isfinite(finite).all() and finite[-1] > finite[0]:
            G = cells_per_value * L
            self.lo, self.G = float(finite[0]), G
            self.inv = G / (float(finite[-1]) - float(finite[0]))
            edges = self.lo + np.arange(G + 1) / self.inv  # cell c: [edge c, edge c+1)
            # index 0: below lo; 1 + c: cell c; G + 1: at or above hi
            self.start = np.concatenate(
                [[0], np.searchsorted(finite, edges[:G], side="left"), [L]]
            ).astype(np.intp)
            self.grid = True

    def __call__(self, tau: np.ndarray) -> np.ndarray:
        if not self.grid:
            return np.searchsorted(self.qs, tau, side="left")
        c = tau - self.lo
        c *= self.inv
        np.clip(c, -1.0, self.G, out=c)
        c += 1.0
        r = self.start[c.astype(np.intp)]
        wrong = self.pad[r] >= tau  # tau is never NaN here
        wrong |= tau > self.pad_next[r]
        bad = np.flatnonzero(wrong)
        if bad.size:
            r[bad] = np.searchsorted(self.qs, tau[bad], side="left")
        return r


class _LeafPlan:
    """A leaf group's coalition values as table lookups (background part precomputed).

    For a coalition ``S`` a split on feature ``f`` is decided by the patient alone (all of
    ``f``'s inputs in ``S``: a per-row flag), by the background row alone (none in ``S``: a
    per-background-row flag) or by both (mixed). A mixed split sends background row ``b``
    left iff ``q(b) < tau(x)`` (:class:`_AggregatedGame`), so it only depends on the
    patient through ``rank(x)``, the number of sorted ``q`` below ``tau(x)`` (plus one state
    for a patient whose side is missing). A leaf's background share under ``S`` is then
    ``T_S[rank_1(x), rank_2(x)]`` (at most two mixed splits) times the patient-side flags,
    where the table ``T_S = A_1 diag(w u) A_2^T`` (``A``: which background rows follow the
    leaf's direction at each rank, ``u``: the background-only splits) depends on the
    background alone and is built once. Per row: one ``searchsorted`` per mixed split and
    coalition, one gather per leaf and coalition, one product with the Shapley matrix.
    The same values as :class:`_TreeGame` (sums in another order).
    """

    #: Most patient-side nodes in a group for one table over their joint state.
    JOINT_MAX = 8

    def __init__(self, key, paths, spec: FeatureSpec, background: Background) -> None:
        self.J = np.asarray(key, dtype=np.intp)
        self.k = k = len(key)
        self.spec = spec
        pos = {int(j): i for i, j in enumerate(key)}
        self.pos = pos
        bz, bc, bw = background.Z[:, self.J], background.censored[:, self.J], background.weights
        B = len(bw)
        self.B = B
        self.xnodes: dict[tuple, int] = {}  # (f, split, default_left) -> index
        self.mnodes: dict[tuple, int] = {}  # (f, split, default_left, sub) -> index
        self.mkeys: list[tuple] = []
        self.mixed_info: list[tuple] = []  # per mixed node: see _mixed
        self.terms: list[list] = [[] for _ in range(1 << k)]
        bg_left: dict[tuple, np.ndarray] = {}
        for mask in range(1 << k):
            take = np.asarray([(mask >> i) & 1 for i in range(k)], dtype=bool)
            for value, steps in paths:
                u = bw
                xs, ms = [], []
                for f, split, default_left, left in steps:
                    src = [pos[int(j)] for j in spec.sources[f]]
                    sub = tuple(bool(take[i]) for i in src)
                    if all(sub):
                        nkey = (f, float(split), default_left)
                        if nkey not in self.xnodes:
                            self.xnodes[nkey] = len(self.xnodes)
                        xs.append((self.xnodes[nkey], left))
                    elif not any(sub):
                        bkey = (f, float(split), default_left)
                        if bkey not in bg_left:
                            fv = np.asarray(
                                spec.value(f, lambda j: bz[:, pos[j]], lambda j: bc[:, pos[j]]),
                                dtype=np.float64,
                            )
                            bg_left[bkey] = np.where(
                                np.isnan(fv), default_left, fv.astype(np.float32) < split
                            )
                        u = u * (bg_left[bkey] == left)
                    else:
                        nkey = (f, float(split), default_left, sub)
                        if nkey not in self.mnodes:
                            self.mnodes[nkey] = len(self.mnodes)
                            self.mkeys.append(nkey)
                            self.mixed_info.append(self._mixed(f, split, default_left, sub, bz))
                        ms.append((self.mnodes[nkey], left))
                if not ms:
                    table = float(u.sum())
                elif len(ms) == 1:
                    ((m1, l1),) = ms
                    table = self._follows(m1, l1) @ u
                else:
                    (m1, l1), (m2, l2) = ms
                    table = ((self._follows(m1, l1) * u) @ self._follows(m2, l2).T).ravel()
                self.terms[mask].append((value, xs, [m for m, _ in ms], table))
        self.C = shapley_matrix(k)
        self.merged = [self._merge(terms) for terms in self.terms]
        # The coalitions' parts that depend on the patient-side splits only (and the
        # constants) become tables of Shapley values (states x k) per set of such nodes,
        # summed over the coalitions: one gather per set and row instead of one per
        # coalition; with few patient-side nodes, one table over their joint state.
        nx = len(self.xnodes)
        self.joint = nx <= self.JOINT_MAX
        self.phi_const = np.zeros(k)
        by_set: dict[tuple[int, ...], np.ndarray] = {}
        self.mixed_masks, mixed_tables = [], []
        for mask, (const, tables) in enumerate(self.merged):
            self.phi_const += const * self.C[mask]
            rest = []
            for nodes, table in tables:
                if all(node < 0 for node in nodes):
                    part = table[:, None] * self.C[mask]
                    by_set[nodes] = by_set[nodes] + part if nodes in by_set else part
                else:
                    rest.append((nodes, table))
            if rest:
                self.mixed_masks.append(mask)
                mixed_tables.append(rest)
        if self.joint:
            joint = np.arange(1 << nx)
            bits = {-1 - i: (joint >> i) & 1 for i in range(nx)}
            phi_x = np.zeros((1 << nx, k)) + self.phi_const
            for nodes, part in by_set.items():
                idx = bits[nodes[0]]
                for node in nodes[1:]:
                    idx = idx * 2 + bits[node]
                phi_x += part[idx]
            self.phi_xT = np.ascontiguousarray(phi_x.T)
        else:
            self.x_sets = [(nodes, np.ascontiguousarray(part.T)) for nodes, part in by_set.items()]
        self.mixed_tables = mixed_tables
        self.C_mixed = np.ascontiguousarray(self.C[self.mixed_masks].T)

    def _merge(self, terms: list) -> tuple[float, list[tuple[tuple[int, ...], np.ndarray]]]:
        """One coalition's leaves as ``(constant, [(nodes, table), ...])``.

        Every leaf's share times its value is a table over the states of its nodes (a mixed
        node: ``B + 2`` ranks, id ``m >= 0``; a patient-side node: left or not, id
        ``-1 - i``); leaves over the same nodes (sorted) are summed into one table, so a
        row needs one gather per distinct node set.
        """
        S = self.B + 2
        const = 0.0
        merged: dict[tuple[int, ...], np.ndarray] = {}
        for value, xs, ms, table in terms:
            want: dict[int, bool] = {}
            if any(want.setdefault(i, left) != left for i, left in xs):
                continue  # a patient-side split asked both ways: never reached
            if len(ms) == 2 and ms[0] == ms[1]:
                table, ms = np.diagonal(table.reshape(S, S)).copy(), ms[:1]
            T = value * np.asarray(table, dtype=np.float64).reshape((S,) * len(ms))
            nodes = list(ms)
            for i in sorted(want):
                T = T[..., None] * np.array([not want[i], want[i]], dtype=np.float64)
                nodes.append(-1 - i)
            if not nodes:
                const += float(T)
                continue
            order = sorted(range(len(nodes)), key=nodes.__getitem__)
            key = tuple(nodes[a] for a in order)
            T = np.transpose(T, order)
            merged[key] = merged[key] + T if key in merged else T
        return const, [(key, T.ravel()) for key, T in merged.items()]

    def _mixed(self, f, split, default_left, sub, bz):
        """``(f, t, sub, ranker, axis, goes-left (B + 2, B))``: row ``r`` of the table says
        which background rows go left for a patient of rank ``r`` (``B + 1``: missing)."""
        spec = self.spec
        t = _left_bound(split)
        axis = spec.kinds[f] == AXIS
        src = [self.pos[int(j)] for j in spec.sources[f]]
        if axis:
            rb, nb = np.zeros(self.B), np.zeros(self.B)
            for i, c, s in zip(src, spec.centers[f], sub, strict=True):
                if s:
                    continue
                col = bz[:, i]
                present = ~np.isnan(col)
                rb, nb = rb + np.where(present, col - c, 0.0), nb + present
            q, bm = rb - t * nb, nb == 0
        else:
            q = np.zeros(self.B)
            for i, w, s in zip(src, spec.weights[f], sub, strict=True):
                if not s:
                    q = q + w * bz[:, i]
            q = q + spec.offsets[f]
            bm = np.isnan(q)
        order = np.argsort(q, kind="stable")  # NaN last
        rank_of = np.empty(self.B, dtype=np.intp)
        rank_of[order] = np.arange(self.B)
        qs = q[order]
        r = np.arange(self.B + 1)[:, None]
        left = rank_of[None, :] < r  # (B + 1, B): row rank r, background row b
        if axis:  # missing only when both sides have no member
            r0 = int(np.searchsorted(qs, 0.0, side="left"))
            xmiss = np.where(bm, default_left, rank_of < r0)
        else:  # missing when either side is
            left = np.where(bm[None, :], default_left, left)
            xmiss = np.full(self.B, default_left)
        table = np.vstack([left, xmiss[None, :]]).astype(np.float64)
        return f, t, sub, _Ranker(qs), axis, table

    def _follows(self, m: int, left: bool) -> np.ndarray:
        table = self.mixed_info[m][5]
        return table if left else 1.0 - table

    def ranks(self, ZT: np.ndarray, m: int, cache: dict) -> np.ndarray:
        """Per row, the state of mixed node ``m``: its rank, or ``B + 1`` when missing.

        ``cache`` is shared by the groups of a head for one block of rows (a split's key is
        global: feature, split, default direction, which of the feature's inputs are the
        patient's)."""
        f, t, sub, ranker, axis, _ = self.mixed_info[m]
        rkey = ("rank", self.mkeys[m])
        if rkey in cache:
            return cache[rkey]
        spec = self.spec
        src = spec.sources[f]
        pkey = ("p", f, sub)
        if pkey not in cache:
            n = ZT.shape[1]
            if axis:
                sx, nx = np.zeros(n), np.zeros(n)
                for j, c, s in zip(src, spec.centers[f], sub, strict=True):
                    if s:
                        col = ZT[j]
                        present = ~np.isnan(col)
                        sx, nx = sx + np.where(present, col - c, 0.0), nx + present
                cache[pkey] = (sx, nx)
            else:
                p = np.zeros(n)
                for j, w, s in zip(src, spec.weights[f], sub, strict=True):
                    if s:
                        p = p + w * ZT[j]
                cache[pkey] = (p, np.flatnonzero(np.isnan(p)))
        if axis:
            sx, nx = cache[pkey]
            tau, xm = t * nx - sx, nx == 0
            rank = ranker(np.where(xm | np.isnan(tau), 0.0, tau))
            rank[xm] = self.B + 1
        else:  # t - p is NaN exactly where p is (t is finite)
            p, xm = cache[pkey]
            tau = t - p
            tau[xm] = 0.0
            rank = ranker(tau)
            rank[xm] = self.B + 1
        cache[rkey] = rank
        return rank

    def cache_keys(self) -> list[tuple]:
        """The keys of the shared per-block cache this group reads (see ``ranks``)."""
        keys = []
        for m, mkey in enumerate(self.mkeys):
            f, _, sub = self.mixed_info[m][:3]
            keys += [("rank", mkey), ("p", f, sub)]
        for xkey in self.xnodes:
            keys += [("left", xkey), ("feature", xkey[0])]
        return keys

    def _xleft(self, ZT: np.ndarray, CT: np.ndarray, xkey: tuple, cache: dict) -> np.ndarray:
        """Per row, 1 where a split decided by the patient alone sends it left, else 0."""
        lkey = ("left", xkey)
        if lkey not in cache:
            f, split, default_left = xkey
            fkey = ("feature", f)
            if fkey not in cache:
                cache[fkey] = np.asarray(
                    self.spec.value(f, ZT.__getitem__, CT.__getitem__), dtype=np.float64
                )
            fv = cache[fkey]
            goes = fv.astype(np.float32) < np.float32(split)
            cache[lkey] = np.where(np.isnan(fv), default_left, goes).astype(np.intp)
        return cache[lkey]

    def __call__(self, ZT: np.ndarray, CT: np.ndarray, cache: dict) -> np.ndarray:
        """Shapley values (k, n) of the group's leaves for the rows (columns) of ``ZT``,
        ``CT`` (inputs x rows: all the head's inputs)."""
        n = ZT.shape[1]
        S = self.B + 2
        states = {m: self.ranks(ZT, m, cache) for m in range(len(self.mixed_info))}
        for xkey, i in self.xnodes.items():
            states[-1 - i] = self._xleft(ZT, CT, xkey, cache)
        if not self.joint:
            phi = np.repeat(self.phi_const[:, None], n, axis=1)
            for nodes, partT in self.x_sets:
                idx = states[nodes[0]]
                for node in nodes[1:]:
                    idx = idx * 2 + states[node]
                phi += np.take(partT, idx, axis=1)
        elif self.xnodes:
            joint = states[-1].copy()
            for i in range(1, len(self.xnodes)):
                joint |= states[-1 - i] << i
            phi = np.take(self.phi_xT, joint, axis=1)
        else:
            phi = np.repeat(self.phi_xT, n, axis=1)
        if not self.mixed_masks:
            return phi
        index: dict[tuple[int, ...], np.ndarray] = {}
        V = np.empty((len(self.mixed_masks), n))
        for out, tables in zip(V, self.mixed_tables, strict=True):
            for a, (nodes, table) in enumerate(tables):
                if nodes not in index:
                    idx = states[nodes[0]]
                    for node in nodes[1:]:
                        idx = idx * (S if node >= 0 else 2) + states[node]
                    index[nodes] = idx
                if a == 0:
                    np.take(table, index[nodes], out=out)
                else:
                    out += table[index[nodes]]
        phi += self.C_mixed @ V
        return phi


def shapley_matrix(k: int) -> np.ndarray:
    """``C`` of shape (2^k, k) with ``phi = V @ C`` for ``V[:, mask] = v(mask)``.

    ``C[mask, i] = c(|mask| - 1)`` if ``i`` is in ``mask``, else ``-c(|mask|)``, with the
    Shapley weights ``c(s) = s! (k - s - 1)! / k!``.

    Examples
    --------
    >>> v = np.array([[0.0, 1.0, 0.0, 3.0]])   # v({0,1}) = 3: an interaction of 2
    >>> (v @ shapley_matrix(2)).tolist()
    [[2.0, 1.0]]
    """
    c = _weights(k) if k else np.empty(0)
    out = np.zeros((1 << k, k))
    for mask in range(1 << k):
        size = bin(mask).count("1")
        for i in range(k):
            out[mask, i] = c[size - 1] if (mask >> i) & 1 else -c[size]
    return out


#: Coalition values (rows x coalitions) held at once by :class:`HeadExplainer`.
EXPLAIN_CELLS = 1 << 22
#: Rows per block of the leaf groups (per-split ranks and flags are held for a block).
EXPLAIN_BLOCK = 1 << 15


class HeadExplainer:
    """Exact interventional Shapley values of one head's log-odds, computed fast.

    The same game and values as :func:`interventional_shapley` (tested equal), organised
    for many rows:

    - a linear term of a feature with **one** input (log cytokine, covariate, below-LLOQ
      indicator) gives that input ``u_f(x) - E_b u_f(b)`` (closed form);
    - a linear term of a feature with **several** inputs (log-ratio, axis score) has,
      for each pattern of missing inputs, Shapley values that are an **affine function of
      the inputs present** (every coalition value is: the hybrid feature is affine in the
      patient's part, and the background enters through constants). The map is found once
      per pattern seen, by the exact enumeration at ``k + 1`` probe points, and cached;
      a row then costs one small matrix product;
    - trees are grouped by the inputs they read; each group's ``2^k`` coalition values
      come from the background-aggregated game (:class:`_AggregatedGame`) and the Shapley
      values are one matrix product with :func:`shapley_matrix` (Owen values above
      ``max_exact`` inputs, as :func:`interventional_shapley`).

    Parameters
    ----------
    spec, trees, linear, background : see :func:`interventional_shapley`
    max_exact : int
        Largest tree-group input set computed exactly; larger ones get Owen values.

    Examples
    --------
    >>> spec = FeatureSpec(kinds=np.array([AFFINE]), sources=(np.array([0, 1]),),
    ...                    weights=(np.array([1.0, -1.0]),), centers=(np.empty(0),),
    ...                    offsets=np.zeros(1))
    >>> lin = Linear(0.0, np.array([2.0]), np.array([0.0]), np.array([1.0]))
    >>> bg = Background(Z=np.array([[0.0, 1.0], [1.0, 0.0]]), censored=np.zeros((2, 2)))
    >>> base, phi = HeadExplainer(spec, TreeTable(()), lin, bg)(
    ...     np.array([[3.0, 1.0], [np.nan, 1.0]]), np.zeros((2, 2)))
    >>> base.tolist(), phi[0].tolist()    # 2 (z0 - z1): 2 (z0 - E z0), -2 (z1 - E z1)
    ([0.0, 0.0], [5.0, -1.0])
    >>> phi[1].tolist()   # z0 missing: the ratio is imputed at its mean whatever z1 is
    [0.5, -0.5]
    """

    def __init__(
        self,
        spec: FeatureSpec,
        trees: TreeTable,
        linear: Linear | None,
        background: Background,
        *,
        max_exact: int = DEFAULT_MAX_EXACT,
    ) -> None:
        self.spec, self.trees, self.linear, self.background = spec, trees, linear, background
        self.max_exact = max_exact
        # Trees are explained leaf by leaf (linearity: a tree is the sum of its leaves'
        # value x indicator games; null players: a leaf's game reads only the inputs of
        # the <= 2 features on its path), leaves grouped by those inputs. Trees the
        # aggregated game cannot take (deeper paths) are explained whole.
        self.tree_groups = []
        self.leaf_groups: dict[tuple[int, ...], list] = {}
        for comp in components(spec, trees, None):
            if not aggregable(comp, spec, trees):
                self.tree_groups.append(comp)
                continue
            for t in comp.trees:
                for value, steps in _leaf_paths(trees.trees[t]):
                    key = tuple(sorted({int(j) for f, *_ in steps for j in spec.sources[f]}))
                    self.leaf_groups.setdefault(key, []).append((value, steps))
        coef = np.zeros(0) if linear is None else np.asarray(linear.coef, dtype=np.float64)
        used = [int(f) for f in np.flatnonzero(coef != 0.0)]
        self.single = [f for f in used if len(spec.sources[f]) == 1]
        self.multi = [f for f in used if len(spec.sources[f]) > 1]
        bz, bc, bw = background.Z, background.censored, background.weights
        # E_b u_f(b) per single-input linear term, and the base value v(empty)
        self._mean_term = {}
        base = 0.0 if linear is None else float(linear.intercept)
        for f in used:
            term = bw @ linear.term(f, spec.value(f, lambda j: bz[:, j], lambda j: bc[:, j]))
            self._mean_term[f] = float(term)
            base += float(term)
        for t in range(len(trees.trees)):
            vals = trees.evaluate(
                t, lambda f: spec.value(f, lambda j: bz[:, j], lambda j: bc[:, j])
            )
            base += float(np.broadcast_to(vals, bw.shape) @ bw)
        self.base = base
        # one-input affine linear terms (log cytokines, covariates) as one block:
        # u_f = k (w z_j + offset - mu) = slope_j z_j + const_j, 0 where z_j is missing
        slope, const, mean = {}, {}, {}
        self._indicators = []
        for f in self.single:
            if spec.kinds[f] != AFFINE:
                self._indicators.append(f)
                continue
            j = int(spec.sources[f][0])
            k = linear.coef[f] / linear.scale[f]
            slope[j] = slope.get(j, 0.0) + k * float(spec.weights[f][0])
            const[j] = const.get(j, 0.0) + k * (float(spec.offsets[f]) - linear.mean[f])
            mean[j] = mean.get(j, 0.0) + self._mean_term[f]
        self._cols = np.asarray(sorted(slope), dtype=np.intp)
        self._slope = np.asarray([slope[j] for j in self._cols], dtype=np.float64)
        self._const = np.asarray([const[j] for j in self._cols], dtype=np.float64)
        self._mean = np.asarray([mean[j] for j in self._cols], dtype=np.float64)
        self._maps: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._matrices: dict[int, np.ndarray] = {}
        self._plans: dict[tuple[int, ...], _LeafPlan] = {}
        self._complete: tuple[np.ndarray, ...] | None = None
        self._pattern_maps: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._touching: list[list[int]] | None = None
        self._pattern_deltas: dict[tuple[int, int], tuple] = {}

    def __call__(self, Z: np.ndarray, censored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Base value (n,) and Shapley values (n, m) of the log-odds; see the class doc."""
        Z = np.asarray(Z, dtype=np.float64)
        censored = np.asarray(censored, dtype=np.float64)
        n, m = Z.shape
        phi = np.zeros((n, m))
        spec, linear = self.spec, self.linear
        if self._cols.size:  # one-input affine terms, all at once: a z + c, 0 where missing
            z = Z[:, self._cols]
            part = np.where(np.isfinite(z), z * self._slope + self._const, 0.0) - self._mean
            phi[:, self._cols] += part
        for f in self._indicators:
            j = int(spec.sources[f][0])
            x = spec.value(f, lambda i: Z[:, i], lambda i: censored[:, i])
            phi[:, j] += linear.term(f, x) - self._mean_term[f]
        if self.multi:
            self._add_linear_multi(Z, phi)
        for comp in self.tree_groups:
            self._add_trees(comp, Z, censored, phi)
        self._add_leaf_groups(Z, censored, phi)
        return np.full(n, self.base), phi

    def alone(self, Z: np.ndarray, censored: np.ndarray) -> np.ndarray:
        """Change of the log-odds when each input alone comes from the background.

        ``g(x) - sum_b w_b g(x_{-j}, b_j)`` per row and input ``j``: the one-at-a-time
        change against the game's reference (``v(N) - v(N - j)``), which a
        contribution's sign is checked against (property (b), ``docs/explanations.md``).
        Hybrid by hybrid: meant for a report's few rows, not for batches.
        """
        Z = np.asarray(Z, dtype=np.float64)
        censored = np.asarray(censored, dtype=np.float64)
        out = np.zeros(Z.shape)
        comps = components(self.spec, self.trees, None)  # whole trees, hybrid by hybrid
        comps += [
            Component(tuple(int(j) for j in self.spec.sources[f]), linear=[f])
            for f in self.single + self.multi
        ]
        for comp in comps:
            J = np.asarray(comp.inputs, dtype=np.intp)
            game = _ComponentGame(
                comp, self.spec, self.trees, self.linear, self.background, Z, censored
            )
            full = (1 << len(J)) - 1
            for i, j in enumerate(J):
                out[:, j] += game(full) - game(full & ~(1 << i))
        return out

    def _matrix(self, k: int) -> np.ndarray:
        if k not in self._matrices:
            self._matrices[k] = shapley_matrix(k)
        return self._matrices[k]

    def _complete_linear(self, m: int) -> tuple[np.ndarray, ...]:
        """``(U, x0, phi0, M)`` of all multi-input linear terms for complete rows: on the
        inputs ``U`` they read, ``phi[U] = phi0 + (x[U] - x0) @ M`` (one map: the
        per-feature maps' ``x0`` are the same per input, the background mean)."""
        if self._complete is None:
            x0, phi0, M = np.zeros(m), np.zeros(m), np.zeros((m, m))
            for f in self.multi:
                J = np.asarray(self.spec.sources[f], dtype=np.intp)
                x0f, phi0f, Mf = self._linear_map(f, J, 0)
                x0[J] = x0f
                phi0[J] += phi0f
                M[np.ix_(J, J)] += Mf.T
            U = np.unique(np.concatenate([self.spec.sources[f] for f in self.multi]))
            self._complete = (U, x0[U], phi0[U], M[np.ix_(U, U)])
        return self._complete

    def _add_linear_multi(self, Z: np.ndarray, phi: np.ndarray) -> None:
        """The multi-input linear terms (log-ratios, axis scores): every row through the
        complete-pattern map (one matrix product), then, per feature, the few rows missing
        one of its inputs corrected to their own pattern's map."""
        n, m = Z.shape
        U, x0, phi0, M = self._complete_linear(m)
        col = np.full(m, -1, dtype=np.intp)
        col[U] = np.arange(len(U))
        XU = Z[:, U]
        missing = np.isnan(XU)
        dX = XU - x0
        dX[missing] = 0.0
        phi[:, U] += phi0 + dX @ M
        rows_any = np.flatnonzero(missing.any(axis=1))
        if rows_any.size == 0:
            return
        # A row missing some of U is corrected by an affine map of its own pattern
        # (the sum over the features it touches of pattern map minus complete map:
        # both use the same dx, which is 0 at the missing inputs): rows sorted by
        # pattern, one product per pattern present.
        miss_any = missing[rows_any]
        if len(U) <= 62:
            codes = miss_any.astype(np.int64) @ (np.int64(1) << np.arange(len(U), dtype=np.int64))
        else:
            codes = np.unique(miss_any, axis=0, return_inverse=True)[1].ravel()
        order = np.argsort(codes, kind="stable")
        rows_s = rows_any[order]
        codes_s = codes[order]
        uniq, starts = np.unique(codes_s, return_index=True)
        ends = np.append(starts[1:], len(codes_s))
        dXs = dX[rows_s]
        delta = np.empty_like(dXs)
        for code, lo, hi in zip(uniq.tolist(), starts.tolist(), ends.tolist(), strict=True):
            ckey = ("pattern", code) if len(U) <= 62 else ("row", tuple(miss_any[order[lo]]))
            if ckey not in self._pattern_maps:
                self._pattern_maps[ckey] = self._pattern_map(miss_any[order[lo]], col)
            D0, DM = self._pattern_maps[ckey]
            delta[lo:hi] = D0 + dXs[lo:hi] @ DM
        phi[np.ix_(rows_s, U)] += delta

    def _pattern_map(self, miss_u: np.ndarray, col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(D0, DM)``: for rows missing the inputs ``miss_u`` (over U), their multi-input
        linear Shapley values minus the complete map's are ``D0 + dx @ DM``."""
        u = len(miss_u)
        D0, DM = np.zeros(u), np.zeros((u, u))
        if self._touching is None:  # per position in U: the multi features reading it
            touching: list[list[int]] = [[] for _ in range(u)]
            for f in self.multi:
                for j in self.spec.sources[f]:
                    touching[col[int(j)]].append(f)
            self._touching = touching  # published complete: threads share this cache
        feats = sorted({f for i in np.flatnonzero(miss_u) for f in self._touching[i]})
        flat = DM.ravel()
        for f in feats:
            cj = col[self.spec.sources[f]]
            pattern = 0
            for i, c in enumerate(cj.tolist()):
                pattern |= int(miss_u[c]) << i
            dkey = (f, pattern)
            if dkey not in self._pattern_deltas:
                J = np.asarray(self.spec.sources[f], dtype=np.intp)
                _, phi0f, Mf = self._linear_map(f, J, 0)
                _, phi0p, Mp = self._linear_map(f, J, pattern)
                cells = (cj[:, None] * u + cj[None, :]).ravel()
                self._pattern_deltas[dkey] = (phi0p - phi0f, cells, (Mp - Mf).T.ravel())
            d0, cells, dm = self._pattern_deltas[dkey]
            D0[cj] += d0
            flat[cells] += dm
        return D0, DM

    def _linear_map(self, f: int, J: np.ndarray, pattern: int):
        """``(x0, phi(x0), M)``: ``phi(x) = phi(x0) + M (x - x0)`` for rows missing ``pattern``."""
        key = (f, pattern)
        if key not in self._maps:
            k = len(J)
            miss = np.array([(pattern >> i) & 1 for i in range(k)], dtype=bool)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                x0 = np.nan_to_num(np.nanmean(self.background.Z[:, J], axis=0))
            x0 = np.where(miss, np.nan, x0)
            probes = np.repeat(x0[None, :], k + 1, axis=0)
            for i in np.flatnonzero(~miss):
                probes[i + 1, i] += 1.0
            comp = Component(tuple(int(j) for j in J), linear=[f])
            full = np.full((k + 1, int(J.max()) + 1), np.nan)
            full[:, J] = probes
            game = _ComponentGame(
                comp, self.spec, self.trees, self.linear, self.background, full, np.zeros_like(full)
            )
            values = np.column_stack([game(mask) for mask in range(1 << k)])
            phis = values @ self._matrix(k)
            M = (phis[1:] - phis[0]).T  # column i: the effect of input i's unit step
            M[:, miss] = 0.0
            self._maps[key] = (np.where(miss, 0.0, x0), phis[0], M)
        return self._maps[key]

    def _add_leaf_groups(self, Z: np.ndarray, censored: np.ndarray, phi: np.ndarray) -> None:
        """All leaf groups, block of rows by block of rows (inputs x rows inside a block,
        so that a group reads and writes whole contiguous rows; per-split work shared
        by the groups through one cache per block)."""
        exact, other = [], []
        for key, paths in self.leaf_groups.items():
            if not key:  # a leaf reached by every row: in the base value only
                continue
            if len(key) > self.max_exact:
                other.append((key, paths))
                continue
            if key not in self._plans:
                self._plans[key] = _LeafPlan(key, paths, self.spec, self.background)
            exact.append(self._plans[key])
        for key, paths in other:
            self._add_leaves(key, paths, Z, censored, phi)
        if not exact:
            return
        # a shared per-split value is dropped after the last group that reads it
        last: dict = {}
        for i, plan in enumerate(exact):
            for key in plan.cache_keys():
                last[key] = i
        drop: list[list] = [[] for _ in exact]
        for key, i in last.items():
            drop[i].append(key)
        step = max(1, min(EXPLAIN_BLOCK, EXPLAIN_CELLS // (1 << max(plan.k for plan in exact))))
        for lo in range(0, len(Z), step):
            rows = slice(lo, lo + step)
            ZT = np.ascontiguousarray(Z[rows].T)
            CT = np.ascontiguousarray(censored[rows].T)
            phiT = np.zeros_like(ZT)
            cache: dict = {}
            for plan, keys in zip(exact, drop, strict=True):
                phiT[plan.J] += plan(ZT, CT, cache)
                for key in keys:
                    cache.pop(key, None)
            phi[rows] += phiT.T

    def _add_leaves(
        self,
        key: tuple[int, ...],
        paths: list,
        Z: np.ndarray,
        censored: np.ndarray,
        phi: np.ndarray,
    ) -> None:
        J = np.asarray(key, dtype=np.intp)
        k = len(J)
        comp = Component(key)
        if k > self.max_exact:  # Owen value over the path's features' inputs
            feats = list(dict.fromkeys(f for _, steps in paths for f, *_ in steps))
            pos = {int(j): i for i, j in enumerate(J)}
            unions, seen = [], set()
            for f in feats:
                u = [pos[int(j)] for j in self.spec.sources[f] if int(j) not in seen]
                seen.update(int(j) for j in self.spec.sources[f])
                if u:
                    unions.append(u)
        else:
            unions = [list(range(k))]
        step = max(1, EXPLAIN_CELLS // (1 << k))
        for lo in range(0, len(Z), step):
            rows = slice(lo, lo + step)
            game = _TreeGame(
                comp,
                self.spec,
                self.trees,
                None,
                self.background,
                Z[rows],
                censored[rows],
                paths=paths,
            )
            if len(unions) == 1:
                values = np.empty((len(game.xz), 1 << k))
                for mask in range(1 << k):
                    values[:, mask] = game(mask)
                phi[rows, J] += values @ self._matrix(k)
            else:
                phi[rows, J] += owen_values(game, unions, len(game.xz))

    def _add_trees(
        self, comp: Component, Z: np.ndarray, censored: np.ndarray, phi: np.ndarray
    ) -> None:
        J = np.asarray(comp.inputs, dtype=np.intp)
        k = len(J)
        unions = _unions(comp, self.spec, self.trees, self.max_exact)
        fast = aggregable(comp, self.spec, self.trees)
        kind = _TreeGame if fast else _ComponentGame
        cells = (1 << k) * (1 if fast else len(self.background.weights))
        step = max(1, EXPLAIN_CELLS // cells)
        n = len(Z)
        for lo in range(0, n, step):
            rows = slice(lo, lo + step)
            game = kind(comp, self.spec, self.trees, None, self.background, Z[rows], censored[rows])
            if len(unions) == 1:
                values = np.column_stack([game(mask) for mask in range(1 << k)])
                phi[rows, J] += values @ self._matrix(k)
            else:
                phi[rows, J] += owen_values(game, unions, len(game.xz))


def head_shapley(
    head: Any, frame: pd.DataFrame, background: Background, *, max_exact: int = DEFAULT_MAX_EXACT
) -> tuple[np.ndarray, pd.DataFrame]:
    """Drop-in for ``attribution.cytokine_contributions``: calibrated log-odds.

    Parameters
    ----------
    head : TherapyHead
        A fitted head.
    frame : DataFrame
        Rows of a model frame.
    background : Background
        Training background (:func:`background_sample` of the head's training frame).
    max_exact : int
        See :func:`interventional_shapley`.

    Returns
    -------
    base : ndarray of shape (n,)
    contributions : DataFrame of shape (n, n_inputs)
        ``base + contributions.sum(axis=1)`` equals ``head.calibrated_margin(frame)``.
    """
    from cytoresp.models.attribution import snap_to_total

    feats_step = head.pipeline.named_steps["features"]
    clf = head.pipeline.named_steps["model"]
    X = frame[head.input_columns]
    Z, cens = explanation_inputs(feats_step, X)
    spec = feature_spec(feats_step)
    linear = Linear(
        float(clf.linear_intercept_), clf.linear_coef_, clf.linear_mean_, clf.linear_scale_
    )
    base, phi = interventional_shapley(
        Z,
        cens,
        background,
        spec,
        TreeTable.from_booster(clf.booster_),
        linear,
        max_exact=max_exact,
    )
    calibrator = head.calibrator
    base, phi = calibrator.transform_margin(base), calibrator.transform_contributions(phi)
    phi = snap_to_total(phi, head.calibrated_margin(frame) - base)
    return base, pd.DataFrame(phi, index=frame.index, columns=list(feats_step.input_names_))
