"""Cytokine-level contributions of a therapy head: Shapley values of the whole pipeline.

Every contribution cytoresp reports (``explain``, ``predict --explain``, the drivers, the
patient report, the training plots) comes from here. A head's contributions are the exact
**interventional Shapley values of its log-odds on its raw explanation inputs** (per
analyte its log2 value after censoring substitution together with its below-LLOQ flag, per
clinical covariate its value), against the head's stored background sample of training
rows (:mod:`cytoresp.models.shapley`; method, derivation and limits in
``docs/explanations.md``):

- **exactly additive**: ``base + contributions.sum(axis=1)`` equals
  :meth:`TherapyHead.calibrated_margin` (float64);
- **the Shapley values of the raw-input game**, not a share-out of feature-level values: a
  ratio's constituents each get what they do to the model, whatever the other does;
- for an input that enters the model additively, its value is exactly the change of the
  log-odds when that input alone goes from the background to the patient's value.

Models saved before the background sample was stored (format 2) are explained against
their training means as a one-row background ("baseline Shapley" values at the mean).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cytoresp.models.shapley import (
    Background,
    HeadExplainer,
    Linear,
    TreeTable,
    balance_spec,
    feature_spec,
    feature_values,
)

__all__ = [
    "alone_changes",
    "balance_contributions",
    "contributions_and_inputs",
    "cytokine_contributions",
    "head_background",
    "head_explainer",
    "snap_to_total",
]


def head_background(head: Any) -> Background:
    """The background sample a head is explained against.

    The head's stored training sample (``head.background_sample``), or for a model saved
    before it existed one row at the training means of the inputs (flags 0).
    """
    sample = getattr(head, "background_sample", None)
    if sample is not None:
        return sample
    means = np.asarray(head.background, dtype=np.float64)[None, :]
    return Background(means, np.zeros_like(means), np.ones(1))


def head_explainer(head: Any, by: str = "cytokine") -> HeadExplainer:
    """The head's :class:`~cytoresp.models.shapley.HeadExplainer` (built once, cached).

    ``by="cytokine"``: players are the raw explanation inputs. ``by="balance"``: players
    are the engineered features (log cytokines, log-ratios, axis scores, covariates,
    below-LLOQ indicators), the background the same rows' features
    (:func:`~cytoresp.models.shapley.balance_spec`).
    """
    key = f"_explainer_{by}"
    cached = head.__dict__.get(key)
    if cached is None:
        feats = head.pipeline.named_steps["features"]
        clf = head.pipeline.named_steps["model"]
        linear = Linear(
            float(clf.linear_intercept_),
            np.asarray(clf.linear_coef_, dtype=np.float64),
            np.asarray(clf.linear_mean_, dtype=np.float64),
            np.asarray(clf.linear_scale_, dtype=np.float64),
        )
        spec, bg = feature_spec(feats), head_background(head)
        if by == "balance":
            F = feature_values(spec, bg.Z, bg.censored)
            spec, bg = balance_spec(spec), Background(F, np.zeros_like(F), bg.weights)
        cached = HeadExplainer(spec, TreeTable.from_booster(clf.booster_), linear, bg)
        head.__dict__[key] = cached
    return cached


def cytokine_contributions(head: Any, frame: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Base value and input-level contributions of one therapy head, in calibrated log-odds.

    The exact interventional Shapley values of the head's log-odds on its raw inputs
    (:func:`head_explainer`), through the calibrator (``a + b g``: every value times
    ``b``, ``a`` added to the base). XGBoost sums its float32 leaves in float32 (about
    1e-6 from the float64 sum the Shapley values add up to); that gap is spread over the
    inputs in proportion to their size (:func:`snap_to_total`), so that ``base +
    contributions.sum(axis=1)`` equals :meth:`TherapyHead.calibrated_margin` to float64
    precision and orders patients exactly as the predicted probabilities do.

    Parameters
    ----------
    head : TherapyHead
        A fitted head (``pipeline`` = features -> LinearBoostedClassifier,
        ``background_sample``, ``calibrator``, ``input_columns``).
    frame : DataFrame
        Rows of a model frame (at least the head's input columns).

    Returns
    -------
    base : ndarray of shape (n,)
        The base value (the same on every row): the mean log-odds over the background.
    contributions : DataFrame of shape (n, n_inputs)
        Index of ``frame``, columns the head's explanation inputs (cytokine ids and
        clinical covariates; never an engineered feature).

    Examples
    --------
    >>> frame = model.model_frame(panel)
    >>> base, contrib = cytokine_contributions(model.heads["ifnb"], frame)
    >>> margin = model.heads["ifnb"].calibrated_margin(frame)
    >>> bool(np.allclose(base + contrib.sum(axis=1), margin, rtol=0, atol=1e-12))
    True
    """
    base, contrib, _ = contributions_and_inputs(head, frame)
    return base, contrib


def contributions_and_inputs(
    head: Any, frame: pd.DataFrame, margin: np.ndarray | None = None
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """:func:`cytokine_contributions` and the explanation inputs it was computed from.

    The inputs (``PanelFeatures.transform_inputs``: log2 cytokines, covariates) come
    third, so that callers which also need them (driver texts) do not build them again.
    ``margin``: the head's calibrated log-odds of ``frame``, when the caller has them
    (the batch scorer): the model is not evaluated a second time.
    """
    feats = head.pipeline.named_steps["features"]
    X = frame[head.input_columns]
    Z = feats.transform_inputs(X)
    z = np.asarray(Z, dtype=np.float64)
    base, phi = head_explainer(head)(z, _censored_flags(feats, X, z))
    cal = head.calibrator
    base, phi = cal.transform_margin(base), cal.transform_contributions(phi)
    if margin is None:
        margin = head.calibrated_margin(frame)
    phi = snap_to_total(phi, margin - base)
    return base, pd.DataFrame(phi, index=frame.index, columns=list(feats.input_names_)), Z


def balance_contributions(head: Any, frame: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Base value and contributions by engineered feature (the balance view).

    The Shapley values of the same log-odds with the engineered features as players
    (log-ratios such as ``IFNG/IL10``, axis scores, log cytokines, covariates, below-LLOQ
    indicators) against the same background rows: the base value is the same as
    :func:`cytokine_contributions`' and ``base + contributions.sum(axis=1)`` equals the
    same calibrated log-odds. A balance's value is what the model does with that ratio
    or axis score, whichever of its cytokines moved it.

    Examples
    --------
    >>> frame = model.model_frame(panel)
    >>> base, by_balance = balance_contributions(model.heads["ifnb"], frame)
    >>> base_c, by_cytokine = cytokine_contributions(model.heads["ifnb"], frame)
    >>> bool(np.allclose(base, base_c) and np.allclose(
    ...     by_balance.sum(axis=1), by_cytokine.sum(axis=1), rtol=0, atol=1e-12))
    True
    """
    feats = head.pipeline.named_steps["features"]
    X = frame[head.input_columns]
    F = np.asarray(feats.transform(X), dtype=np.float64)
    base, phi = head_explainer(head, "balance")(F, np.zeros_like(F))
    cal = head.calibrator
    base, phi = cal.transform_margin(base), cal.transform_contributions(phi)
    phi = snap_to_total(phi, head.calibrated_margin_of(F) - base)
    names = [str(n) for n in feats.get_feature_names_out()]
    return base, pd.DataFrame(phi, index=frame.index, columns=names)


def alone_changes(head: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """Change of the calibrated log-odds when each input alone comes from the background.

    Per row and input ``j``: the patient's log-odds minus their mean over the background
    rows' values of ``j`` (everything else the patient's). A contribution is directionally
    faithful when it has this change's sign; for an input that enters the model
    additively the two are equal. Costs one model evaluation per background row and
    input: for reports and checks on few rows.
    """
    feats = head.pipeline.named_steps["features"]
    X = frame[head.input_columns]
    z = np.asarray(feats.transform_inputs(X), dtype=np.float64)
    out = head_explainer(head).alone(z, _censored_flags(feats, X, z))
    out = head.calibrator.transform_contributions(out)
    return pd.DataFrame(out, index=frame.index, columns=list(feats.input_names_))


def _censored_flags(feats: Any, X: pd.DataFrame, z: np.ndarray) -> np.ndarray:
    """1.0 where an analyte cell is censored below (model frame <= 0), NaN where missing."""
    A = np.asarray(X, dtype=np.float64)[:, feats.analyte_indices_]
    cens = np.zeros_like(z)
    cens[:, : A.shape[1]] = np.where(np.isnan(A), np.nan, (A <= 0.0).astype(np.float64))
    return cens


def snap_to_total(
    contrib: np.ndarray, total: np.ndarray, max_gap: float = 1e-4
) -> np.ndarray:
    """Spread ``total - contrib.sum(axis=1)`` over each row in proportion to ``|contrib|``.

    Used to absorb float32 rounding (about 1e-6) so that contributions add up to the
    float64 total exactly; a row of zeros takes the difference in equal parts. A gap
    larger than rounding (``max_gap`` times ``1 + |total|``) is an error of the
    explainer, not rounding: it raises instead of being hidden in the contributions.

    Examples
    --------
    >>> snap_to_total(np.array([[1.0, -3.0]]), np.array([-2.000004]))
    array([[ 0.999999, -3.000003]])
    >>> snap_to_total(np.array([[1.0, -3.0]]), np.array([-2.5]))
    Traceback (most recent call last):
    ...
    RuntimeError: contributions miss the log-odds by up to 0.5 (more than rounding): ...
    """
    gap = total - contrib.sum(axis=1)
    worst = np.abs(gap) / (1.0 + np.abs(total))
    if worst.size and float(np.nanmax(worst)) > max_gap:
        raise RuntimeError(
            f"contributions miss the log-odds by up to {float(np.nanmax(np.abs(gap))):.3g} "
            "(more than rounding): the explainer disagrees with the model; please report it"
        )
    size = np.abs(contrib)
    norm = size.sum(axis=1, keepdims=True)
    equal = np.full_like(size, 1.0 / max(size.shape[1], 1))
    share = np.divide(size, norm, out=equal, where=norm > 0)
    return contrib + gap[:, None] * share
