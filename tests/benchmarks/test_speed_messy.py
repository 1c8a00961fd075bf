"""benchmarks/speed.py --cohort messy: the messy export holds the same patients and values."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cytoresp.datasets import simulate_cohort
from cytoresp.panels import read_panel

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def speed(load_benchmark):
    return load_benchmark("speed")


def test_messy_export_reads_back_as_the_same_cohort(speed, tmp_path):
    clean = simulate_cohort(400, seed=3).panel
    path = tmp_path / "messy.csv"
    speed.messy_panel(clean, seed=1).to_csv(path, index=False)
    text = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert "IL-17A (pg/mL)" in text.columns and "IL17A" not in text.columns
    assert set(text["therapy"]) > {"Avonex", "Copaxone"}
    cells = text["IL-6 (pg/mL)"]
    assert 0.08 < cells.str.startswith(("<", "OOR")).mean() < 0.2  # ~12% censored as text
    assert 0.02 < cells.isin(["", "NA", "N/A"]).mean() < 0.12  # ~5% missing (+ the sim's)

    panel, reference = read_panel(path), read_panel(clean)
    assert list(panel.values.index) == list(reference.values.index)
    assert set(panel.therapy) == {"ifnb", "ga"}  # brand names resolved
    assert (panel.therapy == reference.therapy).all()
    ours, theirs = panel.values["IL6"].to_numpy(float), reference.values["IL6"].to_numpy(float)
    kept = ~np.isnan(ours) & ~np.isnan(theirs) & ~cells.str.startswith(("<", ">", "OOR")).to_numpy()
    assert kept.mean() > 0.7
    np.testing.assert_allclose(ours[kept], theirs[kept], rtol=1e-3)
    below = cells.str.startswith(("<", "OOR <")).to_numpy()
    assert (panel.censoring["IL6"].to_numpy()[below] == -1).all()  # read as censored, not lost
