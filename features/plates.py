"""Per-plate median normalisation of log-scale cytokine concentrations.

Multiplex immunoassays are run plate by plate, and a plate often reads every analyte a
little higher or lower than the next (calibrator lot, incubation, reader drift). When
samples are spread over plates without regard to the outcome, shifting each plate so that
its median matches the training cohort's median removes much of that offset.

:class:`PlateMedianNormaliser` is the transformer; :class:`~cytoresp.features.builder.
PanelFeatures` applies it to its log2 block when ``plate_normalisation=True``, so it is
fitted inside every cross-validation fold and saved with the model. In a model frame the
plate travels as a float code (:func:`~cytoresp.panels.panel.plate_codes`) in the column
:data:`~cytoresp.panels.panel.PLATE_COLUMN`.
Methods and caveats: ``docs/methods.md``, "Per-plate median normalisation".
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from cytoresp.errors import UsageError
from cytoresp.features.censoring import FeatureTransformer, floats_from_json, floats_to_json
from cytoresp.panels.panel import PLATE_COLUMN, plate_codes

__all__ = [
    "DEFAULT_MIN_SAMPLES",
    "PlateMedianNormaliser",
    "PlateNormalisationWarning",
]

#: Default minimum number of samples behind a plate median.
DEFAULT_MIN_SAMPLES = 8


class PlateNormalisationWarning(UserWarning):
    """A plate could not be normalised (too few samples); its rows are left unshifted."""


def _check_min_samples(value: Any) -> int:
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
        raise UsageError(
            f"min_samples (plate_min_samples) must be an integer >= 1, got {value!r}"
        )
    return int(value)


def column_medians(values: np.ndarray, below: np.ndarray | None) -> np.ndarray:
    """Median of each column over its non-missing cells, or NaN where it is not trusted.

    ``values`` holds censored-below cells at their limit. A column's median is NaN when
    it has no non-missing cell, or when half of its non-missing cells or more are
    censored below (the median would then be a detection limit, not a concentration).

    Examples
    --------
    >>> v = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 5.0]])
    >>> column_medians(v, np.array([[0, 1], [0, 1], [0, 0]], dtype=bool)).tolist()
    [2.0, nan]
    """
    n_cols = values.shape[1]
    if values.shape[0] == 0:
        return np.full(n_cols, np.nan)
    present = ~np.isnan(values)
    n = present.sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        med = np.nanmedian(values, axis=0)
    if below is not None:
        n_below = (below & present).sum(axis=0)
        med = np.where(2 * n_below >= n, np.nan, med)
    return np.where(n > 0, med, np.nan)


class PlateMedianNormaliser(FeatureTransformer):
    """Shift log-scale concentrations so that each plate's median matches the training median.

    ``fit`` learns, for every analyte column, the reference median over all training
    rows and the median of each training plate. ``transform`` adds to every value of a
    row ``reference median - median of the row's plate`` (analyte by analyte):

    - a plate seen in training uses the median learnt at fit, so a training-plate row is
      transformed the same whatever other rows are transformed with it;
    - a plate not seen in training uses the median of *its rows in the data being
      transformed*, if there are at least ``min_samples`` of them; otherwise the plate's
      rows are not shifted and a :class:`PlateNormalisationWarning` is issued. The result
      for a new plate therefore depends on the other samples of that plate;
    - a row without a plate (NaN) is not shifted.

    Censoring: pass ``below`` (True where a cell is censored below its lower limit, the
    cell holding the log of that limit). Medians are taken over the non-missing cells
    with censored cells counted at their limit, and a median is used only when fewer than
    half of those cells are censored; the same rule applies to the reference. A median
    that is not used (too few cells, too many censored, no cell) means no shift for that
    analyte on that plate. A plate median needs at least ``min_samples`` non-missing
    cells of the analyte, for training plates too.

    Parameters
    ----------
    plate_column : str, default="plate"
        The column holding the plate. Its values are float codes (:func:`plate_codes`)
        or, in a DataFrame, labels (str or numbers), which are encoded on the way in.
        For a numpy input, columns are named ``x0..xN``.
    min_samples : int, default=8
        Fewest samples behind a plate median.

    Attributes
    ----------
    plate_index_ : int
        Position of the plate column in the input.
    analyte_indices_ : ndarray of int
        Positions of the other (log-concentration) columns.
    reference_ : ndarray of shape (n_analytes,)
        Training median of each analyte (NaN: not used, no shift for that analyte).
    plates_ : ndarray of shape (n_plates,)
        Codes of the training plates.
    plate_medians_ : ndarray of shape (n_plates, n_analytes)
        Each training plate's median (NaN: not used).
    plate_sizes_ : ndarray of int, shape (n_plates,)
        Training rows per plate.

    See Also
    --------
    cytoresp.features.builder.PanelFeatures : applies it with ``plate_normalisation=True``.

    Examples
    --------
    >>> import pandas as pd
    >>> train = pd.DataFrame({"plate": ["A"] * 3 + ["B"] * 3,
    ...                       "log2_IL6": [1.0, 2.0, 3.0, 3.0, 4.0, 5.0]})
    >>> norm = PlateMedianNormaliser(min_samples=2).fit(train)
    >>> norm.reference_.tolist(), norm.plate_medians_.ravel().tolist()
    ([3.0], [2.0, 4.0])
    >>> norm.set_output(transform="pandas").transform(train)["log2_IL6"].tolist()
    [2.0, 3.0, 4.0, 2.0, 3.0, 4.0]
    >>> import warnings
    >>> new = pd.DataFrame({"plate": ["C", "C", "D"], "log2_IL6": [6.0, 8.0, 1.0]})
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     norm.transform(new)["log2_IL6"].tolist()
    [2.0, 4.0, 1.0]
    >>> [type(w.message).__name__ for w in caught]
    ['PlateNormalisationWarning']

    (plate C has 2 rows in the new data, its own median 7 is used; plate D has one,
    fewer than ``min_samples``: not shifted, with a warning.)
    """

    def __init__(self, plate_column: str = PLATE_COLUMN, min_samples: int = DEFAULT_MIN_SAMPLES):
        self.plate_column = plate_column
        self.min_samples = min_samples

    def _check_params(self) -> None:
        if not isinstance(self.plate_column, str) or not self.plate_column:
            raise UsageError(f"plate_column must be a column name, got {self.plate_column!r}")
        _check_min_samples(self.min_samples)

    # -- input -----------------------------------------------------------------------------
    def _encode(self, X: Any) -> Any:
        """A DataFrame's plate labels as codes (numeric plate columns are kept)."""
        if isinstance(X, pd.DataFrame) and self.plate_column in X.columns:
            col = X[self.plate_column]
            if not isinstance(col, pd.DataFrame) and not pd.api.types.is_numeric_dtype(col):
                X = X.copy()
                X[self.plate_column] = plate_codes(col)
        return X

    def _split(self, Xa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return Xa[:, self.analyte_indices_], Xa[:, self.plate_index_]

    @staticmethod
    def _check_below(below: Any, shape: tuple[int, int]) -> np.ndarray | None:
        if below is None:
            return None
        b = np.asarray(below, dtype=bool)
        if b.shape != shape:
            raise UsageError(
                f"below must have the shape of the analyte columns {shape}, got {b.shape}"
            )
        return b

    # -- fit ---------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, below: Any = None) -> PlateMedianNormaliser:
        """Learn the reference median of each analyte and the median of each training plate.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_columns)
            The plate column and log-scale concentrations (NaN = missing).
        y : ignored
        below : array-like of bool, shape (n_samples, n_columns - 1), optional
            True where an analyte cell is censored below its limit (the cell holds the
            log of the limit). Default: no cell is censored.

        Returns
        -------
        self
        """
        self._check_params()
        Xa = self._validate(self._encode(X), reset=True)
        names = self._names_in()
        if self.plate_column not in names:
            raise UsageError(
                f"PlateMedianNormaliser: no plate column {self.plate_column!r} among the "
                f"input columns {names!r}"
            )
        self.plate_index_ = names.index(self.plate_column)
        self.analyte_indices_ = np.asarray(
            [i for i in range(len(names)) if i != self.plate_index_], dtype=np.intp
        )
        values, plates = self._split(Xa)
        self._fit_arrays(values, plates, self._check_below(below, values.shape))
        return self

    def _fit_arrays(
        self, values: np.ndarray, plates: np.ndarray, below: np.ndarray | None
    ) -> PlateMedianNormaliser:
        """Fit on the analyte block and the plate codes (the plate index is set by caller)."""
        min_samples = _check_min_samples(self.min_samples)
        self.reference_ = column_medians(values, below)
        has = ~np.isnan(plates)
        codes, inverse, sizes = np.unique(plates[has], return_inverse=True, return_counts=True)
        rows = np.flatnonzero(has)
        medians = np.full((len(codes), values.shape[1]), np.nan)
        for k in range(len(codes)):
            medians[k] = self._plate_median(values, below, rows[inverse == k], min_samples)
        self.plates_ = codes.astype(np.float64)
        self.plate_medians_ = medians
        self.plate_sizes_ = sizes.astype(np.int64)
        return self

    @staticmethod
    def _plate_median(
        values: np.ndarray, below: np.ndarray | None, rows: np.ndarray, min_samples: int
    ) -> np.ndarray:
        v = values[rows]
        med = column_medians(v, None if below is None else below[rows])
        return np.where((~np.isnan(v)).sum(axis=0) >= min_samples, med, np.nan)

    # -- transform ---------------------------------------------------------------------------
    def shifts(
        self, values: np.ndarray, plates: np.ndarray, below: np.ndarray | None = None
    ) -> np.ndarray:
        """The shift ``reference - plate median`` of every cell (0 where none applies).

        Parameters
        ----------
        values : ndarray of shape (n_samples, n_analytes)
            Log-scale values, censored-below cells at their limit (only used for the
            medians of plates not seen in training).
        plates : ndarray of shape (n_samples,)
            Plate codes, NaN for none.
        below : ndarray of bool, optional
            Censored-below cells.

        Returns
        -------
        ndarray of shape (n_samples, n_analytes)
        """
        check_is_fitted(self)
        n, p = values.shape
        out = np.zeros((n, p), dtype=np.float64)
        has = ~np.isnan(plates)
        if not has.any():
            return out
        codes, inverse = np.unique(plates[has], return_inverse=True)
        rows_with = np.flatnonzero(has)
        if len(self.plates_):
            pos = np.clip(np.searchsorted(self.plates_, codes), 0, len(self.plates_) - 1)
            seen = self.plates_[pos] == codes
        else:
            pos = np.zeros(len(codes), dtype=np.intp)
            seen = np.zeros(len(codes), dtype=bool)
        min_samples = _check_min_samples(self.min_samples)
        small: list[tuple[int, int]] = []
        for k in range(len(codes)):
            rows = rows_with[inverse == k]
            if seen[k]:
                med = self.plate_medians_[pos[k]]
            elif len(rows) >= min_samples:
                med = self._plate_median(values, below, rows, min_samples)
            else:
                small.append((k, len(rows)))
                continue
            shift = self.reference_ - med
            out[rows] = np.where(np.isnan(shift), 0.0, shift)
        if small:
            sizes = sorted({s for _, s in small})
            warnings.warn(
                PlateNormalisationWarning(
                    f"{len(small)} plate(s) not seen in training have fewer than "
                    f"{min_samples} samples in the data being scored ({', '.join(map(str, sizes))}"
                    f" sample(s)); their samples are not plate-normalised. Score a new plate "
                    f"together with at least {min_samples} of its samples."
                ),
                stacklevel=3,
            )
        return out

    def transform(self, X: Any, below: Any = None) -> np.ndarray:
        """``X`` with each analyte value shifted by its plate's offset; plate column unchanged.

        Parameters
        ----------
        X : DataFrame or array
            As for :meth:`fit`.
        below : array-like of bool, optional
            As for :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_samples, n_columns)
        """
        check_is_fitted(self)
        Xa = self._validate(self._encode(X), reset=False)
        values, plates = self._split(Xa)
        out = np.array(Xa, dtype=np.float64, copy=True)
        shift = self.shifts(values, plates, self._check_below(below, values.shape))
        out[:, self.analyte_indices_] = values + shift
        return out

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        """The input column names (the output has the same columns)."""
        return np.asarray(self._check_input_features(input_features), dtype=object)

    # -- persistence -----------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        return {
            "plate_index_": int(self.plate_index_),
            "analyte_indices_": self.analyte_indices_.tolist(),
            "reference_": floats_to_json(self.reference_),
            "plates_": floats_to_json(self.plates_),
            "plate_medians_": [floats_to_json(r) for r in self.plate_medians_],
            "plate_sizes_": self.plate_sizes_.tolist(),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.plate_index_ = int(state["plate_index_"])
        self.analyte_indices_ = np.asarray(state["analyte_indices_"], dtype=np.intp)
        self.reference_ = floats_from_json(state["reference_"])
        self.plates_ = floats_from_json(state["plates_"])
        p = len(self.reference_)
        self.plate_medians_ = np.asarray(
            [floats_from_json(r) for r in state["plate_medians_"]], dtype=np.float64
        ).reshape(len(self.plates_), p)
        self.plate_sizes_ = np.asarray(state["plate_sizes_"], dtype=np.int64)
        ok = (
            len(self.analyte_indices_) == p == self.n_features_in_ - 1
            and 0 <= self.plate_index_ < self.n_features_in_
            and self.plate_index_ not in set(self.analyte_indices_.tolist())
            and len(self.plate_sizes_) == len(self.plates_)
            and not np.isnan(self.plates_).any()
            and bool(np.all(np.diff(self.plates_) > 0))
        )
        if not ok:
            raise ValueError("the saved plate medians are inconsistent")
