"""Explanation plots of Shapley values of the log-odds: beeswarm, mean |value| bars, waterfall.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot state), so
they are safe in batch jobs and threads. Axis labels use display names (IFN-γ, IL-17F).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.special import expit

#: Clinical covariates as people write them.
COVARIATE_LABELS = {
    "age": "age (years)",
    "sex": "sex",
    "edss": "EDSS",
    "disease_duration_y": "disease duration (years)",
    "relapses_prior_2y": "relapses in the prior 2 years",
    "gd_lesions": "Gd-enhancing lesions",
}


def display_label(name: str) -> str:
    """How an explanation input is shown: IFN-γ for ``IFNG``, EDSS for ``edss``.

    Analytes get the registry's display name, clinical covariates a readable name; any
    other name is returned as it is.

    Examples
    --------
    >>> display_label("IL17F"), display_label("edss"), display_label("x0")
    ('IL-17F', 'EDSS', 'x0')
    """
    if name in COVARIATE_LABELS:
        return COVARIATE_LABELS[name]
    try:
        from cytoresp.panels.registry import display_name

        return display_name(name)
    except Exception:  # noqa: BLE001 - a label must never break a plot
        return name


def _plain(text: str) -> str:
    """Text for matplotlib with ``$`` shown literally (no mathtext from user strings)."""
    return str(text).replace("$", r"\$")


def _label(name: str) -> str:
    return _plain(display_label(name))


def _order(contrib: pd.DataFrame, max_features: int) -> list[str]:
    importance = contrib.abs().mean(axis=0).sort_values(ascending=False)
    return list(importance.index[:max_features])


def plot_beeswarm(
    contrib: pd.DataFrame, values: pd.DataFrame, title: str = "", max_features: int = 15
) -> Figure:
    """One row per cytokine: each patient's contribution, coloured by the cytokine's level.

    Parameters
    ----------
    contrib : DataFrame (patients x inputs)
        Cytokine-level contributions (log-odds).
    values : DataFrame (patients x inputs)
        The inputs' values (log2 concentration, covariate value) for the colour scale.
    """
    names = _order(contrib, max_features)
    fig = Figure(figsize=(7, 0.38 * len(names) + 1.4))
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    for row, name in enumerate(reversed(names)):
        x = contrib[name].to_numpy()
        v = values[name].to_numpy(dtype=float) if name in values else np.full(len(x), np.nan)
        lo, hi = np.nanpercentile(v, [5, 95]) if np.isfinite(v).any() else (0.0, 1.0)
        colour = np.clip((v - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
        jitter = rng.uniform(-0.3, 0.3, size=len(x))
        ax.scatter(
            x[np.isfinite(v)],
            (row + jitter)[np.isfinite(v)],
            c=colour[np.isfinite(v)],
            cmap="coolwarm",
            s=9,
            vmin=0,
            vmax=1,
        )
        ax.scatter(x[~np.isfinite(v)], (row + jitter)[~np.isfinite(v)], c="0.6", s=9)
    ax.axvline(0, color="0.5", lw=0.8)
    ax.set_yticks(range(len(names)), [_label(n) for n in reversed(names)])
    ax.set_xlabel("Shapley value: contribution to the log-odds of response")
    ax.set_title(_plain(title) or "Shapley values of the log-odds of response")
    fig.text(
        0.01,
        0.005,
        "colour: the input's level (blue low, red high, grey missing)",
        fontsize=7,
        color="0.4",
    )
    fig.tight_layout()
    return fig


def plot_importance(contrib: pd.DataFrame, title: str = "", max_features: int = 15) -> Figure:
    """Mean |contribution| per cytokine or covariate, largest first."""
    names = _order(contrib, max_features)
    importance = contrib[names].abs().mean(axis=0)
    fig = Figure(figsize=(6, 0.32 * len(names) + 1.2))
    ax = fig.add_subplot()
    ax.barh(range(len(names)), importance.to_numpy()[::-1], color="#3b75af")
    ax.set_yticks(range(len(names)), [_label(n) for n in reversed(names)])
    ax.set_xlabel("mean |Shapley value| (contribution to the log-odds)")
    ax.set_title(_plain(title) or "Mean |Shapley value| of the log-odds of response")
    fig.tight_layout()
    return fig


def plot_waterfall(
    base: float, contrib: pd.Series, title: str = "", max_features: int = 10
) -> Figure:
    """One patient's explanation: from the base log-odds to the prediction, cytokine by cytokine.

    Contributions beyond the ``max_features`` largest are summed into one bar, so the
    bars still end exactly at the patient's log-odds.
    """
    order = contrib.abs().sort_values(ascending=False).index
    shown = list(order[:max_features])
    values = [float(contrib[n]) for n in shown]
    labels = [_label(n) for n in shown]
    rest = float(contrib[order[max_features:]].sum()) if len(order) > max_features else 0.0
    if len(order) > max_features:
        values.append(rest)
        labels.append(f"{len(order) - max_features} others")
    fig = Figure(figsize=(7, 0.4 * len(values) + 1.6))
    ax = fig.add_subplot()
    start = base
    for i, v in enumerate(values):
        y = len(values) - 1 - i
        ax.barh(y, v, left=start, color="#d1495b" if v > 0 else "#2e86ab")
        ax.text(
            start + v, y, f" {v:+.2f}", va="center", ha="left" if v > 0 else "right", fontsize=8
        )
        start += v
    ends = np.cumsum([base, *values])
    lo, hi = float(ends.min()), float(ends.max())
    pad = 0.18 * (hi - lo if hi > lo else 1.0)
    ax.set_xlim(lo - pad, hi + pad)  # room for the value labels at both ends
    ax.axvline(base, color="0.5", lw=0.8, ls="--")
    ax.axvline(start, color="k", lw=0.8)
    ax.set_yticks(range(len(values)), labels[::-1])
    p = expit(start)
    ax.set_xlabel(
        f"Shapley values: contributions to the log-odds of response "
        f"(base {base:+.2f} → {start:+.2f}, p = {p:.2f})"
    )
    ax.set_title(_plain(title))
    fig.tight_layout()
    return fig
