"""Calibration within training: a head's calibrator and decision threshold from out-of-fold
log-odds.

The calibrator itself (:class:`cytoresp.models.calibration.LogisticCalibrator`) lives with
the models, which apply it at scoring time; this module only decides, inside
cross-validation and for the final fit, what it is fitted on and which threshold goes with it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from cytoresp.models.calibration import LogisticCalibrator
from cytoresp.train.config import TrainConfig
from cytoresp.train.threshold import choose_threshold

__all__ = ["fit_calibration"]


def fit_calibration(
    margin: ArrayLike, y: ArrayLike, config: TrainConfig
) -> tuple[LogisticCalibrator, float]:
    """Fit the calibrator on out-of-fold log-odds and choose the threshold on its output.

    Parameters
    ----------
    margin : array-like of shape (n,)
        Uncalibrated out-of-fold log-odds of the head.
    y : array-like of shape (n,)
        0/1 labels of the same rows.
    config : TrainConfig
        ``threshold_method`` and ``target_sensitivity`` choose the threshold.

    Returns
    -------
    calibrator : LogisticCalibrator
    threshold : float
        Decision threshold on the calibrated probability.

    Examples
    --------
    >>> import numpy as np
    >>> m, y = np.array([-2.0, -1.0, 0.5, -0.5, 1.0, 2.0]), np.array([0, 0, 0, 1, 1, 1])
    >>> cal, threshold = fit_calibration(m, y, TrainConfig())
    >>> 0 < threshold < 1 and cal.slope_ > 0
    True
    """
    yy = np.asarray(y)
    calibrator = LogisticCalibrator().fit(margin, yy)
    threshold = choose_threshold(
        yy,
        calibrator.predict_proba(margin)[:, 1],
        method=config.threshold_method,
        target_sensitivity=config.target_sensitivity,
    )
    return calibrator, float(threshold)
