"""simulate_longitudinal: visits, the on-treatment signal (and its absence), the baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cytoresp.datasets import simulate_cohort, simulate_longitudinal
from cytoresp.datasets.longitudinal import ON_TREATMENT_EFFECTS
from cytoresp.errors import UsageError
from cytoresp.features.change import ChangeFromBaseline
from cytoresp.features.landmark import landmark_table
from cytoresp.panels import read_panel


def _changes(cohort, landmark):
    """Per patient: measured log2 changes (ChangeFromBaseline) beside therapy, responder."""
    table = landmark_table(read_panel(cohort.panel), landmark)
    change = ChangeFromBaseline(ratios=None, add_indicators=False).fit(table)
    out = change.set_output(transform="pandas").transform(table)
    info = cohort.panel.drop_duplicates("patient_id").set_index("patient_id")
    return out.join(info[["therapy", "responder"]])


@pytest.fixture(scope="module")
def cohorts():
    return {mode: simulate_longitudinal(1500, seed=17, visits=(0, 3, 6), on_treatment=mode)
            for mode in ("literature", "none")}


def test_baseline_only_is_simulate_cohort_unchanged():
    a = simulate_longitudinal(120, seed=4, visits=(0,), platform="msd")
    b = simulate_cohort(120, seed=4, platform="msd")
    pd.testing.assert_frame_equal(a.panel, b.panel)
    pd.testing.assert_frame_equal(a.truth, b.truth)


def test_visits_keep_the_baseline_patients_measurements_and_outcomes(cohorts):
    c = cohorts["literature"]
    base = simulate_cohort(1500, seed=17)
    at0 = c.panel[c.panel["month"] == 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(at0.drop(columns=["sample_id", "patient_id", "month"]),
                                  base.panel.drop(columns="sample_id"))
    assert at0["patient_id"].tolist() == base.panel["sample_id"].tolist()
    assert c.truth["patient_id"].tolist() == base.panel["sample_id"].tolist()
    np.testing.assert_array_equal(c.truth["p_response_ifnb"], base.truth["p_response_ifnb"])
    assert c.oracle_auc("ifnb") == base.oracle_auc("ifnb")


def test_panel_layout_and_validation(cohorts):
    c = cohorts["literature"]
    assert c.panel.columns[:6].tolist() == ["sample_id", "patient_id", "month", "plate",
                                            "therapy", "responder"]
    assert len(c.panel) == 3 * 1500 and c.panel["sample_id"].is_unique
    per_patient = c.panel.groupby("patient_id", sort=False)["month"].apply(tuple)
    assert set(per_patient) == {(0, 3, 6)}
    p = read_panel(c.panel, require_labels=True)
    assert p.has_visits and not [w for w in p.warnings if "baseline" in w]
    # later visits are measured on plates of their own
    assert c.panel.loc[c.panel["month"] == 3, "plate"].str.startswith("m3-plate").all()


def test_missed_visits():
    c = simulate_longitudinal(2000, seed=2, visits=(0, 3, 6), missed_visit_rate=0.25)
    counts = c.panel["month"].value_counts()
    assert counts[0] == 2000
    for m in (3, 6):
        assert abs(counts[m] / 2000 - 0.75) < 4 * np.sqrt(0.25 * 0.75 / 2000)


# the documented direction of each response-dependent change (docs/simulator.md)
DIRECTIONS = [(t, a, np.sign(e.responders - e.non_responders))
              for t, eff in ON_TREATMENT_EFFECTS.items() for a, e in eff.items()
              if e.responders != e.non_responders]


def test_the_directions_are_the_issue_s():
    assert {(t, a): int(s) for t, a, s in DIRECTIONS} == {
        ("ifnb", "IL10"): 1, ("ifnb", "IL17A"): -1, ("ifnb", "IFNG"): -1,
        ("ga", "TNF"): -1, ("ga", "IL4"): 1, ("ga", "IL10"): 1, ("ga", "IFNG"): -1,
    }


@pytest.mark.parametrize("landmark", [3, 6])
def test_responders_change_differently_in_the_documented_direction(cohorts, landmark):
    ch = _changes(cohorts["literature"], landmark)
    for therapy, analyte, sign in DIRECTIONS:
        d = ch[ch["therapy"] == therapy]
        r = d.loc[d["responder"] == 1, f"{analyte} Δ"].dropna()
        nr = d.loc[d["responder"] == 0, f"{analyte} Δ"].dropna()
        t, p = stats.ttest_ind(r, nr, equal_var=False)
        assert np.sign(t) == sign and p < 1e-4, (therapy, analyte, landmark, t, p)


def test_without_on_treatment_signal_changes_do_not_depend_on_response(cohorts):
    """Null check at a fixed seed: no analyte's change separates responders (Bonferroni
    over the 22 tests at family level 0.01), the mean differences are small, while the
    therapy's average change is still there."""
    n_tests = 2 * len(DIRECTIONS) + 2 * 4
    for landmark in (3, 6):
        ch = _changes(cohorts["none"], landmark)
        pairs = [(t, a) for t, a, _ in DIRECTIONS] + [("ifnb", "CXCL10"), ("ifnb", "TNFSF13B"),
                                                       ("ga", "IL17A"), ("ga", "IL6")]
        for therapy, analyte in pairs:
            d = ch[ch["therapy"] == therapy]
            r = d.loc[d["responder"] == 1, f"{analyte} Δ"].dropna()
            nr = d.loc[d["responder"] == 0, f"{analyte} Δ"].dropna()
            p = stats.ttest_ind(r, nr, equal_var=False).pvalue
            assert p > 0.01 / n_tests, (therapy, analyte, landmark, p)
            assert abs(r.mean() - nr.mean()) < 0.15
        ifnb = ch[ch["therapy"] == "ifnb"]
        assert ifnb["CXCL10 Δ"].mean() > 0.3   # the pharmacodynamic effect, for everyone


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"visits": (3, 6)}, "visits must start with 0"),
        ({"visits": (0, 6, 3)}, "visits must start with 0 .* and increase"),
        ({"visits": (0, -3)}, "visits must be a sequence of months >= 0"),
        ({"visits": "0,3"}, "visits must be a sequence"),
        ({"on_treatment": "strong"}, "on_treatment must be one of"),
        ({"missed_visit_rate": 1.0}, r"missed_visit_rate must be in \[0, 1\)"),
        ({"on_treatment_strength": -1}, "on_treatment_strength must be a finite number >= 0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(UsageError, match=match):
        simulate_longitudinal(10, seed=0, **kwargs)


def test_same_seed_same_visits():
    a = simulate_longitudinal(80, seed=5, visits=(0, 3))
    b = simulate_longitudinal(80, seed=5, visits=(0, 3))
    pd.testing.assert_frame_equal(a.panel, b.panel)
    c = simulate_longitudinal(80, seed=6, visits=(0, 3))
    assert not a.panel["IL10"].equals(c.panel["IL10"])


def test_strength_scales_the_planted_change():
    """Twice the strength, twice the mean change of a never-censored analyte (CXCL10 on
    IFN-beta: +0.5 log2 for everyone), up to the within-person noise."""
    means = []
    for strength in (0.0, 1.0, 2.0):
        c = simulate_longitudinal(3000, seed=3, visits=(0, 6), on_treatment_strength=strength)
        ch = _changes(c, 6)
        means.append(ch.loc[ch["therapy"] == "ifnb", "CXCL10 Δ"].mean())
    assert abs(means[0]) < 0.04
    expected = 0.5 * (1 - np.exp(-6 / 0.5))
    assert means[1] == pytest.approx(expected, abs=0.04)
    assert means[2] == pytest.approx(2 * expected, abs=0.04)
