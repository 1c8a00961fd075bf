"""Logistic (Platt) recalibration on the log-odds scale: the one path from margin to probability.

The calibrator maps a model's uncalibrated log-odds ``m`` to ``a + b * m`` and a probability
``expit(a + b * m)``. Every head of a :class:`~cytoresp.models.response_model.ResponseModel`
holds one; the model's probabilities, the cytokine-level explanations, the bootstrap
ensemble's draws and the patient report all go through it.

Because the map is linear in log-odds, an exact additive explanation of ``m`` (SHAP: base
value plus one contribution per feature) stays exact after recalibration: the base value
becomes :meth:`LogisticCalibrator.transform_margin` of it and every contribution is
multiplied by ``b`` (:meth:`LogisticCalibrator.transform_contributions`). Isotonic
regression has no such property and overfits the cohorts this tool sees (tens to hundreds
of patients); see ``docs/methods.md``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from cytoresp.errors import ModelIntegrityError, UsageError
from cytoresp.models.classifier import as_binary_labels

__all__ = ["LogisticCalibrator"]

_FORMAT = "cytoresp.LogisticCalibrator"
_FORMAT_VERSION = 1
_FITTED = ("intercept_", "slope_")


def _as_margin(margin: ArrayLike, n: int | None = None) -> np.ndarray:
    arr = np.asarray(margin, dtype=float)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise UsageError(
            f"margin must be a 1-D array of log-odds (or one column), got shape {arr.shape}"
        )
    if n is not None and arr.shape[0] != n:
        raise UsageError(f"margin has {arr.shape[0]} values but y has {n}")
    if not np.isfinite(arr).all():
        raise UsageError(f"margin contains {int((~np.isfinite(arr)).sum())} NaN or infinite values")
    return arr


def _as_labels(y: ArrayLike) -> np.ndarray:
    return as_binary_labels(y).astype(int)


class LogisticCalibrator(BaseEstimator):
    """Platt-style recalibration of log-odds: ``p = expit(a + b * margin)``.

    Fitted on out-of-fold log-odds, so the calibration is learned from predictions the
    model did not train on. The fit is scikit-learn's :class:`LogisticRegression` on the
    one-column margin.

    Parameters
    ----------
    C : float, default 1e4
        Inverse strength of a ridge penalty on the slope ``b`` (scikit-learn's
        convention: the fit minimises ``C * log-loss + b**2 / 2``; the intercept is not
        penalised). The default is negligible on ordinary data and only keeps ``b``
        finite when the out-of-fold predictions separate the classes perfectly.

    Attributes
    ----------
    intercept_ : float
        ``a``.
    slope_ : float
        ``b``. Below 1 the uncalibrated model was overconfident.
    classes_ : ndarray
        ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import expit
    >>> rng = np.random.default_rng(0)
    >>> true = rng.normal(0, 1.5, 5000)
    >>> y = (rng.random(5000) < expit(true)).astype(int)
    >>> cal = LogisticCalibrator().fit(2.5 * true + 1, y)   # overconfident, shifted
    >>> round(cal.slope_, 1), round(cal.intercept_, 1)
    (0.4, -0.4)
    >>> cal.predict_proba([1.0]).shape
    (1, 2)
    """

    def __init__(self, C: float = 1e4):
        self.C = C

    def fit(
        self, margin: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> LogisticCalibrator:
        """Fit ``a`` and ``b`` by (mildly penalised) maximum likelihood.

        Parameters
        ----------
        margin : array-like of shape (n,) or (n, 1)
            Uncalibrated log-odds, out of fold.
        y : array-like of shape (n,)
            0/1 labels; both classes must be present.
        sample_weight : array-like of shape (n,), optional
            Non-negative row weights.

        Returns
        -------
        self
        """
        C = self.C
        if isinstance(C, bool) or not isinstance(C, int | float) or not (0 < C < math.inf):
            raise UsageError(f"C must be a positive finite number, got {C!r}")
        yy = _as_labels(y)
        m = _as_margin(margin, yy.size)
        if sample_weight is None:
            w = np.ones(yy.size)
        else:
            w = np.asarray(sample_weight, dtype=float)
            if w.shape != yy.shape or not np.isfinite(w).all() or (w < 0).any():
                raise UsageError("sample_weight must hold one finite, non-negative weight per row")
        if (w * yy).sum() == 0 or (w * (1 - yy)).sum() == 0:
            raise UsageError("calibration needs both responders and non-responders in y")
        # Newton steps with the exact Hessian: a two-parameter problem converges in a few
        # iterations to the tolerance below (agrees with lbfgs at tol 1e-12 to ~1e-9).
        lr = LogisticRegression(C=float(C), solver="newton-cholesky", tol=1e-10, max_iter=1000)
        lr.fit(m[:, None], yy, sample_weight=w)
        self.intercept_ = float(lr.intercept_[0])
        self.slope_ = float(lr.coef_[0, 0])
        self.classes_ = np.array([0, 1])
        return self

    @classmethod
    def from_coefficients(
        cls, intercept: float = 0.0, slope: float = 1.0, C: float = 1e4
    ) -> LogisticCalibrator:
        """A fitted calibrator with the given ``a`` and ``b`` (default: the identity map).

        Examples
        --------
        >>> LogisticCalibrator.from_coefficients(-0.5, 0.5).transform_margin([0.0, 2.0]).tolist()
        [-0.5, 0.5]
        """
        return cls.from_dict(
            {
                "format": _FORMAT,
                "format_version": _FORMAT_VERSION,
                "C": C,
                "intercept": intercept,
                "slope": slope,
            }
        )

    def transform_margin(self, margin: ArrayLike) -> np.ndarray:
        """Calibrated log-odds ``a + b * margin``, element by element (any shape).

        Examples
        --------
        >>> cal = LogisticCalibrator.from_coefficients(-0.5, 0.5)
        >>> cal.transform_margin([0.0, 2.0]).tolist()
        [-0.5, 0.5]
        """
        check_is_fitted(self, _FITTED)
        out = np.array(margin, dtype=np.float64)  # a copy, an array even for a scalar
        out *= self.slope_
        out += self.intercept_
        return out

    def transform_contributions(self, contributions: ArrayLike) -> np.ndarray:
        """Additive parts of a margin on the calibrated scale: each one times ``b``.

        If ``margin = base + contributions.sum(axis=1)``, then
        ``transform_margin(margin) = transform_margin(base) +
        transform_contributions(contributions).sum(axis=1)``: explanations stay exact.
        """
        check_is_fitted(self, _FITTED)
        return np.multiply(np.asarray(contributions, dtype=np.float64), self.slope_)

    def response_probability(self, margin: ArrayLike) -> np.ndarray:
        """Calibrated P(response) ``expit(a + b * margin)``, element by element (any shape).

        Examples
        --------
        >>> LogisticCalibrator.from_coefficients(0.0, 2.0).response_probability([0.0]).tolist()
        [0.5]
        """
        z = self.transform_margin(margin)  # a fresh array
        return expit(z, out=z)

    def predict_proba(self, margin: ArrayLike) -> np.ndarray:
        """Calibrated probabilities, shape ``(n, 2)``: columns non-response, response.

        Parameters
        ----------
        margin : array-like of shape (n,) or (n, 1)
            Uncalibrated log-odds.
        """
        p = self.response_probability(_as_margin(margin))
        return np.column_stack([1 - p, p])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (no pickle): format tag, ``C``, ``intercept``, ``slope``."""
        check_is_fitted(self, _FITTED)
        return {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "C": float(self.C),
            "intercept": self.intercept_,
            "slope": self.slope_,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LogisticCalibrator:
        """Rebuild a fitted calibrator from :meth:`to_dict` output.

        Raises
        ------
        ModelIntegrityError
            When ``d`` is not a calibrator saved by this version of cytoresp.
        """
        if not isinstance(d, dict) or d.get("format") != _FORMAT:
            raise ModelIntegrityError("not a saved cytoresp LogisticCalibrator")
        if d.get("format_version") != _FORMAT_VERSION:
            raise ModelIntegrityError(
                f"LogisticCalibrator format_version {d.get('format_version')!r} is not "
                f"supported (expected {_FORMAT_VERSION})"
            )
        values = {}
        for key in ("C", "intercept", "slope"):
            v = d.get(key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ModelIntegrityError(
                    f"LogisticCalibrator field {key!r} is missing or not a finite number: {v!r}"
                )
            values[key] = float(v)
        cal = cls(C=values["C"])
        cal.intercept_ = values["intercept"]
        cal.slope_ = values["slope"]
        cal.classes_ = np.array([0, 1])
        return cal

    @classmethod
    def from_legacy(cls, coefficients: Any) -> LogisticCalibrator:
        """Rebuild from the ``[intercept, slope]`` pair models saved before the calibrator
        object was persisted (cytoresp model.json ``"calibration"`` as a list).

        Raises
        ------
        ModelIntegrityError
            When ``coefficients`` is not two finite numbers.
        """
        if not isinstance(coefficients, list | tuple) or len(coefficients) != 2:
            raise ModelIntegrityError(
                f"a head's calibration must be a saved LogisticCalibrator or the pair "
                f"[intercept, slope], got {coefficients!r}"
            )
        a, b = coefficients
        return cls.from_coefficients(a, b)
