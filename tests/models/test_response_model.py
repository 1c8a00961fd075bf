"""ResponseModel: probabilities, exact cytokine-level explanations, persistence."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cytoresp.errors import ModelIntegrityError, UsageError
from cytoresp.models.persistence import load_model_dir


@pytest.fixture(scope="module")
def new_panel():
    from cytoresp.datasets import simulate_cohort
    from cytoresp.panels.read import read_panel

    cohort = simulate_cohort(300, seed=21)
    return cohort, read_panel(cohort.panel)


def test_probabilities_are_in_input_order_and_bounded(trained, new_panel):
    model, _ = trained
    cohort, panel = new_panel
    proba = model.predict_proba(panel)
    assert list(proba.columns) == ["p_response_ifnb", "p_response_ga"]
    assert proba.index.tolist() == cohort.panel["sample_id"].tolist()
    assert ((proba > 0) & (proba < 1)).all().all()


def test_heads_learn_the_planted_signal(trained, new_panel):
    from sklearn.metrics import roc_auc_score

    model, _ = trained
    cohort, panel = new_panel
    proba = model.predict_proba(panel)
    for therapy in ("ifnb", "ga"):
        given = (cohort.panel["therapy"] == therapy).to_numpy()
        y = cohort.panel["responder"].to_numpy()[given]
        auc = roc_auc_score(y, proba[f"p_response_{therapy}"].to_numpy()[given])
        oracle = roc_auc_score(y, cohort.truth[f"p_response_{therapy}"].to_numpy()[given])
        assert auc > 0.8 * oracle, (therapy, auc, oracle)


def test_explanations_add_up_to_the_log_odds(trained, new_panel):
    model, _ = trained
    _, panel = new_panel
    table = model.explain(panel)
    assert set(table.columns) == {"sample_id", "therapy", "feature", "contribution", "base_value"}
    assert set(table["feature"]) <= set(model.input_columns)
    total = table.groupby(["therapy", "sample_id"]).agg(
        base=("base_value", "first"), contrib=("contribution", "sum")
    )
    proba = model.predict_proba(panel)
    for therapy in ("ifnb", "ga"):
        p = proba[f"p_response_{therapy}"]
        logit = np.log(p / (1 - p))
        got = total.loc[therapy].reindex(p.index)
        np.testing.assert_allclose(got["base"] + got["contrib"], logit, atol=1e-4)


def test_planted_drivers_rank_at_the_top(trained, new_panel):
    from cytoresp.datasets import simulate_cohort

    model, _ = trained
    _, panel = new_panel
    drivers = simulate_cohort(10, seed=0).drivers
    table = model.explain(panel)
    for therapy in ("ifnb", "ga"):
        importance = (
            table[table["therapy"] == therapy]
            .groupby("feature")["contribution"]
            .apply(lambda s: s.abs().mean())
            .sort_values(ascending=False)
        )
        top = set(importance.index[:6])
        assert drivers[therapy][0] in set(importance.index[:3]), importance.head(6)
        assert len(top & set(drivers[therapy])) >= 3, (therapy, importance.head(8))


def test_missing_analyte_column_is_tolerated_and_warned(trained, new_panel):
    model, _ = trained
    cohort, _ = new_panel
    from cytoresp.panels.read import read_panel

    panel = read_panel(cohort.panel.drop(columns=["IL10"]))
    frame = model.model_frame(panel)
    assert frame["IL10"].isna().all()
    warnings = model.row_warnings(frame)
    assert warnings.str.contains("missing: .*IL10").all()
    assert model.predict_proba(panel).notna().all().all()


def test_unknown_therapy_is_a_usage_error(trained, new_panel):
    model, _ = trained
    with pytest.raises(UsageError, match="no head for therapy"):
        model.predict_proba(new_panel[1], therapy="natalizumab")


def test_save_load_round_trip_is_exact(trained, new_panel, tmp_path):
    model, _ = trained
    model.save(tmp_path / "m")
    again = load_model_dir(tmp_path / "m")
    pd.testing.assert_frame_equal(
        again.predict_proba(new_panel[1]), model.predict_proba(new_panel[1])
    )
    pd.testing.assert_frame_equal(again.explain(new_panel[1]), model.explain(new_panel[1]))



def test_session_model_answers_like_the_freshly_trained_one(trained, trained_cache, cohort):
    """The session model is trained once per run and loaded from disk by every worker
    (tests/conftest.py): the loaded model gives exactly the recommendations and the
    explanations the in-memory model gave before it was saved."""
    from cytoresp.panels.read import read_panel

    model, _ = trained
    panel = read_panel(cohort.panel)
    # exact values; parquet reads text columns back as pandas' string dtype
    same = {"check_exact": True, "check_dtype": False, "check_index_type": False}
    reference = pd.read_parquet(trained_cache / "reference.parquet")
    pd.testing.assert_frame_equal(model.recommend(panel), reference, **same)
    explained = pd.read_parquet(trained_cache / "reference_explain.parquet")
    pd.testing.assert_frame_equal(model.explain(panel), explained, **same)

def _first(directory, pattern):
    return sorted(directory.glob(pattern))[0]


def _flip_one_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "tamper, match",
    [
        (lambda d: _flip_one_byte(d / "model.json"), "model.json was modified"),
        (lambda d: _flip_one_byte(_first(d, "*.ubj*")), r"\.ubj.* was modified"),
        (lambda d: _first(d, "*.ubj*").unlink(), r"\.ubj.* is missing"),
        (lambda d: (d / "evil.pkl").write_bytes(b"x"), "not in the manifest"),
        (lambda d: (d / "manifest.json").unlink(), "no manifest.json"),
        (lambda d: (d / "manifest.json").write_text("{"), "malformed"),
    ],
)
def test_tampered_model_is_refused(model_dir, tmp_path, tamper, match):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    tamper(copy)
    with pytest.raises(ModelIntegrityError, match=match):
        load_model_dir(copy)


def test_manifest_records_hashes_and_versions(model_dir):
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert "model.json" in manifest["files"]
    on_disk = {p.name for p in model_dir.iterdir()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    assert {"xgboost", "scikit-learn", "numpy"} <= set(manifest["versions"])


def test_recommendation_follows_the_interval_of_the_difference(trained, new_panel):
    model, _ = trained
    rec = model.recommend(new_panel[1])
    lower, upper = rec["difference_lower"], rec["difference_upper"]
    diff = rec["difference"]
    # a symmetric interval around the calibrated difference, oriented to the leader
    np.testing.assert_allclose(diff - lower, upper - diff, atol=1e-12)
    assert (diff >= 0).all()
    named = rec["recommended_therapy"] != "either"
    gate = model.choice.gate_passed
    assert (rec.loc[named, "recommended_therapy"] == rec.loc[named, "leading_therapy"]).all()
    assert (named == ((lower > 0) & gate)).all()


@pytest.mark.parametrize(("name", "head"), [("Avonex", "ifnb"), ("Copaxone", "ga"), ("GA", "ga")])
def test_therapies_are_resolved_by_any_of_their_names(trained, name, head):
    """The Python API takes the names the CLI takes (resolved at the model, not the CLI)."""
    model, _ = trained
    assert model.resolve_therapies(name) == [head]


def test_an_unknown_therapy_name_is_still_refused(trained):
    model, _ = trained
    with pytest.raises(UsageError, match="no head for therapy Tysabri"):
        model.resolve_therapies("Tysabri")
