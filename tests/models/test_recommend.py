"""The bootstrap ensemble of the heads: members, merged trees, persistence (issue 6).

It no longer decides between therapies (issue 15, tests/models/test_choice.py)."""

from __future__ import annotations

import dataclasses
import gzip
import json

import numpy as np
import pandas as pd
import pytest

from cytoresp.errors import ModelIntegrityError, UsageError
from cytoresp.models.persistence import load_model_dir
from cytoresp.models.recommend import BootstrapEnsemble, member_margins
from cytoresp.train.ensemble import fit_bootstrap_ensemble


@pytest.fixture(scope="module")
def test_cohort():
    """An independent randomised cohort with known potential outcomes."""
    from cytoresp.datasets import simulate_cohort
    from cytoresp.panels.read import read_panel

    cohort = simulate_cohort(2000, seed=606)
    return cohort, read_panel(cohort.panel)


@pytest.fixture(scope="module")
def recommendation(trained, test_cohort):
    return trained[0].recommend(test_cohort[1])


@pytest.fixture(scope="module")
def training_rows(cohort):
    from cytoresp.panels.read import read_panel
    from cytoresp.train.fitting import therapy_rows

    panel = read_panel(cohort.panel)
    return {t: therapy_rows(panel, t) for t in ("ifnb", "ga")}


@pytest.fixture(scope="module")
def tree_model(trained, training_rows):
    """The session model with 30 trees in every head, and a 3-member ensemble."""
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    model = trained[0]
    heads = {}
    for t, head in model.heads.items():
        frame, y = training_rows[t]
        # the penalties the head chose, fixed (no new inner search): only the trees differ
        fixed = {"C": head.model.C_, "C_ridge": head.model.C_ridge_ or "auto"}
        clf = clone(head.model).set_params(early_stopping=False, n_estimators=30, **fixed)
        feats = head.features.transform(frame[head.input_columns])
        pipeline = Pipeline([("features", head.features), ("model", clf.fit(feats, y))])
        heads[t] = dataclasses.replace(head, pipeline=pipeline)
    ensemble = fit_bootstrap_ensemble(heads, training_rows, 3, seed=1)
    return dataclasses.replace(model, heads=heads, ensemble=ensemble)


# -- the ensemble ---------------------------------------------------------------------------
def test_trained_model_carries_an_ensemble(trained):
    model, _ = trained
    ens = model.ensemble
    assert isinstance(ens, BootstrapEnsemble)
    # 10 members: FAST_CONFIG in tests/conftest.py
    assert ens.therapies == ["ifnb", "ga"] and ens.n_members == 10 and ens.level == 0.9
    # members reuse the main head's regularisation of the linear part
    for t in ("ifnb", "ga"):
        assert {m.C_ for m in ens.members[t]} == {model.heads[t].model.C_}
        assert len({m.random_state for m in ens.members[t]}) == ens.n_members


def test_fast_member_margins_equal_decision_function(trained, tree_model, test_cohort):
    frame = trained[0].model_frame(test_cohort[1]).iloc[:300].copy()
    frame.iloc[::7, 0] = np.nan  # missing values take the member's own training mean
    for model in (trained[0], tree_model):  # as trained, and with trees in every member
        head = model.heads["ga"]
        feats = np.asarray(head.features.transform(frame[head.input_columns]))
        members = model.ensemble.members["ga"][:3]
        expected = np.stack([m.decision_function(feats) for m in members])
        np.testing.assert_allclose(member_margins(members, feats), expected, atol=1e-9)


def test_merged_ensemble_margins_equal_member_by_member(trained, tree_model, test_cohort):
    frame = trained[0].model_frame(test_cohort[1]).iloc[:500].copy()
    frame.iloc[::5, 2] = np.nan
    for model in (trained[0], tree_model):
        ens = model.ensemble
        for t in ("ifnb", "ga"):
            feats = model.heads[t].engineered(frame)
            expected = member_margins(ens.members[t], feats)
            np.testing.assert_allclose(ens.margins(t, feats), expected, rtol=0, atol=1e-6)
            merged = ens.merged_booster(t)
            if any(m.booster_ is not None for m in ens.members[t]):
                assert merged not in (None, False)
                assert merged.num_boosted_rounds() == max(m.n_trees_ for m in ens.members[t])
    # no rows: no XGBoost call at all
    assert tree_model.ensemble.margins("ga", np.empty((0, feats.shape[1]))).shape == (3, 0)


def test_ensemble_copies_and_pickles_with_its_merged_trees_rebuilt(tree_model, test_cohort):
    import copy
    import pickle

    ens = tree_model.ensemble
    frame = tree_model.model_frame(test_cohort[1]).iloc[:40]
    feats = tree_model.heads["ifnb"].engineered(frame)
    expected = ens.margins("ifnb", feats)  # builds and caches the merged trees
    for twin in (copy.deepcopy(ens), pickle.loads(pickle.dumps(ens))):
        assert twin._merged == {}
        np.testing.assert_array_equal(twin.margins("ifnb", feats), expected)


def test_ensemble_falls_back_to_members_when_trees_cannot_be_merged(
    tree_model, test_cohort, monkeypatch
):
    import cytoresp.models.recommend as recommend

    def broken(members):
        raise ValueError("unsupported model")

    monkeypatch.setattr(recommend, "_merge_trees", broken)
    ens = dataclasses.replace(tree_model.ensemble)  # a fresh cache of merged trees
    frame = tree_model.model_frame(test_cohort[1]).iloc[:50]
    feats = tree_model.heads["ifnb"].engineered(frame)
    with pytest.warns(RuntimeWarning, match="could not be merged"):
        got = ens.margins("ifnb", feats)
    np.testing.assert_allclose(got, member_margins(ens.members["ifnb"], feats), atol=1e-9)
    assert ens.merged_booster("ifnb") is False


def test_ensemble_refuses_merged_trees_that_disagree(tree_model, test_cohort, monkeypatch):
    import cytoresp.models.recommend as recommend

    real = recommend._merge_trees

    def shifted(members):  # the merged model of the members in the wrong order
        return real(list(reversed(members)))

    monkeypatch.setattr(recommend, "_merge_trees", shifted)
    ens = dataclasses.replace(tree_model.ensemble)
    frame = tree_model.model_frame(test_cohort[1]).iloc[:50]
    feats = tree_model.heads["ga"].engineered(frame)
    with pytest.warns(RuntimeWarning, match="disagree"):
        got = ens.margins("ga", feats)
    np.testing.assert_allclose(got, member_margins(ens.members["ga"], feats), atol=1e-9)


def test_ensemble_is_reproducible_and_parallel_safe(trained, training_rows, test_cohort):
    model, _ = trained
    frame = model.model_frame(test_cohort[1]).iloc[:50]
    serial = fit_bootstrap_ensemble(model.heads, training_rows, 3, seed=5, n_jobs=1)
    parallel = fit_bootstrap_ensemble(model.heads, training_rows, 3, seed=5, n_jobs=2)
    other = fit_bootstrap_ensemble(model.heads, training_rows, 3, seed=6, n_jobs=1)
    a = serial.difference_draws(model.heads, frame)
    assert a.shape == (3, 50)
    np.testing.assert_array_equal(a, parallel.difference_draws(model.heads, frame))
    # another seed: other bootstrap refits, scattered around the same point estimate
    b = other.difference_draws(model.heads, frame)
    assert not np.allclose(a, b)
    proba = model.predict_proba_frame(frame)
    point = (proba["p_response_ifnb"] - proba["p_response_ga"]).to_numpy()
    for draws in (a, b):
        assert np.corrcoef(draws.mean(axis=0), point)[0, 1] > 0.8


def test_sample_weights_change_the_members(trained, training_rows, test_cohort):
    model, _ = trained
    frame = model.model_frame(test_cohort[1]).iloc[:50]
    rng = np.random.default_rng(1)
    weights = {t: rng.uniform(0.2, 3.0, len(y)) for t, (_, y) in training_rows.items()}
    ones = {t: np.ones(len(y)) for t, (_, y) in training_rows.items()}
    plain = fit_bootstrap_ensemble(model.heads, training_rows, 2, seed=5)
    weighted = fit_bootstrap_ensemble(model.heads, training_rows, 2, seed=5, sample_weight=weights)
    unit = fit_bootstrap_ensemble(model.heads, training_rows, 2, seed=5, sample_weight=ones)
    expected = plain.difference_draws(model.heads, frame)
    # unit weights are no weights (same resamples, same fits): the weights are the only
    # thing that changes the members
    np.testing.assert_allclose(unit.difference_draws(model.heads, frame), expected, atol=1e-9)
    assert not np.allclose(weighted.difference_draws(model.heads, frame), expected)


def test_ensemble_arguments_are_checked(trained, training_rows):
    model, _ = trained
    with pytest.raises(UsageError, match="n_members must be an integer >= 1"):
        fit_bootstrap_ensemble(model.heads, training_rows, 0)
    with pytest.raises(UsageError, match="no training rows given for the ga head"):
        fit_bootstrap_ensemble(model.heads, {"ifnb": training_rows["ifnb"]}, 2)
    members = model.ensemble.members
    with pytest.raises(UsageError, match="same number of members"):
        BootstrapEnsemble({"ifnb": members["ifnb"][:2], "ga": members["ga"][:3]})


# -- persistence and the batch scorer ---------------------------------------------------------
def test_ensemble_survives_save_and_load(trained, model_dir, test_cohort, recommendation):
    model, _ = trained
    manifest = json.loads((model_dir / "manifest.json").read_text())
    # a tree file per therapy whose head (and so whose members) has trees
    with_trees = {t for t in ("ifnb", "ga") if model.heads[t].model.booster_ is not None}
    files = {f for f in manifest["files"] if f.startswith("ensemble_")}
    assert files == {f"ensemble_{t}.ubj.gz" for t in with_trees}
    size = sum(p.stat().st_size for p in model_dir.iterdir())
    assert size < 8_000_000, size
    again = load_model_dir(model_dir)
    assert again.ensemble.n_members == 10 and again.ensemble.level == 0.9
    pd.testing.assert_frame_equal(again.recommend(test_cohort[1]), recommendation)


def test_ensemble_trees_round_trip_and_are_checked(tree_model, test_cohort, tmp_path):
    assert all(m.n_trees_ == 30 for ms in tree_model.ensemble.members.values() for m in ms)
    tree_model.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert {"ensemble_ifnb.ubj.gz", "ensemble_ga.ubj.gz"} <= set(manifest["files"])
    again = load_model_dir(tmp_path / "m")
    frame = tree_model.model_frame(test_cohort[1]).iloc[:200]
    pd.testing.assert_frame_equal(again.recommend(frame), tree_model.recommend(frame))
    path = tmp_path / "m" / "ensemble_ga.ubj.gz"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ModelIntegrityError, match="ensemble_ga.ubj.gz was modified"):
        load_model_dir(tmp_path / "m")


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda raw: gzip.compress(raw + b"\0" * 10_000_000), "does not hold"),  # too big
        (lambda raw: gzip.compress(raw[:-100]), "does not hold"),  # short
        (lambda raw: b"not gzip at all", "not valid gzip"),
    ],
)
def test_ensemble_tree_file_never_inflates_past_its_declared_size(tree_model, tamper, message):
    state, files = tree_model.ensemble.to_state()
    crafted = tamper(gzip.decompress(files["ensemble_ga.ubj.gz"]))
    read = {**files, "ensemble_ga.ubj.gz": crafted}.__getitem__
    with pytest.raises(ModelIntegrityError, match=message):
        BootstrapEnsemble.from_state(state, read)


def test_model_saved_without_ensemble_recommends_the_same(trained, tmp_path, test_cohort):
    dataclasses.replace(trained[0], ensemble=None).save(tmp_path / "old")
    assert not list((tmp_path / "old").glob("ensemble_*"))
    again = load_model_dir(tmp_path / "old")
    assert again.ensemble is None
    # the recommendation does not use the ensemble
    pd.testing.assert_frame_equal(
        again.recommend(test_cohort[1]), trained[0].recommend(test_cohort[1])
    )
