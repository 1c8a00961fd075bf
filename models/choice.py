"""Therapy choice among any set of heads: the best therapy against the runner-up.

The IFN-β / GA recommendation (:mod:`cytoresp.models.recommend`) compares two fixed heads.
A model with other heads (``natalizumab`` and ``dmf``, or three and more) is answered here:
for each patient the therapy with the highest P(response) is compared with the second
highest, and named only when the interval on their difference excludes zero (bootstrap
ensemble present), or, without an ensemble, when the difference reaches the fixed margin.

Known limit: choosing the best and the runner-up by their point estimates and then testing
only that pair ignores the uncertainty of the ranking among three or more heads (a
therapy ranked third could be the best one); with two heads the rule is the same as
:mod:`cytoresp.models.recommend`'s. The therapy-choice issue (#15) owns the validated rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from cytoresp.errors import UsageError

#: Columns added to the probabilities, in order.
CHOICE_COLUMNS = (
    "best_therapy",
    "runner_up_therapy",
    "difference_best_minus_runner_up",
    "difference_lower",
    "difference_upper",
    "recommended_therapy",
)


def best_vs_runner_up(
    proba: pd.DataFrame,
    draws: Mapping[str, np.ndarray] | None = None,
    level: float = 0.90,
    margin: float = 0.05,
) -> pd.DataFrame:
    """Recommendation columns from ``p_response_<therapy>`` columns (two or more).

    Parameters
    ----------
    proba : DataFrame
        ``p_response_<therapy>`` per row (the main heads).
    draws : mapping of therapy to ndarray of shape (B, n_rows), optional
        Bootstrap draws of each therapy's probability (same ``B`` for all). Without them,
        the fixed-``margin`` rule is used and the interval columns are NaN.
    level : float
        Level of the percentile interval on the difference.
    margin : float
        Fixed-margin rule (no draws): the best therapy is named when it leads by at least
        this much.

    Returns
    -------
    DataFrame
        ``proba`` plus :data:`CHOICE_COLUMNS`; ``recommended_therapy`` is the best
        therapy's id or ``either``.

    Examples
    --------
    >>> proba = pd.DataFrame({"p_response_ifnb": [0.8, 0.5], "p_response_dmf": [0.3, 0.52],
    ...                       "p_response_natalizumab": [0.4, 0.45]})
    >>> draws = {"ifnb": np.array([[0.8, 0.5], [0.75, 0.6]]),
    ...          "dmf": np.array([[0.3, 0.55], [0.35, 0.5]]),
    ...          "natalizumab": np.array([[0.4, 0.4], [0.45, 0.5]])}
    >>> out = best_vs_runner_up(proba, draws)
    >>> out["best_therapy"].tolist(), out["recommended_therapy"].tolist()
    (['ifnb', 'dmf'], ['ifnb', 'either'])
    >>> best_vs_runner_up(proba)["recommended_therapy"].tolist()
    ['ifnb', 'either']
    """
    cols = [c for c in proba.columns if str(c).startswith("p_response_")]
    if len(cols) < 2:
        raise UsageError("a choice between therapies needs at least two p_response_ columns")
    if not 0 < level < 1:
        raise UsageError(f"the interval level must be in (0, 1), got {level!r}")
    ids = [c[len("p_response_"):] for c in cols]
    P = proba[cols].to_numpy(dtype=np.float64)
    n = len(P)
    ranked = np.argsort(-np.nan_to_num(P, nan=-np.inf), axis=1, kind="stable")
    best, runner = ranked[:, 0], ranked[:, 1]
    rows = np.arange(n)
    diff = P[rows, best] - P[rows, runner]
    lower = np.full(n, np.nan)
    upper = np.full(n, np.nan)
    if draws is not None and n:
        D = np.stack([np.asarray(draws[t], dtype=np.float64) for t in ids])  # (k, B, n)
        d = D[best, :, rows] - D[runner, :, rows]  # (n, B)
        alpha = (1.0 - level) / 2.0
        lower, upper = np.quantile(d, [alpha, 1.0 - alpha], axis=1)
        named = (lower > 0) & (diff > 0)
    else:
        named = diff >= margin
    names = np.asarray(ids, dtype=object)
    out = proba.copy()
    out["best_therapy"] = names[best] if n else np.empty(0, dtype=object)
    out["runner_up_therapy"] = names[runner] if n else np.empty(0, dtype=object)
    out["difference_best_minus_runner_up"] = diff
    out["difference_lower"] = lower
    out["difference_upper"] = upper
    out["recommended_therapy"] = np.where(named, names[best], "either").astype(object)
    return out


def recommend_among(model: Any, frame: pd.DataFrame, margin: float = 0.05,
                    level: float | None = None) -> pd.DataFrame:
    """:func:`best_vs_runner_up` for every head of a :class:`ResponseModel` on a model frame.

    Uses the model's bootstrap ensemble when it has members for every head, else the
    fixed-margin rule.
    """
    therapies = model.therapies
    feats = {t: model.heads[t].engineered(frame) for t in therapies}
    proba = model.predict_proba_frame(frame, feats=feats)
    ens = model.ensemble
    draws = None
    if ens is not None and set(therapies) <= set(ens.members):
        draws = ens.probability_draws(model.heads, frame, feats)
        level = level or ens.level
    return best_vs_runner_up(proba, draws, level or 0.90, margin)
