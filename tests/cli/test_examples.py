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

QUICK = {"n_repeats": 1, "n_splits": 3, "inner_splits": 2, "n_boot": 0, "n_jobs": 1,
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


def test_race_septic_shock_trains_on_t0_cytokines(tmp_path, mlflow_store, capsys):
    data = shared_data("race_septic_shock_cytokines", "RACE_CytokineData.csv")
    model, err = _train("race_septic_shock.toml", data, tmp_path, capsys)
    assert "trained 1 head: placebo (69 patients)" in err
    assert "outcome: 28-day survival" in err
    assert "'Plate_ID' has a different value in every row" in err
    cols = set(model.input_columns)
    assert {"IL6", "IL10", "TNF", "CXCL8", "IL1B", "age", "sex",
            "Calculated T0 SOFA Value"} <= cols
    assert not cols & {"Days surviving", "Mortality_1year", "plate"}
