"""Alternative truths for the simulator: response mechanisms the default was not built on.

The default mechanism (:func:`cytoresp.datasets.simulator.response_logits`) is sparse,
mostly log-linear, and built from the same log-ratio pairs and immune axes that
:class:`~cytoresp.features.builder.PanelFeatures` computes. A model chosen on it can win
there and lose elsewhere (issue 14). The scenarios here change only the truth, never the
patients or the measurement: ``simulate_cohort(..., mechanism=...)`` draws the same
patients, covariates, plates and noise for every mechanism.

Every shape below is written in terms of a :class:`Inputs` accessor:

* ``x(A)``: log2(c_A / median_A), the true concentration in doublings above the
  analyte's population median (the notation of docs/simulator.md);
* ``u(A)``: ``x(A) / sd_A``, the same in population standard deviations;
* ``z(k)``: a clinical covariate standardised on the simulator's reference population;
* ``raw(k)``: a clinical covariate as drawn (``sex`` 1 = female).

The simulator multiplies each shape by a constant so that the standard deviation of the
true logit over its reference population equals that of the default mechanism for the
same therapy (signal strength 1), then solves the intercept for the requested prevalence.
The formulas are in docs/simulator.md, "Other truths (``mechanism``)".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

__all__ = ["MECHANISMS", "SCENARIO_DRIVERS", "Inputs", "scenario_shape"]

#: The truths ``simulate_cohort(mechanism=...)`` accepts, ``"default"`` first.
MECHANISMS: tuple[str, ...] = ("default", "dense", "threshold", "other", "null")


class Inputs(Protocol):
    """What a scenario shape reads (the simulator supplies it)."""

    def x(self, analyte: str) -> np.ndarray: ...  # pragma: no cover - protocol

    def u(self, analyte: str) -> np.ndarray: ...  # pragma: no cover - protocol

    def z(self, covariate: str) -> np.ndarray: ...  # pragma: no cover - protocol

    def raw(self, covariate: str) -> np.ndarray: ...  # pragma: no cover - protocol


# --------------------------------------------------------------------------------------
# dense: many small log-linear effects
# --------------------------------------------------------------------------------------

#: Per therapy, the coefficient of every analyte (in population sds, ``u``) and every
#: covariate (standardised, ``z``). No coefficient is more than 2.5x another: no input
#: dominates, all of them matter a little. Signs for the known drivers follow the default
#: mechanism's directions; the others are **assumed** (alternating, so the axes do not add
#: up to one strong score).
DENSE: dict[str, dict[str, float]] = {
    "ifnb": {
        "IFNG": 0.5, "TNF": -0.3, "IL12": 0.4, "IL2": 0.3, "IL4": 0.2, "IL13": -0.2,
        "IL17A": -0.4, "IL17F": -0.5, "IL22": 0.3, "IL23": -0.3, "IL10": 0.5,
        "TGFB1": 0.3, "IL1B": -0.2, "IL6": -0.3, "IL18": 0.2, "CXCL10": -0.4,
        "TNFSF13B": -0.3, "CXCL13": -0.3,
        "age": -0.2, "sex": 0.2, "edss": -0.3, "disease_duration_y": -0.2,
        "relapses_prior_2y": -0.3, "gd_lesions": -0.2,
    },
    "ga": {
        "IFNG": -0.4, "TNF": -0.4, "IL12": -0.2, "IL2": 0.2, "IL4": 0.5, "IL13": 0.4,
        "IL17A": -0.2, "IL17F": 0.3, "IL22": 0.2, "IL23": -0.2, "IL10": 0.3,
        "TGFB1": 0.4, "IL1B": -0.3, "IL6": -0.2, "IL18": 0.5, "CXCL10": 0.3,
        "TNFSF13B": -0.2, "CXCL13": -0.4,
        "age": 0.2, "sex": -0.2, "edss": -0.3, "disease_duration_y": 0.2,
        "relapses_prior_2y": -0.2, "gd_lesions": -0.3,
    },
}  # fmt: skip

_COVARIATES = ("age", "sex", "edss", "disease_duration_y", "relapses_prior_2y", "gd_lesions")


def _dense(therapy: str) -> Callable[[Inputs], np.ndarray]:
    coef = DENSE[therapy]

    def shape(v: Inputs) -> np.ndarray:
        return sum(  # type: ignore[return-value]
            b * (v.z(k) if k in _COVARIATES else v.u(k)) for k, b in coef.items()
        )

    return shape


# --------------------------------------------------------------------------------------
# threshold: steps, an AND of two cytokines, an effect that reverses with a covariate
# --------------------------------------------------------------------------------------


def _step(a: np.ndarray, at: float) -> np.ndarray:
    return (a > at).astype(np.float64)


def _threshold_ifnb(v: Inputs) -> np.ndarray:
    """IL-6 step, IFN-g AND IL-10 above median, TNF effect reversing at age 37."""
    young = np.where(v.raw("age") <= 37.0, 1.0, -1.0)
    return (
        -1.0 * _step(v.x("IL6"), 1.0)
        + 1.0 * _step(v.x("IFNG"), 0.0) * _step(v.x("IL10"), 0.0)
        + 0.8 * v.u("TNF") * young
        - 0.6 * _step(v.raw("relapses_prior_2y"), 1.5)
    )


def _threshold_ga(v: Inputs) -> np.ndarray:
    """IL-13 step, IL-1b AND IL-17A above median, CXCL10 effect reversing at 3.4 years."""
    early = np.where(v.raw("disease_duration_y") <= 3.4, 1.0, -1.0)
    return (
        1.0 * _step(v.x("IL13"), 0.5)
        - 1.0 * _step(v.x("IL1B"), 0.0) * _step(v.x("IL17A"), 0.0)
        + 0.8 * v.u("CXCL10") * early
        - 0.6 * _step(v.raw("gd_lesions"), 0.5)
    )


# --------------------------------------------------------------------------------------
# other: drivers outside the default log-ratio pairs and the axis scores
# --------------------------------------------------------------------------------------


def _other_ifnb(v: Inputs) -> np.ndarray:
    """A within-Th17 contrast, a pair outside the default list, two single cytokines."""
    return (
        -0.8 * (v.x("IL22") - v.x("IL17A"))
        + 0.6 * (v.x("IL13") - v.x("IL1B"))
        - 0.7 * v.x("TNFSF13B")
        + 0.5 * v.x("IL2")
        - 0.3 * v.z("disease_duration_y")
    )


def _other_ga(v: Inputs) -> np.ndarray:
    """A within-Th1 contrast, a pair outside the default list, two single cytokines."""
    return (
        0.8 * (v.x("IL12") - v.x("IL2"))
        - 0.6 * (v.x("CXCL13") - v.x("TGFB1"))
        + 0.6 * v.x("IL23")
        - 0.5 * v.x("IL22")
        + 0.3 * v.z("age")
    )


_SCENARIOS: dict[str, dict[str, Callable[[Inputs], np.ndarray]]] = {
    "dense": {"ifnb": _dense("ifnb"), "ga": _dense("ga")},
    "threshold": {"ifnb": _threshold_ifnb, "ga": _threshold_ga},
    "other": {"ifnb": _other_ifnb, "ga": _other_ga},
}

#: mechanism -> therapy -> the inputs of its true logit, most important first (the
#: root-mean-square change of the logit when the input is permuted; checked by a test;
#: the two inputs of a product term tie).
#: The ``"default"`` mechanism's drivers are the simulator's ``DRIVERS``.
SCENARIO_DRIVERS: dict[str, dict[str, tuple[str, ...]]] = {
    # dense: by |coefficient| (all inputs have unit sd), ties in DENSE's order
    "dense": {t: tuple(sorted(DENSE[t], key=lambda k: -abs(DENSE[t][k]))) for t in DENSE},
    "threshold": {
        "ifnb": ("TNF", "age", "IL6", "IFNG", "IL10", "relapses_prior_2y"),
        "ga": ("CXCL10", "disease_duration_y", "IL13", "IL17A", "IL1B", "gd_lesions"),
    },
    "other": {
        "ifnb": ("IL1B", "IL17A", "IL22", "IL13", "IL2", "TNFSF13B", "disease_duration_y"),
        "ga": ("IL2", "IL12", "IL23", "CXCL13", "TGFB1", "IL22", "age"),
    },
    "null": {"ifnb": (), "ga": ()},
}


def scenario_shape(mechanism: str, therapy: str, inputs: Inputs) -> np.ndarray:
    """The unscaled log-odds shape of ``therapy`` under a non-default ``mechanism``.

    Parameters
    ----------
    mechanism : {"dense", "threshold", "other"}
    therapy : {"ifnb", "ga"}
    inputs : Inputs
        The patients' true values (the simulator builds it from its latent frame).

    Returns
    -------
    ndarray
        One value per patient, before the simulator's scaling and intercept.

    Examples
    --------
    >>> class Flat:
    ...     def x(self, a): return np.zeros(2)
    ...     def u(self, a): return np.zeros(2)
    ...     def z(self, k): return np.zeros(2)
    ...     def raw(self, k): return np.zeros(2)
    >>> scenario_shape("threshold", "ifnb", Flat()).tolist()   # nothing above a threshold
    [0.0, 0.0]
    """
    return _SCENARIOS[mechanism][therapy](inputs)
