"""The example configs of docs/examples train the real datasets through the CLI (issue #13).

Skipped when ../shared/data is absent. The examples run with a quick cross-validation on top
(the question here is that the files are read as the config says, not model quality).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from cytoresp.cli import main

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


def shared_data(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path

#: 200 bootstrap resamples (vectorised, about a second): the verdict against the baselines
#: needs an interval.
QUICK = {"n_repeats": 1, "n_splits": 3, "inner_splits": 2, "n_boot": 200, "n_jobs": 1,
         "model": {"n_estimators": 20, "early_stopping": False, "C": 1.0, "C_ridge": 1.0}}


def _train(example: str, data, tmp_path, capsys):
    from cytoresp.models.response_model import ResponseModel

    with open(REPO / "docs" / "examples" / example, "rb") as fh:
        config = tomllib.load(fh)
    quick = tmp_path / "quick.json"
    quick.write_text(json.dumps({**config, **QUICK}))
    out = tmp_path / "model"
    code = main(["train", "--data", str(data), "--config", str(quick), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    return ResponseModel.load(out), err


def test_baranzini_transcripts_train_on_baseline_columns_only(tmp_path, mlflow_store, capsys):
    data = shared_data("baranzini2005_ifnb", "ifnb_lock53_wide.csv")
    model, err = _train("baranzini2005_ifnb.toml", data, tmp_path, capsys)
    assert "trained 1 head: ifnb (53 patients) (the data hold no other therapy than IFN-β)" in err
    assert "outcome: good response to IFN-β" in err
    # 76 baseline genes; never a later month or the label's numeric code
    assert len(model.input_columns) == 76
    assert all(c.startswith("m00_G") for c in model.input_columns)


def test_race_septic_shock_trains_on_t0_cytokines_and_warns_it_lost(
    tmp_path, mlflow_store, capsys
):
    data = shared_data("race_septic_shock_cytokines", "RACE_CytokineData.csv")
    model, err = _train("race_septic_shock.toml", data, tmp_path, capsys)
    assert "trained 1 head: placebo (69 patients)" in err
    assert "outcome: 28-day survival" in err
    assert "'Plate_ID' has a different value in every row" in err
    cols = set(model.input_columns)
    assert {"IL6", "IL10", "TNF", "CXCL8", "IL1B", "age", "sex",
            "Calculated T0 SOFA Value"} <= cols
    assert not cols & {"Days surviving", "Mortality_1year", "plate"}
    _says_it_did_not_beat_a_plain_logistic_regression(model, err, tmp_path)


def _says_it_did_not_beat_a_plain_logistic_regression(model, err, tmp_path):
    """Issue 14: on this cohort the default head did not beat its logistic baseline
    (0.573 against 0.650 in the issue's run) and nothing said so. (Checked on the model
    trained above: one training, not two.)"""
    import mlflow

    from cytoresp.models.card import CARD_FILE

    warning = [line for line in err.splitlines() if line.startswith("WARNING placebo:")]
    assert len(warning) == 1, err
    assert "this model did not beat" in warning[0]
    assert "a plain logistic regression in cross-validation" in warning[0]
    assert "treat its numbers with caution" in warning[0]
    verdict = model.metadata["baseline_verdict"]["therapies"]["placebo"]
    assert verdict["beats_baselines"] is False
    assert verdict["baselines"]["logistic"]["beats"] is False
    assert verdict["baselines"]["logistic"]["lower"] <= 0
    (run,) = mlflow.search_runs(experiment_names=["cytoresp"], output_format="list",
                                filter_string="tags.`cytoresp.job` = 'train'")
    assert run.data.tags["cytoresp.beats_baselines.placebo"] == "false"
    assert run.data.tags["cytoresp.beats_baselines"] == "false"
    card = (tmp_path / "model" / CARD_FILE).read_text(encoding="utf-8")
    assert "- placebo: **did not beat" in card
