"""Pass feature-level SHAP values down to the cytokines each engineered feature is built from.

Every engineered feature ``f`` (a log cytokine, a log-ratio, an axis score, a covariate) is
an affine function of the explanation inputs ``z`` (log2 cytokines after censoring, and the
clinical covariates): ``f = sum_j w_fj z_j + c_f``. Its SHAP value ``phi_f`` is shared among
its constituents by the *rescale rule* through that linear map: constituent ``j`` receives

    phi_f * d_j / sum_k d_k,     d_j = w_fj (z_j - mean_j)

where ``mean_j`` is the constituent's mean on the training data (the background). The shares
of one feature add up to one, so the cytokine-level values add up exactly to the same total
as the feature-level values: base + sum of contributions = the model's log-odds.

Edge cases, each still summing exactly:

- constituents that move in opposite directions and nearly cancel (``|sum d| < 10 % of
  sum |d|``) would get huge opposite shares under the rescale rule; there the shares are
  ``|d_j| / sum |d|`` instead;
- when every constituent sits at its mean, the shares are ``|w_fj| / sum |w|``;
- a feature that is missing because some constituents are missing gives its value, which
  is then the effect of missingness, to the missing constituents in equal parts;
- a non-affine feature (a below-LLOQ indicator) gives its whole value to its analyte.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: Below this ratio of |sum d| to sum |d| the signed rescale rule is replaced by |d| shares.
CANCELLATION_RATIO = 0.1


def distribute_to_inputs(
    phi: np.ndarray,
    features: np.ndarray,
    Z: np.ndarray,
    background: np.ndarray,
    weights: np.ndarray,
    sources: Sequence[Sequence[int]],
    nonlinear: Mapping[int, int] | None = None,
) -> np.ndarray:
    """Share each feature's SHAP value among its inputs (rescale rule, exact in total).

    Parameters
    ----------
    phi : ndarray of shape (n, p)
        Feature-level contributions (log-odds).
    features : ndarray of shape (n, p)
        The engineered feature values (NaN = missing), used to tell which features are
        missing on which rows.
    Z : ndarray of shape (n, m)
        The explanation inputs (log2 cytokines, covariates); NaN = missing.
    background : ndarray of shape (m,)
        Mean of each input on the training data.
    weights : ndarray of shape (p, m)
        Coefficients of the affine map from inputs to features (complete rows).
    sources : sequence of p sequences of int
        For each feature, the indices of the inputs it is built from.
    nonlinear : mapping feature index -> input index, optional
        Features that are not affine in the inputs; their whole value goes to one input.

    Returns
    -------
    ndarray of shape (n, m)
        Input-level contributions; row sums equal ``phi.sum(axis=1)``.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.array([[3.0, 1.0]]); bg = np.array([1.0, 1.0])
    >>> W = np.array([[1.0, -1.0]])          # one feature: log2(A/B)
    >>> distribute_to_inputs(np.array([[0.5]]), Z @ W.T, Z, bg, W, [[0, 1]])
    array([[0.5, 0. ]])
    """
    n, p = phi.shape
    m = Z.shape[1]
    nonlinear = dict(nonlinear or {})
    out = np.zeros((n, m), dtype=np.float64)
    for f in range(p):
        col = phi[:, f]
        if f in nonlinear:
            out[:, nonlinear[f]] += col
            continue
        js = np.asarray(sources[f], dtype=np.intp)
        if js.size == 0:
            continue
        if js.size == 1:
            out[:, js[0]] += col
            continue
        out[:, js] += col[:, None] * _shares(
            features[:, f], Z[:, js], background[js], weights[f, js]
        )
    return out


def _shares(f: np.ndarray, z: np.ndarray, zbar: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Row-wise shares (n, k) that sum to one over the k constituents of one feature."""
    present = ~np.isnan(z)
    d = np.where(present, w * (z - zbar), 0.0)
    total = d.sum(axis=1, keepdims=True)
    abs_d = np.abs(d)
    abs_total = abs_d.sum(axis=1, keepdims=True)

    by_weight = np.where(present, np.abs(w), 0.0)
    by_weight_total = by_weight.sum(axis=1, keepdims=True)
    n_present = present.sum(axis=1, keepdims=True)
    by_weight = np.divide(
        by_weight, by_weight_total, out=np.full_like(d, 0.0), where=by_weight_total > 0
    )

    with np.errstate(divide="ignore", invalid="ignore"):
        signed = d / total
        unsigned = abs_d / abs_total
    cancelling = np.abs(total) < CANCELLATION_RATIO * abs_total
    at_mean = abs_total <= 1e-12
    shares = np.where(cancelling, unsigned, signed)
    shares = np.where(at_mean, by_weight, shares)

    # A missing feature: its value is the effect of missingness, owned by what is missing.
    missing_feature = np.isnan(f)[:, None] | (n_present == 0)
    missing = ~present
    n_missing = missing.sum(axis=1, keepdims=True)
    to_missing = np.where(missing, 1.0, 0.0) / np.maximum(n_missing, 1)
    all_equal = np.full_like(d, 1.0 / d.shape[1])
    to_missing = np.where(n_missing > 0, to_missing, all_equal)
    return np.where(missing_feature, to_missing, shares)
