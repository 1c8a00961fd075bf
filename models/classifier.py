"""The surface shared by cytoresp's binary classifiers that score in log-odds.

A subclass implements ``_margin(arr)`` (log-odds of a checked float matrix) and names its
``_fitted_attribute``; :class:`MarginClassifierMixin` gives it ``decision_function``,
``predict_proba`` and ``predict``, the checks of the training data and of the features at
prediction time, and parameter validation through scikit-learn's
``_parameter_constraints`` with failures raised as :class:`~cytoresp.errors.UsageError`
(so the command line reports a bad configuration as bad usage, exit code 2).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted

from cytoresp.errors import UsageError

__all__ = ["MarginClassifierMixin", "as_binary_labels", "as_float_matrix"]


def as_binary_labels(y: Any) -> np.ndarray:
    """``y`` as a float array of 0/1 labels (1 = responder), or a UsageError.

    Raises
    ------
    UsageError
        If ``y`` is not one-dimensional or holds anything but 0 and 1 (the first few
        offending values are named).

    Examples
    --------
    >>> as_binary_labels([0, 1, True]).tolist()
    [0.0, 1.0, 1.0]
    """
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise UsageError(f"y must be one-dimensional, got shape {arr.shape}")
    try:
        out = arr.astype(float)
    except (TypeError, ValueError):
        raise UsageError("y must hold 0/1 labels (1 = responder)") from None
    bad = ~np.isin(out, (0.0, 1.0))
    if bad.any():
        found = ", ".join(repr(v) for v in list(dict.fromkeys(arr[bad].tolist()))[:5])
        raise UsageError(f"y must hold only 0/1 labels (1 = responder); found {found}")
    return out


def as_float_matrix(X: Any) -> tuple[np.ndarray, list[str]]:
    """``X`` as a float64 matrix, with its column names (``x0, x1, ...`` for arrays).

    Raises
    ------
    UsageError
        If an array is not 2-D.

    Examples
    --------
    >>> arr, names = as_float_matrix([[1, 2], [3, 4]])
    >>> arr.dtype, names
    (dtype('float64'), ['x0', 'x1'])
    """
    if isinstance(X, pd.DataFrame):
        return X.to_numpy(dtype=np.float64), [str(c) for c in X.columns]
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise UsageError(f"expected a 2-D feature matrix, got shape {arr.shape}")
    return arr, [f"x{i}" for i in range(arr.shape[1])]


class MarginClassifierMixin(ClassifierMixin):
    """Binary classifier whose scores are log-odds (mix in before ``BaseEstimator``).

    Subclasses define ``_parameter_constraints``, decorate ``fit`` with
    ``sklearn.base._fit_context``, set ``classes_`` and ``n_features_in_`` in ``fit``
    (:meth:`_check_training_data` does), and implement ``_margin``.
    """

    #: A fitted attribute; prediction before ``fit`` raises ``NotFittedError``.
    _fitted_attribute: str = "classes_"

    def _validate_params(self) -> None:
        """scikit-learn's parameter validation, failures raised as UsageError."""
        try:
            super()._validate_params()  # type: ignore[misc]
        except InvalidParameterError as exc:
            raise UsageError(str(exc)) from exc

    def _check_training_data(self, X: Any, y: Any) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Features as floats, their names, and ``y`` encoded 0/1 (sets ``classes_``).

        Raises
        ------
        UsageError
            If ``X`` and ``y`` differ in length or ``y`` does not hold exactly two classes.
        """
        arr, names = as_float_matrix(X)
        y = np.asarray(y)
        if arr.shape[0] != y.shape[0]:
            raise UsageError(f"X has {arr.shape[0]} rows but y has {y.shape[0]}")
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) != 2:
            raise UsageError(
                f"need both classes to train, got {len(self.classes_)} distinct label(s)"
            )
        self.n_features_in_ = arr.shape[1]
        return arr, names, y_enc.astype(np.float64)

    def _check_features(self, X: Any) -> np.ndarray:
        """Features to score as floats, checked against those seen at fit."""
        check_is_fitted(self, self._fitted_attribute)
        arr, names = as_float_matrix(X)
        if arr.shape[1] != self.n_features_in_:
            raise UsageError(
                f"X has {arr.shape[1]} features, the model was fitted with {self.n_features_in_}"
            )
        fitted_names = getattr(self, "feature_names_in_", None)
        if (
            fitted_names is not None
            and isinstance(X, pd.DataFrame)
            and list(names) != list(fitted_names)
        ):
            raise UsageError("feature names differ from those seen at fit")
        return arr

    def _margin(self, arr: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds of the positive class.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self._margin(self._check_features(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities of both classes, shape (n_samples, 2)."""
        p = expit(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """Class labels at probability 0.5."""
        return self.classes_[(self.decision_function(X) > 0).astype(int)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
