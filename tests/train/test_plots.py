"""Tests of cytoresp.train.plots."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score

from cytoresp.errors import UsageError
from cytoresp.train.plots import plot_reliability, plot_roc


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.98, 400)
    y = (rng.random(400) < p).astype(int)
    noisy = np.clip(p + rng.normal(0, 0.3, 400), 0, 1)
    return y, p, noisy


def test_roc_draws_one_line_per_model_plus_chance(data):
    y, p, noisy = data
    fig = plot_roc({"model": (y, p), "baseline": (y, noisy), "flat": (y, np.full(400, 0.4))})
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert len(ax.lines) == 4
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [
        f"model (AUC {roc_auc_score(y, p):.3f})",
        f"baseline (AUC {roc_auc_score(y, noisy):.3f})",
        "flat (AUC 0.500)",
        "chance",
    ]
    assert ax.get_title() == "ROC curve"
    # each curve runs from (0, 0) to (1, 1)
    for line in ax.lines[:3]:
        x, yy = line.get_data()
        assert (x[0], yy[0], x[-1], yy[-1]) == (0, 0, 1, 1)


def test_reliability_diagram(data):
    y, p, _ = data
    fig = plot_reliability(y, p, n_bins=8, title="IFN-beta head")
    ax, hist = fig.axes
    assert ax.get_title() == "IFN-beta head"
    handles, labels = ax.get_legend_handles_labels()
    assert labels[0] == "perfect calibration"
    assert labels[1].startswith("binned (n=400, 8 bins)")
    diagonal, curve = ax.lines[0], ax.lines[1]
    assert diagonal.get_xydata().tolist() == [[0, 0], [1, 1]]
    x, observed = curve.get_data()
    assert len(x) == 8
    assert np.all(np.diff(x) > 0)  # bins ordered by mean prediction
    # quantile bins: 50 predictions each, so the mean of the observed shares is the prevalence
    assert np.mean(observed) == pytest.approx(y.mean())
    assert sum(patch.get_height() for patch in hist.patches) == 400


def test_reliability_merges_tied_quantile_bins():
    p = np.repeat([0.2, 0.5, 0.8], 20)
    y = np.tile([0, 1], 30)
    fig = plot_reliability(y, p, n_bins=10)
    x, _ = fig.axes[0].lines[1].get_data()
    assert sorted(np.round(x, 6)) == [0.2, 0.5, 0.8]


def test_figures_save_without_pyplot(data):
    y, p, _ = data
    for fig in (plot_roc({"m": (y, p)}), plot_reliability(y, p)):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=40)
        assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: plot_roc({}), "at least one"),
        (lambda: plot_roc({"m": ([1, 1], [0.2, 0.3])}), "'m' needs both responders"),
        (lambda: plot_roc({"m": ([0, 1], [0.2, 1.3])}), r"p of 'm' must hold probabilities"),
        (lambda: plot_reliability([0, 1], [0.2, 0.3], n_bins=1), "n_bins must be an integer >= 2"),
        (lambda: plot_reliability([0, 1], [0.2, 0.3], n_bins=2.5), "n_bins must be"),
        (lambda: plot_reliability([0, 1], [0.2]), "p has 1 values but y has 2"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(UsageError, match=match):
        call()
