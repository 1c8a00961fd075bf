"""Declared covariates and measurement columns (issue #13), read into the panel."""

from __future__ import annotations

import io

import numpy as np
import pytest

from cytoresp.errors import InputError
from cytoresp.panels import read_panel
from cytoresp.panels.declared import declared_columns

DECL = declared_columns(
    covariates={"BMI": "numeric",
                "smoking": {"kind": "categorical", "levels": ["never", "former", "current"]}},
    measurements={"m00_*": "log", "NfL": "concentration", "IL6 (NPX)": "log"},
    sample_id="patient",
)


def test_declared_columns_enter_the_panel_and_the_model_frame():
    csv = ("patient,IL10,NfL,BMI,smoking,m00_G01,m00_G02,m03_G01,IL6 (NPX),notes\n"
           "p1,2.5,8.1,24.5,never,-0.5,1.25,9,-1.5,x\n"
           "p2,<0.5,12,NA,current,0.25,.,9,2.0,y\n")
    panel = read_panel(io.StringIO(csv), columns=DECL)
    assert list(panel.sample_ids) == ["p1", "p2"]
    assert panel.analytes == ["IL10", "NEFL"]  # NfL is an analyte: pg/mL, censoring, log2
    frame = panel.to_model_frame()
    assert frame.loc["p1", "m00_G01"] == -0.5  # log scale: negative values are fine
    assert np.isnan(frame.loc["p2", "m00_G02"]) and np.isnan(frame.loc["p2", "BMI"])
    assert frame["IL6 (NPX)"].tolist() == [-1.5, 2.0]
    assert frame["smoking=current"].tolist() == [0.0, 1.0]
    assert frame["smoking=former"].tolist() == [0.0, 0.0]
    assert "smoking=never" not in frame  # the reference level
    ignored = next(w for w in panel.warnings if w.startswith("ignored"))
    assert "'m03_G01'" in ignored and "'notes'" in ignored  # undeclared: listed once


def test_a_panel_of_declared_measurements_only_is_accepted():
    csv = "patient,m00_G01,m00_G02\np1,0.1,0.2\np2,0.3,0.4\n"
    with pytest.raises(InputError, match="no column is a known analyte"):
        read_panel(io.StringIO(csv))
    panel = read_panel(io.StringIO(csv), columns=DECL)
    assert list(panel.covariates.columns) == ["m00_G01", "m00_G02"]


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ("patient,IL10,BMI\np1,1,heavy\n", r"row 2.*BMI is declared numeric: a number is "
                                           r"expected, got 'heavy'"),
        ("patient,IL10,smoking\np1,1,sometimes\n", r"'sometimes' is not a declared level of "
                                                   r"smoking \(never, former, current\)"),
        ("patient,IL10\np1,1\np1,2\n", "duplicate sample id 'p1'"),
    ],
)
def test_bad_declared_cells_are_problems(csv, message):
    with pytest.raises(InputError, match=message):
        read_panel(io.StringIO(csv), columns=DECL)


def test_a_concentration_that_is_not_an_analyte_is_refused():
    decl = declared_columns(measurements={"GFAP_x": "concentration"})
    with pytest.raises(InputError, match="declared a concentration but is not an analyte"):
        read_panel(io.StringIO("sample_id,IL6,GFAP_x\na,1,2\n"), columns=decl)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"covariates": {"bmi": "ratio"}}, "kind must be one of numeric, categorical"),
        ({"covariates": {"smoking": "categorical"}}, "needs its levels"),
        ({"covariates": {"smoking": {"kind": "categorical", "levels": ["a", "a"]}}},
         "needs its levels"),
        ({"covariates": {"smoking": {"kind": "categorical", "level": ["a", "b"]}}},
         "unknown key"),
        ({"measurements": {"x": "npx"}}, "scale must be one of concentration, log, numeric"),
        ({"covariates": {"x": "numeric"}, "measurements": {"x": "log"}}, "declared twice"),
    ],
)
def test_bad_declarations_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        declared_columns(**kwargs)


def test_features_of_a_panel_without_analytes_are_its_declared_inputs():
    import pandas as pd

    from cytoresp.errors import UsageError
    from cytoresp.features.builder import PanelFeatures

    X = pd.DataFrame({"m00_G01": [0.1, -0.2, 0.3], "m00_G02": [1.0, 2.0, -1.0]})
    pf = PanelFeatures(covariates=["m00_G01", "m00_G02"]).fit(X)
    assert pf.get_feature_names_out().tolist() == ["m00_G01", "m00_G02"]
    assert pf.transform(X).tolist() == X.to_numpy().tolist()  # not logged, not changed
    with pytest.raises(UsageError, match="no analyte column"):
        PanelFeatures().fit(X.rename(columns={"m00_G01": "age", "m00_G02": "edss"}))
