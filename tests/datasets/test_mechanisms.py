"""Tests of the simulator's other truths (``mechanism=``, issue 14): each has the property
it is named after, hits the prevalence, is as strong as the default, and leaves the
default mechanism bit-for-bit unchanged."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.metrics import roc_auc_score
from sklearn.tree import DecisionTreeRegressor

from cytoresp.datasets import simulate_cohort
from cytoresp.datasets.mechanisms import DENSE, SCENARIO_DRIVERS
from cytoresp.datasets.simulator import (
    ANALYTE_IDS,
    ANALYTES,
    DRIVERS,
    MECHANISMS,
    drivers_of,
    response_logits,
)
from cytoresp.errors import UsageError
from cytoresp.features.ratios import DEFAULT_RATIO_PAIRS
from cytoresp.panels.panel import CLINICAL_COVARIATES

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulator.md"
SPEC = {a.id: a for a in ANALYTES}
SIGNAL = ("dense", "threshold", "other")
THERAPIES = ("ifnb", "ga")


@pytest.fixture(scope="module")
def cohorts() -> dict[str, object]:
    """One 5,000-patient cohort per mechanism, same seed (the same patients)."""
    return {m: simulate_cohort(5000, seed=3, mechanism=m) for m in MECHANISMS}


# ---- the default is unchanged ---------------------------------------------------------

# Recorded from main (bcc048e) before the mechanism option existed: simulate_cohort(300,
# seed=5, **kw): truth.logit_ifnb[0], truth.logit_ga[17], sums of the two probabilities,
# observed responders, the two intercepts.
RECORDED = [
    ({}, -0.21170039631019, 2.5629477665029485, 191.53545213902757, 168.77324301422664, 178,
     1.3244379189488906, -0.021766560197415005),
    ({"heterogeneity": "small"}, -0.22827346453953168, 1.7917599357125367, 195.25931226158258,
     167.39695937577454, 167, 1.056303869855855, 0.2757937431617069),
    ({"heterogeneity": "none", "assignment": "confounded"}, -0.5137185788793179,
     1.8467219097291554, 181.51875206315688, 181.51875206315688, 176, 0.6870050952281705,
     0.6870050952281705),
    ({"signal_strength": 0.5, "prevalence_ifnb": 0.3}, -1.5245140095841498, 1.3657416113917338,
     88.28471343601493, 167.84467305799888, 128, -0.7564448519546094, 0.07338444804155202),
]  # fmt: skip


@pytest.mark.parametrize("explicit", [False, True])
@pytest.mark.parametrize(("kw", "l_ifnb", "l_ga", "s_ifnb", "s_ga", "resp", "b_ifnb", "b_ga"),
                         RECORDED)  # fmt: skip
def test_default_mechanism_is_unchanged(
    explicit, kw, l_ifnb, l_ga, s_ifnb, s_ga, resp, b_ifnb, b_ga
) -> None:
    extra = {"mechanism": "default"} if explicit else {}
    c = simulate_cohort(300, seed=5, **kw, **extra)
    t = c.truth
    assert t["logit_ifnb"].iloc[0] == pytest.approx(l_ifnb, rel=1e-12)
    assert t["logit_ga"].iloc[17] == pytest.approx(l_ga, rel=1e-12)
    assert t["p_response_ifnb"].sum() == pytest.approx(s_ifnb, rel=1e-12)
    assert t["p_response_ga"].sum() == pytest.approx(s_ga, rel=1e-12)
    assert int(c.panel["responder"].sum()) == resp
    assert c.params["intercept_ifnb"] == pytest.approx(b_ifnb, rel=1e-12)
    assert c.params["intercept_ga"] == pytest.approx(b_ga, rel=1e-12)
    assert c.params["mechanism"] == "default"
    if "heterogeneity" not in kw:
        assert c.drivers == {t: list(DRIVERS[t]) for t in THERAPIES}


# ---- every mechanism: same patients, prevalence, strength, drivers --------------------


def test_only_the_truth_changes_between_mechanisms(cohorts) -> None:
    base = cohorts["default"]
    for m in MECHANISMS[1:]:
        c = cohorts[m]
        pd.testing.assert_frame_equal(c.latent, base.latent)
        pd.testing.assert_frame_equal(c.panel[list(ANALYTE_IDS)], base.panel[list(ANALYTE_IDS)])
        assert c.panel["therapy"].equals(base.panel["therapy"])
        assert not np.allclose(c.truth["logit_ifnb"], base.truth["logit_ifnb"])
        assert c.params["mechanism"] == m


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize(("prev_ifnb", "prev_ga"), [(0.65, 0.55), (0.8, 0.3)])
def test_each_mechanism_hits_the_prevalence(mechanism, prev_ifnb, prev_ga) -> None:
    c = simulate_cohort(
        4000, seed=21, mechanism=mechanism, prevalence_ifnb=prev_ifnb, prevalence_ga=prev_ga
    )
    # the reference population is exact; a cohort of 4,000 scatters by about 0.25/sqrt(n)
    assert c.truth["p_response_ifnb"].mean() == pytest.approx(prev_ifnb, abs=0.02)
    assert c.truth["p_response_ga"].mean() == pytest.approx(prev_ga, abs=0.02)


@pytest.mark.parametrize("mechanism", SIGNAL)
def test_each_signal_has_the_default_strength(cohorts, mechanism) -> None:
    """Normalised to the default's logit sd on the reference population (docs)."""
    c, base = cohorts[mechanism], cohorts["default"]
    for t in THERAPIES:
        sd, sd0 = c.truth[f"logit_{t}"].std(), base.truth[f"logit_{t}"].std()
        assert sd == pytest.approx(sd0, rel=0.06), (t, sd, sd0)
        assert 0.8 < c.oracle_auc(t) < 0.9, t


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_drivers_are_exactly_the_inputs_of_the_logits(mechanism) -> None:
    c = simulate_cohort(500, seed=6, mechanism=mechanism)
    base = response_logits(c.latent, mechanism=mechanism)
    for column in c.latent.columns:
        moved = c.latent.copy()
        moved[column] = moved[column] + 1.0
        logits = response_logits(moved, mechanism=mechanism)
        for t in THERAPIES:
            changed = not np.allclose(logits[t], base[t], rtol=0, atol=1e-12)
            assert changed == (column in c.drivers[t]), (mechanism, t, column)


@pytest.mark.parametrize("mechanism", SIGNAL)
def test_drivers_are_ordered_by_importance(cohorts, mechanism) -> None:
    """RMS logit change on permuting each driver; ties (the two inputs of a product,
    equal dense coefficients) may come in either order, within 6%."""
    c = cohorts[mechanism]
    rng = np.random.default_rng(0)
    base = response_logits(c.latent, mechanism=mechanism)
    for t, drivers in c.drivers.items():
        importance = []
        for name in drivers:
            shuffled = c.latent.copy()
            shuffled[name] = rng.permutation(shuffled[name].to_numpy())
            delta = response_logits(shuffled, mechanism=mechanism)[t] - base[t]
            importance.append(float(np.sqrt(np.mean(delta**2))))
        for a, b in zip(importance, importance[1:], strict=False):
            assert b <= a * 1.06, (mechanism, t, importance)
        assert importance[-1] > 0.1 * importance[0]  # every driver matters


# ---- each mechanism has the property it is named after --------------------------------


def _linear_r2(latent: pd.DataFrame, y: pd.Series) -> float:
    return float(LinearRegression().fit(latent, y).score(latent, y))


def test_dense_is_log_linear_in_every_input(cohorts) -> None:
    c = cohorts["dense"]
    for t in THERAPIES:
        assert _linear_r2(c.latent, c.truth[f"logit_{t}"]) > 0.999
        assert set(c.drivers[t]) == set(ANALYTE_IDS) | set(CLINICAL_COVARIATES)
        coef = np.abs(list(DENSE[t].values()))
        assert coef.max() / coef.min() <= 2.5  # no input dominates


def test_threshold_needs_trees(cohorts) -> None:
    """A linear fit on every true input explains under a third of the logit (the default:
    over 0.9), and a depth-1 tree on the stepped cytokine finds the planted step."""
    c = cohorts["threshold"]
    for t in THERAPIES:
        assert _linear_r2(c.latent, c.truth[f"logit_{t}"]) < 0.33
        assert _linear_r2(cohorts["default"].latent, cohorts["default"].truth[f"logit_{t}"]) > 0.9
    for t, analyte, at in (("ifnb", "IL6", 1.0), ("ga", "IL13", 0.5)):
        planted = math.log2(SPEC[analyte].median) + at
        stump = DecisionTreeRegressor(max_depth=1).fit(c.latent[[analyte]], c.truth[f"logit_{t}"])
        assert stump.tree_.threshold[0] == pytest.approx(planted, abs=0.05), (t, analyte)
        # a jump across the threshold, nothing across a same-sized move elsewhere
        lo, hi = c.latent.copy(), c.latent.copy()
        lo[analyte], hi[analyte] = planted - 0.01, planted + 0.01
        jump = (
            response_logits(hi, mechanism="threshold")[t]
            - response_logits(lo, mechanism="threshold")[t]
        )
        assert np.ptp(jump) < 1e-9 and abs(jump[0]) > 0.5
        lo[analyte], hi[analyte] = planted + 1.0, planted + 1.02
        flat = (
            response_logits(hi, mechanism="threshold")[t]
            - response_logits(lo, mechanism="threshold")[t]
        )
        assert np.abs(flat).max() < 1e-9


def test_threshold_effect_reverses_with_the_covariate(cohorts) -> None:
    c = cohorts["threshold"]
    moved = c.latent.copy()
    moved["TNF"] = moved["TNF"] + 1.0
    gain = response_logits(moved, mechanism="threshold")["ifnb"] - c.truth["logit_ifnb"]
    young = c.latent["age"] <= 37
    assert (gain[young] > 0.3).all() and (gain[~young] < -0.3).all()


def test_other_drivers_avoid_the_default_ratios_and_drivers() -> None:
    defaults = {frozenset(p) for p in DEFAULT_RATIO_PAIRS}
    for t in THERAPIES:
        analytes = [d for d in SCENARIO_DRIVERS["other"][t] if d in ANALYTE_IDS]
        assert not set(analytes) & set(DRIVERS[t])  # none of the default's drivers
        for a in analytes:
            for b in analytes:
                assert frozenset((a, b)) not in defaults, (t, a, b)


def test_null_has_no_signal_at_all() -> None:
    c = simulate_cohort(20_000, seed=2, mechanism="null")
    for t, prev in (("ifnb", 0.65), ("ga", 0.55)):
        np.testing.assert_allclose(c.truth[f"p_response_{t}"], prev, rtol=1e-9)
        assert c.oracle_auc(t) == 0.5
        y = c.truth[f"responder_{t}"].to_numpy()
        assert abs(y.mean() - prev) < 4 * math.sqrt(prev * (1 - prev) / len(y))
        # the outcome is independent of every input: |AUC - 0.5| within 4 standard errors
        se = math.sqrt((len(y) + 1) / (12 * y.sum() * (len(y) - y.sum())))
        for column in c.latent.columns:
            auc = roc_auc_score(y, c.latent[column])
            assert abs(auc - 0.5) < 4 * se, (t, column, auc)
    assert c.drivers == {"ifnb": [], "ga": []}


# ---- composing with heterogeneity -----------------------------------------------------


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_mechanisms_compose_with_heterogeneity(mechanism) -> None:
    kw = {"prevalence_ifnb": 0.6, "prevalence_ga": 0.6, "mechanism": mechanism}
    diff = {}
    for level in ("none", "small", "large"):
        c = simulate_cohort(3000, seed=4, heterogeneity=level, **kw)
        diff[level] = (c.truth["p_response_ifnb"] - c.truth["p_response_ga"]).abs().mean()
        assert c.drivers == drivers_of(level, mechanism)
    assert diff["none"] == 0.0
    if mechanism == "null":
        assert diff["small"] == diff["large"] == 0.0
    else:
        assert 0.03 < diff["small"] < 0.15 < 0.2 < diff["large"], diff


# ---- bad options ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: simulate_cohort(10, mechanism="sparse"),
         r"mechanism must be one of \['default', 'dense', 'threshold', 'other', 'null'\], "
         r"got 'sparse'"),
        (lambda: simulate_cohort(10, mechanism=None), r"mechanism must be one of .*got None"),
        (lambda: simulate_cohort(0, mechanism="Dense"), r"n must be .*; mechanism must be"),
        (lambda: simulate_cohort(10, heterogeneity="x", mechanism="y"),
         r"heterogeneity must be .*; mechanism must be"),
        (lambda: response_logits({"IL6": np.zeros(2)}, mechanism="step"),
         r"mechanism must be one of"),
        (lambda: drivers_of("large", "threshholds"), r"drivers_of: mechanism must be one of"),
        (lambda: response_logits({"IL6": np.zeros(2)}, mechanism="threshold"),
         r"needs the latent values of \['CXCL10', 'IFNG', 'IL10', 'IL13'"),
        (lambda: response_logits({}, mechanism="null"), r"needs at least one latent column"),
    ],
)  # fmt: skip
def test_bad_mechanism_options_are_refused(call, match) -> None:
    with pytest.raises(UsageError, match=match):
        call()


def test_docs_give_every_mechanism_a_formula() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Other truths (`mechanism`)", 1)[1].split("\n## ", 1)[0]
    for m in MECHANISMS:
        assert f'### `"{m}"`' in section, m
    for name, b in DENSE["ifnb"].items():  # every dense coefficient is in the docs' table
        assert f"| {name} | {b:+.1f} | {DENSE['ga'][name]:+.1f} |" in section, name
    assert "k_t = sd_ref(default shape_t) / sd_ref(shape_t)" in section  # the normalisation
