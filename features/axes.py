"""Immune-axis scores: the mean log2 concentration of each axis's member cytokines."""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from cytoresp.errors import UsageError
from cytoresp.features.censoring import (
    FeatureTransformer,
    analyte_lookup,
    check_bool,
    check_positive_int,
    floats_from_json,
    floats_to_json,
)
from cytoresp.features.ratios import SkippedFeatureWarning

AXIS_PREFIX = "axis_"


def axis_feature_name(axis: str) -> str:
    """Output column of an axis: ``"IFN-response" -> "axis_IFN_response"``."""
    return AXIS_PREFIX + re.sub(r"[^0-9A-Za-z]", "_", axis)


def _registry_axes() -> dict[str, tuple[str, ...]]:
    try:
        from cytoresp.panels.registry import axis_members
    except ImportError as exc:
        raise UsageError(
            f"axes='default' (or axes given by name) needs the analyte registry, which "
            f"could not be imported ({exc}); pass axes as a mapping name -> analyte ids"
        ) from None
    return {str(k): tuple(v) for k, v in axis_members().items()}


def check_axes(axes: Any) -> dict[str, tuple[str, ...]]:
    """Normalise ``axes`` to an ordered dict axis name -> member analyte ids.

    Accepts ``"default"`` (every axis of the analyte registry), None (no axes), a
    sequence of registry axis names (a subset, e.g. ``["Th1", "Th17"]``), or a mapping
    axis name -> member ids (custom axes). Raises UsageError otherwise: an unknown axis
    name, an axis without members, a member listed twice, two axes whose output names
    collide.
    """
    if isinstance(axes, str):
        if axes != "default":
            raise UsageError(
                f"axes must be 'default', None, a list of axis names or a mapping "
                f"axis -> analyte ids, got {axes!r}"
            )
        out = _registry_axes()
    elif axes is None or (isinstance(axes, Sequence | Mapping) and len(axes) == 0):
        out = {}
    elif isinstance(axes, Mapping):
        out = {}
        for name, members in axes.items():
            if not isinstance(name, str) or not name:
                raise UsageError(f"axis names must be non-empty strings, got {name!r}")
            if isinstance(members, str) or not isinstance(members, Sequence | np.ndarray):
                raise UsageError(
                    f"axis {name!r}: members must be a list of analyte ids, got {members!r}"
                )
            out[name] = tuple(members)
    elif isinstance(axes, Sequence | np.ndarray):
        known = _registry_axes()
        names = list(axes)
        unknown = [a for a in names if a not in known]
        if unknown:
            raise UsageError(
                f"unknown axis name(s): {', '.join(map(repr, unknown))}; known axes: "
                f"{', '.join(known)} (or pass a mapping axis -> analyte ids)"
            )
        if len(set(names)) != len(names):
            raise UsageError(f"axis names listed twice in {names!r}")
        out = {a: known[a] for a in names}
    else:
        raise UsageError(
            f"axes must be 'default', None, a list of axis names or a mapping "
            f"axis -> analyte ids, got {axes!r}"
        )
    seen: dict[str, str] = {}
    for name, members in out.items():
        if not members or not all(isinstance(m, str) and m for m in members):
            raise UsageError(f"axis {name!r} needs at least one analyte id, got {members!r}")
        if len(set(members)) != len(members):
            raise UsageError(f"axis {name!r} lists a member twice: {list(members)!r}")
        feat = axis_feature_name(name)
        if feat in seen:
            raise UsageError(f"axes {seen[feat]!r} and {name!r} would both be named {feat!r}")
        seen[feat] = name
    return out


@dataclass(frozen=True)
class AxisRowWeights:
    """Row-wise affine weights of axis scores (for exact explanations with missing members).

    Each axis score is affine in the members' log2 values, with weights that depend on
    which members are present in the row. For axis ``a`` and row ``i``::

        score[i, a] = sum(weights[i, s] * Z[i, slot_input[s]]
                          for s where slot_feature[s] == a and weights[i, s] != 0)
                      + offsets[i, a]

    A member that is missing in a row has weight 0 (its NaN is skipped, not multiplied);
    a row whose score is missing has all its weights 0 and a NaN offset. Memory is
    O(n_rows x n_slots), n_slots = total number of axis members.

    Attributes
    ----------
    features : tuple of str, length n_axes
        Output names of the axis scores (``axis_<Axis>``).
    feature_index : ndarray of int, shape (n_axes,)
        Position of each axis score in the owning transformer's output.
    slot_feature : ndarray of int, shape (n_slots,)
        Axis (index into ``features``) of each member slot; slots of an axis are contiguous.
    slot_input : ndarray of int, shape (n_slots,)
        Column of ``Z`` holding each slot's member.
    weights : ndarray of float64, shape (n_rows, n_slots)
        ``1/k`` for the ``k`` members present in the row, 0 otherwise.
    offsets : ndarray of float64, shape (n_rows, n_axes)
        ``-sum(weights * centers)`` over the axis's slots; NaN where the score is missing.
    """

    features: tuple[str, ...]
    feature_index: np.ndarray
    slot_feature: np.ndarray
    slot_input: np.ndarray
    weights: np.ndarray
    offsets: np.ndarray

    def apply(self, Z: Any) -> np.ndarray:
        """The axis scores rebuilt from ``Z``: ndarray of shape (n_rows, n_axes)."""
        z = np.asarray(Z, dtype=np.float64)
        out = self.offsets.copy()
        for s, (c, a) in enumerate(zip(self.slot_input, self.slot_feature, strict=True)):
            w = self.weights[:, s]
            out[:, a] += np.where(w != 0, w * np.nan_to_num(z[:, c]), 0.0)
        return out

    def for_feature(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(inputs (k,), weights (n_rows, k), offsets (n_rows,))`` of one axis score."""
        try:
            a = self.features.index(name)
        except ValueError:
            raise UsageError(f"{name!r} is not an axis score: {list(self.features)}") from None
        slots = self.slot_feature == a
        return self.slot_input[slots], self.weights[:, slots], self.offsets[:, a]


class AxisScoreTransformer(FeatureTransformer):
    """Per immune axis, the mean log2 concentration of the members present in each row.

    The input columns are log2 concentrations named ``log2_<ID>`` or ``<ID>``. The score of
    an axis in a row is the mean over the members present (not NaN) in that row; NaN if
    fewer than ``min_members`` are present.

    Why centering: members of one axis sit at very different levels (IL-12p70 a few
    pg/mL, TNF tens), so a plain mean jumps when one member happens to be missing in a
    row, and the score would then measure missingness rather than the axis. With
    ``center=True`` each member is first centered on its training median (``centers_``),
    so every member contributes its deviation from its typical level and the mean over any
    subset of members estimates the same axis activity.

    Parameters
    ----------
    axes : "default", None, sequence of str or mapping str -> sequence of str
        ``"default"``: every axis of the analyte registry; a list of registry axis names;
        or a mapping axis name -> member analyte ids (custom axes). None: no axes.
    center : bool, default=True
        Center each member on its training median before averaging.
    min_members : int, default=1
        Fewest members present in a row for a score; NaN below that.

    Attributes
    ----------
    axes_ : dict of str to tuple of str
        Axes scored and their members present at fit (a member whose column is absent or
        all-NaN at fit is dropped). An axis with fewer than ``min_members`` such members
        is skipped with a :class:`~cytoresp.features.ratios.SkippedFeatureWarning`.
    centers_ : dict of str to float
        Training median of each member's log2 value (0 with ``center=False``).
    member_columns_ : dict of str to int
        Input column of each member.
    skipped_axes_ : list of str
        Axes skipped at fit.
    dropped_members_ : dict of str to tuple of str
        Per axis, the members not present at fit.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"log2_IFNG": [1.0, 3.0, None], "log2_TNF": [5.0, 7.0, 8.0]})
    >>> t = AxisScoreTransformer(axes={"Th1": ["IFNG", "TNF"]}).fit(X)
    >>> t.centers_
    {'IFNG': 2.0, 'TNF': 7.0}
    >>> t.transform(X).ravel().tolist()   # row 3: TNF only, 8 - 7
    [-1.5, 0.5, 1.0]
    """

    def __init__(self, axes: Any = "default", center: bool = True, min_members: int = 1):
        self.axes = axes
        self.center = center
        self.min_members = min_members

    def _check_params(self) -> dict[str, tuple[str, ...]]:
        check_bool(self.center, "center")
        check_positive_int(self.min_members, "min_members")
        return check_axes(self.axes)

    def fit(self, X: Any, y: Any = None) -> AxisScoreTransformer:
        """Find each axis's members and, with ``center``, their training medians.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            log2 concentrations.
        y : ignored

        Returns
        -------
        self
        """
        axes = self._check_params()
        X = self._validate(X, reset=True)
        lookup = analyte_lookup(self._names_in())
        observed = ~np.isnan(X).all(axis=0)
        self.axes_, self.skipped_axes_, self.dropped_members_ = {}, [], {}
        skipped_detail = []
        for name, members in axes.items():
            present = tuple(m for m in members if m in lookup and observed[lookup[m]])
            absent = tuple(m for m in members if m not in present)
            if absent:
                self.dropped_members_[name] = absent
            if len(present) < self.min_members:
                self.skipped_axes_.append(name)
                skipped_detail.append(f"{name} ({len(present)} of {len(members)} present)")
            else:
                self.axes_[name] = present
        if skipped_detail:
            warnings.warn(
                SkippedFeatureWarning(
                    f"AxisScoreTransformer: skipped axis score(s) with fewer than "
                    f"min_members={self.min_members} member(s) present at fit: "
                    f"{'; '.join(skipped_detail)}"
                ),
                stacklevel=2,
            )
        used = list(dict.fromkeys(m for ms in self.axes_.values() for m in ms))
        self.member_columns_ = {m: lookup[m] for m in used}
        if self.center and used:
            medians = np.nanmedian(X[:, [lookup[m] for m in used]], axis=0)
            self.centers_ = {m: float(v) for m, v in zip(used, medians, strict=True)}
        else:
            self.centers_ = dict.fromkeys(used, 0.0)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Axis scores, float64 of shape (n_samples, n_axes)."""
        check_is_fitted(self)
        return self._transform_array(self._validate(X, reset=False))

    # -- the slot layout: one slot per (axis, member), slots of an axis contiguous ---------
    def _slots(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(input column, center, axis)`` of each slot."""
        members = [m for ms in self.axes_.values() for m in ms]
        cols = np.asarray([self.member_columns_[m] for m in members], dtype=np.intp)
        centers = np.asarray([self.centers_[m] for m in members], dtype=np.float64)
        sizes = [len(ms) for ms in self.axes_.values()]
        slot_axis = np.repeat(np.arange(len(sizes), dtype=np.intp), sizes)
        return cols, centers, slot_axis

    def _present_counts(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(present (n, n_slots) bool, count (n, n_axes) float)``, column by column."""
        cols, _, slot_axis = self._slots()
        n = X.shape[0]
        present = np.empty((n, len(cols)), dtype=bool, order="F")
        count = np.zeros((n, len(self.axes_)), dtype=np.float64, order="F")
        for s, (c, a) in enumerate(zip(cols, slot_axis, strict=True)):
            np.isnan(X[:, c], out=present[:, s])
            np.logical_not(present[:, s], out=present[:, s])
            count[:, a] += present[:, s]
        return present, count

    def _transform_array(self, X: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        n = X.shape[0]
        if out is None:
            out = np.empty((n, len(self.axes_)), dtype=np.float64, order="F")
        if not self.axes_:
            return out
        cols, centers, slot_axis = self._slots()
        present, count = self._present_counts(X)
        out[:] = 0.0
        tmp = np.empty(n)
        # column by column (contiguous in the usual F-ordered frame), no n x n_slots copy
        for s, (c, a) in enumerate(zip(cols, slot_axis, strict=True)):
            np.subtract(X[:, c], centers[s] if self.center else 0.0, out=tmp)
            np.add(out[:, a], tmp, out=out[:, a], where=present[:, s])
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(out, count, out=out)
        out[count < self.min_members] = np.nan
        return out

    def rowwise_weights(self, X: Any) -> AxisRowWeights:
        """Row-wise weights that rebuild every axis score exactly (see :class:`AxisRowWeights`).

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features_in_)
            The same log2 input :meth:`transform` takes.

        Returns
        -------
        AxisRowWeights
            ``slot_input`` indexes the columns of ``X``; ``feature_index`` is
            ``0..n_axes-1``.
        """
        check_is_fitted(self)
        return self._rowwise(self._validate(X, reset=False))

    def _rowwise(self, X: np.ndarray) -> AxisRowWeights:
        n, n_axes = X.shape[0], len(self.axes_)
        cols, centers, slot_axis = self._slots()
        if not n_axes:
            empty = np.empty(0, dtype=np.intp)
            return AxisRowWeights((), empty, empty, empty, np.empty((n, 0)), np.empty((n, 0)))
        present, count = self._present_counts(X)
        ok = count >= self.min_members
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(ok, 1.0 / count, 0.0)
        weights = np.empty((n, len(cols)), dtype=np.float64, order="F")
        offsets = np.zeros((n, n_axes), dtype=np.float64, order="F")
        for s, a in enumerate(slot_axis):
            np.multiply(inv[:, a], present[:, s], out=weights[:, s])
            offsets[:, a] -= weights[:, s] * centers[s]
        offsets[~ok] = np.nan
        names = tuple(axis_feature_name(a) for a in self.axes_)
        return AxisRowWeights(
            names, np.arange(n_axes, dtype=np.intp), slot_axis, cols, weights, offsets
        )

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        """``axis_<Axis>`` per axis scored (non-alphanumerics replaced by ``_``)."""
        self._check_input_features(input_features)
        return np.asarray([axis_feature_name(a) for a in self.axes_], dtype=object)

    def _get_state(self) -> dict[str, Any]:
        members = list(self.centers_)
        centers = floats_to_json(list(self.centers_.values()))
        return {
            "axes_": {a: list(ms) for a, ms in self.axes_.items()},
            "centers_": dict(zip(members, centers, strict=True)),
            "member_columns_": {m: int(c) for m, c in self.member_columns_.items()},
            "skipped_axes_": list(self.skipped_axes_),
            "dropped_members_": {a: list(ms) for a, ms in self.dropped_members_.items()},
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.axes_ = {str(a): tuple(ms) for a, ms in state["axes_"].items()}
        centers = state["centers_"]
        values = floats_from_json(list(centers.values()))
        self.centers_ = {m: float(v) for m, v in zip(centers, values, strict=True)}
        self.member_columns_ = {str(m): int(c) for m, c in state["member_columns_"].items()}
        self.skipped_axes_ = list(state["skipped_axes_"])
        self.dropped_members_ = {a: tuple(ms) for a, ms in state["dropped_members_"].items()}
        members = {m for ms in self.axes_.values() for m in ms}
        if members != set(self.centers_) or members != set(self.member_columns_) or any(
            not 0 <= c < self.n_features_in_ for c in self.member_columns_.values()
        ):
            raise ValueError("axes_, centers_ and member_columns_ do not agree")
