"""Pass feature-level SHAP values down to the cytokines each engineered feature is built from.

Every engineered feature ``f`` (a log cytokine, a log-ratio, an axis score, a covariate) is
an affine function of the explanation inputs ``z`` (log2 cytokines after censoring, and the
clinical covariates): ``f = sum_j w_fj z_j + c_f``. The model's log-odds are a linear part
plus boosted trees, and so is each feature's exact SHAP value: ``phi_f = lin_f + tree_f``
(linear SHAP + TreeSHAP). With ``d_j = w_fj (z_j - mean_j)`` the deviation that constituent
``j`` puts into ``f`` (``mean_j``: the input's mean on the training rows, the background):

- **the linear part goes exactly**: ``lin_f = s_f (f - mean_f)`` for the feature's slope
  ``s_f``, and constituent ``j`` receives ``s_f d_j``, the exact Shapley value of the linear
  part as a function of the inputs. What is left over, ``lin_f - s_f sum_j d_j`` (zero on
  complete rows up to the difference between the feature's training mean and its value at
  the input means; otherwise the effect of a missing axis member), goes to the feature's
  missing constituents, or by ``|w|`` when none is missing;
- **the tree part goes by displacement**: constituent ``j`` receives
  ``tree_f |d_j| / sum_k |d_k|``. Where every constituent moves ``f`` the same way this is
  the rescale rule (``tree_f d_j / sum_k d_k``); where they pull in opposite directions the
  signed rescale shares grow without bound as the pulls cancel (a tree's value is a step
  function of ``f``, not proportional to ``f - mean_f``), and against exact Shapley values
  of the whole pipeline the unsigned shares agree far better (``docs/explanations.md``).

The shares of one feature add up to one, so the cytokine-level values add up exactly to the
same total as the feature-level values: base + sum of contributions = the model's log-odds.

Edge cases, each still summing exactly:

- when every constituent sits at its mean, the tree part is shared by ``|w_fj| / sum |w|``;
- a feature that is missing because some constituents are missing gives its (tree) value,
  which is then the effect of missingness, to the missing constituents in equal parts;
- a non-affine feature (a below-LLOQ indicator) gives its whole value to its analyte.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

#: Below this total |deviation| (log2 units) a feature's constituents count as at their means.
AT_MEAN_TOL = 1e-12


def distribute_to_inputs(
    phi: np.ndarray,
    features: np.ndarray,
    Z: np.ndarray,
    background: np.ndarray,
    weights: np.ndarray,
    sources: Sequence[Sequence[int]],
    nonlinear: Mapping[int, int] | None = None,
    *,
    linear_phi: np.ndarray | None = None,
    linear_slope: np.ndarray | None = None,
    row_weights: Mapping[int, np.ndarray] | None = None,
) -> np.ndarray:
    """Share each feature's SHAP value among its inputs (exact in total).

    Parameters
    ----------
    phi : ndarray of shape (n, p)
        Feature-level contributions (log-odds), linear part included.
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
    linear_phi : ndarray of shape (n, p), optional
        The part of ``phi`` that is linear in each feature, ``linear_slope * (f - mean_f)``
        (0 where the feature is missing). It is passed on exactly (``slope * d_j``); the
        rest of ``phi`` (the trees) by displacement shares ``|d_j| / sum |d|``. Without it
        the whole of ``phi`` goes by displacement shares.
    linear_slope : ndarray of shape (p,), optional
        Slope of the linear part in each feature (required with ``linear_phi``).
    row_weights : mapping feature index -> ndarray of shape (n, len(sources[f])), optional
        Row-specific weights of features whose affine map depends on the row (axis scores
        average the members present); they replace ``weights[f, sources[f]]``.

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
    if linear_phi is not None and linear_slope is None:
        raise ValueError("linear_phi needs linear_slope")
    nonlinear = dict(nonlinear or {})
    row_weights = dict(row_weights or {})
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
        w = row_weights.get(f)
        w = np.broadcast_to(weights[f, js], (n, js.size)) if w is None else np.asarray(w)
        z = Z[:, js]
        present = ~np.isnan(z)
        d = np.where(present, w * (z - background[js]), 0.0)
        missing_feature = np.isnan(features[:, f])
        if linear_phi is None:
            rest = col
        else:
            lin = linear_phi[:, f]
            rest = col - lin
            exact = linear_slope[f] * d
            exact = np.where(missing_feature[:, None], 0.0, exact)
            residual = lin - exact.sum(axis=1)
            out[:, js] += exact + residual[:, None] * _residual_shares(present, w)
        out[:, js] += rest[:, None] * _shares(d, present, w, missing_feature)
    return out


def _residual_shares(present: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Shares of what the exact linear terms leave: the missing constituents, else by |w|."""
    missing = ~present
    n_missing = missing.sum(axis=1, keepdims=True)
    to_missing = missing / np.maximum(n_missing, 1)
    by_weight = _by_weight(present, w)
    return np.where(n_missing > 0, to_missing, by_weight)


def _by_weight(present: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``|w_j| / sum |w|`` over the present constituents (equal parts if all weights are 0)."""
    a = np.where(present, np.abs(w), 0.0)
    total = a.sum(axis=1, keepdims=True)
    equal = np.full_like(a, 1.0 / a.shape[1])
    return np.divide(a, total, out=equal, where=total > 0)


def _shares(
    d: np.ndarray, present: np.ndarray, w: np.ndarray, missing_feature: np.ndarray
) -> np.ndarray:
    """Row-wise shares (n, k) of the tree part: ``|d_j| / sum |d|``, summing to one."""
    abs_d = np.abs(d)
    abs_total = abs_d.sum(axis=1, keepdims=True)
    at_mean = abs_total <= AT_MEAN_TOL
    shares = abs_d / np.where(at_mean, 1.0, abs_total)
    shares = np.where(at_mean, _by_weight(present, w), shares)

    # A missing feature: its value is the effect of missingness, owned by what is missing.
    missing = ~present
    n_missing = missing.sum(axis=1, keepdims=True)
    to_missing = missing / np.maximum(n_missing, 1)
    to_missing = np.where(n_missing > 0, to_missing, 1.0 / d.shape[1])
    missing_feature = missing_feature[:, None] | (present.sum(axis=1, keepdims=True) == 0)
    return np.where(missing_feature, to_missing, shares)


def cytokine_contributions(head: Any, frame: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Base value and input-level contributions of one therapy head, in calibrated log-odds.

    Feature-level values are exact (linear SHAP of the linear part, TreeSHAP of the trees,
    :meth:`LinearBoostedClassifier.contributions`); they are passed to the inputs by
    :func:`distribute_to_inputs`, the linear part exactly. The float32 rounding of
    XGBoost's contributions (about 1e-6) is then spread over the inputs in proportion to
    their size, so that ``base + contributions.sum(axis=1)`` equals
    :meth:`TherapyHead.calibrated_margin` to float64 precision and orders patients
    exactly as the predicted probabilities do.

    Parameters
    ----------
    head : TherapyHead
        A fitted head (``pipeline`` = features -> LinearBoostedClassifier, ``background``,
        ``calibrator``, ``input_columns``).
    frame : DataFrame
        Rows of a model frame (at least the head's input columns).

    Returns
    -------
    base : ndarray of shape (n,)
        The base value (the same on every row).
    contributions : DataFrame of shape (n, n_inputs)
        Index of ``frame``, columns the head's explanation inputs (cytokine ids and
        clinical covariates; never an engineered feature).

    Examples
    --------
    >>> frame = model.model_frame(panel)
    >>> base, contrib = cytokine_contributions(model.heads["ifnb"], frame)
    >>> margin = model.heads["ifnb"].calibrated_margin(frame)
    >>> bool(np.allclose(base + contrib.sum(axis=1), margin))
    True
    """
    base, contrib, _ = contributions_and_inputs(head, frame)
    return base, contrib


def contributions_and_inputs(
    head: Any, frame: pd.DataFrame
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """:func:`cytokine_contributions` and the explanation inputs it was computed from.

    The inputs (``PanelFeatures.transform_inputs``: log2 cytokines, covariates) come
    third, so that callers which also need them (driver texts) do not build them again.
    """
    feats_step = head.pipeline.named_steps["features"]
    clf = head.pipeline.named_steps["model"]
    X = frame[head.input_columns]
    feat_arr = np.asarray(feats_step.transform(X), dtype=np.float64)
    base, phi = clf.contributions(feat_arr)
    linear_phi = clf._linear_terms(feat_arr)  # the linear part of ``phi``, per feature
    slope = clf.linear_coef_ / clf.linear_scale_
    # calibrated log-odds: the base through the calibrator, each additive part (and the
    # linear part's per-unit slope, whose products are such parts) scaled by it
    cal = head.calibrator
    base = cal.transform_margin(base)
    phi, linear_phi, slope = (cal.transform_contributions(v) for v in (phi, linear_phi, slope))

    Z = feats_step.transform_inputs(X)
    inputs = list(feats_step.input_names_)
    z_arr = np.asarray(Z, dtype=np.float64)
    W = feats_step.input_weights_.reindex(columns=inputs).to_numpy(dtype=np.float64)
    names = list(feats_step.get_feature_names_out())
    index_of = {name: i for i, name in enumerate(inputs)}
    srcs = feats_step.feature_sources_
    sources = [[index_of[s] for s in srcs[name]] for name in names]
    nonlinear = {
        names.index(f): index_of[srcs[f][0]] for f in getattr(feats_step, "nonlinear_features_", [])
    }
    row_weights = _axis_row_weights(feats_step, z_arr, sources)
    contrib = distribute_to_inputs(
        phi,
        feat_arr,
        z_arr,
        np.asarray(head.background, dtype=np.float64),
        W,
        sources,
        nonlinear,
        linear_phi=linear_phi,
        linear_slope=slope,
        row_weights=row_weights,
    )
    margin = head.calibrated_margin_of(feat_arr)
    contrib = snap_to_total(contrib, margin - base)
    return base, pd.DataFrame(contrib, index=frame.index, columns=inputs), Z


def _axis_row_weights(
    feats_step: Any, z: np.ndarray, sources: Sequence[Sequence[int]]
) -> dict[int, np.ndarray]:
    """Row-wise weights of the axis scores, aligned with ``sources`` of each axis."""
    if not hasattr(feats_step, "rowwise_weights"):
        return {}
    rw = feats_step.rowwise_weights(z)
    out = {}
    for a, f in enumerate(rw.feature_index):
        slots = np.flatnonzero(rw.slot_feature == a)
        column_of = {int(rw.slot_input[s]): s for s in slots}
        order = [column_of[j] for j in sources[int(f)]]
        out[int(f)] = rw.weights[:, order]
    return out


def snap_to_total(contrib: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Spread ``total - contrib.sum(axis=1)`` over each row in proportion to ``|contrib|``.

    Used to absorb float32 rounding (about 1e-6) so that contributions add up to the
    float64 total exactly; a row of zeros takes the difference in equal parts.

    Examples
    --------
    >>> snap_to_total(np.array([[1.0, -3.0]]), np.array([-2.004]))
    array([[ 0.999, -3.003]])
    """
    gap = total - contrib.sum(axis=1)
    size = np.abs(contrib)
    norm = size.sum(axis=1, keepdims=True)
    equal = np.full_like(size, 1.0 / max(size.shape[1], 1))
    share = np.divide(size, norm, out=equal, where=norm > 0)
    return contrib + gap[:, None] * share
