"""Per-plate median normalisation: the transformer, its place in PanelFeatures, CV, models."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from cytoresp.errors import InputError, UsageError
from cytoresp.features.builder import PanelFeatures
from cytoresp.features.plates import (
    PLATE_COLUMN,
    PlateMedianNormaliser,
    PlateNormalisationWarning,
    column_medians,
    plate_codes,
)
from cytoresp.panels.panel import Panel


def _train(min_samples: int = 2) -> tuple[pd.DataFrame, PlateMedianNormaliser]:
    # plate A reads 1 lower than plate B; reference median of IL6 is 3
    X = pd.DataFrame({"plate": ["A"] * 3 + ["B"] * 3, "IL6": [1.0, 2.0, 3.0, 3.0, 4.0, 5.0]})
    return X, PlateMedianNormaliser(min_samples=min_samples).fit(X)


# -- plate codes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [("P1", "P1", True), ("P1", " P1 ", True), (3, "3", True), (3.0, "3", True),
     ("P1", "P2", False), ("plate01", "plate1", False), ("ä", "a", False)],
)
def test_plate_codes_are_stable_per_label(a, b, same):
    ca, cb = plate_codes([a])[0], plate_codes([b, "other"])[0]
    assert bool(ca == cb) is same
    assert 0 <= ca < 2**48 and float(ca).is_integer()


@pytest.mark.parametrize("missing", [None, np.nan, "", "   "])
def test_missing_plate_label_has_no_code(missing):
    assert np.isnan(plate_codes(["P1", missing])[1])


# -- the transformer ------------------------------------------------------------------------


def test_seen_plate_uses_the_median_learnt_at_fit_whatever_else_is_scored():
    X, norm = _train()
    assert norm.reference_.tolist() == [3.0]
    assert sorted(norm.plate_medians_.ravel().tolist()) == [2.0, 4.0]
    alone = norm.transform(pd.DataFrame({"plate": ["A"], "IL6": [10.0]}))
    with_others = norm.transform(
        pd.DataFrame({"plate": ["A"] * 4, "IL6": [10.0, 50.0, 60.0, 70.0]})
    )
    assert alone[0, 1] == with_others[0, 1] == 11.0  # shifted by 3 - 2


@pytest.mark.parametrize(
    ("values", "min_samples", "expected", "warns"),
    [
        ([6.0, 8.0], 2, [2.0, 4.0], False),  # own median 7 -> shift -4
        ([6.0, 8.0, 100.0], 3, [1.0, 3.0, 95.0], False),  # median 8 -> shift -5
        ([6.0], 2, [6.0], True),  # one sample, fewer than min_samples: unshifted
        ([6.0, 8.0], 3, [6.0, 8.0], True),
    ],
)
def test_new_plate_uses_its_own_rows_when_it_has_enough(values, min_samples, expected, warns):
    _, norm = _train(min_samples=1)
    norm.set_params(min_samples=min_samples)
    new = pd.DataFrame({"plate": ["C"] * len(values), "IL6": values})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = norm.transform(new)[:, 1]
    assert out.tolist() == expected
    assert any(issubclass(w.category, PlateNormalisationWarning) for w in caught) is warns


def test_new_plate_result_depends_on_its_plate_mates_and_rows_without_plate_are_unshifted():
    _, norm = _train()
    a = norm.transform(pd.DataFrame({"plate": ["C", "C"], "IL6": [6.0, 8.0]}))[0, 1]
    b = norm.transform(pd.DataFrame({"plate": ["C", "C"], "IL6": [6.0, 10.0]}))[0, 1]
    assert (a, b) == (2.0, 1.0)
    out = norm.transform(pd.DataFrame({"plate": [None, "A"], "IL6": [6.0, 6.0]}))
    assert out[:, 1].tolist() == [6.0, 7.0]


@pytest.mark.parametrize(
    ("values", "below", "expected"),
    [
        ([1.0, 2.0, 3.0], [False, False, False], 2.0),
        ([1.0, 2.0, 3.0], [True, False, False], 2.0),  # censored counted at its limit 1
        ([1.0, 1.0, 3.0], [True, True, False], np.nan),  # 2 of 3 censored: not trusted
        ([1.0, 1.0, 3.0, 4.0], [True, True, False, False], np.nan),  # half: not trusted
        ([np.nan, np.nan], [False, False], np.nan),  # nothing measured
        ([np.nan, 5.0], [False, False], 5.0),  # missing cells are left out
    ],
)
def test_column_medians_censoring_rule(values, below, expected):
    got = column_medians(np.array(values)[:, None], np.array(below)[:, None])[0]
    assert got == expected or (np.isnan(got) and np.isnan(expected))


def test_untrusted_median_means_no_shift():
    X = pd.DataFrame({"plate": ["A"] * 4 + ["B"] * 4, "IL6": [0.0] * 3 + [5.0] + [4.0] * 4})
    below = np.array([True] * 3 + [False] * 5)[:, None]  # plate A mostly below its limit
    norm = PlateMedianNormaliser(min_samples=2).fit(X, below=below)
    out = norm.transform(X, below=below)[:, 1]
    assert out[:4].tolist() == [0.0, 0.0, 0.0, 5.0]  # plate A: median not trusted
    assert out[4:].tolist() == [4.0] * 4  # plate B median 4 = reference (3 of 8 censored)
    assert norm.reference_.tolist() == [4.0]


@pytest.mark.parametrize(
    ("params", "X", "match"),
    [
        ({"min_samples": 0}, None, "min_samples"),
        ({"min_samples": 2.5}, None, "min_samples"),
        ({"plate_column": ""}, None, "plate_column"),
        ({}, pd.DataFrame({"IL6": [1.0]}), "no plate column"),
    ],
)
def test_bad_parameters_are_usage_errors(params, X, match):
    X = pd.DataFrame({"plate": ["A"], "IL6": [1.0]}) if X is None else X
    with pytest.raises(UsageError, match=match):
        PlateMedianNormaliser(**params).fit(X)


def test_round_trip_through_json_is_exact():
    X, norm = _train()
    again = PlateMedianNormaliser.from_dict(json.loads(json.dumps(norm.to_dict())))
    new = pd.DataFrame({"plate": ["A", "B", "C", "C"], "IL6": [1.0, 2.0, 3.0, 9.0]})
    assert np.array_equal(norm.transform(new), again.transform(new))


@parametrize_with_checks([PlateMedianNormaliser(plate_column="x0", min_samples=1)])
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlateNormalisationWarning)
        check(estimator)


# -- inside PanelFeatures ---------------------------------------------------------------------


def _panel(n_per_plate: int = 10, offset: float = 2.0, seed: int = 0) -> Panel:
    """Two plates; plate P2 reads every analyte ``2**offset`` times higher."""
    rng = np.random.default_rng(seed)
    n = 2 * n_per_plate
    index = pd.Index([f"S{i}" for i in range(n)], name="sample_id")
    logs = rng.normal(3.0, 1.0, size=(n, 3))
    logs[n_per_plate:] += offset
    values = pd.DataFrame(2.0**logs, index=index, columns=["IFNG", "IL10", "IL17A"])
    censoring = pd.DataFrame(0, index=index, columns=values.columns, dtype="int8")
    censoring.iloc[0, 0] = -1  # one censored cell
    plate = pd.Series(["P1"] * n_per_plate + ["P2"] * n_per_plate, index=index, dtype=object)
    return Panel(values, censoring, pd.DataFrame(index=index), plate=plate)


def test_model_frame_carries_the_plate_only_when_asked():
    panel = _panel()
    assert PLATE_COLUMN not in panel.to_model_frame().columns
    frame = panel.to_model_frame(plate=True)
    assert frame.columns[-1] == PLATE_COLUMN
    assert frame[PLATE_COLUMN].nunique() == 2
    no_plate = Panel(panel.values, panel.censoring, panel.covariates, source="x.csv")
    with pytest.raises(InputError, match="x.csv: no 'plate' column"):
        no_plate.to_model_frame(plate=True)


def test_panel_features_removes_the_plate_offset_and_keeps_the_affine_map():
    X = _panel(offset=2.0).to_model_frame(plate=True)
    pf = PanelFeatures(ratios=[("IFNG", "IL10")], axes={"Th1": ["IFNG", "IL17A"]},
                       plate_normalisation=True).fit(X)
    plain = PanelFeatures(ratios=[("IFNG", "IL10")], axes={"Th1": ["IFNG", "IL17A"]}).fit(X)
    assert PLATE_COLUMN not in pf.input_names_ and PLATE_COLUMN not in pf.ignored_columns_
    assert plain.ignored_columns_ == [PLATE_COLUMN]  # never an analyte, silently unused
    logs = pd.DataFrame(pf.transform(X)[:, :3], columns=["IFNG", "IL10", "IL17A"])
    gap = logs[10:].median() - logs[:10].median()
    raw_gap = np.log2(X.iloc[10:, :3].abs()).median() - np.log2(X.iloc[:10, :3].abs()).median()
    assert (raw_gap > 1.0).all() and (gap[["IL10", "IL17A"]].abs() < 1e-9).all()
    # IFNG: the medians count P1's censored cell at its limit, the output at limit / sqrt 2
    assert abs(gap["IFNG"]) <= 0.5
    # the explanation inputs are the shifted logs: transform == Z W' + offsets
    Z = pf.transform_inputs(X).to_numpy()
    F = pf.transform(X)
    W = pf.input_weights_.to_numpy()
    assert np.allclose(Z @ W.T + pf.feature_offsets_.to_numpy(), F, atol=1e-12)
    # the ratio moves by the difference of its two analytes' shifts (log2(a/b) of the
    # shifted logs), which is not zero here: IFNG and IL10 get different plate shifts
    P = plain.transform(X)
    shift_ifng, shift_il10 = F[:, 0] - P[:, 0], F[:, 1] - P[:, 1]
    np.testing.assert_allclose(F[:, 3] - P[:, 3], shift_ifng - shift_il10, atol=1e-9)
    assert np.abs(shift_ifng - shift_il10).max() > 0.1


def test_panel_features_with_plates_round_trips_and_old_saves_still_load():
    X = _panel().to_model_frame(plate=True)
    pf = PanelFeatures(plate_normalisation=True, plate_min_samples=4).fit(X)
    again = PanelFeatures.from_dict(json.loads(json.dumps(pf.to_dict())))
    assert np.array_equal(again.transform(X), pf.transform(X), equal_nan=True)
    plain = PanelFeatures().fit(X)
    saved = plain.to_dict()
    del saved["fitted"]["plates_"]
    del saved["params"]["plate_normalisation"], saved["params"]["plate_min_samples"]
    assert np.array_equal(PanelFeatures.from_dict(saved).transform(X), plain.transform(X),
                          equal_nan=True)


@pytest.mark.parametrize("params", [{"plate_normalisation": "yes"}, {"plate_min_samples": 0}])
def test_panel_features_bad_plate_parameters(params):
    X = _panel().to_model_frame(plate=True)
    with pytest.raises(UsageError):
        PanelFeatures(**params).fit(X)


def test_panel_features_needs_the_plate_column():
    X = _panel().to_model_frame()
    with pytest.raises(UsageError, match="plate_normalisation needs a 'plate' column"):
        PanelFeatures(plate_normalisation=True).fit(X)


# -- in cross-validation and training ---------------------------------------------------------


def test_normaliser_is_fitted_on_the_training_part_only():
    from cytoresp.train.config import TrainConfig
    from cytoresp.train.cv import make_baselines, make_head

    cfg = TrainConfig(plate_normalisation=True, features={"plate_min_samples": 3})
    X = _panel().to_model_frame(plate=True)
    train = X.iloc[:10]  # plate P1 only
    y = np.tile([0, 1], 5)
    head = make_head(cfg).fit(train, y)
    plates = head.named_steps["features"].plates_
    assert plates.min_samples == 3
    assert plates.plates_.tolist() == [plate_codes(["P1"])[0]]
    logistic = make_baselines(cfg, list(X.columns))["logistic"]()
    assert logistic.named_steps["features"].plate_normalisation is True


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"plate_normalisation": "true"}, "plate_normalisation must be true or false"),
        ({"features": {"plate_normalisation": True}}, "top level"),
    ],
)
def test_config_checks_plate_normalisation(data, match):
    from cytoresp.train.config import TrainConfig

    with pytest.raises(UsageError, match=match):
        TrainConfig.from_dict(data)


def test_config_reads_plate_normalisation_from_toml(tmp_path):
    from cytoresp.train.config import TrainConfig

    path = tmp_path / "train.toml"
    path.write_text("plate_normalisation = true\n[features]\nplate_min_samples = 5\n")
    cfg = TrainConfig.from_file(path)
    assert cfg.plate_normalisation is True and cfg.features == {"plate_min_samples": 5}


@pytest.fixture(scope="module")
def plate_model(tmp_path_factory):
    from cytoresp.datasets import simulate_cohort
    from cytoresp.train.config import TrainConfig
    from cytoresp.train.fitting import fit_response_model

    # fixed penalties and 30 trees per head: the tests below are about the normaliser being
    # used, saved and required, on a head with both a linear part and trees
    cfg = TrainConfig(n_splits=3, n_repeats=1, inner_splits=2, n_boot=20, n_jobs=1,
                      n_ensemble=0, plate_normalisation=True,
                      model={"n_estimators": 30, "early_stopping": False, "C": 0.3,
                             "C_ridge": 0.3})
    cohort = simulate_cohort(160, seed=3)
    model, _ = fit_response_model(cohort.panel, config=cfg)
    path = tmp_path_factory.mktemp("plates") / "model"
    model.save(path)
    return model, path


def test_trained_model_uses_and_saves_the_normaliser(plate_model):
    from cytoresp.datasets import simulate_cohort
    from cytoresp.models.response_model import ResponseModel

    model, path = plate_model
    assert "plate" in model.input_columns
    assert all(h.features.plates_ is not None for h in model.heads.values())
    assert "plate" not in model.training_ranges and "plate" not in model.training_quantiles
    new = simulate_cohort(40, seed=11).panel
    loaded = ResponseModel.load(path)
    assert np.array_equal(loaded.predict_proba(new).to_numpy(), model.predict_proba(new).to_numpy())
    explained = model.explain(new)
    assert "plate" not in set(explained["feature"])


def test_model_with_plates_refuses_a_panel_without_plate(plate_model):
    from cytoresp.datasets import simulate_cohort

    model, _ = plate_model
    table = simulate_cohort(10, seed=12).panel.drop(columns="plate")
    with pytest.raises(InputError, match="no 'plate' column"):
        model.predict_proba(table)


def test_cli_predict_without_plate_exits_2(plate_model, tmp_path, capsys):
    from cytoresp.cli import main
    from cytoresp.datasets import simulate_cohort

    _, path = plate_model
    src = tmp_path / "new.csv"
    simulate_cohort(10, seed=12).panel.drop(columns="plate").to_csv(src, index=False)
    out = tmp_path / "pred.csv"
    code = main(["predict", "--model", str(path), "--input", str(src), "--output", str(out)])
    assert code == 2
    assert "no 'plate' column" in capsys.readouterr().err
    assert not out.exists()


def test_pyfunc_takes_plate_labels(plate_model):
    from cytoresp.datasets import simulate_cohort
    from cytoresp.models.mlflow_flavour import CytorespPyfunc, signature_frame
    from cytoresp.panels.read import read_panel

    model, _ = plate_model
    panel = read_panel(simulate_cohort(20, seed=13).panel)
    frame = model.model_frame(panel)
    expected = model.predict_proba_frame(frame).to_numpy()
    labelled = frame.copy()
    labelled["plate"] = panel.plate.to_numpy()
    sig = signature_frame(labelled)
    assert not pd.api.types.is_numeric_dtype(sig["plate"])
    assert sig.drop(columns="plate").dtypes.eq(float).all()
    got = CytorespPyfunc(model).predict(sig)
    assert np.allclose(got.to_numpy(), expected)
    with pytest.raises(InputError, match="needs a 'plate' column"):
        CytorespPyfunc(model).predict(sig.drop(columns="plate"))
