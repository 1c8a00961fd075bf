"""On-treatment visits for the simulated cohort: cytokines that change on therapy.

:func:`simulate_longitudinal` draws the baseline cohort of
:func:`~cytoresp.datasets.simulator.simulate_cohort` (same seed, same patients, same
baseline measurements and outcomes) and adds samples at later visits (months since the
therapy started). A patient's true log2 concentration at month ``m`` is its baseline value
plus

* the therapy's effect on that analyte, which differs between the patients who respond
  and those who do not (:data:`ON_TREATMENT_EFFECTS`: IFN-beta raises IL-10 and lowers
  IL-17A and IFN-gamma in responders; glatiramer acetate raises IL-4 and IL-10 and lowers
  TNF-alpha in responders), reached gradually: ``effect * (1 - exp(-m / tau))``;
* a within-person change between visits (:data:`WITHIN_PERSON_SD_LOG2`), correlated
  within and across immune axes like the baseline values.

Each visit's samples are then measured like the baseline ones (measurement noise, their
own plates, censoring, missing cells). ``on_treatment="none"`` gives every patient of a
therapy the same average change whatever their response (no on-treatment signal). Which
numbers come from the literature and which are assumptions: ``docs/simulator.md``,
"On-treatment visits".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from cytoresp.datasets.simulator import (
    ANALYTES,
    AXES,
    AXIS_CORRELATION,
    SimulatedCohort,
    measure,
    simulate_cohort,
)
from cytoresp.errors import UsageError
from cytoresp.panels.panel import THERAPIES

__all__ = [
    "ON_TREATMENT",
    "ON_TREATMENT_EFFECTS",
    "WITHIN_PERSON_SD_LOG2",
    "Effect",
    "simulate_longitudinal",
]

#: The on-treatment models: ``"literature"`` (response-dependent changes) or ``"none"``.
ON_TREATMENT = ("literature", "none")

#: Sd of the change in a person's true log2 concentration between two visits, apart from
#: the therapy's effect (assumption: cytokine levels of one person vary between visits
#: roughly half as much as between persons, sd_log2 0.7-2.2 in the baseline model).
WITHIN_PERSON_SD_LOG2 = 0.4

#: Samples per plate (as at baseline).
_SAMPLES_PER_PLATE = 40


class Effect(NamedTuple):
    """The change of one analyte on one therapy, in log2 units at its plateau.

    Attributes
    ----------
    responders, non_responders : float
        log2 change by the plateau (``+1`` = doubled) in each group.
    tau : float
        Months to reach ``1 - 1/e`` (63 %) of the plateau.
    """

    responders: float
    non_responders: float
    tau: float


#: therapy -> analyte -> Effect. Directions from the literature, sizes and time constants
#: assumed (docs/simulator.md, "On-treatment visits", lists the source of each row).
ON_TREATMENT_EFFECTS: dict[str, dict[str, Effect]] = {
    "ifnb": {
        "IL10": Effect(+0.6, -0.3, 2.0),     # up in responders, down in non-responders
        "IL17A": Effect(-0.6, 0.0, 2.0),     # down in responders
        "IFNG": Effect(-0.5, 0.0, 2.0),      # down in responders
        "CXCL10": Effect(+0.5, +0.5, 0.5),   # IFN-beta pharmacodynamics, everyone
        "TNFSF13B": Effect(+0.4, +0.4, 2.0),  # BAFF up at 3 and 6 months, everyone
        "TGFB1": Effect(+0.3, +0.3, 2.0),    # up on IFN-beta, everyone
        "IL22": Effect(-0.3, -0.3, 3.0),     # down at 6 and 12 months, everyone
    },
    "ga": {
        "TNF": Effect(-0.7, 0.0, 1.5),       # a fall by 3 months predicts response
        "IL4": Effect(+0.7, -0.3, 4.0),      # the change by 6 months predicts response
        "IL10": Effect(+0.4, 0.0, 2.0),      # Th2 / regulatory shift
        "IFNG": Effect(-0.3, 0.0, 2.0),      # Th1 down
    },
}


def _check(visits: Any, on_treatment: Any, missed_visit_rate: Any, strength: Any
           ) -> tuple[float, ...]:
    problems = []
    months: tuple[float, ...] = ()
    ok = isinstance(visits, Sequence) and not isinstance(visits, str) and len(visits) > 0 \
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                and v >= 0 for v in visits)
    if not ok:
        problems.append(f"visits must be a sequence of months >= 0 starting with 0, got "
                        f"{visits!r}")
    else:
        months = tuple(float(v) for v in visits)
        if months[0] != 0 or any(b <= a for a, b in zip(months, months[1:], strict=False)):
            problems.append(f"visits must start with 0 (the baseline) and increase, got "
                            f"{tuple(visits)!r}")
    if on_treatment not in ON_TREATMENT:
        problems.append(f"on_treatment must be one of {list(ON_TREATMENT)}, got "
                        f"{on_treatment!r}")
    ok = isinstance(missed_visit_rate, int | float) and not isinstance(missed_visit_rate, bool)
    if not ok or not 0 <= missed_visit_rate < 1:
        problems.append(f"missed_visit_rate must be in [0, 1), got {missed_visit_rate!r}")
    ok = isinstance(strength, int | float) and not isinstance(strength, bool)
    if not ok or not math.isfinite(strength) or strength < 0:
        problems.append(f"on_treatment_strength must be a finite number >= 0, got "
                        f"{strength!r}")
    if problems:
        raise UsageError("simulate_longitudinal: " + "; ".join(problems))
    return months


def _month_label(m: float) -> str:
    return f"{m:g}"


def simulate_longitudinal(
    n: int = 600,
    seed: int | None = 0,
    *,
    visits: Sequence[float] = (0, 3, 6),
    on_treatment: str = "literature",
    missed_visit_rate: float = 0.0,
    on_treatment_strength: float = 1.0,
    **kwargs: Any,
) -> SimulatedCohort:
    """Simulate a cohort with samples at baseline and at later visits on therapy.

    Parameters
    ----------
    n : int
        Number of patients.
    seed : int or None
        Seed. The baseline cohort is ``simulate_cohort(n, seed, **kwargs)`` exactly (its
        patients, outcomes and month-0 measurements); the visits draw from streams of
        their own.
    visits : sequence of float, default (0, 3, 6)
        Months of the samples, starting with 0 (the baseline). ``(0,)`` returns
        ``simulate_cohort(n, seed, **kwargs)`` unchanged.
    on_treatment : {"literature", "none"}, default "literature"
        ``"literature"``: :data:`ON_TREATMENT_EFFECTS`, responders and non-responders
        change differently. ``"none"``: every patient of a therapy changes by the
        prevalence-weighted mean of the two groups' effects (the same average change,
        independent of response): no on-treatment signal.
    missed_visit_rate : float, default 0
        Probability that a patient misses an on-treatment visit (each visit
        independently; the baseline sample is never missed).
    on_treatment_strength : float, default 1
        Multiplies every effect of :data:`ON_TREATMENT_EFFECTS` (both groups); 0 = no
        change on therapy beyond the within-person change.
    **kwargs
        Passed to :func:`~cytoresp.datasets.simulator.simulate_cohort` (prevalences,
        platform, missing_rate, plate_effect_sd, mechanism, ...).

    Returns
    -------
    SimulatedCohort
        ``panel``: one row per sample, patients in order, visits in order within a
        patient: ``sample_id`` (``P0001-m0``, ``P0001-m3``, ...), ``patient_id``,
        ``month``, ``plate``, ``therapy``, ``responder``, the covariates (per patient),
        the analytes. ``truth`` and ``latent``: one row per patient (``truth`` has
        ``patient_id`` in place of ``sample_id``). ``params`` adds ``visits``,
        ``on_treatment``, ``missed_visit_rate``, ``on_treatment_strength``,
        ``within_person_sd_log2`` and
        ``on_treatment_effects``.

    Raises
    ------
    UsageError
        For bad visits, on_treatment or missed_visit_rate (and simulate_cohort's own).

    Examples
    --------
    >>> c = simulate_longitudinal(50, seed=0, visits=(0, 3))
    >>> c.panel[["sample_id", "patient_id", "month"]].head(3).values.tolist()
    [['P0001-m0', 'P0001', 0], ['P0001-m3', 'P0001', 3], ['P0002-m0', 'P0002', 0]]
    >>> len(c.panel), len(c.truth)
    (100, 50)
    >>> simulate_longitudinal(50, seed=0, visits=(0,)).panel.equals(
    ...     simulate_cohort(50, seed=0).panel)
    True
    """
    months = _check(visits, on_treatment, missed_visit_rate, on_treatment_strength)
    strength = float(on_treatment_strength)
    base = simulate_cohort(n, seed, **kwargs)
    if months == (0.0,):
        return base
    n = len(base.panel)
    entropy = base.params["seed"] if base.params["seed"] is not None else base.params["entropy"]
    # streams of their own: SeedSequence children 0-7 are simulate_cohort's
    later = [np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(100 + k,)))
             for k in range(5)]
    r_change, r_plate, r_noise, r_missing, r_missed = later

    therapy = base.panel["therapy"].to_numpy(dtype=object)
    responder = base.panel["responder"].to_numpy(dtype=np.float64)
    prevalence = {t: float(base.params[f"prevalence_{t}"]) for t in THERAPIES}
    loading = np.array([a.loading for a in ANALYTES])
    chol = np.linalg.cholesky(AXIS_CORRELATION)
    axis_of = np.array([AXES.index(a.axis) for a in ANALYTES])
    platform = base.params["platform"]
    plate_sd = float(base.params["plate_effect_sd"])
    missing_rate = float(base.params["missing_rate"])

    frames = [_with_visit(base.panel, 0.0)]
    for m in months[1:]:
        # the true change: therapy effect (by response) + within-person change
        axes = r_change.standard_normal((n, len(AXES))) @ chol.T
        own = r_change.standard_normal((n, len(ANALYTES)))
        noise = WITHIN_PERSON_SD_LOG2 * (loading * axes[:, axis_of]
                                         + np.sqrt(1.0 - loading**2) * own)
        latent = {}
        for j, a in enumerate(ANALYTES):
            shift = np.zeros(n)
            for t, effects in ON_TREATMENT_EFFECTS.items():
                e = effects.get(a.id)
                if e is None:
                    continue
                ramp = 1.0 - math.exp(-m / e.tau)
                given = therapy == t
                if on_treatment == "literature":
                    size = np.where(responder == 1.0, e.responders, e.non_responders)
                else:
                    size = np.full(n, prevalence[t] * e.responders
                                   + (1 - prevalence[t]) * e.non_responders)
                shift += np.where(given, strength * ramp * size, 0.0)
            latent[a.id] = base.latent[a.id].to_numpy() + shift + noise[:, j]
        # measured on plates of this visit
        plates = max(1, round(n / _SAMPLES_PER_PLATE))
        plate_idx = r_plate.permutation(n) % plates
        shared = r_plate.standard_normal(plates)
        own_p = r_plate.standard_normal((plates, len(ANALYTES)))
        offsets = plate_sd * math.sqrt(0.5) * (shared[:, None] + own_p)
        cols = measure(latent, offsets[plate_idx], platform, missing_rate, r_noise, r_missing)
        visit = base.panel.copy()
        width = max(2, len(str(plates)))
        visit["plate"] = [f"m{_month_label(m)}-plate{k + 1:0{width}d}" for k in plate_idx]
        for aid, text in cols.items():
            visit[aid] = text
        attended = r_missed.random(n) >= missed_visit_rate
        frames.append(_with_visit(visit, m)[attended])

    panel = pd.concat(frames, ignore_index=False)
    order = np.lexsort((panel["month"].to_numpy(), panel.index.to_numpy()))
    panel = panel.iloc[order].reset_index(drop=True)
    if all(m.is_integer() for m in months):  # written "3", not "3.0"
        panel["month"] = panel["month"].astype(np.int64)
    truth = base.truth.rename(columns={"sample_id": "patient_id"})
    params = dict(base.params)
    params.update({
        "visits": list(months),
        "on_treatment": on_treatment,
        "missed_visit_rate": float(missed_visit_rate),
        "on_treatment_strength": strength,
        "within_person_sd_log2": WITHIN_PERSON_SD_LOG2,
        "on_treatment_effects": {t: {a: e._asdict() for a, e in eff.items()}
                                 for t, eff in ON_TREATMENT_EFFECTS.items()},
    })
    return SimulatedCohort(panel=panel, truth=truth, drivers=base.drivers, params=params,
                           latent=base.latent)


def _with_visit(panel: pd.DataFrame, month: float) -> pd.DataFrame:
    """The panel's rows as samples of ``month``: sample_id, patient_id, month first."""
    patient = panel["sample_id"]
    out = panel.drop(columns=["sample_id"])
    out.insert(0, "month", month)
    out.insert(0, "patient_id", patient)
    out.insert(0, "sample_id", patient.astype(str) + f"-m{_month_label(month)}")
    return out
