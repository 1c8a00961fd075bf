"""benchmarks/landmarks.py: the real cohort's feature sets and the tables, worked by hand."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("landmarks")


def test_real_feature_sets_are_baseline_plus_latest_change(bench, tmp_path):
    # a two-patient, two-gene copy of the wide file: patient 2 misses month 6 (all zero)
    months = bench.REAL_MONTHS
    row1 = {f"m{m:02d}_G{g:02d}": float(m + g) for m in months for g in (1, 2)}
    row2 = {**{k: v + 10 for k, v in row1.items()}, "m06_G01": 0.0, "m06_G02": 0.0}
    frame = pd.DataFrame([{"patient": 1, "class_code_lock": 2, "response_lock": "good", **row1},
                          {"patient": 2, "class_code_lock": 1, "response_lock": "poor", **row2}])
    (tmp_path / "baranzini2005_ifnb").mkdir()
    frame.to_csv(tmp_path / "baranzini2005_ifnb" / "ifnb_lock53_wide.csv", index=False)
    sets, y = bench.load_real(tmp_path)
    assert y.tolist() == [1, 0]
    assert list(sets["baseline"].columns) == ["G01", "G02"]
    six = sets["landmark 6"]
    assert list(six.columns) == ["G01", "G02", "G01 Δ", "G02 Δ"]
    assert six.loc["1", "G01 Δ"] == 6.0       # month 6 - month 0
    assert six.loc["2", "G01 Δ"] == 3.0       # month 6 missing: the latest before, month 3
    assert sets["landmark 24"].loc["1", "G02 Δ"] == 24.0
    assert sets["mean change 3-24"].loc["1", "G01 Δ"] == pytest.approx(np.mean(months[1:]))


def test_real_summary_counts_misclassification(bench):
    raw = {"y": [1, 0, 1, 0], "n_features": {"baseline": 2},
           "parts": [{"set": "baseline", "protocol": "loo", "repeat": 0,
                      "p": [0.9, 0.6, 0.4, 0.1], "seconds": 1.0}]}
    row = bench.summarise_real(raw, n_boot=50).iloc[0]
    assert row["misclassification"] == 0.5  # 0.6 on a non-responder, 0.4 on a responder
    assert row["roc_auc"] == pytest.approx(0.75)


def test_render_states_targets_met_or_not(bench, tmp_path):
    rows = [{"size": 200, "seed": s, "on_treatment": sig, "therapy": "ifnb", "landmark": 3,
             "n_test": 900, "n_train": 180, "auc_baseline": 0.70,
             "auc_landmark": 0.70 + gain, "auc_landmark_head": 0.70 + gain - 0.01,
             "scored_by": "landmark", "cv_vs_baseline": gain, "alert_sensitivity": 0.8,
             "alert_specificity": 0.5, "alert_threshold": 0.4, "cv_alert_sensitivity": 0.78,
             "seconds": 1.0}
            for s in (1, 2) for sig, gain in (("literature", 0.08), ("none", -0.02))]
    (tmp_path / "sim.json").write_text(json.dumps({"config": {}, "test_n": 2000,
                                                   "test_seed": 1, "rows": rows}))
    text = bench.render(tmp_path)
    assert "with on-treatment signal, ifnb, 200 per therapy: +0.080 — **met** (the " \
        "landmark head itself: +0.070; as scored, the landmark head was used in 2 of 2 " \
        "seeds)" in text
    assert "without on-treatment signal, ifnb, 200 per therapy: -0.020 — **not met**" in text
