"""Pass the clinical covariates through unchanged."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from cytoresp.errors import UsageError
from cytoresp.features.censoring import FeatureTransformer
from cytoresp.features.ratios import SkippedFeatureWarning
from cytoresp.panels.panel import CLINICAL_COVARIATES


def check_covariates(covariates: Any) -> tuple[str, ...] | None:
    """Normalise ``covariates``: None for ``"default"``, else a tuple of column names."""
    if isinstance(covariates, str):
        if covariates == "default":
            return None
        raise UsageError(
            f"covariates must be 'default', None or a list of column names, got {covariates!r}"
        )
    if covariates is None:
        return ()
    if not isinstance(covariates, Sequence | np.ndarray) or not all(
        isinstance(c, str) and c for c in covariates
    ):
        raise UsageError(
            f"covariates must be 'default', None or a list of column names, got {covariates!r}"
        )
    if len(set(covariates)) != len(covariates):
        raise UsageError(f"a covariate is listed twice in {list(covariates)!r}")
    return tuple(covariates)


class CovariatePassthrough(FeatureTransformer):
    """Select the clinical covariate columns and pass them through unchanged.

    Parameters
    ----------
    covariates : "default", None or sequence of str, default="default"
        ``"default"``: the columns of
        :data:`~cytoresp.panels.panel.CLINICAL_COVARIATES` present at fit, silently
        skipping the others. A list: those columns, in that order; one absent at fit is
        skipped with a :class:`~cytoresp.features.ratios.SkippedFeatureWarning`. None: none.

    Attributes
    ----------
    covariates_ : list of str
        Columns passed through, in output order.
    columns_ : ndarray of int
        Their positions in the input.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"IL10": [1.0, 2.0], "edss": [2.5, None], "age": [30.0, 41.0]})
    >>> t = CovariatePassthrough().fit(X)
    >>> t.covariates_, t.transform(X).tolist()
    (['age', 'edss'], [[30.0, 2.5], [41.0, nan]])
    """

    def __init__(self, covariates: Any = "default"):
        self.covariates = covariates

    def _check_params(self) -> None:
        check_covariates(self.covariates)

    def fit(self, X: Any, y: Any = None) -> CovariatePassthrough:
        """Find the covariate columns.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        wanted = check_covariates(self.covariates)
        self._validate(X, reset=True)
        names = self._names_in()
        position = {n: i for i, n in enumerate(names)}
        if wanted is None:
            chosen = [c for c in CLINICAL_COVARIATES if c in position]
        else:
            chosen = [c for c in wanted if c in position]
            absent = [c for c in wanted if c not in position]
            if absent:
                warnings.warn(
                    SkippedFeatureWarning(
                        f"CovariatePassthrough: skipped covariate(s) absent from the input: "
                        f"{', '.join(absent)}"
                    ),
                    stacklevel=2,
                )
        self.covariates_ = chosen
        self.columns_ = np.asarray([position[c] for c in chosen], dtype=np.intp)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The covariate columns, float64 of shape (n_samples, n_covariates)."""
        check_is_fitted(self)
        return self._transform_array(self._validate(X, reset=False))

    def _transform_array(self, X: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            out = np.empty((X.shape[0], len(self.columns_)), dtype=np.float64, order="F")
        for k, c in enumerate(self.columns_):
            out[:, k] = X[:, c]
        return out

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        """The covariate names (from the given or fitted input names)."""
        names = self._check_input_features(input_features)
        return np.asarray([names[i] for i in self.columns_], dtype=object)

    def _get_state(self) -> dict[str, Any]:
        return {"covariates_": list(self.covariates_), "columns_": self.columns_.tolist()}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.covariates_ = [str(c) for c in state["covariates_"]]
        self.columns_ = np.asarray(state["columns_"], dtype=np.intp)
        if len(self.columns_) != len(self.covariates_) or any(
            not 0 <= c < self.n_features_in_ for c in self.columns_
        ):
            raise ValueError("columns_ do not match covariates_ and the input columns")
