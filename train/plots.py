"""Evaluation plots: ROC curves and a reliability diagram.

Figures are built with :class:`matplotlib.figure.Figure` directly, never through
``pyplot``: no global state, safe in threads and servers, nothing to close. Save them
with ``fig.savefig(path)`` or log them with ``mlflow.log_figure(fig, "roc.png")``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from sklearn.metrics import roc_curve

from cytoresp.errors import UsageError
from cytoresp.train.metrics import (
    _as_labels,
    _as_probs,
    brier,
    calibration_intercept_slope,
    roc_auc,
)

__all__ = ["plot_roc", "plot_reliability"]

_Z = 1.959963984540054


def plot_roc(
    curves: Mapping[str, tuple[ArrayLike, ArrayLike]],
    title: str = "ROC curve",
) -> Figure:
    """ROC curves of several models on one axis, each labelled with its AUC.

    Parameters
    ----------
    curves : mapping of str to (y, p)
        Model name to labels and predicted probabilities (e.g. the model and its
        baselines on the same out-of-fold predictions). Drawn in the mapping's order.
    title : str, default "ROC curve"

    Returns
    -------
    matplotlib.figure.Figure
        One line per model plus the chance diagonal.

    Examples
    --------
    >>> fig = plot_roc({"model": ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])})
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['model (AUC 0.750)', 'chance']
    """
    if not curves:
        raise UsageError("plot_roc needs at least one (y, p) pair")
    fig = Figure(figsize=(5.5, 5.0), layout="constrained")
    ax = fig.subplots()
    for name, (y, p) in curves.items():
        yy = _as_labels(y)
        pp = _as_probs(p, yy.size, f"p of {name!r}")
        if yy.min() == yy.max():
            raise UsageError(f"ROC curve of {name!r} needs both responders and non-responders")
        fpr, tpr, _ = roc_curve(yy, pp)
        ax.plot(fpr, tpr, lw=1.8, label=f"{name} (AUC {roc_auc(yy, pp):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", lw=1, color="0.6", label="chance")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        xlabel="1 - specificity (false positive rate)",
        ylabel="sensitivity (true positive rate)",
        title=title,
        aspect="equal",
    )
    ax.legend(loc="lower right", fontsize="small")
    return fig


def _quantile_bins(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index of each p: bins of about equal size by rank, tied p never split."""
    order = np.argsort(p, kind="stable")
    ps = p[order]
    # rank of the first of each run of ties, given to the whole run
    first = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
    run_rank = np.repeat(first, np.diff(np.r_[first, p.size]))
    bins = np.empty(p.size, dtype=int)
    bins[order] = run_rank * n_bins // p.size
    return bins


def plot_reliability(
    y: ArrayLike,
    p: ArrayLike,
    n_bins: int = 10,
    title: str = "Reliability",
) -> Figure:
    """Reliability (calibration) diagram with a histogram of the predictions.

    Predictions are grouped into ``n_bins`` bins of about equal size (quantiles of
    ``p``); tied predictions are never split between bins, so heavily tied ``p`` gives
    fewer bins. For each bin the mean predicted probability is
    plotted against the observed share of responders, with a 95% Wilson interval. A
    calibrated model lies on the diagonal. The legend gives the calibration intercept
    and slope and the Brier score.

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels.
    p : array-like of shape (n,)
        Predicted probabilities.
    n_bins : int, default 10
        Number of quantile bins (at least 2).
    title : str, default "Reliability"

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: the reliability curve and diagonal on top, the histogram of ``p``
        below.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.05, 0.95, 500)
    >>> fig = plot_reliability(rng.random(500) < p, p, n_bins=5)
    >>> len(fig.axes)
    2
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 2:
        raise UsageError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    yy = _as_labels(y)
    pp = _as_probs(p, yy.size)
    bins = _quantile_bins(pp, int(n_bins))
    count = np.bincount(bins)
    keep = count > 0
    count = count[keep]
    mean_p = np.bincount(bins, weights=pp)[keep] / count
    k = np.bincount(bins, weights=yy)[keep]
    observed = k / count
    centre = (k + _Z**2 / 2) / (count + _Z**2)
    half = _Z * np.sqrt(k * (count - k) / count + _Z**2 / 4) / (count + _Z**2)

    intercept, slope = calibration_intercept_slope(yy, pp)
    label = (
        f"binned (n={yy.size}, {count.size} bins)\n"
        f"intercept {intercept:.2f}, slope {slope:.2f}, Brier {brier(yy, pp):.3f}"
    )

    fig = Figure(figsize=(5.5, 6.5), layout="constrained")
    ax, hist = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    ax.plot([0, 1], [0, 1], ls="--", lw=1, color="0.6", label="perfect calibration")
    ax.errorbar(
        mean_p,
        observed,
        yerr=np.vstack([observed - (centre - half), centre + half - observed]).clip(min=0),
        marker="o",
        ms=4,
        lw=1.5,
        capsize=2,
        label=label,
    )
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        ylabel="observed share of responders",
        title=title,
    )
    ax.legend(loc="upper left", fontsize="small")
    hist.hist(pp, bins=np.linspace(0, 1, 41), color="0.45")
    hist.set(xlabel="predicted probability of response", ylabel="predictions")
    return fig
