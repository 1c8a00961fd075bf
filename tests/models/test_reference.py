"""Tests of cytoresp.models.reference: training ranges and percentiles stored with a model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cytoresp.models.reference import ranking_values, training_quantiles, training_ranges
from cytoresp.panels.read import read_panel


def test_quantiles_are_stored_and_survive_save_and_load(trained, model_dir, cohort):
    from cytoresp.models.persistence import load_model_dir

    model, _ = trained
    frame = read_panel(cohort.panel).to_model_frame()
    assert set(model.training_quantiles) == set(frame.columns)
    il10 = model.training_quantiles["IL10"]
    assert len(il10) == 101 and il10 == sorted(il10)
    observed = frame["IL10"].to_numpy()
    ranked = np.where(observed < 0, -observed / np.sqrt(2), observed)
    assert il10[50] == pytest.approx(np.nanmedian(ranked), rel=1e-3)
    assert load_model_dir(model_dir).training_quantiles == model.training_quantiles


def test_quantiles_rank_censored_values_at_limit_over_root_two():
    q = training_quantiles(pd.DataFrame({"IL10": [1.0, 2.0, 3.0, -0.5], "age": [30, 40, 50, 60]}))
    assert q["IL10"][0] == pytest.approx(0.5 / np.sqrt(2), rel=1e-3) and q["age"][100] == 60
    assert training_quantiles(pd.DataFrame({"IL4": [np.nan, np.nan]})) == {}


def test_ranges_leave_out_censored_and_missing_analyte_values():
    frame = pd.DataFrame({"IL10": [1.0, 4.0, -0.5, np.nan], "age": [-1.0, 40.0, 50.0, np.nan]})
    ranges = training_ranges(frame)
    assert ranges == {"IL10": (1.0, 4.0), "age": (-1.0, 50.0)}


def test_ranking_values_leave_covariates_alone():
    assert ranking_values(np.array([-2.0, 3.0]), "edss").tolist() == [-2.0, 3.0]
    assert ranking_values(np.array([-2.0, 3.0]), "IL17F") == pytest.approx([np.sqrt(2.0), 3.0])
