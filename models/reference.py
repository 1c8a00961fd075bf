"""What a model keeps about its training cohort: the range and percentiles of every input.

Computed at training time from the training model frame and stored with the model; used at
scoring time for the ``outside training range`` warnings and, in the patient report, for
where a patient's value sits in the training distribution.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cytoresp.panels.panel import CLINICAL_COVARIATES

__all__ = ["ranking_values", "training_quantiles", "training_ranges"]


def training_ranges(frame: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Observed (uncensored) range of each input in the training data.

    Analytes: positive values only (a censored value is encoded as ``-limit``);
    clinical covariates: every finite value. Columns with no value are skipped.

    Examples
    --------
    >>> training_ranges(pd.DataFrame({"IL10": [1.0, 2.0, -0.5, np.nan]}))
    {'IL10': (1.0, 2.0)}
    """
    ranges = {}
    for col in frame.columns:
        vals = frame[col].to_numpy(dtype=np.float64)
        if col not in CLINICAL_COVARIATES:
            vals = vals[vals > 0]
        vals = vals[np.isfinite(vals)]
        if vals.size:
            ranges[col] = (float(vals.min()), float(vals.max()))
    return ranges


def training_quantiles(frame: pd.DataFrame) -> dict[str, list[float]]:
    """The 0, 1, ..., 100th percentiles of each model-frame column on the training rows.

    Analytes in pg/mL; a value censored below its limit ``L`` (encoded ``-L``) counts as
    ``L / sqrt(2)``; missing values are left out. Columns with no value are skipped.

    Examples
    --------
    >>> q = training_quantiles(pd.DataFrame({"IL10": [1.0, 2.0, -0.5, np.nan]}))
    >>> q["IL10"][0], q["IL10"][50], q["IL10"][100]
    (0.3536, 1.0, 2.0)
    """
    out: dict[str, list[float]] = {}
    for col in frame.columns:
        vals = ranking_values(frame[col].to_numpy(dtype=np.float64), col)
        vals = vals[np.isfinite(vals)]
        if vals.size:
            q = np.quantile(vals, np.linspace(0.0, 1.0, 101))
            out[col] = [float(f"{x:.4g}") for x in q]
    return out


def ranking_values(vals: np.ndarray, column: str) -> np.ndarray:
    """Values of one model-frame column as :func:`training_quantiles` ranks them.

    A censored analyte value ``-L`` becomes ``L / sqrt(2)``; covariates are unchanged.

    Examples
    --------
    >>> ranking_values(np.array([4.0, -2.0]), "IL10").round(4).tolist()
    [4.0, 1.4142]
    """
    if column in CLINICAL_COVARIATES:
        return vals
    return np.where(vals < 0, -vals / np.sqrt(2.0), vals)
