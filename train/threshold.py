"""Choice of the decision threshold on predicted probabilities.

Choose the threshold on out-of-fold predictions (never on the data it is then evaluated
on, or the reported sensitivity/specificity are optimistic). Convention, shared with
:func:`cytoresp.train.metrics.threshold_metrics`: ``p >= threshold`` is called a
responder.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from cytoresp.errors import UsageError
from cytoresp.train.metrics import _as_labels, _as_probs

__all__ = ["choose_threshold", "choose_alert_threshold", "THRESHOLD_METHODS"]

#: Accepted values of ``method``.
THRESHOLD_METHODS = ("youden", "sensitivity")


def choose_threshold(
    y: ArrayLike,
    p: ArrayLike,
    method: str = "youden",
    target_sensitivity: float | None = None,
) -> float:
    """Choose a decision threshold from labelled predictions.

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels (1 = responder).
    p : array-like of shape (n,)
        Predicted probabilities of response (out of fold).
    method : {"youden", "sensitivity"}, default "youden"
        ``"youden"``: maximise Youden's J = sensitivity + specificity - 1 (the same as
        maximising balanced accuracy); among equal J, the largest threshold.
        ``"sensitivity"``: the largest threshold whose sensitivity is at least
        ``target_sensitivity`` (so specificity is as high as that target allows).
    target_sensitivity : float in (0, 1], optional
        Required with ``method="sensitivity"``, not allowed otherwise.

    Returns
    -------
    float
        A threshold equal to one of the values of ``p``; predictions ``p >= threshold``
        are called responders.

    Raises
    ------
    UsageError
        For an unknown method, a missing or out-of-range target, or labels without the
        classes the method needs.

    Examples
    --------
    >>> y = [0, 0, 0, 1, 0, 1, 1, 1]
    >>> p = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    >>> choose_threshold(y, p)
    0.6
    >>> choose_threshold(y, p, method="sensitivity", target_sensitivity=1.0)
    0.4
    """
    if method not in THRESHOLD_METHODS:
        raise UsageError(
            f"unknown threshold method {method!r}; choose one of {', '.join(THRESHOLD_METHODS)}"
        )
    if method == "sensitivity":
        if target_sensitivity is None:
            raise UsageError("method='sensitivity' needs target_sensitivity (e.g. 0.9)")
        t = float(target_sensitivity)
        if not (0.0 < t <= 1.0):
            raise UsageError(f"target_sensitivity must be in (0, 1], got {target_sensitivity!r}")
    elif target_sensitivity is not None:
        raise UsageError("target_sensitivity is only used with method='sensitivity'")

    yy = _as_labels(y)
    pp = _as_probs(p, yy.size)
    n_pos = int(yy.sum())
    n_neg = yy.size - n_pos
    if n_pos == 0:
        raise UsageError("cannot choose a threshold: y has no responders (label 1)")

    if method == "sensitivity":
        # Calling the k highest-scored responders positive gives sensitivity k / n_pos;
        # the smallest sufficient k gives the largest threshold. The tolerance keeps
        # 0.9 * 10 from rounding up to 10.
        k = max(1, math.ceil(t * n_pos - 1e-9))
        return float(np.sort(pp[yy == 1])[::-1][k - 1])

    if n_neg == 0:
        raise UsageError("cannot choose a threshold: y has no non-responders (label 0)")
    order = np.argsort(-pp, kind="stable")
    ps, ys = pp[order], yy[order]
    # Candidate thresholds are the distinct values of p, from high to low; at each one,
    # everything up to the last tied row is called positive.
    last = np.flatnonzero(np.r_[ps[1:] != ps[:-1], True])
    tp = np.cumsum(ys)[last]
    fp = np.cumsum(1 - ys)[last]
    youden = tp / n_pos - fp / n_neg
    best = int(np.argmax(youden))  # first maximum = largest threshold
    return float(ps[last[best]])


def choose_alert_threshold(y: ArrayLike, p: ArrayLike, sensitivity: float) -> float:
    """Threshold of an early non-response alert for a stated sensitivity to non-response.

    The alert is raised when ``p <= threshold``. The threshold is the smallest value of
    ``p`` among the non-responders (label 0) at or below which at least ``sensitivity``
    of them fall, so the alert flags that share of the non-responders of ``(y, p)`` and as
    few responders as that allows. Choose it on out-of-fold predictions, never on the
    rows it is then evaluated on.

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels (1 = responder).
    p : array-like of shape (n,)
        Predicted probabilities of response (out of fold).
    sensitivity : float in (0, 1]
        The share of non-responders the alert must flag.

    Returns
    -------
    float
        One of the values of ``p``.

    Raises
    ------
    UsageError
        For a sensitivity outside (0, 1] or labels without non-responders.

    Examples
    --------
    >>> y = [0, 0, 0, 1, 0, 1, 1, 1]
    >>> p = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    >>> choose_alert_threshold(y, p, 0.75)   # 3 of the 4 non-responders are <= 0.3
    0.3
    >>> choose_alert_threshold(y, p, 1.0)
    0.5
    """
    s = float(sensitivity)
    if not 0.0 < s <= 1.0:
        raise UsageError(f"alert sensitivity must be in (0, 1], got {sensitivity!r}")
    yy = _as_labels(y)
    pp = _as_probs(p, yy.size)
    neg = np.sort(pp[yy == 0])
    if neg.size == 0:
        raise UsageError("cannot choose an alert threshold: y has no non-responders (label 0)")
    # Flagging the k lowest-scored non-responders gives sensitivity k / n_neg; the
    # tolerance keeps 0.8 * 10 from rounding up to 9.
    k = max(1, math.ceil(s * neg.size - 1e-9))
    return float(neg[k - 1])
