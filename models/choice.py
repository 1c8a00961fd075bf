"""Therapy choice: the one decision rule between therapies, and what scoring needs for it.

For every pair of therapies ``(a, b)`` a model trained on two or more therapies stores a
:class:`PairCalibration`, fitted at training time by :mod:`cytoresp.train.choice` on
cross-fitted doubly robust (DR) pseudo-outcomes:

* **the cohort gate**: the best-linear-predictor (BLP) calibration test of Chernozhukov,
  Demirer, Duflo and Fernández-Val (GenericML) as in grf's ``test_calibration`` /
  ``best_linear_projection``. The DR pseudo-outcome of the difference ``a - b`` is
  regressed on ``[1, tau_hat - mean(tau_hat)]``, where ``tau_hat`` is the out-of-fold
  predicted difference of the heads; the slope is tested against 0 (one-sided, HC3
  standard error). A slope indistinguishable from 0 means ranking patients by the
  predicted difference does not separate who benefits from which therapy;
* **the calibrated difference** of a new patient: ``intercept + slope * g`` with its HC3
  standard error, from the same regression, where ``g = score_scale * (tau_final(x) -
  score_center)`` puts the *final* heads' predicted difference ``tau_final`` on the scale
  of the out-of-fold one the line was fitted on (the fold heads and the final heads are
  different fits, and their spreads of predicted differences differed by up to a third in
  simulated cohorts: ``score_center`` and ``score_scale`` match the final heads' mean and
  standard deviation on the training patients to the out-of-fold ones). Its interval covers
  the *best linear approximation of the average true difference among patients with
  the same predicted difference*; it is not a prediction interval for one patient's own
  (unobservable) difference, which varies around that average.

:func:`recommend_table` is the decision rule (there is no other): among the two therapies
with the highest predicted probability of response, the one ahead by the calibrated
difference is recommended when

1. the pair's heterogeneity test passed at the training cohort's level (Holm-adjusted
   over pairs when there are more than two therapies), and
2. the ``level`` interval of the calibrated difference excludes 0;

otherwise the answer is ``either``, and ``recommendation_reason`` says which condition
failed. Scoring needs the heads' probabilities and eight numbers per pair, so the rule adds
almost nothing to the cost of ``predict``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from cytoresp.errors import ModelIntegrityError, UsageError

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_LEVEL",
    "EITHER",
    "PairCalibration",
    "RECOMMENDATION_COLUMNS",
    "TherapyChoice",
    "check_level",
    "describe_recommendation",
    "recommend_table",
]

#: Default level of the interval on the calibrated difference.
DEFAULT_LEVEL = 0.90
#: Default level of the cohort gate (one-sided test of the BLP slope).
DEFAULT_ALPHA = 0.05
#: What ``recommended_therapy`` says when the data do not separate the therapies.
EITHER = "either"
#: Columns a recommendation adds after the ``p_response_<therapy>`` columns.
RECOMMENDATION_COLUMNS = (
    "leading_therapy",
    "runner_up",
    "difference",
    "difference_lower",
    "difference_upper",
    "recommended_therapy",
    "recommendation_reason",
)

REASON_NO_TEST = (
    "this model holds no cohort-level heterogeneity test (trained with one therapy or "
    "before the test existed): retrain it to get recommendations"
)
REASON_GATE = (
    "the training cohort shows no evidence that the therapies' effects differ between "
    "patients ({pair}: heterogeneity test p = {p:.2g})"
)
REASON_INTERVAL = "the {level:.0%} interval of the calibrated difference includes 0"
REASON_CONFIDENT = "the {level:.0%} interval of the calibrated difference excludes 0"
REASON_MISSING = "a probability of response could not be computed"


def check_level(level: Any, name: str = "the interval level") -> float:
    """``level`` as a float, or a :class:`UsageError` unless it is a number in (0, 1)."""
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
        raise UsageError(f"{name} must be a number in (0, 1), got {level!r}")
    return float(level)


@dataclass(frozen=True)
class PairCalibration:
    """BLP calibration of the predicted difference ``P(response | a) - P(response | b)``.

    Attributes
    ----------
    first, second : str
        The pair, ``difference = first - second``.
    intercept, slope : float
        BLP coefficients: the DR pseudo-outcome regressed on ``[1, tau_hat - center]``.
        ``intercept`` estimates the cohort's average difference; ``slope`` is 1 for a
        perfectly calibrated predicted difference and 0 when it carries no information
        about who benefits more.
    cov : tuple of tuple of float
        HC3 covariance of ``(intercept, slope)``.
    center : float
        Mean out-of-fold predicted difference of the training cohort.
    n : int
        Training patients behind the regression.
    p_value : float
        One-sided p-value of the slope (H0: slope <= 0).
    passed : bool
        Whether the gate passed for this pair (after the Holm adjustment over pairs).
    score_center : float, optional
        Mean of the *final* heads' predicted difference on the training patients (None:
        ``center``, as in models saved before it existed).
    score_scale : float
        Standard deviation of the out-of-fold predicted difference over that of the final
        heads' on the training patients (1: no rescaling). At scoring the final heads'
        predicted difference enters the line as ``score_scale * (predicted -
        score_center)``.

    Examples
    --------
    >>> pc = PairCalibration("ifnb", "ga", 0.02, 0.8, ((1e-4, 0.0), (0.0, 0.01)),
    ...                      0.01, 400, 0.0, True)
    >>> d, se = pc.calibrated([0.21, 0.01])
    >>> d.round(3).tolist(), se.round(3).tolist()
    ([0.18, 0.02], [0.022, 0.01])

    Final heads whose predicted differences spread twice as wide as the out-of-fold ones:

    >>> wide = PairCalibration("ifnb", "ga", 0.02, 0.8, ((1e-4, 0.0), (0.0, 0.01)),
    ...                        0.01, 400, 0.0, True, score_center=0.01, score_scale=0.5)
    >>> wide.calibrated([0.41, 0.01])[0].round(3).tolist()
    [0.18, 0.02]
    """

    first: str
    second: str
    intercept: float
    slope: float
    cov: tuple[tuple[float, float], tuple[float, float]]
    center: float
    n: int
    p_value: float
    passed: bool
    score_center: float | None = None
    score_scale: float = 1.0

    @property
    def slope_se(self) -> float:
        """Standard error of the slope."""
        return float(np.sqrt(max(self.cov[1][1], 0.0)))

    def calibrated(self, predicted) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated difference and its standard error for predicted differences.

        Parameters
        ----------
        predicted : array-like
            ``P(response | first) - P(response | second)`` from the heads.

        Returns
        -------
        difference, se : ndarray
        """
        origin = self.center if self.score_center is None else self.score_center
        g = self.score_scale * (np.asarray(predicted, dtype=np.float64) - origin)
        (v00, v01), (_, v11) = self.cov
        var = v00 + 2.0 * g * v01 + g * g * v11
        return self.intercept + self.slope * g, np.sqrt(np.maximum(var, 0.0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "first": self.first,
            "second": self.second,
            "intercept": float(self.intercept),
            "slope": float(self.slope),
            "cov": [[float(v) for v in row] for row in self.cov],
            "center": float(self.center),
            "n": int(self.n),
            "p_value": float(self.p_value),
            "passed": bool(self.passed),
            "score_center": None if self.score_center is None else float(self.score_center),
            "score_scale": float(self.score_scale),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PairCalibration:
        """Inverse of :meth:`to_dict`."""
        cov = d["cov"]
        return cls(
            first=str(d["first"]),
            second=str(d["second"]),
            intercept=float(d["intercept"]),
            slope=float(d["slope"]),
            cov=((float(cov[0][0]), float(cov[0][1])), (float(cov[1][0]), float(cov[1][1]))),
            center=float(d["center"]),
            n=int(d["n"]),
            p_value=float(d["p_value"]),
            passed=bool(d["passed"]),
            score_center=None if d.get("score_center") is None else float(d["score_center"]),
            score_scale=float(d.get("score_scale", 1.0)),
        )


@dataclass
class TherapyChoice:
    """The stored cohort gate and calibrations behind :func:`recommend_table`.

    Parameters
    ----------
    therapies : list of str
        The therapies compared, in the model's order.
    pairs : list of PairCalibration
        One per pair of therapies.
    level : float
        Default level of the interval on the calibrated difference (0.90).
    alpha : float
        Level of the gate (0.05, one-sided, Holm-adjusted over pairs).
    propensity : str
        Where the propensity in the DR pseudo-outcomes came from (``"cross-fitted"``
        model of assignment, or ``"observed shares"`` when none was estimated).
    info : dict
        Free-form facts of the fit (folds, clip), for the model summary.

    Examples
    --------
    ``model`` is a trained model (two therapies):

    >>> choice = model.choice
    >>> choice.therapies, len(choice.pairs), choice.level
    (['ifnb', 'ga'], 1, 0.9)
    >>> isinstance(choice.gate_passed, bool)
    True
    """

    therapies: list[str]
    pairs: list[PairCalibration]
    level: float = DEFAULT_LEVEL
    alpha: float = DEFAULT_ALPHA
    propensity: str = "cross-fitted"
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_level(self.level)
        check_level(self.alpha, "alpha")
        if len(self.therapies) < 2:
            raise UsageError("a therapy choice needs at least two therapies")

    @property
    def gate_passed(self) -> bool:
        """Whether any pair passed its heterogeneity test."""
        return any(p.passed for p in self.pairs)

    def pair(self, a: str, b: str) -> PairCalibration | None:
        """The calibration of ``a - b`` in either orientation, or None."""
        for p in self.pairs:
            if (p.first, p.second) in ((a, b), (b, a)):
                return p
        return None

    def summary(self) -> str:
        """One line per pair for the model summary and the training log.

        Examples
        --------
        >>> print(model.choice.summary())  # doctest: +ELLIPSIS
        therapy choice (BLP calibration test on cross-fitted DR pseudo-outcomes, ...
        """
        lines = [
            "therapy choice (BLP calibration test on cross-fitted DR pseudo-outcomes, "
            f"one-sided, alpha {self.alpha:g}; propensity: {self.propensity})"
        ]
        for p in self.pairs:
            verdict = "passed" if p.passed else "no evidence of heterogeneity: `either`"
            lines.append(
                f"  {p.first} - {p.second}: average difference {p.intercept:+.3f} "
                f"(se {np.sqrt(max(p.cov[0][0], 0.0)):.3f}), slope {p.slope:.2f} "
                f"(se {p.slope_se:.2f}), p = {p.p_value:.2g}, n = {p.n}, "
                f"score scale {p.score_scale:.2f}: {verdict}"
            )
        return "\n".join(lines)

    def metrics(self) -> dict[str, float]:
        """Flat numbers for MLflow: ``choice_<a>_<b>_{slope,slope_se,p_value,...}``."""
        out: dict[str, float] = {"choice_gate_passed": float(self.gate_passed)}
        for p in self.pairs:
            k = f"choice_{p.first}_{p.second}"
            out[f"{k}_average_difference"] = p.intercept
            out[f"{k}_slope"] = p.slope
            out[f"{k}_slope_se"] = p.slope_se
            out[f"{k}_p_value"] = p.p_value
            out[f"{k}_passed"] = float(p.passed)
            out[f"{k}_score_scale"] = p.score_scale
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (stored in the model's ``model.json``)."""
        return {
            "format": "cytoresp.TherapyChoice",
            "format_version": 2,
            "therapies": list(self.therapies),
            "pairs": [p.to_dict() for p in self.pairs],
            "level": self.level,
            "alpha": self.alpha,
            "propensity": self.propensity,
            "info": dict(self.info),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TherapyChoice:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        ModelIntegrityError
            When the entry is not a saved therapy choice.
        """
        version = d.get("format_version")
        if d.get("format") != "cytoresp.TherapyChoice" or version not in (1, 2):
            if d.get("format") == "cytoresp.TherapyChoice" and isinstance(version, int):
                raise ModelIntegrityError(
                    f"the therapy choice was written by a newer cytoresp (version {version}); "
                    "upgrade"
                )
            raise ModelIntegrityError("the 'choice' entry is not a saved therapy choice")
        try:
            return cls(
                therapies=[str(t) for t in d["therapies"]],
                pairs=[PairCalibration.from_dict(p) for p in d["pairs"]],
                level=float(d["level"]),
                alpha=float(d["alpha"]),
                propensity=str(d.get("propensity", "")),
                info=dict(d.get("info", {})),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelIntegrityError(f"the therapy choice is malformed: {exc}") from None


def recommend_table(
    proba: pd.DataFrame,
    choice: TherapyChoice | None,
    level: float | None = None,
) -> pd.DataFrame:
    """The recommendation for every row: the decision rule of cytoresp (module docstring).

    Parameters
    ----------
    proba : DataFrame
        ``p_response_<therapy>`` for two or more therapies, one row per patient.
    choice : TherapyChoice or None
        The model's stored gate and calibrations; None (a model without them): every row
        is ``either``.
    level : float, optional
        Interval level; default ``choice.level``.

    Returns
    -------
    DataFrame
        ``proba`` plus :data:`RECOMMENDATION_COLUMNS`: the two therapies compared
        (``leading_therapy`` is ahead by the calibrated difference), ``difference``
        (calibrated, leading minus runner-up, >= 0), its interval, ``recommended_therapy``
        (a therapy id or ``either``) and ``recommendation_reason``.

    Examples
    --------
    >>> pc = PairCalibration("ifnb", "ga", 0.0, 1.0, ((4e-4, 0.0), (0.0, 0.01)),
    ...                      0.0, 400, 0.001, True)
    >>> choice = TherapyChoice(["ifnb", "ga"], [pc])
    >>> proba = pd.DataFrame({"p_response_ifnb": [0.8, 0.5], "p_response_ga": [0.4, 0.48]})
    >>> rec = recommend_table(proba, choice)
    >>> rec["recommended_therapy"].tolist(), rec["difference"].round(2).tolist()
    (['ifnb', 'either'], [0.4, 0.02])
    >>> rec["recommendation_reason"].iloc[1]
    'the 90% interval of the calibrated difference includes 0'
    """
    cols = [c for c in proba.columns if c.startswith("p_response_")]
    therapies = [c[len("p_response_") :] for c in cols]
    if len(therapies) < 2:
        raise UsageError("a recommendation needs the probabilities of at least two therapies")
    if level is None:
        level = choice.level if choice is not None else DEFAULT_LEVEL
    level = check_level(level)
    n = len(proba)
    P = proba[cols].to_numpy(dtype=np.float64)
    order = np.argsort(-np.where(np.isnan(P), -np.inf, P), axis=1, kind="stable")
    top, second = order[:, 0], order[:, 1]
    names = np.asarray(therapies, dtype=object)
    leading, runner = names[top].copy(), names[second].copy()
    diff = np.full(n, np.nan)
    lower = np.full(n, np.nan)
    upper = np.full(n, np.nan)
    rec = np.full(n, EITHER, dtype=object)
    reason = np.full(n, REASON_NO_TEST, dtype=object)
    missing = np.isnan(P).any(axis=1)
    if choice is not None and n:
        z = NormalDist().inv_cdf(0.5 + level / 2.0)
        for i, a in enumerate(therapies):
            for j in range(i + 1, len(therapies)):
                b = therapies[j]
                rows = ((top == i) & (second == j)) | ((top == j) & (second == i))
                rows &= ~missing
                if not rows.any():
                    continue
                pc = choice.pair(a, b)
                if pc is None:
                    continue
                pa, pb = (P[rows, therapies.index(pc.first)], P[rows, therapies.index(pc.second)])
                d, se = pc.calibrated(pa - pb)
                flip = d < 0  # the calibrated difference decides who leads
                leading[rows] = np.where(flip, pc.second, pc.first)
                runner[rows] = np.where(flip, pc.first, pc.second)
                d_abs = np.abs(d)
                diff[rows], lower[rows], upper[rows] = d_abs, d_abs - z * se, d_abs + z * se
                if not pc.passed:
                    pair = f"{pc.first} vs {pc.second}"
                    reason[rows] = REASON_GATE.format(pair=pair, p=pc.p_value)
                    continue
                sure = d_abs - z * se > 0
                rec[rows] = np.where(sure, leading[rows], EITHER)
                reason[rows] = np.where(
                    sure, REASON_CONFIDENT.format(level=level), REASON_INTERVAL.format(level=level)
                )
    reason[missing] = REASON_MISSING
    rec[missing] = EITHER
    out = proba.copy()
    out["leading_therapy"] = pd.Series(leading, index=proba.index, dtype=object)
    out["runner_up"] = pd.Series(runner, index=proba.index, dtype=object)
    out["difference"] = diff
    out["difference_lower"] = lower
    out["difference_upper"] = upper
    out["recommended_therapy"] = pd.Series(rec, index=proba.index, dtype=object)
    out["recommendation_reason"] = pd.Series(reason, index=proba.index, dtype=object)
    return out


def describe_recommendation(
    row: Mapping[str, Any], level: float = DEFAULT_LEVEL, names: Mapping[str, str] | None = None
) -> str:
    """One sentence for a patient report from a row of :func:`recommend_table`.

    Examples
    --------
    >>> text = describe_recommendation({"p_response_ifnb": 0.71, "p_response_ga": 0.38,
    ...     "leading_therapy": "ifnb", "runner_up": "ga", "difference": 0.21,
    ...     "difference_lower": 0.05, "difference_upper": 0.37,
    ...     "recommended_therapy": "ifnb",
    ...     "recommendation_reason": "the 90% interval of the calibrated difference excludes 0"})
    >>> text.split("; ")
    ['P(response): IFN-β 0.71, GA 0.38',
     'calibrated difference IFN-β − GA +0.21 (90% interval +0.05 to +0.37): IFN-β']
    """
    names = {"ifnb": "IFN-β", "ga": "GA", **(names or {})}
    probs = [
        f"{names.get(k[len('p_response_') :], k[len('p_response_') :])} {row[k]:.2f}"
        for k in row
        if str(k).startswith("p_response_")
    ]
    text = "P(response): " + ", ".join(probs)
    lead, run = row.get("leading_therapy"), row.get("runner_up")
    d, lo, hi = row.get("difference"), row.get("difference_lower"), row.get("difference_upper")
    if lead is not None and d is not None and np.isfinite(d):
        text += f"; calibrated difference {names.get(lead, lead)} − {names.get(run, run)} {d:+.2f}"
        if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi):
            text += f" ({round(100 * level)}% interval {lo:+.2f} to {hi:+.2f})"
    rec = row["recommended_therapy"]
    if rec == EITHER:
        return text + f": either ({row.get('recommendation_reason', '')})"
    return text + f": {names.get(rec, rec)}"


def pair_keys(therapies: Sequence[str]) -> list[tuple[str, str]]:
    """Every pair ``(a, b)`` of ``therapies`` with ``a`` before ``b``.

    Examples
    --------
    >>> pair_keys(["ifnb", "ga", "dmf"])
    [('ifnb', 'ga'), ('ifnb', 'dmf'), ('ga', 'dmf')]
    """
    return [(a, b) for i, a in enumerate(therapies) for b in therapies[i + 1 :]]
