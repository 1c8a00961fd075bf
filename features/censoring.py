"""Censoring-aware log2 transform of cytokine concentrations.

This module also holds the plumbing every cytoresp feature transformer shares (input
validation, feature names, JSON persistence without pickle): see :class:`FeatureTransformer`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, Self

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from cytoresp.errors import ModelIntegrityError, UsageError

#: Version of the dictionaries written by ``to_dict``; bumped on incompatible changes.
FORMAT_VERSION = 1

#: Default substitution for a value censored below its lower limit L: L / sqrt(2).
DEFAULT_BELOW_FACTOR = 1 / math.sqrt(2)

LOG_PREFIX = "log2_"
INDICATOR_SUFFIX = "_below_lloq"


class FeatureTransformer(TransformerMixin, BaseEstimator):
    """Shared base of the cytoresp feature transformers (not used on its own).

    Gives every transformer float64 input validation that lets NaN through, sklearn's
    feature-name bookkeeping (``n_features_in_``, ``feature_names_in_``; a numpy input's
    columns are named ``x0..xN``), and JSON persistence: ``to_dict`` / ``from_dict``.
    Subclasses implement ``_check_params``, ``_get_state`` and ``_set_state``.
    """

    #: Fewest input columns accepted (0 for the steps of a panel without analytes).
    _min_features = 1

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # -- validation and names ------------------------------------------------------------
    def _validate(self, X: Any, *, reset: bool) -> np.ndarray:
        """``X`` as a 2-D float64 array (NaN allowed, inf refused); sets/checks names."""
        try:
            return validate_data(
                self, X, reset=reset, dtype=np.float64, ensure_all_finite="allow-nan",
                ensure_min_features=self._min_features,
            )
        except UsageError:
            raise
        except ValueError as exc:  # same message (sklearn's checks match it), domain class
            raise UsageError(f"{type(self).__name__}: {exc}") from None

    def _names_in(self) -> list[str]:
        """Column names seen at fit, ``x0..xN`` for a numpy input."""
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            return [f"x{i}" for i in range(self.n_features_in_)]
        return [str(n) for n in names]

    def _check_input_features(self, input_features: Sequence[str] | None) -> list[str]:
        """Validate ``get_feature_names_out``'s argument as scikit-learn does."""
        check_is_fitted(self)
        if input_features is None:
            return self._names_in()
        given = [str(f) for f in input_features]
        names = getattr(self, "feature_names_in_", None)
        if names is not None and given != [str(n) for n in names]:
            raise UsageError("input_features is not equal to feature_names_in_")
        if len(given) != self.n_features_in_:
            raise UsageError(
                f"input_features should have length equal to number of features "
                f"({self.n_features_in_}), got {len(given)}"
            )
        return given

    # -- persistence ---------------------------------------------------------------------
    def _check_params(self) -> None:
        """Validate the parameters (raise UsageError); called by fit and from_dict."""

    def _params_to_json(self) -> dict[str, Any]:
        return _jsonable(self.get_params(deep=False))

    @classmethod
    def _params_from_json(cls, params: dict[str, Any]) -> dict[str, Any]:
        return dict(params)

    def _get_state(self) -> dict[str, Any]:
        return {}

    def _set_state(self, state: dict[str, Any]) -> None:
        pass

    def to_dict(self) -> dict[str, Any]:
        """The fitted transformer as a JSON-serialisable dict (no pickle).

        Returns
        -------
        dict
            ``{"class", "format", "params", "fitted"}``; NaN is written as ``None``.
            :meth:`from_dict` rebuilds a transformer whose output is bit-identical.
        """
        check_is_fitted(self)
        fitted: dict[str, Any] = {"n_features_in_": int(self.n_features_in_)}
        if hasattr(self, "feature_names_in_"):
            fitted["feature_names_in_"] = [str(n) for n in self.feature_names_in_]
        fitted.update(self._get_state())
        return {
            "class": type(self).__name__,
            "format": FORMAT_VERSION,
            "params": self._params_to_json(),
            "fitted": fitted,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Rebuild a fitted transformer from :meth:`to_dict`'s output.

        Raises
        ------
        ModelIntegrityError
            If ``d`` is not a saved ``cls`` of a supported format, or is malformed.
        """
        if not isinstance(d, dict) or d.get("class") != cls.__name__:
            found = d.get("class") if isinstance(d, dict) else type(d).__name__
            raise ModelIntegrityError(f"expected a saved {cls.__name__}, found {found!r}")
        if d.get("format") != FORMAT_VERSION:
            raise ModelIntegrityError(
                f"saved {cls.__name__} has format {d.get('format')!r}; this version of "
                f"cytoresp reads format {FORMAT_VERSION}"
            )
        try:
            obj = cls(**cls._params_from_json(d["params"]))
            obj._check_params()
            fitted = d["fitted"]
            obj.n_features_in_ = int(fitted["n_features_in_"])
            if "feature_names_in_" in fitted:
                obj.feature_names_in_ = np.asarray(fitted["feature_names_in_"], dtype=object)
            obj._set_state(fitted)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelIntegrityError(
                f"cannot rebuild {cls.__name__} from its saved form: {exc}"
            ) from None
        return obj


def _jsonable(value: Any) -> Any:
    """Tuples to lists, numpy scalars to Python, recursively (params are small)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def floats_to_json(values: np.ndarray) -> list[float | None]:
    """A float array as a list, NaN as None (strict JSON has no NaN)."""
    return [None if math.isnan(v) else float(v) for v in np.asarray(values, dtype=np.float64)]


def floats_from_json(values: Sequence[float | None]) -> np.ndarray:
    """Inverse of :func:`floats_to_json`."""
    return np.asarray([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def check_bool(value: Any, name: str) -> bool:
    """``value`` if it is a bool, else UsageError."""
    if not isinstance(value, bool | np.bool_):
        raise UsageError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_below_factor(value: Any) -> float:
    """``below_factor`` as a float in (0, 1], else UsageError."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and 0 < value <= 1
    if not ok or not math.isfinite(float(value)):
        raise UsageError(
            f"below_factor must be a number in (0, 1]: a value censored below its lower "
            f"limit L is replaced by L * below_factor (1/sqrt(2) by default, 0.5 for L/2, "
            f"1 for L); got {value!r}"
        )
    return float(value)


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1, else UsageError."""
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
        raise UsageError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def analyte_of(column: str) -> str:
    """The analyte id a (log2) column holds: ``"log2_IFNG" -> "IFNG"``, ``"IFNG" -> "IFNG"``."""
    return column[len(LOG_PREFIX) :] if column.startswith(LOG_PREFIX) else column


def analyte_lookup(names: Sequence[str]) -> dict[str, int]:
    """Analyte id -> column index; a ``log2_<ID>`` column wins over a bare ``<ID>`` one."""
    lookup: dict[str, int] = {}
    for i, name in enumerate(names):
        analyte = analyte_of(name)
        if analyte not in lookup or name.startswith(LOG_PREFIX):
            lookup[analyte] = i
    return lookup


class CensoredLog2Transformer(FeatureTransformer):
    """log2 of cytokine concentrations, with censored-below cells substituted.

    The input holds concentrations in pg/mL as :meth:`Panel.to_model_frame` writes them:
    a cell censored below its lower limit ``L`` is ``-L``, a censored-above cell holds its
    upper limit, NaN is missing. The output is ``log2(x)`` for an observed ``x > 0`` and
    ``log2(L * below_factor)`` for a censored ``-L``. A value of exactly 0 (ELISA exports
    often write 0 for undetectable) is treated as censored below ``floor_``, the smallest
    positive value or limit of its column at fit. NaN stays NaN (no imputation).

    Parameters
    ----------
    below_factor : float, default=1/sqrt(2)
        Censored-below substitution as a fraction of the limit, in (0, 1]:
        1/sqrt(2) gives LLOQ/√2, 0.5 gives LLOQ/2, 1 gives the LLOQ itself.
    add_indicators : bool, default=False
        Append one column ``<ID>_below_lloq`` per analyte that had a censored-below value
        (or a 0) at fit: 1.0 censored below, 0.0 observed, NaN missing.

    Attributes
    ----------
    floor_ : ndarray of shape (n_features_in_,)
        Smallest positive value or limit per column at fit (NaN if none); the limit
        assumed for a 0. A 0 in a column without a floor becomes NaN.
    indicator_mask_ : ndarray of bool, shape (n_features_in_,)
        Columns that get a ``_below_lloq`` indicator (only with ``add_indicators``).

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"IL10": [4.0, -2.0, 0.0, None]})
    >>> t = CensoredLog2Transformer(below_factor=0.5, add_indicators=True).fit(X)
    >>> t.get_feature_names_out().tolist()
    ['log2_IL10', 'IL10_below_lloq']
    >>> t.transform(X).tolist()   # -2 -> log2(2 * 0.5); 0 -> log2(floor 2 * 0.5)
    [[2.0, 0.0], [0.0, 1.0], [0.0, 1.0], [nan, nan]]
    """

    def __init__(self, below_factor: float = DEFAULT_BELOW_FACTOR, add_indicators: bool = False):
        self.below_factor = below_factor
        self.add_indicators = add_indicators

    def _check_params(self) -> None:
        check_below_factor(self.below_factor)
        check_bool(self.add_indicators, "add_indicators")

    def fit(self, X: Any, y: Any = None) -> CensoredLog2Transformer:
        """Learn each column's floor (for zeros) and which columns get an indicator.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_analytes)
            Concentrations in pg/mL; ``-L`` = censored below ``L``; NaN = missing.
        y : ignored

        Returns
        -------
        self
        """
        self._check_params()
        X = self._validate(X, reset=True)
        absx = np.abs(X)
        floor = np.min(np.where(absx > 0, absx, np.inf), axis=0, initial=np.inf)
        self.floor_ = np.where(np.isinf(floor), np.nan, floor)
        below = X <= 0
        no_floor = below.any(axis=0) & np.isnan(self.floor_)
        if no_floor.any():
            cols = [n for n, bad in zip(self._names_in(), no_floor, strict=True) if bad]
            warnings.warn(
                f"CensoredLog2Transformer: column(s) {', '.join(cols)} hold zeros but no "
                f"positive value or limit to censor them at; those zeros become missing",
                UserWarning,
                stacklevel=2,
            )
        self.indicator_mask_ = below.any(axis=0) & bool(self.add_indicators)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """log2 concentrations (then indicators), float64 of shape (n_samples, n_out)."""
        check_is_fitted(self)
        return self._transform_array(self._validate(X, reset=False))

    def _log2(self, X: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The log2 block only, on a validated array (into ``out`` if given)."""
        v = np.abs(X, out=out)  # never a view of X: safe to modify in place
        zero = X == 0
        if zero.any():
            np.copyto(v, np.broadcast_to(self.floor_, v.shape), where=zero)
        np.multiply(v, float(self.below_factor), out=v, where=X <= 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            np.log2(v, out=v)
        return v

    def _indicators(self, X: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The ``_below_lloq`` block only, on a validated array (into ``out`` if given)."""
        cols = np.flatnonzero(self.indicator_mask_)
        if out is None:
            out = np.empty((X.shape[0], len(cols)), dtype=np.float64, order="F")
        for k, c in enumerate(cols):
            x = X[:, c]
            np.less_equal(x, 0.0, out=out[:, k], casting="unsafe")
            np.copyto(out[:, k], np.nan, where=np.isnan(x))
        return out

    def _transform_array(self, X: np.ndarray) -> np.ndarray:
        p = X.shape[1]
        out = np.empty((X.shape[0], p + int(self.indicator_mask_.sum())), order="F")
        self._log2(X, out=out[:, :p])
        self._indicators(X, out=out[:, p:])
        return out

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        """``log2_<ID>`` per input column, then ``<ID>_below_lloq`` per indicator."""
        names = self._check_input_features(input_features)
        out = [LOG_PREFIX + n for n in names]
        out += [n + INDICATOR_SUFFIX for n, m in zip(names, self.indicator_mask_, strict=True) if m]
        return np.asarray(out, dtype=object)

    def _get_state(self) -> dict[str, Any]:
        return {
            "floor_": floats_to_json(self.floor_),
            "indicator_mask_": [bool(m) for m in self.indicator_mask_],
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.floor_ = floats_from_json(state["floor_"])
        self.indicator_mask_ = np.asarray(state["indicator_mask_"], dtype=bool)
        if self.floor_.shape != (self.n_features_in_,) or self.indicator_mask_.shape != (
            self.n_features_in_,
        ):
            raise ValueError("floor_ and indicator_mask_ must have one entry per input column")
