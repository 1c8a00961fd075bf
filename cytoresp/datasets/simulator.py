"""A simulated multiple-sclerosis cohort with a baseline cytokine panel and known truth.

The generative model, every number in it, and which numbers are known from the
literature versus assumed, are documented in ``docs/simulator.md``. In short:

1. Seven latent immune axes (Th1, Th2, Th17, Treg, innate, IFN-response, chemokine),
   jointly normal with assumed cross-axis correlations.
2. Each analyte's true (latent) log2 concentration = log2(median) + sd * (loading * axis
   + sqrt(1 - loading^2) * own noise): log-normal, correlated within and across axes.
3. Clinical covariates drawn partly from the axes (relapses and Gd+ lesions rise with
   Th17/chemokine activity, EDSS with disease duration).
4. The truth: each patient's response probability under *both* therapies, a non-linear
   function of the latent log2 concentrations and the covariates
   (:func:`response_logits`), with intercepts solved so the population mean
   probability equals the requested prevalence.
5. What the lab reports: latent value + multiplicative measurement noise + a per-plate
   log2 offset, censored at the platform's limits, written as CSV strings
   (``"3.214"``, ``"<0.56"``, ``">2500"``, ``""`` for missing).
"""

from __future__ import annotations

import functools
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

from cytoresp.datasets.mechanisms import MECHANISMS, SCENARIO_DRIVERS, scenario_shape
from cytoresp.errors import UsageError
from cytoresp.panels.panel import CLINICAL_COVARIATES, THERAPIES

__all__ = [
    "ANALYTES",
    "AXES",
    "HETEROGENEITY",
    "MECHANISMS",
    "PLATFORMS",
    "SimulatedCohort",
    "drivers_of",
    "response_logits",
    "simulate_cohort",
]

#: Version of the generative model; bump when any number below changes.
SIMULATOR_VERSION = 1

# --------------------------------------------------------------------------------------
# The analytes and the immune axes (docs/simulator.md, tables 1-3)
# --------------------------------------------------------------------------------------

AXES: tuple[str, ...] = ("Th1", "Th2", "Th17", "Treg", "innate", "IFN-response", "chemokine")

# Assumed correlations between the latent axes (symmetric; unlisted pairs are 0).
_AXIS_CORRELATIONS: dict[tuple[str, str], float] = {
    ("Th1", "Th2"): -0.2,
    ("Th1", "Th17"): 0.4,
    ("Th1", "Treg"): -0.2,
    ("Th1", "innate"): 0.3,
    ("Th1", "IFN-response"): 0.3,
    ("Th1", "chemokine"): 0.1,
    ("Th2", "Treg"): 0.3,
    ("Th17", "Treg"): -0.3,
    ("Th17", "innate"): 0.4,
    ("Th17", "IFN-response"): 0.1,
    ("Th17", "chemokine"): 0.2,
    ("Treg", "innate"): -0.1,
    ("innate", "IFN-response"): 0.2,
    ("innate", "chemokine"): 0.1,
    ("IFN-response", "chemokine"): 0.1,
}


def _axis_correlation_matrix() -> np.ndarray:
    r = np.eye(len(AXES))
    for (a, b), rho in _AXIS_CORRELATIONS.items():
        i, j = AXES.index(a), AXES.index(b)
        r[i, j] = r[j, i] = rho
    return r


AXIS_CORRELATION: np.ndarray = _axis_correlation_matrix()
_AXIS_CHOLESKY = np.linalg.cholesky(AXIS_CORRELATION)

PLATFORMS: tuple[str, ...] = ("msd", "luminex_hs", "luminex_standard")


@dataclass(frozen=True)
class AnalyteSpec:
    """How one analyte is simulated (all concentrations in pg/mL).

    Attributes
    ----------
    id : str
        Canonical id (HGNC symbol; ``IL12`` is IL-12p70).
    axis : str
        The latent immune axis it loads on (one of :data:`AXES`).
    loading : float
        Correlation of the analyte's latent log concentration with its axis.
    median : float
        Population median of the true concentration.
    sd_log2 : float
        Between-person standard deviation of the true log2 concentration.
    lloq : tuple of float
        Lower limit per platform, in :data:`PLATFORMS` order.
    uloq : float
        Upper limit (all platforms).
    """

    id: str
    axis: str
    loading: float
    median: float
    sd_log2: float
    lloq: tuple[float, float, float]
    uloq: float

    def lloq_for(self, platform: str) -> float:
        """The lower limit on ``platform``."""
        return self.lloq[PLATFORMS.index(platform)]


#: The simulated panel, in column order. Sources and known/assumed: docs/simulator.md.
ANALYTES: tuple[AnalyteSpec, ...] = (
    #            id          axis            load  median   sd   LLOQ (msd, hs, std)    ULOQ
    AnalyteSpec("IFNG", "Th1", 0.75, 2.0, 1.2, (0.37, 0.48, 0.8), 10_000),
    AnalyteSpec("TNF", "Th1", 0.60, 2.89, 0.98, (0.04, 0.16, 0.7), 10_000),
    AnalyteSpec("IL12", "Th1", 0.60, 1.0, 1.2, (0.11, 0.15, 0.6), 10_000),
    AnalyteSpec("IL2", "Th1", 0.50, 0.4, 1.2, (0.09, 0.19, 1.0), 10_000),
    AnalyteSpec("IL4", "Th2", 0.70, 1.5, 1.0, (0.02, 1.12, 4.5), 10_000),
    AnalyteSpec("IL13", "Th2", 0.60, 1.0, 1.2, (0.24, 0.23, 1.3), 10_000),
    AnalyteSpec("IL17A", "Th17", 0.75, 2.0, 1.3, (0.3, 0.5, 2.0), 10_000),
    AnalyteSpec("IL17F", "Th17", 0.70, 16.5, 1.4, (1.0, 2.0, 8.0), 10_000),
    AnalyteSpec("IL22", "Th17", 0.60, 10.0, 1.2, (0.5, 1.0, 5.0), 10_000),
    AnalyteSpec("IL23", "Th17", 0.50, 212.0, 1.5, (1.0, 5.0, 20.0), 2_500),
    AnalyteSpec("IL10", "Treg", 0.70, 2.5, 1.0, (0.04, 0.56, 1.1), 10_000),
    AnalyteSpec("TGFB1", "Treg", 0.40, 11_540.0, 1.04, (20.0, 50.0, 100.0), 60_000),
    AnalyteSpec("IL1B", "innate", 0.60, 1.17, 2.24, (0.05, 0.14, 0.8), 10_000),
    AnalyteSpec("IL6", "innate", 0.60, 1.47, 1.72, (0.06, 0.11, 0.9), 10_000),
    AnalyteSpec("IL18", "innate", 0.60, 2259.0, 1.12, (1.0, 2.0, 10.0), 15_000),
    AnalyteSpec("CXCL10", "IFN-response", 0.75, 150.0, 0.9, (0.5, 2.0, 10.0), 5_000),
    AnalyteSpec("TNFSF13B", "IFN-response", 0.50, 800.0, 0.72, (5.0, 10.0, 50.0), 10_000),
    AnalyteSpec("CXCL13", "chemokine", 0.90, 40.0, 1.2, (1.0, 2.0, 10.0), 1_000),
)
ANALYTE_IDS: tuple[str, ...] = tuple(a.id for a in ANALYTES)
_SPEC = {a.id: a for a in ANALYTES}

#: Multiplicative measurement noise: sd of log2(measured / true) in the working range
#: (0.2 log2 ~ 14 % CV), rising toward the LLOQ as sqrt(1 + (LLOQ / true)^2), capped.
MEASUREMENT_SD_LOG2 = 0.2
_MEASUREMENT_SD_CAP = 1.0

# Samples per plate when n_plates is None (a 96-well plate in duplicate, minus standards).
_SAMPLES_PER_PLATE = 40

# --------------------------------------------------------------------------------------
# The response mechanisms (docs/simulator.md, "Response mechanisms")
# --------------------------------------------------------------------------------------

#: therapy -> planted drivers, most important first (checked by a test).
DRIVERS: dict[str, tuple[str, ...]] = {
    "ifnb": ("IL17F", "IFNG", "CXCL10", "IL10", "relapses_prior_2y", "edss"),
    "ga": ("IL18", "IL4", "IFNG", "TNF", "gd_lesions", "edss"),
}


def _own_drivers(mechanism: str) -> dict[str, tuple[str, ...]]:
    return DRIVERS if mechanism == "default" else SCENARIO_DRIVERS[mechanism]


def drivers_of(heterogeneity: str = "large", mechanism: str = "default") -> dict[str, list[str]]:
    """Per therapy, the inputs of its true logit at a heterogeneity level and mechanism.

    Parameters
    ----------
    heterogeneity : {"large", "small", "none"}
        With ``"large"`` each therapy lists its own drivers, most important first; with
        ``"small"`` or ``"none"`` both list the union (IFN-beta's first).
    mechanism : {"default", "dense", "threshold", "other", "null"}
        The truth (:data:`MECHANISMS`); ``"null"`` has no drivers.

    Returns
    -------
    dict
        ``{"ifnb": [...], "ga": [...]}``.

    Examples
    --------
    >>> drivers_of("none")["ga"][:3]
    ['IL17F', 'IFNG', 'CXCL10']
    >>> drivers_of(mechanism="threshold")["ifnb"][:3]
    ['TNF', 'age', 'IL6']
    >>> drivers_of(mechanism="null")
    {'ifnb': [], 'ga': []}
    """
    _check_truth(heterogeneity, mechanism, "drivers_of")
    own = _own_drivers(mechanism)
    if HETEROGENEITY[heterogeneity] == 1.0:
        return {t: list(own[t]) for t in THERAPIES}
    union = list(dict.fromkeys(k for t in THERAPIES for k in own[t]))
    return {t: list(union) for t in THERAPIES}


def _check_truth(heterogeneity: Any, mechanism: Any, where: str) -> None:
    problems = _truth_problems(heterogeneity, mechanism)
    if problems:
        raise UsageError(f"{where}: " + "; ".join(problems))


def _truth_problems(heterogeneity: Any, mechanism: Any) -> list[str]:
    problems = []
    if not isinstance(heterogeneity, str) or heterogeneity not in HETEROGENEITY:
        problems.append(
            f"heterogeneity must be one of {list(HETEROGENEITY)}, got {heterogeneity!r}"
        )
    if not isinstance(mechanism, str) or mechanism not in MECHANISMS:
        problems.append(f"mechanism must be one of {list(MECHANISMS)}, got {mechanism!r}")
    return problems


# Reference population for the intercepts and the covariate standardisation: a fixed
# draw, so a patient's probability never depends on the size of the cohort.
_REFERENCE_N = 2**17
_REFERENCE_SEED = 20_161_001


def _rel(latent: Mapping[str, Any], analyte: str) -> np.ndarray:
    """log2(true concentration / population median): doublings above the median."""
    return np.asarray(latent[analyte], dtype=np.float64) - math.log2(_SPEC[analyte].median)


def _shape_ifnb(latent: Mapping[str, Any]) -> np.ndarray:
    """IFN-beta log-odds before the intercept, at signal strength 1."""
    il17f = _rel(latent, "IL17F")
    th17_high = expit((il17f - 1.0) / 0.25)  # IL-17F above 2x the median
    il17f_extreme = expit(
        (np.asarray(latent["IL17F"], dtype=np.float64) - math.log2(200.0)) / 0.25
    )  # above 200 pg/mL
    return (
        -1.5 * th17_high
        - 2.5 * il17f_extreme
        + 0.7 * _rel(latent, "IFNG") * (1.0 - th17_high)
        - 0.5 * (il17f - _rel(latent, "IL10"))
        - 0.7 * _rel(latent, "CXCL10")
        - 0.25 * (np.asarray(latent["relapses_prior_2y"], dtype=np.float64) - 1.0)
        - 0.2 * (np.asarray(latent["edss"], dtype=np.float64) - 2.0)
    )


def _shape_ga(latent: Mapping[str, Any]) -> np.ndarray:
    """Glatiramer-acetate log-odds before the intercept, at signal strength 1."""
    ifng, il4 = _rel(latent, "IFNG"), _rel(latent, "IL4")
    return (
        1.1 * _rel(latent, "IL18")
        + 0.5 * (il4 - ifng)
        - 0.4 * (_rel(latent, "TNF") - il4)
        + 1.0 * expit(ifng / 0.25) * expit(il4 / 0.25)
        - 0.2 * (np.asarray(latent["edss"], dtype=np.float64) - 2.0)
        - 0.15 * (np.asarray(latent["gd_lesions"], dtype=np.float64) - 1.0)
    )


_SHAPES = {"ifnb": _shape_ifnb, "ga": _shape_ga}


class _LatentInputs:
    """The :class:`cytoresp.datasets.mechanisms.Inputs` of a latent mapping."""

    def __init__(self, latent: Mapping[str, Any]) -> None:
        self._latent = latent

    def x(self, analyte: str) -> np.ndarray:
        return _rel(self._latent, analyte)

    def u(self, analyte: str) -> np.ndarray:
        return _rel(self._latent, analyte) / _SPEC[analyte].sd_log2

    def z(self, covariate: str) -> np.ndarray:
        return _standardise(self.raw(covariate), covariate)

    def raw(self, covariate: str) -> np.ndarray:
        return np.asarray(self._latent[covariate], dtype=np.float64)


def _n_rows(latent: Mapping[str, Any]) -> int:
    if isinstance(latent, pd.DataFrame):
        return len(latent)
    for value in latent.values():
        return int(np.asarray(value).shape[0])
    raise UsageError("response_logits needs at least one latent column to know the cohort size")


@functools.lru_cache(maxsize=8)
def _scenario_scale(mechanism: str, therapy: str) -> float:
    """Multiplier giving the scenario shape the default shape's sd on the reference."""
    ref = _reference_population()
    target = float(np.std(_SHAPES[therapy](ref)))
    return target / float(np.std(scenario_shape(mechanism, therapy, _LatentInputs(ref))))


def _shape(therapy: str, latent: Mapping[str, Any], mechanism: str) -> np.ndarray:
    """A therapy's own log-odds shape under ``mechanism``, at signal strength 1."""
    if mechanism == "default":
        return _SHAPES[therapy](latent)
    if mechanism == "null":
        return np.zeros(_n_rows(latent))
    scale = _scenario_scale(mechanism, therapy)
    return scale * scenario_shape(mechanism, therapy, _LatentInputs(latent))


#: Effect heterogeneity: the weight of each therapy's own mechanism in its logit; the rest
#: is a mechanism shared by both therapies (docs/simulator.md, "Effect heterogeneity").
#: ``large``: the two separate mechanisms above (the default, unchanged); ``small``: the
#: shared mechanism plus a quarter of each therapy's own; ``none``: one mechanism and one
#: intercept for both, so the true difference is exactly 0 for every patient.
HETEROGENEITY: dict[str, float] = {"large": 1.0, "small": 0.25, "none": 0.0}


@functools.lru_cache(maxsize=8)
def _shared_weights(mechanism: str = "default") -> tuple[float, float]:
    """(a_ifnb, a_ga): the shared shape is a_ifnb * shape_ifnb + a_ga * shape_ga.

    Each therapy's shape is standardised on the reference population, the two are
    averaged, and the result is rescaled to the mean of the two shapes' standard
    deviations, so the shared mechanism is about as strong as either own mechanism.
    """
    ref = _reference_population()
    sd = {t: float(np.std(_shape(t, ref, mechanism))) for t in THERAPIES}
    raw = sum(_shape(t, ref, mechanism) / sd[t] for t in THERAPIES)
    k = float(np.mean(list(sd.values()))) / float(np.std(raw))
    return k / sd["ifnb"], k / sd["ga"]


def _mechanism(
    therapy: str, latent: Mapping[str, Any], heterogeneity: str, mechanism: str = "default"
) -> np.ndarray:
    """Log-odds of ``therapy`` before the intercept, at signal strength 1."""
    w = HETEROGENEITY[heterogeneity]
    if w == 1.0 or mechanism == "null":  # null: both shapes are 0, nothing to share
        return _shape(therapy, latent, mechanism)
    a_ifnb, a_ga = _shared_weights(mechanism)
    shared = a_ifnb * _shape("ifnb", latent, mechanism) + a_ga * _shape("ga", latent, mechanism)
    if w == 0.0:
        return shared
    return (1.0 - w) * shared + w * _shape(therapy, latent, mechanism)


def response_logits(
    latent: Mapping[str, Any],
    *,
    prevalence_ifnb: float = 0.65,
    prevalence_ga: float = 0.55,
    signal_strength: float = 1.0,
    heterogeneity: str = "large",
    mechanism: str = "default",
) -> dict[str, np.ndarray]:
    """True log-odds of response to each therapy, from latent values and covariates.

    This is the simulator's ground truth (the same function :func:`simulate_cohort`
    uses), exposed so tests and benchmarks can check which inputs drive it.

    Parameters
    ----------
    latent : mapping or DataFrame
        True log2 concentrations (pg/mL) under the canonical analyte ids, and the
        clinical covariates the mechanism uses (:func:`drivers_of` lists them), e.g.
        :attr:`SimulatedCohort.latent`. Extra keys are ignored.
    prevalence_ifnb, prevalence_ga : float
        Population mean response probability the intercepts are solved for.
    signal_strength : float
        Multiplies every planted effect; 0 gives the same probability to everyone.
    heterogeneity : {"large", "small", "none"}
        How much the two therapies' mechanisms differ (:data:`HETEROGENEITY`). With
        ``"none"`` both therapies share one mechanism and one intercept, solved for the
        mean of the two prevalences, so the two log-odds are identical.
    mechanism : {"default", "dense", "threshold", "other", "null"}
        The truth (:data:`MECHANISMS`, docs/simulator.md "Other truths"): the default
        mechanism, many small log-linear effects, steps and interactions, drivers
        outside the default ratios and axes, or no signal at all. Each therapy's shape
        has the default's standard deviation on the reference population; the
        heterogeneity knob mixes the two therapies' shapes of the chosen mechanism.

    Returns
    -------
    dict
        ``{"ifnb": array, "ga": array}`` of log-odds.

    Examples
    --------
    >>> cohort = simulate_cohort(50, seed=1)
    >>> logits = response_logits(cohort.latent)
    >>> bool(np.allclose(logits["ifnb"], cohort.truth["logit_ifnb"]))
    True
    >>> flat = response_logits(cohort.latent, mechanism="null")
    >>> float(np.ptp(flat["ga"]))
    0.0
    """
    if heterogeneity not in HETEROGENEITY:
        raise UsageError(
            f"heterogeneity must be one of {list(HETEROGENEITY)}, got {heterogeneity!r}"
        )
    if not isinstance(mechanism, str) or mechanism not in MECHANISMS:
        raise UsageError(f"mechanism must be one of {list(MECHANISMS)}, got {mechanism!r}")
    needed = {k for d in _own_drivers(mechanism).values() for k in d}
    missing = sorted(needed - set(latent.keys()))
    if missing:
        raise UsageError(
            f"response_logits needs the latent values of {missing}; "
            "pass SimulatedCohort.latent or a mapping with those keys"
        )
    prevalences = _effective_prevalences(prevalence_ifnb, prevalence_ga, heterogeneity)
    out = {}
    for therapy in THERAPIES:
        b0 = _intercept(
            therapy,
            float(prevalences[therapy]),
            float(signal_strength),
            heterogeneity,
            mechanism,
        )
        out[therapy] = b0 + signal_strength * _mechanism(therapy, latent, heterogeneity, mechanism)
    return out


def _effective_prevalences(p_ifnb: float, p_ga: float, heterogeneity: str) -> dict[str, float]:
    """The prevalences the intercepts are solved for (one common value without heterogeneity)."""
    if heterogeneity == "none":
        common = (float(p_ifnb) + float(p_ga)) / 2.0
        return {"ifnb": common, "ga": common}
    return {"ifnb": float(p_ifnb), "ga": float(p_ga)}


@functools.lru_cache(maxsize=64)
def _intercept(
    therapy: str,
    prevalence: float,
    signal_strength: float,
    heterogeneity: str = "large",
    mechanism: str = "default",
) -> float:
    """Intercept b with mean(sigmoid(b + s * shape)) = prevalence over the reference."""
    shape = signal_strength * _mechanism(therapy, _reference_population(), heterogeneity, mechanism)
    # The mean probability is increasing in b, from 0 at b = -40 to 1 at b = +40.
    return float(
        brentq(lambda b: float(expit(b + shape).mean()) - prevalence, -40.0, 40.0, xtol=1e-13)
    )


@functools.lru_cache(maxsize=1)
def _reference_population() -> pd.DataFrame:
    streams = np.random.SeedSequence(_REFERENCE_SEED).spawn(3)
    axes = _draw_axes(_REFERENCE_N, np.random.default_rng(streams[0]))
    latent = _draw_latent(axes, np.random.default_rng(streams[1]))
    latent.update(_draw_covariates(axes, np.random.default_rng(streams[2])))
    return pd.DataFrame(latent)


# --------------------------------------------------------------------------------------
# Patients: latent axes, concentrations, covariates
# --------------------------------------------------------------------------------------


def _draw_axes(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, n_axes) standard-normal axis scores with correlation AXIS_CORRELATION."""
    return rng.standard_normal((n, len(AXES))) @ _AXIS_CHOLESKY.T


def _draw_latent(axes: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """True log2 concentrations (pg/mL) per analyte, before noise and plate effects."""
    n = axes.shape[0]
    out = {}
    for a in ANALYTES:
        z = a.loading * axes[:, AXES.index(a.axis)]
        z += math.sqrt(1.0 - a.loading**2) * rng.standard_normal(n)
        out[a.id] = math.log2(a.median) + a.sd_log2 * z
    return out


def _draw_covariates(axes: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Clinical covariates (numeric; sex 1 = female), partly driven by the axes."""
    n = axes.shape[0]
    th17 = axes[:, AXES.index("Th17")]
    innate = axes[:, AXES.index("innate")]
    chemokine = axes[:, AXES.index("chemokine")]
    ifn = axes[:, AXES.index("IFN-response")]

    female = (rng.random(n) < 0.70).astype(np.float64)
    age = np.clip(np.rint(rng.normal(37.0, 9.0, n)), 18, 65)
    duration = np.minimum(rng.gamma(1.5, 3.0, n), age - 15.0)
    duration = np.round(np.maximum(duration, 0.1), 1)

    # Disease activity rises with Th17 and innate activity (assumed, after Axtell 2010).
    rate = 1.2 * np.exp(0.25 * th17 + 0.15 * innate)
    relapses = rng.poisson(rate).astype(np.float64)
    # Gd+ lesions: overdispersed counts, higher with CXCL13 (Mult Scler 2009) and Th17.
    mean_gd = 0.8 * np.exp(0.4 * chemokine + 0.2 * th17)
    gd = rng.poisson(mean_gd * rng.gamma(0.5, 2.0, n)).astype(np.float64)

    # EDSS: rises with disease duration and age, and with BAFF/IFN-response activity
    # (Hedegaard 2011); EDSS steps are 0, 1.0, 1.5, ..., so 0.5 does not exist.
    raw = 1.2 + 0.12 * duration + 0.02 * (age - 37.0) + 0.2 * ifn + rng.normal(0.0, 1.0, n)
    edss = np.where(raw < 0.75, 0.0, np.clip(np.rint(raw * 2.0) / 2.0, 1.0, 6.5))

    return {
        "age": age,
        "sex": female,
        "edss": edss,
        "disease_duration_y": duration,
        "relapses_prior_2y": relapses,
        "gd_lesions": gd,
    }


# --------------------------------------------------------------------------------------
# Writing values as a lab reports them (vectorised)
# --------------------------------------------------------------------------------------

_STR_DTYPE = pd.Series(["a"]).dtype  # pandas' default text dtype ("str" in pandas 3)
# pandas 3 keeps text in Arrow large_string arrays: build columns there, without Python
# objects (1M rows x 18 analytes in about a second). Otherwise fall back to object arrays.
_ARROW_STRINGS = isinstance(_STR_DTYPE, pd.StringDtype) and _STR_DTYPE.storage == "pyarrow"


def _limit_text(x: float) -> str:
    """A limit as a short decimal (0.56 -> '0.56', 2500.0 -> '2500')."""
    return np.format_float_positional(float(x), trim="-")


@functools.lru_cache(maxsize=64)
def _mantissa_strings(exponent: int) -> tuple[str, ...]:
    """The 9000 strings m * 10**(exponent-3) for m = 1000..9999, 4 significant digits."""
    out = []
    for m in range(1000, 10000):
        s = str(m)
        if exponent >= 3:
            out.append(s + "0" * (exponent - 3))
        elif exponent >= 0:
            out.append(f"{s[: exponent + 1]}.{s[exponent + 1 :]}")
        else:
            out.append("0." + "0" * (-exponent - 1) + s)
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _mantissa_arrow(exponent: int) -> Any:
    import pyarrow as pa

    return pa.array(_mantissa_strings(exponent), type=pa.large_string())


def _sig4_codes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mantissa (1000..9999) and decimal exponent of positive values rounded to 4 digits."""
    e = np.floor(np.log10(x)).astype(np.int64)
    m = np.rint(x / np.power(10.0, e - 3)).astype(np.int64)
    # log10 may land one off next to a power of ten; renormalise.
    up = m >= 10_000
    if up.any():
        m[up] = np.rint(x[up] / np.power(10.0, e[up] - 2)).astype(np.int64)
        e[up] += 1
    down = m < 1000
    if down.any():
        m[down] = np.rint(x[down] / np.power(10.0, e[down] - 4)).astype(np.int64)
        e[down] -= 1
    return m, e


def format_sig4(x: np.ndarray) -> np.ndarray:
    """Positive numbers as strings with 4 significant digits, positional notation.

    This is how the simulator writes a measured concentration.

    Parameters
    ----------
    x : array_like
        Positive finite values.

    Returns
    -------
    ndarray of str (object dtype)

    Examples
    --------
    >>> format_sig4(np.array([3.21449, 0.0123456, 11543.2, 9.99996])).tolist()
    ['3.214', '0.01235', '11540', '10.00']
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0:
        return np.empty(0, dtype=object)
    if not (np.isfinite(x).all() and (x > 0).all()):
        raise UsageError("format_sig4 takes positive finite numbers only")
    m, e = _sig4_codes(x)
    emin = int(e.min())
    table = [s for k in range(emin, int(e.max()) + 1) for s in _mantissa_strings(k)]
    return np.array(table, dtype=object)[(e - emin) * 9000 + (m - 1000)]


def _from_codes(table: Any, codes: np.ndarray) -> Any:
    """``table[codes]`` as a text column in pandas' default string dtype.

    ``table`` is a list of str, or (Arrow path only) a pyarrow array.
    """
    if _ARROW_STRINGS:
        import pyarrow as pa

        if not isinstance(table, pa.Array):
            table = pa.array(table, type=pa.large_string())
        return pd.array(table.take(pa.array(codes)), dtype=_STR_DTYPE)
    return np.asarray(table, dtype=object)[codes]


def _measured_text(values: np.ndarray, state: np.ndarray, below: str, above: str) -> Any:
    """Cell strings from values and a state code (0 value, 1 below, 2 above, 3 missing)."""
    observed = state == 0
    codes = np.empty(values.shape[0], dtype=np.int64)
    exponents: range = range(0)
    if observed.any():
        m, e = _sig4_codes(values[observed])
        exponents = range(int(e.min()), int(e.max()) + 1)
        codes[observed] = (e - exponents.start) * 9000 + (m - 1000)
    codes[~observed] = 9000 * len(exponents) + state[~observed] - 1
    specials = [below, above, ""]
    if _ARROW_STRINGS:
        import pyarrow as pa

        parts = [_mantissa_arrow(k) for k in exponents]
        table = pa.concat_arrays([*parts, pa.array(specials, type=pa.large_string())])
    else:
        table = [s for k in exponents for s in _mantissa_strings(k)] + specials
    return _from_codes(table, codes)


def _labels(prefix: str, numbers: np.ndarray, width: int) -> Any:
    """``prefix`` + zero-padded numbers as a text column ("P0001", ...)."""
    if _ARROW_STRINGS:
        import pyarrow as pa
        import pyarrow.compute as pc

        digits = pc.utf8_lpad(pa.array(numbers).cast(pa.large_string()), width=width, padding="0")
        joined = pc.binary_join_element_wise(
            pa.scalar(prefix, pa.large_string()), digits, pa.scalar("", pa.large_string())
        )
        return pd.array(joined, dtype=_STR_DTYPE)
    return np.array([f"{prefix}{k:0{width}d}" for k in numbers], dtype=object)


# --------------------------------------------------------------------------------------
# The cohort
# --------------------------------------------------------------------------------------


@dataclass(repr=False)
class SimulatedCohort:
    """A simulated cohort: the panel as a lab would deliver it, and the truth behind it.

    Attributes
    ----------
    panel : DataFrame
        The canonical wide table exactly as written to CSV: ``sample_id``, ``plate``,
        ``therapy``, ``responder`` (observed under the assigned therapy), the clinical
        covariates, then one text column per analyte (``"3.214"``, ``"<0.56"``,
        ``">2500"``, ``""`` = missing).
    truth : DataFrame
        Same row order: ``sample_id``, ``p_response_ifnb``, ``p_response_ga``,
        ``logit_ifnb``, ``logit_ga``, ``responder_ifnb``, ``responder_ga`` (potential
        outcomes, 0/1) and ``propensity_ifnb`` (the true probability of being given
        IFN-beta).
    drivers : dict
        Therapy -> the inputs that enter its true logit, most important first.
    params : dict
        Every parameter used, JSON-serialisable.
    latent : DataFrame
        Same row order: true log2 concentrations (pg/mL, before measurement noise,
        plate effects and censoring) and the numeric covariates (sex 1 = female); the
        input of :func:`response_logits`.

    Examples
    --------
    >>> cohort = simulate_cohort(200, seed=0)
    >>> cohort.panel.shape
    (200, 28)
    >>> 0.5 < cohort.oracle_auc("ifnb") <= 1.0
    True
    """

    panel: pd.DataFrame
    truth: pd.DataFrame
    drivers: dict[str, list[str]]
    params: dict
    latent: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __repr__(self) -> str:
        p = self.params
        return (
            f"SimulatedCohort(n={p.get('n')}, seed={p.get('seed')}, "
            f"platform={p.get('platform')!r}, assignment={p.get('assignment')!r})"
        )

    def oracle_auc(self, therapy: str | None = None) -> float:
        """ROC AUC of the true response probability against the observed outcome.

        The best AUC any model could reach on this cohort (up to sampling noise).

        Parameters
        ----------
        therapy : {"ifnb", "ga"} or None
            Patients given this therapy; None: all patients, each scored with the true
            probability of the therapy they were given.

        Returns
        -------
        float

        Examples
        --------
        >>> simulate_cohort(600, seed=0, signal_strength=0).oracle_auc("ifnb")
        0.5
        """
        from sklearn.metrics import roc_auc_score

        panel = self.panel
        if "patient_id" in panel.columns:  # visits: one row per patient, as the truth
            panel = panel.drop_duplicates("patient_id")
        given = panel["therapy"].to_numpy()
        y = panel["responder"].to_numpy()
        p = np.where(
            given == "ifnb",
            self.truth["p_response_ifnb"].to_numpy(),
            self.truth["p_response_ga"].to_numpy(),
        )
        if therapy is not None:
            if therapy not in THERAPIES:
                raise UsageError(f"unknown therapy {therapy!r}; use one of {list(THERAPIES)}")
            mask = given == therapy
            y, p = y[mask], p[mask]
        if len(np.unique(y)) < 2:
            raise UsageError(
                "the oracle AUC needs both responders and non-responders among the "
                f"patients given {therapy or 'either therapy'}; simulate a larger cohort"
            )
        return float(roc_auc_score(y, p))

    def to_csv(
        self, path: str | os.PathLike[str], truth_path: str | os.PathLike[str] | None = None
    ) -> None:
        """Write the panel (and optionally the truth) as CSV files.

        Parameters
        ----------
        path : str or path-like
            Where the panel goes (UTF-8, ``\\n`` line ends, no index).
        truth_path : str or path-like, optional
            Where the truth table goes.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> simulate_cohort(5, seed=0).to_csv(d / "panel.csv", d / "truth.csv")
        >>> (d / "panel.csv").read_text().splitlines()[0][:34]
        'sample_id,plate,therapy,responder,'
        """
        from cytoresp.panels.write import atomic_output

        with atomic_output(path) as fh:
            self.panel.to_csv(fh, index=False, lineterminator="\n")
        if truth_path is not None:
            with atomic_output(truth_path) as fh:
                self.truth.to_csv(fh, index=False, lineterminator="\n")


def measure(
    latent: Mapping[str, np.ndarray],
    offsets: np.ndarray,
    platform: str,
    missing_rate: float,
    r_noise: np.random.Generator,
    r_missing: np.random.Generator,
) -> dict[str, Any]:
    """What the lab reports for true log2 concentrations: one text column per analyte.

    Multiplicative measurement noise (:data:`MEASUREMENT_SD_LOG2`, rising toward the
    LLOQ), the per-sample plate offsets, censoring at the platform's limits and cells
    missing completely at random, drawn analyte by analyte in :data:`ANALYTES` order.

    Parameters
    ----------
    latent : mapping
        Analyte id -> true log2 concentration of each sample.
    offsets : ndarray of shape (n_samples, n_analytes)
        Each sample's plate offset per analyte (log2).
    platform : str
        One of :data:`PLATFORMS` (the lower limits).
    missing_rate : float
        Probability that a cell is missing.
    r_noise, r_missing : Generator
        The noise and missingness streams.

    Returns
    -------
    dict
        Analyte id -> text column (``"3.214"``, ``"<0.56"``, ``">2500"``, ``""``).
    """
    columns: dict[str, Any] = {}
    for j, a in enumerate(ANALYTES):
        lloq = a.lloq_for(platform)
        true = latent[a.id]
        n = len(true)
        sd = MEASUREMENT_SD_LOG2 * np.sqrt(1.0 + np.exp2(2.0 * (math.log2(lloq) - true)))
        measured = np.exp2(
            true
            + np.minimum(sd, _MEASUREMENT_SD_CAP) * r_noise.standard_normal(n)
            + offsets[:, j]
        )
        state = np.where(measured < lloq, 1, np.where(measured > a.uloq, 2, 0))
        state[r_missing.random(n) < missing_rate] = 3
        columns[a.id] = _measured_text(
            measured, state, "<" + _limit_text(lloq), ">" + _limit_text(a.uloq)
        )
    return columns


def _is_whole(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _check_args(**kw: Any) -> None:
    """Raise one UsageError listing every bad argument."""
    problems = []
    n = kw["n"]
    if not _is_whole(n) or n < 1:
        problems.append(f"n must be a whole number >= 1, got {n!r}")
    seed = kw["seed"]
    if seed is not None and (not _is_whole(seed) or seed < 0):
        problems.append(f"seed must be a non-negative whole number or None, got {seed!r}")
    for name in ("prevalence_ifnb", "prevalence_ga"):
        v = kw[name]
        if not _is_real(v) or not 0.0 < v < 1.0:
            problems.append(f"{name} must be strictly between 0 and 1, got {v!r}")
    if kw["assignment"] not in ("randomised", "confounded"):
        problems.append(
            f"assignment must be 'randomised' or 'confounded', got {kw['assignment']!r}"
        )
    problems += _truth_problems(kw["heterogeneity"], kw["mechanism"])
    if kw["platform"] not in PLATFORMS:
        problems.append(f"platform must be one of {list(PLATFORMS)}, got {kw['platform']!r}")
    v = kw["missing_rate"]
    if not _is_real(v) or not 0.0 <= v < 1.0:
        problems.append(f"missing_rate must be in [0, 1), got {v!r}")
    for name in ("plate_effect_sd", "signal_strength"):
        v = kw[name]
        if not _is_real(v) or v < 0:
            problems.append(f"{name} must be a finite number >= 0, got {v!r}")
    v = kw["confounding_strength"]
    if not _is_real(v):
        problems.append(f"confounding_strength must be a finite number, got {v!r}")
    plates = kw["n_plates"]
    if plates is not None:
        if not _is_whole(plates) or plates < 1:
            problems.append(f"n_plates must be a whole number >= 1 or None, got {plates!r}")
        elif _is_whole(n) and plates > n:
            problems.append(f"n_plates ({plates}) cannot exceed n ({n}): use fewer plates")
    if problems:
        raise UsageError("simulate_cohort: " + "; ".join(problems))


def _standardise(x: np.ndarray, name: str) -> np.ndarray:
    ref = _reference_population()[name]
    return (x - float(ref.mean())) / float(ref.std())


def simulate_cohort(
    n: int = 600,
    seed: int | None = 0,
    *,
    prevalence_ifnb: float = 0.65,
    prevalence_ga: float = 0.55,
    assignment: str = "randomised",
    confounding_strength: float = 1.0,
    missing_rate: float = 0.03,
    n_plates: int | None = None,
    plate_effect_sd: float = 0.15,
    platform: str = "luminex_hs",
    signal_strength: float = 1.0,
    heterogeneity: str = "large",
    mechanism: str = "default",
) -> SimulatedCohort:
    """Simulate a relapsing-remitting MS cohort with a baseline cytokine panel.

    Every number behind it, and whether it is known from the literature or assumed, is
    in ``docs/simulator.md``.

    Parameters
    ----------
    n : int
        Number of patients.
    seed : int or None
        Seed; the same seed gives the same cohort. Each part of the model (patients,
        covariates, assignment, outcomes, plates, noise, missingness) draws from its own
        stream, so changing e.g. ``platform`` or ``missing_rate`` keeps the same
        patients and outcomes. None: fresh entropy (recorded in ``params["entropy"]``).
    prevalence_ifnb, prevalence_ga : float
        Population mean true probability of response to each therapy, in (0, 1).
    assignment : {"randomised", "confounded"}
        ``"randomised"``: a fair coin. ``"confounded"``: P(IFN-beta) rises with prior
        relapses and EDSS (see docs), scaled by ``confounding_strength``.
    confounding_strength : float
        Log-odds of IFN-beta per standard deviation of the clinical severity score.
    missing_rate : float
        Probability that an analyte cell is missing (completely at random).
    n_plates : int or None
        Number of assay plates; None: one per ~40 samples.
    plate_effect_sd : float
        Standard deviation of the per-plate, per-analyte additive log2 offset.
    platform : {"luminex_hs", "luminex_standard", "msd"}
        Sets the lower limits of quantification (LITERATURE.md section 5).
    signal_strength : float
        Multiplies every planted effect on response; 0 = no signal.
    heterogeneity : {"large", "small", "none"}
        How much the therapies' response mechanisms differ, i.e. how much the true
        difference ``p_response_ifnb - p_response_ga`` varies between patients
        (docs/simulator.md, "Effect heterogeneity"). ``"large"`` (default): two separate
        mechanisms. ``"small"``: a mechanism shared by both therapies plus a quarter of each
        therapy's own. ``"none"``: one shared mechanism and one intercept (solved for the
        mean of the two prevalences): the true difference is 0 for every patient.
        Independent of ``assignment``: each level can be randomised or confounded.
    mechanism : {"default", "dense", "threshold", "other", "null"}
        The truth behind the response (docs/simulator.md, "Other truths"). ``"default"``:
        the literature-grounded mechanism above (unchanged). ``"dense"``: every analyte
        and covariate has a small log-linear effect. ``"threshold"``: steps, an AND of two
        cytokines above their medians and effects that reverse with a covariate.
        ``"other"``: within-axis contrasts, cytokine pairs outside the default ratios and
        single cytokines. ``"null"``: no signal; each therapy's probability is its
        prevalence for everyone. Every mechanism has the default's logit sd on the
        reference population (at the same ``signal_strength``) and composes with every
        ``heterogeneity`` level (the shared part mixes the chosen mechanism's two shapes).
        Only the truth changes: the same seed gives the same patients and measurements.

    Returns
    -------
    SimulatedCohort

    Raises
    ------
    UsageError
        If an argument is out of range or unknown.

    Examples
    --------
    >>> cohort = simulate_cohort(600, seed=0)
    >>> cohort.panel.loc[0, ["sample_id", "plate", "therapy"]].tolist()
    ['P0001', 'plate15', 'ifnb']
    >>> cohort.drivers["ifnb"][0]
    'IL17F'
    """
    _check_args(
        n=n,
        seed=seed,
        prevalence_ifnb=prevalence_ifnb,
        prevalence_ga=prevalence_ga,
        assignment=assignment,
        confounding_strength=confounding_strength,
        missing_rate=missing_rate,
        n_plates=n_plates,
        plate_effect_sd=plate_effect_sd,
        platform=platform,
        signal_strength=signal_strength,
        heterogeneity=heterogeneity,
        mechanism=mechanism,
    )
    n = int(n)
    plates = int(n_plates) if n_plates is not None else max(1, round(n / _SAMPLES_PER_PLATE))
    seq = np.random.SeedSequence(seed)
    (r_axes, r_latent, r_cov, r_assign, r_outcome, r_plate, r_noise, r_missing) = (
        np.random.default_rng(s) for s in seq.spawn(8)
    )

    # The patients.
    axes = _draw_axes(n, r_axes)
    latent = _draw_latent(axes, r_latent)
    cov = _draw_covariates(axes, r_cov)
    del axes
    # One Fortran-ordered block: pandas wraps it without copying (matters at 1M rows).
    names = [*ANALYTE_IDS, *CLINICAL_COVARIATES]
    block = np.empty((n, len(names)), order="F")
    for i, name in enumerate(names):
        block[:, i] = latent[name] if name in latent else cov[name]
    latent_frame = pd.DataFrame(block, columns=names, copy=False)

    # The truth: potential outcomes under both therapies.
    logits = response_logits(
        latent_frame,
        prevalence_ifnb=float(prevalence_ifnb),
        prevalence_ga=float(prevalence_ga),
        signal_strength=float(signal_strength),
        heterogeneity=heterogeneity,
        mechanism=mechanism,
    )
    probs = {t: expit(logits[t]) for t in THERAPIES}
    u = r_outcome.random((len(THERAPIES), n))
    outcomes = {t: (u[i] < probs[t]).astype(np.int64) for i, t in enumerate(THERAPIES)}

    # Who gets which therapy.
    if assignment == "confounded":
        severity = 0.6 * _standardise(cov["relapses_prior_2y"], "relapses_prior_2y")
        severity += 0.4 * _standardise(cov["edss"], "edss")
        propensity = expit(confounding_strength * severity)
    else:
        propensity = np.full(n, 0.5)
    gets_ifnb = r_assign.random(n) < propensity
    responder = np.where(gets_ifnb, outcomes["ifnb"], outcomes["ga"])

    # What the lab measures.
    plate_idx = r_plate.permutation(n) % plates
    shared = r_plate.standard_normal(plates)
    own = r_plate.standard_normal((plates, len(ANALYTES)))
    offsets = plate_effect_sd * math.sqrt(0.5) * (shared[:, None] + own)

    id_width = max(4, len(str(n)))
    plate_width = max(2, len(str(plates)))
    plate_names = [f"plate{k:0{plate_width}d}" for k in range(1, plates + 1)]
    columns: dict[str, Any] = {
        "sample_id": _labels("P", np.arange(1, n + 1), id_width),
        "plate": _from_codes(plate_names, plate_idx),
        "therapy": _from_codes(["ga", "ifnb"], gets_ifnb.astype(np.int64)),
        "responder": responder,
        "age": cov["age"].astype(np.int64),
        "sex": _from_codes(["M", "F"], cov["sex"].astype(np.int64)),
        "edss": cov["edss"],
        "disease_duration_y": cov["disease_duration_y"],
        "relapses_prior_2y": cov["relapses_prior_2y"].astype(np.int64),
        "gd_lesions": cov["gd_lesions"].astype(np.int64),
    }
    columns.update(measure(latent, offsets[plate_idx], platform, missing_rate, r_noise,
                           r_missing))
    panel = pd.DataFrame(columns)

    truth = pd.DataFrame(
        {
            "sample_id": panel["sample_id"],
            "p_response_ifnb": probs["ifnb"],
            "p_response_ga": probs["ga"],
            "logit_ifnb": logits["ifnb"],
            "logit_ga": logits["ga"],
            "responder_ifnb": outcomes["ifnb"],
            "responder_ga": outcomes["ga"],
            "propensity_ifnb": propensity,
        }
    )
    effective = _effective_prevalences(prevalence_ifnb, prevalence_ga, heterogeneity)
    params = {
        "simulator_version": SIMULATOR_VERSION,
        "n": n,
        "seed": None if seed is None else int(seed),
        "entropy": int(seq.entropy) if seed is None else None,
        "prevalence_ifnb": float(prevalence_ifnb),
        "prevalence_ga": float(prevalence_ga),
        "heterogeneity": heterogeneity,
        "mechanism": mechanism,
        "intercept_ifnb": _intercept(
            "ifnb", effective["ifnb"], float(signal_strength), heterogeneity, mechanism
        ),
        "intercept_ga": _intercept(
            "ga", effective["ga"], float(signal_strength), heterogeneity, mechanism
        ),
        "assignment": assignment,
        "confounding_strength": float(confounding_strength),
        "missing_rate": float(missing_rate),
        "n_plates": plates,
        "plate_effect_sd": float(plate_effect_sd),
        "platform": platform,
        "signal_strength": float(signal_strength),
        "measurement_sd_log2": MEASUREMENT_SD_LOG2,
        "analytes": {
            a.id: {
                "axis": a.axis,
                "loading": a.loading,
                "median_pg_ml": a.median,
                "sd_log2": a.sd_log2,
                "lloq": a.lloq_for(platform),
                "uloq": a.uloq,
            }
            for a in ANALYTES
        },
        "axis_correlations": {f"{a}~{b}": r for (a, b), r in _AXIS_CORRELATIONS.items()},
    }
    return SimulatedCohort(
        panel=panel,
        truth=truth,
        drivers=drivers_of(heterogeneity, mechanism),
        params=params,
        latent=latent_frame,
    )
