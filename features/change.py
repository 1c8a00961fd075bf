"""Change from baseline: censoring-aware log2 fold changes of paired visits.

The input is a landmark table (:func:`cytoresp.features.landmark.landmark_table`): per
analyte a baseline column ``<ID>`` and an on-treatment column ``<ID>@on``, concentrations
in pg/mL with a value censored below its limit ``L`` written ``-L`` (the model frame's
encoding). The output per analyte is ``<ID> Δ`` = log2(on / baseline), so a feature name
says "change since baseline" wherever it is shown (``TNF Δ↓ +0.4``).

**Censoring rule.** A censored cell only bounds the concentration (below ``L``), so the
change is an interval; the output is the value of that interval closest to 0 (the
smallest change the measurements prove), never a change made up by a substitution:

=====================  ===============================  ===========================
baseline / on          interval of log2(on / base)      output ``<ID> Δ``
=====================  ===============================  ===========================
observed b / observed  exact                            log2(o / b)
below Lb / observed o  (log2(o / Lb), +inf)             max(log2(o / Lb), 0)
observed b / below Lo  (-inf, log2(Lo / b))             min(log2(Lo / b), 0)
below Lb / below Lo    (-inf, +inf)                     0, and ``<ID> Δ undetectable`` = 1
=====================  ===============================  ===========================

"Below the limit at both visits" is "no measurable change", not a change of 0 by luck:
the indicator ``<ID> Δ undetectable`` (1 both censored, 0 otherwise, NaN missing) says so,
for analytes where this happens at fit (``add_indicators``). A 0 is read as censored
below the smallest positive value or limit of the analyte's two columns at fit (as in
:class:`~cytoresp.features.censoring.CensoredLog2Transformer`). A value above the upper
limit is its limit, as everywhere in cytoresp. NaN at either visit gives NaN.

Ratio changes ``<A>/<B> Δ`` = ``<A> Δ`` - ``<B> Δ`` (the change of the log-ratio, from the
bounded changes) for the default ratio pairs whose analytes are both paired.

A slope over several on-treatment samples is not computed (the landmark table keeps the
latest on-treatment sample only).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from cytoresp.errors import UsageError
from cytoresp.features.censoring import (
    FeatureTransformer,
    check_bool,
    floats_from_json,
    floats_to_json,
)
from cytoresp.features.landmark import ON_SUFFIX
from cytoresp.features.ratios import SkippedFeatureWarning, check_pairs

__all__ = ["CHANGE_SUFFIX", "UNDETECTABLE_SUFFIX", "ChangeFromBaseline"]

#: Suffix of a change feature: ``"TNF Δ"``, ``"IFNG/IL10 Δ"``.
CHANGE_SUFFIX = " Δ"
#: Suffix of the both-visits-censored indicator: ``"TNF Δ undetectable"``.
UNDETECTABLE_SUFFIX = " Δ undetectable"


def _check_columns(columns: Any) -> tuple[tuple[str, str], ...] | None:
    """None for ``"auto"``, else (baseline column, on-treatment column) pairs."""
    if isinstance(columns, str):
        if columns == "auto":
            return None
        raise UsageError(f"columns must be 'auto' or a list of (baseline, on-treatment) "
                         f"column pairs, got {columns!r}")
    ok = isinstance(columns, Sequence | np.ndarray) and all(
        isinstance(p, Sequence | np.ndarray) and not isinstance(p, str) and len(p) == 2
        and all(isinstance(c, str) and c for c in p) for p in columns)
    if not ok:
        raise UsageError(f"columns must be 'auto' or a list of (baseline, on-treatment) "
                         f"column pairs, got {columns!r}")
    out = tuple((str(a), str(b)) for a, b in columns)
    if len({a for a, _ in out}) != len(out):
        raise UsageError(f"a baseline column is paired twice in {list(columns)!r}")
    return out


def _registry_resolver():
    from cytoresp.panels.registry import resolve_analyte

    return resolve_analyte


class ChangeFromBaseline(FeatureTransformer):
    """log2 fold change from baseline to the on-treatment sample, censoring-aware.

    Parameters
    ----------
    columns : "auto" or sequence of (str, str), default="auto"
        Pairs of (baseline column, on-treatment column). ``"auto"``: every column
        ``<c>`` that has a ``<c>@on`` partner and is an analyte of the registry (both
        columns must be present; other columns, e.g. covariates and ``month_on``, are
        ignored). A listed pair absent at fit is skipped with a
        :class:`~cytoresp.features.ratios.SkippedFeatureWarning`.
    ratios : "default", None or sequence of pairs, default="default"
        Ratio changes ``<A>/<B> Δ`` for the pairs whose analytes are both paired
        (:data:`~cytoresp.features.ratios.DEFAULT_RATIO_PAIRS` by default); pairs not
        available are left out silently (the change of a ratio is optional).
    add_indicators : bool, default=True
        Append ``<ID> Δ undetectable`` for analytes below their limit at both visits in
        some row at fit.

    Attributes
    ----------
    pairs_ : list of (str, str)
        (baseline, on-treatment) input columns used, in output order.
    pair_indices_ : ndarray of int, shape (n_pairs, 2)
        Their input positions.
    analytes_ : list of str
        Name of each pair in the output (the baseline column's analyte id).
    ratio_pairs_ : list of (int, int)
        Positions in ``pairs_`` of each ratio change's numerator and denominator.
    floor_ : ndarray, shape (n_pairs,)
        Limit assumed for a 0 in each pair (smallest positive value or limit at fit).
    indicator_mask_ : ndarray of bool, shape (n_pairs,)
        Pairs that get an ``undetectable`` indicator.
    feature_sources_ : dict of str to list of str
        Output feature -> the input columns it is built from (the baseline column, then
        the on-treatment column, per analyte).
    nonlinear_features_ : list of str
        The indicators (not a difference of logs).

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"TNF": [8.0, -2.0, 4.0, -2.0], "TNF@on": [2.0, 8.0, -1.0, -1.0],
    ...                   "IL10": [1.0, 2.0, 2.0, 4.0], "IL10@on": [4.0, 2.0, 4.0, 1.0]})
    >>> t = ChangeFromBaseline(ratios=[("TNF", "IL10")]).fit(X)
    >>> t.get_feature_names_out().tolist()
    ['TNF Δ', 'IL10 Δ', 'TNF/IL10 Δ', 'TNF Δ undetectable']
    >>> t.transform(X).tolist()   # rows: observed, <2 -> 8 (at least x4), 4 -> <1, both <
    [[-2.0, 2.0, -4.0, 0.0], [2.0, 0.0, 2.0, 0.0], [-2.0, 1.0, -3.0, 0.0], [0.0, -2.0, 2.0, 1.0]]
    """

    def __init__(self, columns: Any = "auto", ratios: Any = "default",
                 add_indicators: bool = True):
        self.columns = columns
        self.ratios = ratios
        self.add_indicators = add_indicators

    def _check_params(self) -> None:
        _check_columns(self.columns)
        check_pairs(self.ratios)
        check_bool(self.add_indicators, "add_indicators")

    @classmethod
    def _params_from_json(cls, params: dict[str, Any]) -> dict[str, Any]:
        params = dict(params)
        for key in ("columns", "ratios"):
            if isinstance(params.get(key), list):
                params[key] = [tuple(p) if isinstance(p, list) else p for p in params[key]]
        return params

    def fit(self, X: Any, y: Any = None) -> ChangeFromBaseline:
        """Find the paired columns, the floors for zeros and the indicator columns.

        Parameters
        ----------
        X : DataFrame or array of shape (n_patients, n_columns)
            A landmark table (concentrations, ``-L`` = censored below ``L``).
        y : ignored

        Returns
        -------
        self
        """
        self._check_params()
        Xa = self._validate(X, reset=True)
        names = self._names_in()
        position = {n: i for i, n in enumerate(names)}
        wanted = _check_columns(self.columns)
        if wanted is None:
            resolve = _registry_resolver()
            pairs = [(n, n + ON_SUFFIX) for n in names
                     if n + ON_SUFFIX in position and resolve(n) is not None]
            ids = [resolve(a) for a, _ in pairs]
        else:
            pairs = [p for p in wanted if p[0] in position and p[1] in position]
            absent = [p for p in wanted if p not in pairs]
            if absent:
                warnings.warn(SkippedFeatureWarning(
                    f"ChangeFromBaseline: skipped {len(absent)} pair(s) with a column absent "
                    f"from the input: {', '.join(f'{a}/{b}' for a, b in absent)}"),
                    stacklevel=2)
            ids = [a for a, _ in pairs]
        self.pairs_ = pairs
        self.analytes_ = [str(i) for i in ids]
        self.pair_indices_ = np.asarray([(position[a], position[b]) for a, b in pairs],
                                        dtype=np.intp).reshape(-1, 2)
        where = {a: k for k, a in enumerate(self.analytes_)}
        self.ratio_pairs_ = [(where[a], where[b]) for a, b in check_pairs(self.ratios)
                             if a in where and b in where]
        base, on = Xa[:, self.pair_indices_[:, 0]], Xa[:, self.pair_indices_[:, 1]]
        both = np.concatenate([np.abs(base), np.abs(on)], axis=0)
        floor = np.min(np.where(both > 0, both, np.inf), axis=0, initial=np.inf)
        self.floor_ = np.where(np.isinf(floor), np.nan, floor)
        self.indicator_mask_ = ((base <= 0) & (on <= 0)).any(axis=0) & bool(self.add_indicators)
        self._build_sources()
        return self

    def _build_sources(self) -> None:
        out = self.get_feature_names_out()
        n = len(self.pairs_)
        sources = {}
        for k, (a, b) in enumerate(self.pairs_):
            sources[out[k]] = [a, b]
        for r, (i, j) in enumerate(self.ratio_pairs_):
            sources[out[n + r]] = [*self.pairs_[i], *self.pairs_[j]]
        for r, k in enumerate(np.flatnonzero(self.indicator_mask_)):
            sources[out[n + len(self.ratio_pairs_) + r]] = list(self.pairs_[k])
        self.feature_sources_ = sources
        self.nonlinear_features_ = [str(f) for f in out[n + len(self.ratio_pairs_):]]

    def _changes(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log2 fold changes by the censoring rule, both-censored mask) per pair."""
        base = X[:, self.pair_indices_[:, 0]]
        on = X[:, self.pair_indices_[:, 1]]
        b_cens, o_cens = base <= 0, on <= 0
        with np.errstate(divide="ignore", invalid="ignore"):
            lb = np.log2(np.where(base == 0, self.floor_, np.abs(base)))
            lo = np.log2(np.where(on == 0, self.floor_, np.abs(on)))
            d = lo - lb
        d = np.where(b_cens & ~o_cens, np.maximum(d, 0.0), d)
        d = np.where(o_cens & ~b_cens, np.minimum(d, 0.0), d)
        both = b_cens & o_cens
        d = np.where(both, 0.0, d)
        missing = np.isnan(base) | np.isnan(on) | np.isnan(lb) | np.isnan(lo)
        d[missing] = np.nan
        return d, both & ~missing

    def transform(self, X: Any) -> np.ndarray:
        """Changes, ratio changes, then indicators: float64 (n_patients, n_out)."""
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        d, both = self._changes(X)
        ratios = np.column_stack([d[:, i] - d[:, j] for i, j in self.ratio_pairs_]) \
            if self.ratio_pairs_ else np.empty((len(X), 0))
        cols = np.flatnonzero(self.indicator_mask_)
        ind = both[:, cols].astype(np.float64)
        ind[np.isnan(d[:, cols])] = np.nan
        return np.hstack([d, ratios, ind])

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        """``<ID> Δ`` per pair, ``<A>/<B> Δ`` per ratio, ``<ID> Δ undetectable``."""
        self._check_input_features(input_features)
        ids = self.analytes_
        out = [a + CHANGE_SUFFIX for a in ids]
        out += [f"{ids[i]}/{ids[j]}{CHANGE_SUFFIX}" for i, j in self.ratio_pairs_]
        out += [ids[k] + UNDETECTABLE_SUFFIX for k in np.flatnonzero(self.indicator_mask_)]
        return np.asarray(out, dtype=object)

    def _get_state(self) -> dict[str, Any]:
        return {
            "pairs_": [list(p) for p in self.pairs_],
            "analytes_": list(self.analytes_),
            "pair_indices_": self.pair_indices_.tolist(),
            "ratio_pairs_": [list(p) for p in self.ratio_pairs_],
            "floor_": floats_to_json(self.floor_),
            "indicator_mask_": [bool(m) for m in self.indicator_mask_],
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.pairs_ = [tuple(p) for p in state["pairs_"]]
        self.analytes_ = [str(a) for a in state["analytes_"]]
        self.pair_indices_ = np.asarray(state["pair_indices_"], dtype=np.intp).reshape(-1, 2)
        self.ratio_pairs_ = [tuple(int(i) for i in p) for p in state["ratio_pairs_"]]
        self.floor_ = floats_from_json(state["floor_"])
        self.indicator_mask_ = np.asarray(state["indicator_mask_"], dtype=bool)
        n = len(self.pairs_)
        idx = self.pair_indices_
        if (len(self.analytes_) != n or len(idx) != n or self.floor_.shape != (n,)
                or self.indicator_mask_.shape != (n,)
                or (idx.size and not 0 <= idx.min() <= idx.max() < self.n_features_in_)
                or any(not (0 <= i < n and 0 <= j < n) for i, j in self.ratio_pairs_)):
            raise ValueError("the saved pairs, indices, floors and indicators do not match")
        self._build_sources()

