"""Evaluation metrics with patient-level bootstrap intervals.

Every metric is computed by a *weighted kernel* that scores many bootstrap resamples at
once: a resample is a matrix row of non-negative counts (how many times each prediction
row was drawn), so the point estimate is simply the kernel applied to a row of ones and
the bootstrap is the same kernel applied to a ``(n_boot, n)`` count matrix. This keeps
point estimates and intervals computed by one code path, and makes 1,000 resamples of a
few hundred patients take a fraction of a second.

Conventions
-----------
* ``y`` holds 0/1 labels (1 = responder), ``p`` the predicted probability of response.
* A prediction is *positive* when ``p >= threshold``.
* Intervals are 95% percentile bootstrap intervals over patients. Metrics defined within
  each class (ROC AUC, sensitivity, specificity, balanced accuracy) resample within each
  class, so every resample has both classes and those metrics stay defined. Metrics that
  depend on the prevalence (Brier score, calibration intercept and slope, PR AUC) use a
  plain bootstrap of patients: holding the prevalence fixed would leave out the sampling
  variability of the event rate and make their intervals too narrow (the calibration
  intercept's interval covered 0 for only 62% of perfectly calibrated samples of 150
  patients when resampled within class). With ``groups`` (patient ids), whole patients
  are resampled, which is what makes intervals honest when the rows are repeated
  cross-validation predictions of the same patients.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit, logit

from cytoresp.errors import UsageError
from cytoresp.models.classifier import as_binary_labels

__all__ = [
    "Estimate",
    "roc_auc",
    "pr_auc",
    "brier",
    "calibration_intercept_slope",
    "threshold_metrics",
    "evaluate",
    "paired_difference",
    "paired_difference_pvalue",
    "summarise_repeats",
    "PAIRED_METRICS",
    "CLASS_STRATIFIED_METRICS",
]

_CLIP = 1e-6
_ALPHA = 0.05
_Z = 1.959963984540054  # standard normal 97.5% quantile
# Largest number of matrix cells (resamples x rows) scored at once: bounds memory for
# large pooled OOF tables (a 5,000-row table is scored in chunks of 400 resamples).
_CHUNK_CELLS = 2_000_000


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% confidence interval.

    Parameters
    ----------
    value : float
        The estimate on the full data.
    lower, upper : float
        Bounds of the 95% interval (NaN when no interval was computed).

    Examples
    --------
    >>> print(Estimate(0.8123, 0.7712, 0.8501))
    0.812 (95% CI 0.771-0.850)
    >>> print(Estimate(-0.031, -0.072, 0.012))
    -0.031 (95% CI -0.072 to 0.012)
    """

    value: float
    lower: float
    upper: float

    def __str__(self) -> str:
        if math.isnan(self.lower) and math.isnan(self.upper):
            return f"{self.value:.3f}"
        # A hyphen between negative numbers reads as a minus sign: spell it out then.
        sep = " to " if min(self.lower, self.upper) < 0 else "-"
        return f"{self.value:.3f} (95% CI {self.lower:.3f}{sep}{self.upper:.3f})"


# --------------------------------------------------------------------------- validation


def _as_labels(y: ArrayLike) -> np.ndarray:
    out = as_binary_labels(y)
    if out.size == 0:
        raise UsageError("y is empty: need at least one labelled prediction")
    return out


def _as_probs(p: ArrayLike, n: int, name: str = "p") -> np.ndarray:
    arr = np.asarray(p)
    if arr.ndim != 1:
        raise UsageError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise UsageError(f"{name} has {arr.shape[0]} values but y has {n}")
    try:
        out = arr.astype(float)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must hold probabilities (numbers in [0, 1])") from None
    if not np.isfinite(out).all():
        raise UsageError(f"{name} contains {int((~np.isfinite(out)).sum())} NaN or infinite values")
    if out.min() < 0 or out.max() > 1:
        raise UsageError(
            f"{name} must hold probabilities in [0, 1]; found values in "
            f"[{out.min():.4g}, {out.max():.4g}]"
        )
    return out


def _check_threshold(threshold: float) -> float:
    t = float(threshold)
    if not (0.0 <= t <= 1.0):
        raise UsageError(f"threshold must be a probability in [0, 1], got {threshold!r}")
    return t


def _check_n_boot(n_boot: int) -> int:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 0:
        raise UsageError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    return int(n_boot)


def _clusters(y: np.ndarray, groups: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
    """Return (cluster index of each row, label of each cluster)."""
    if groups is None:
        return np.arange(y.size), y
    g = np.asarray(groups)
    if g.ndim != 1 or g.shape[0] != y.size:
        raise UsageError(f"groups must be one-dimensional with one id per row of y ({y.size})")
    if g.dtype.kind == "f" and np.isnan(g).any():
        raise UsageError("groups contains missing patient ids")
    if g.dtype == object and any(v is None for v in g):
        raise UsageError("groups contains missing patient ids")
    try:
        _, inverse = np.unique(g, return_inverse=True)
    except TypeError:
        raise UsageError("groups mixes patient ids of different types") from None
    m = int(inverse.max()) + 1
    pos = np.bincount(inverse, weights=y, minlength=m)
    size = np.bincount(inverse, minlength=m)
    mixed = (pos > 0) & (pos < size)
    if mixed.any():
        raise UsageError(
            f"{int(mixed.sum())} patient id(s) in groups have both labels 0 and 1; groups must "
            "identify patients, whose label is the same in every row"
        )
    return inverse, (pos > 0).astype(float)


# --------------------------------------------------------------------------- kernels
#
# Each kernel takes W, a (B, n) matrix of non-negative row weights (bootstrap counts),
# and returns one value per row of W.


@dataclass(frozen=True)
class _Scores:
    """Labels, probabilities and what every resample shares (sort order, logits)."""

    y: np.ndarray
    p: np.ndarray
    x: np.ndarray  # logit of clipped p
    order: np.ndarray  # argsort of p
    starts: np.ndarray  # first position of each run of tied p in sorted order

    @classmethod
    def of(cls, y: np.ndarray, p: np.ndarray) -> _Scores:
        order = np.argsort(p, kind="stable")
        ps = p[order]
        starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
        x = logit(np.clip(p, _CLIP, 1 - _CLIP))
        return cls(y, p, x, order, starts)

    @cached_property
    def full_fit(self) -> tuple[float, float, float]:
        """Starting values for bootstrap fits, from all rows with unit weight.

        ``(a_offset, a, b)``: the intercept of the offset model, then intercept and
        slope of the slope model; ``(0, 0, 1)`` where a fit has no finite estimate.
        """
        pos, neg = self.x[self.y == 1], self.x[self.y == 0]
        if pos.size == 0 or neg.size == 0:
            return 0.0, 0.0, 1.0
        ones = np.ones((1, self.y.size))
        a_offset, _ = _newton_logistic(self.x, self.y, ones, fit_slope=False)
        if pos.min() >= neg.max() or neg.min() >= pos.max():  # separated, or constant
            return float(a_offset[0]), 0.0, 1.0
        a, b = _newton_logistic(self.x, self.y, ones, fit_slope=True)
        return float(a_offset[0]), float(a[0]), float(b[0])

    def level_weights(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positive and negative weight at each distinct p, in increasing p order."""
        Ws = W[:, self.order]
        ys = self.y[self.order]
        pos = np.add.reduceat(Ws * ys, self.starts, axis=1)
        neg = np.add.reduceat(Ws * (1 - ys), self.starts, axis=1)
        return pos, neg


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0."""
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _k_roc_auc(W: np.ndarray, s: _Scores) -> np.ndarray:
    # Mann-Whitney: P(score of a positive > score of a negative), ties count one half.
    pos, neg = s.level_weights(W)
    neg_below = np.cumsum(neg, axis=1) - neg
    num = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
    return _div(num, pos.sum(axis=1) * neg.sum(axis=1))


def _k_pr_auc(W: np.ndarray, s: _Scores) -> np.ndarray:
    # Average precision: sum over distinct thresholds (high to low) of the recall gained
    # times the precision there; no interpolation (as scikit-learn).
    pos, neg = s.level_weights(W)
    pos, neg = pos[:, ::-1], neg[:, ::-1]
    tp = np.cumsum(pos, axis=1)
    called = tp + np.cumsum(neg, axis=1)
    precision = np.zeros_like(tp)
    np.divide(tp, called, out=precision, where=called > 0)
    return _div((pos * precision).sum(axis=1), pos.sum(axis=1))


def _k_brier(W: np.ndarray, s: _Scores) -> np.ndarray:
    return _div(W @ (s.p - s.y) ** 2, W.sum(axis=1))


def _k_threshold(W: np.ndarray, s: _Scores, threshold: float) -> dict[str, np.ndarray]:
    called = (s.p >= threshold).astype(float)
    tp = W @ (s.y * called)
    fp = W @ ((1 - s.y) * called)
    fn = W @ (s.y * (1 - called))
    tn = W @ ((1 - s.y) * (1 - called))
    sens = _div(tp, tp + fn)
    spec = _div(tn, tn + fp)
    return {
        "balanced_accuracy": (sens + spec) / 2,
        "sensitivity": sens,
        "specificity": spec,
        "ppv": _div(tp, tp + fp),
        "npv": _div(tn, tn + fn),
    }


def _newton_logistic(
    x: np.ndarray,
    y: np.ndarray,
    W: np.ndarray,
    *,
    fit_slope: bool,
    ridge: float = 0.0,
    start: tuple[float, float] = (0.0, 1.0),
    max_iter: int = 100,
    tol: float = 1e-9,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted logistic regression of y on ``a + b * x``, one fit per row of W.

    With ``fit_slope=False`` the slope is fixed at 1 (x is an offset) and only ``a`` is
    fitted. ``ridge`` adds ``ridge / 2 * b**2`` to the negative log-likelihood (the
    intercept is never penalised). Newton-Raphson vectorised across the rows of W,
    starting from ``start`` (bootstrap fits start from the full-data fit, a few steps
    away). Rows whose likelihood has no finite maximum must be handled by the caller.
    """
    B = W.shape[0]
    a = np.full(B, float(start[0]))
    b = np.full(B, float(start[1]) if fit_slope else 1.0)
    x_max = float(np.abs(x).max(initial=0.0))

    def objective(rows: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        eta = a[:, None] + b[:, None] * x
        ll = (W[rows] * (y * eta - np.logaddexp(0.0, eta))).sum(axis=1)
        return ll - 0.5 * ridge * b**2

    for _ in range(max_iter):
        mu = expit(a[:, None] + b[:, None] * x)
        r = W * (y - mu)
        v = W * (mu * (1 - mu))
        g0 = r.sum(axis=1)
        h00 = v.sum(axis=1)
        if fit_slope:
            g1 = r @ x - ridge * b
            h01 = v @ x
            h11 = v @ (x * x) + ridge
            det = h00 * h11 - h01**2
            da = np.nan_to_num(_div(h11 * g0 - h01 * g1, det))
            db = np.nan_to_num(_div(h00 * g1 - h01 * g0, det))
        else:
            da = np.nan_to_num(_div(g0, h00))
            db = np.zeros(B)
        # The log-likelihood is concave and a Newton step that moves no linear predictor
        # by more than 1 stays where its quadratic model holds: take it. Larger steps
        # (far from the optimum, or near separation) are halved until they improve it.
        step = np.ones(B)
        far = np.flatnonzero(np.abs(da) + np.abs(db) * x_max > 1.0)
        if far.size:
            af, bf, daf, dbf = a[far], b[far], da[far], db[far]
            current = objective(far, af, bf)
            s = np.ones(far.size)
            for _ in range(40):
                trial = objective(far, af + s * daf, bf + s * dbf)
                worse = trial < current - 1e-12 * np.abs(current)
                if not worse.any():
                    break
                s = np.where(worse, s / 2, s)
            step[far] = s
        a = a + step * da
        b = b + step * db
        change = np.maximum(
            np.abs(step * da) / (1 + np.abs(a)), np.abs(step * db) / (1 + np.abs(b))
        )
        if change.max(initial=0) < tol:
            break
    return a, b


def _k_calibration(W: np.ndarray, s: _Scores) -> tuple[np.ndarray, np.ndarray]:
    """Calibration-in-the-large intercept and calibration slope for each row of W."""
    B = W.shape[0]
    present = W > 0
    has_pos = (W @ s.y) > 0
    has_neg = (W @ (1 - s.y)) > 0
    both = has_pos & has_neg

    intercept = np.full(B, np.nan)
    if both.any():
        intercept[both], _ = _newton_logistic(
            s.x, s.y, W[both], fit_slope=False, start=(s.full_fit[0], 1.0)
        )

    # The slope's maximum-likelihood estimate is infinite when logit(p) separates the
    # classes (+inf: every responder scored at least as high as every non-responder) and
    # undefined when logit(p) is constant.
    is_pos = present & (s.y == 1)
    is_neg = present & (s.y == 0)
    max_neg = np.where(is_neg, s.x, -np.inf).max(axis=1)
    min_neg = np.where(is_neg, s.x, np.inf).min(axis=1)
    max_pos = np.where(is_pos, s.x, -np.inf).max(axis=1)
    min_pos = np.where(is_pos, s.x, np.inf).min(axis=1)
    lo = np.minimum(min_neg, min_pos)
    hi = np.maximum(max_neg, max_pos)
    constant = lo == hi
    up = both & ~constant & (max_neg <= min_pos)
    down = both & ~constant & (max_pos <= min_neg)
    regular = both & ~constant & ~up & ~down

    slope = np.full(B, np.nan)
    slope[up] = np.inf
    slope[down] = -np.inf
    if regular.any():
        _, slope[regular] = _newton_logistic(
            s.x, s.y, W[regular], fit_slope=True, start=s.full_fit[1:]
        )
    return intercept, slope


def _k_all(
    W: np.ndarray, s: _Scores, threshold: float, stratified: bool | None = None
) -> dict[str, np.ndarray]:
    """Every metric for each row of W; with ``stratified``, only the metrics whose
    bootstrap is (True) or is not (False) stratified by class."""
    out: dict[str, np.ndarray] = {}
    if stratified is not True:
        intercept, slope = _k_calibration(W, s)
        out |= {
            "pr_auc": _k_pr_auc(W, s),
            "brier": _k_brier(W, s),
            "calibration_intercept": intercept,
            "calibration_slope": slope,
        }
    if stratified is not False:
        out["roc_auc"] = _k_roc_auc(W, s)
        th = _k_threshold(W, s, threshold)
        for key in ("balanced_accuracy", "sensitivity", "specificity"):
            out[key] = th[key]
    return {k: out[k] for k in _METRIC_ORDER if k in out}


_METRIC_ORDER = (
    "roc_auc", "pr_auc", "brier", "calibration_intercept", "calibration_slope",
    "balanced_accuracy", "sensitivity", "specificity",
)  # fmt: skip


_Kernel = Callable[[np.ndarray, _Scores], np.ndarray]

#: Metrics whose bootstrap keeps the number of responders and non-responders fixed (they
#: are defined within each class); every other metric uses a plain patient bootstrap.
CLASS_STRATIFIED_METRICS = frozenset(
    {"roc_auc", "balanced_accuracy", "sensitivity", "specificity"}
)

#: Metrics accepted by :func:`paired_difference` (all free of a decision threshold).
PAIRED_METRICS: dict[str, _Kernel] = {
    "roc_auc": _k_roc_auc,
    "pr_auc": _k_pr_auc,
    "brier": _k_brier,
    "calibration_intercept": lambda W, s: _k_calibration(W, s)[0],
    "calibration_slope": lambda W, s: _k_calibration(W, s)[1],
}


def _one(y: ArrayLike, p: ArrayLike) -> tuple[np.ndarray, _Scores]:
    yy = _as_labels(y)
    pp = _as_probs(p, yy.size)
    return np.ones((1, yy.size)), _Scores.of(yy, pp)


# --------------------------------------------------------------------------- bootstrap


def _resample_weights(
    cluster: np.ndarray,
    cluster_label: np.ndarray,
    n_boot: int,
    seed: int,
    *,
    stratified: bool,
) -> Iterator[np.ndarray]:
    """Yield (chunk, n_rows) count matrices of a cluster (patient) bootstrap.

    ``stratified=True`` draws the responding and the non-responding patients separately
    (each resample keeps their numbers); ``False`` draws from all patients at once.
    """
    rng = np.random.default_rng(seed)
    m = cluster_label.size
    counts = np.zeros((n_boot, m), dtype=np.int32)
    strata = [np.flatnonzero(cluster_label == v) for v in (0.0, 1.0)] if stratified else [
        np.arange(m)
    ]
    for members in strata:
        k = members.size
        if k == 0:
            continue
        draws = rng.integers(0, k, size=(n_boot, k))
        offsets = (np.arange(n_boot) * k)[:, None]
        per = np.bincount((draws + offsets).ravel(), minlength=n_boot * k).reshape(n_boot, k)
        counts[:, members] = per
    chunk = max(1, _CHUNK_CELLS // max(cluster.size, 1))
    for start in range(0, n_boot, chunk):
        yield counts[start : start + chunk][:, cluster].astype(float)


def _percentile_interval(stats: np.ndarray) -> tuple[float, float]:
    stats = stats[~np.isnan(stats)]
    if stats.size == 0:
        return math.nan, math.nan
    q = (_ALPHA / 2, 1 - _ALPHA / 2)
    with np.errstate(invalid="ignore"):
        lo, hi = np.quantile(stats, q)
    # Interpolating between two infinite values (a separated resample's slope) gives NaN:
    # take the conservative order statistic instead.
    if math.isnan(lo):
        lo = np.quantile(stats, q[0], method="lower")
    if math.isnan(hi):
        hi = np.quantile(stats, q[1], method="higher")
    return float(lo), float(hi)


def _wilson(k: float, m: int) -> tuple[float, float]:
    centre = (k + _Z**2 / 2) / (m + _Z**2)
    half = _Z * math.sqrt(k * (m - k) / m + _Z**2 / 4) / (m + _Z**2)
    return max(0.0, centre - half), min(1.0, centre + half)


# --------------------------------------------------------------------------- public API


def roc_auc(y: ArrayLike, p: ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count one half).

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels (1 = responder).
    p : array-like of shape (n,)
        Predicted probability of response (any monotone score gives the same value, but
        values must lie in [0, 1]).

    Returns
    -------
    float
        The AUC, or NaN when ``y`` has a single class.

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    W, s = _one(y, p)
    return float(_k_roc_auc(W, s)[0])


def pr_auc(y: ArrayLike, p: ArrayLike) -> float:
    """Area under the precision-recall curve, as average precision.

    Equals :func:`sklearn.metrics.average_precision_score` (no interpolation). Its
    baseline is the prevalence, not 0.5.

    Returns
    -------
    float
        Average precision, or NaN when ``y`` has no responder.

    Examples
    --------
    >>> round(pr_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)
    0.8333
    """
    W, s = _one(y, p)
    return float(_k_pr_auc(W, s)[0])


def brier(y: ArrayLike, p: ArrayLike) -> float:
    """Brier score: mean squared difference between ``p`` and the 0/1 outcome.

    Examples
    --------
    >>> round(brier([0, 1], [0.2, 0.6]), 6)
    0.1
    """
    W, s = _one(y, p)
    return float(_k_brier(W, s)[0])


def calibration_intercept_slope(y: ArrayLike, p: ArrayLike) -> tuple[float, float]:
    """Calibration-in-the-large intercept and calibration slope (logistic recalibration).

    ``p`` is clipped to ``[1e-6, 1 - 1e-6]`` and ``x = logit(p)``.

    * slope: the coefficient of ``x`` in an unpenalised logistic regression of ``y`` on
      ``a + b * x``. 1 is ideal; below 1 the predictions are too extreme (overfitting),
      above 1 too timid.
    * intercept: ``a`` in a logistic regression of ``y`` on ``a + x`` (``x`` an offset,
      slope fixed at 1). 0 is ideal; positive means risks are underestimated on average.

    Returns
    -------
    (intercept, slope) : tuple of float
        Both NaN when ``y`` has a single class. The slope is ``inf`` when ``logit(p)``
        perfectly separates the classes (no finite maximum-likelihood estimate), ``-inf``
        when it separates them the wrong way round, NaN when ``p`` is constant.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(0, 1.5, 20_000)
    >>> y = rng.random(x.size) < 1 / (1 + np.exp(-x))
    >>> a, b = calibration_intercept_slope(y, 1 / (1 + np.exp(-2 * x)))  # overconfident
    >>> round(b, 1)
    0.5
    """
    W, s = _one(y, p)
    intercept, slope = _k_calibration(W, s)
    return float(intercept[0]), float(slope[0])


def threshold_metrics(y: ArrayLike, p: ArrayLike, threshold: float) -> dict[str, float]:
    """Classification metrics when ``p >= threshold`` is called a responder.

    Returns
    -------
    dict
        ``balanced_accuracy``, ``sensitivity``, ``specificity``, ``ppv``, ``npv``; a value
        is NaN when its denominator is empty (e.g. sensitivity without responders).

    Examples
    --------
    >>> threshold_metrics([0, 0, 1, 1], [0.1, 0.6, 0.7, 0.2], 0.5)["sensitivity"]
    0.5
    """
    W, s = _one(y, p)
    t = _check_threshold(threshold)
    return {k: float(v[0]) for k, v in _k_threshold(W, s, t).items()}


def evaluate(
    y: ArrayLike,
    p: ArrayLike,
    threshold: float = 0.5,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    groups: ArrayLike | None = None,
) -> dict[str, Estimate]:
    """All evaluation metrics with 95% bootstrap intervals.

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels.
    p : array-like of shape (n,)
        Out-of-fold predicted probabilities.
    threshold : float, default 0.5
        Decision threshold for balanced accuracy, sensitivity and specificity
        (``p >= threshold`` is called a responder).
    n_boot : int, default 1000
        Bootstrap resamples. 0 gives point estimates with NaN bounds.
    seed : int, default 0
        Seed of the resampling; the same seed and data give the same intervals.
    groups : array-like of shape (n,), optional
        Patient id of each row. Pass it when a patient has several rows (one per
        cross-validation repeat): whole patients are then resampled, otherwise the
        interval is too narrow.

    Returns
    -------
    dict of str to Estimate
        Keys ``roc_auc``, ``pr_auc``, ``brier``, ``calibration_intercept``,
        ``calibration_slope``, ``balanced_accuracy``, ``sensitivity``, ``specificity``,
        ``prevalence``.

    Notes
    -----
    Percentile bootstrap over patients. ROC AUC, balanced accuracy, sensitivity and
    specificity resample within each class (each resample keeps the number of responding
    and non-responding patients, so they stay defined); the Brier score, PR AUC and the
    calibration intercept and slope use a plain patient bootstrap, because they depend
    on the prevalence, which varies from sample to sample (:data:`CLASS_STRATIFIED_METRICS`).
    Resamples in which a metric is undefined (one class only) are left out of its
    interval. Point estimates use every row with equal weight. ``prevalence`` is the
    share of responding patients (each patient counted once), with a Wilson score
    interval over patients.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> y = np.repeat([0, 1], 100)
    >>> p = 1 / (1 + np.exp(-(rng.normal(size=200) + 1.5 * y - 0.75)))
    >>> res = evaluate(y, p, n_boot=200)
    >>> 0.75 < res["roc_auc"].value < 0.95
    True
    >>> res["roc_auc"].lower < res["roc_auc"].value < res["roc_auc"].upper
    True
    """
    yy = _as_labels(y)
    s = _Scores.of(yy, _as_probs(p, yy.size))
    t = _check_threshold(threshold)
    n_boot = _check_n_boot(n_boot)
    cluster, cluster_label = _clusters(yy, groups)

    point = {k: float(v[0]) for k, v in _k_all(np.ones((1, yy.size)), s, t).items()}
    boots: dict[str, list[np.ndarray]] = {k: [] for k in point}
    if n_boot:
        for stratified in (True, False):
            for W in _resample_weights(
                cluster, cluster_label, n_boot, seed, stratified=stratified
            ):
                for k, v in _k_all(W, s, t, stratified).items():
                    boots[k].append(v)

    out: dict[str, Estimate] = {}
    for k, value in point.items():
        if n_boot:
            lo, hi = _percentile_interval(np.concatenate(boots[k]))
        else:
            lo = hi = math.nan
        out[k] = Estimate(value, lo, hi)
    m = cluster_label.size
    k_pos = float(cluster_label.sum())
    out["prevalence"] = Estimate(k_pos / m, *_wilson(k_pos, m))
    return out


def _paired(
    y: ArrayLike,
    p_a: ArrayLike,
    p_b: ArrayLike,
    metric: str,
    n_boot: int,
    seed: int,
    groups: ArrayLike | None,
) -> tuple[float, np.ndarray]:
    """Point difference and bootstrap differences of metric(p_a) - metric(p_b)."""
    if metric not in PAIRED_METRICS:
        raise UsageError(
            f"unknown metric {metric!r}; choose one of {', '.join(sorted(PAIRED_METRICS))}"
        )
    kernel = PAIRED_METRICS[metric]
    yy = _as_labels(y)
    sa = _Scores.of(yy, _as_probs(p_a, yy.size, "p_a"))
    sb = _Scores.of(yy, _as_probs(p_b, yy.size, "p_b"))
    n_boot = _check_n_boot(n_boot)
    cluster, cluster_label = _clusters(yy, groups)
    ones = np.ones((1, yy.size))
    with np.errstate(invalid="ignore"):  # inf - inf for two separated slopes
        point = float(kernel(ones, sa)[0] - kernel(ones, sb)[0])
        diffs = [
            kernel(W, sa) - kernel(W, sb)
            for W in (
                _resample_weights(
                    cluster, cluster_label, n_boot, seed,
                    stratified=metric in CLASS_STRATIFIED_METRICS,
                )
                if n_boot
                else ()
            )
        ]
    return point, np.concatenate(diffs) if diffs else np.empty(0)


def paired_difference(
    y: ArrayLike,
    p_a: ArrayLike,
    p_b: ArrayLike,
    metric: str = "roc_auc",
    *,
    n_boot: int = 1000,
    seed: int = 0,
    groups: ArrayLike | None = None,
) -> Estimate:
    """Difference ``metric(p_a) - metric(p_b)`` with a paired 95% bootstrap interval.

    Both models are scored on the *same* resampled patients in every resample, so the
    patient-to-patient variation they share cancels: the interval is much narrower than
    one built from two separate intervals, and it is the right one for comparing a model
    with a baseline evaluated on the same folds.

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels.
    p_a, p_b : array-like of shape (n,)
        Probabilities of the two models for the same rows.
    metric : {"roc_auc", "pr_auc", "brier", "calibration_intercept", "calibration_slope"}
        Metric compared (see :data:`PAIRED_METRICS`). For the Brier score a negative
        difference means ``p_a`` is better.
    n_boot, seed, groups
        As in :func:`evaluate`.

    Returns
    -------
    Estimate
        The difference on the full data and its 95% percentile interval. Use
        :func:`paired_difference_pvalue` with the same arguments for the p-value; it
        draws the same resamples.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 150)
    >>> z = rng.normal(size=300) + y
    >>> p_a = 1 / (1 + np.exp(-z))
    >>> p_b = 1 / (1 + np.exp(-(z + rng.normal(size=300))))  # a noisier model
    >>> d = paired_difference(y, p_a, p_b, n_boot=500)
    >>> d.lower > 0
    True
    """
    point, diffs = _paired(y, p_a, p_b, metric, n_boot, seed, groups)
    lo, hi = _percentile_interval(diffs) if diffs.size else (math.nan, math.nan)
    return Estimate(point, lo, hi)


def paired_difference_pvalue(
    y: ArrayLike,
    p_a: ArrayLike,
    p_b: ArrayLike,
    metric: str = "roc_auc",
    *,
    n_boot: int = 1000,
    seed: int = 0,
    groups: ArrayLike | None = None,
) -> float:
    """Two-sided bootstrap p-value for "no difference" in ``metric`` between two models.

    Found by inverting the percentile interval of :func:`paired_difference` (same
    arguments, same resamples): ``p = 2 * min(P*(d <= 0), P*(d >= 0))``, each share
    computed as ``(count + 1) / (n_boot + 1)`` and the result capped at 1. So
    ``p < 0.05`` exactly when the 95% interval excludes 0 (up to the resolution of
    ``n_boot``); the smallest value it can return is ``2 / (n_boot + 1)``.

    Returns
    -------
    float
        The p-value, or NaN when no resample gave a defined difference.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.repeat([0, 1], 50)
    >>> p = np.linspace(0.1, 0.9, 100)
    >>> paired_difference_pvalue(y, p, p, n_boot=200)
    1.0
    """
    if _check_n_boot(n_boot) == 0:
        raise UsageError("paired_difference_pvalue needs n_boot >= 1")
    _, diffs = _paired(y, p_a, p_b, metric, n_boot, seed, groups)
    diffs = diffs[~np.isnan(diffs)]
    if diffs.size == 0:
        return math.nan
    below = (np.count_nonzero(diffs <= 0) + 1) / (diffs.size + 1)
    above = (np.count_nonzero(diffs >= 0) + 1) / (diffs.size + 1)
    return float(min(1.0, 2 * min(below, above)))


def summarise_repeats(per_repeat: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean and standard deviation of each metric across cross-validation repeats.

    Parameters
    ----------
    per_repeat : sequence of dict
        One dict of metric values per repeat, all with the same keys.

    Returns
    -------
    dict
        ``<metric>_mean`` and ``<metric>_sd`` for every metric, in the order of the
        first dict. The sd uses ``ddof=1`` (NaN for a single repeat). A NaN in any
        repeat propagates: it is never silently skipped. The sd across repeats
        measures how much the estimate depends on the fold split; it is *not* a
        confidence interval (use :func:`evaluate` on the pooled predictions for that).

    Examples
    --------
    >>> out = summarise_repeats([{"roc_auc": 0.8}, {"roc_auc": 0.9}])
    >>> {k: round(v, 4) for k, v in out.items()}
    {'roc_auc_mean': 0.85, 'roc_auc_sd': 0.0707}
    """
    if len(per_repeat) == 0:
        raise UsageError("summarise_repeats needs at least one repeat")
    keys = list(per_repeat[0])
    for i, rep in enumerate(per_repeat):
        if set(rep) != set(keys):
            diff = sorted(set(rep).symmetric_difference(keys))
            raise UsageError(f"repeat {i} has different metrics from repeat 0: {', '.join(diff)}")
    out: dict[str, float] = {}
    for k in keys:
        values = np.array([float(rep[k]) for rep in per_repeat])
        out[f"{k}_mean"] = float(values.mean())
        out[f"{k}_sd"] = float(values.std(ddof=1)) if values.size > 1 else math.nan
    return out
