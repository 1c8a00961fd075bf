"""Tests of the simulated cohort: its contract, its numbers and its documented truth."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.stats import ks_2samp
from sklearn.linear_model import LogisticRegression

from cytoresp.datasets import SimulatedCohort, simulate_cohort
from cytoresp.datasets.simulator import (
    ANALYTE_IDS,
    ANALYTES,
    MEASUREMENT_SD_LOG2,
    PLATFORMS,
    response_logits,
)
from cytoresp.errors import UsageError
from cytoresp.panels.panel import CLINICAL_COVARIATES

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulator.md"
SPEC = {a.id: a for a in ANALYTES}
REQUIRED = (
    "IFNG TNF IL12 IL4 IL17A IL17F IL22 IL23 IL10 TGFB1 IL1B IL6 IL18 CXCL10 TNFSF13B CXCL13"
).split()
NUMBER = re.compile(r"^\d+(\.\d+)?$")


@pytest.fixture(scope="module")
def big() -> SimulatedCohort:
    return simulate_cohort(5000, seed=11)


@pytest.fixture(scope="module")
def large() -> SimulatedCohort:
    return simulate_cohort(20_000, seed=0)


def parse(column: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(value, below, above, missing) of a text column, as a reader would see it."""
    s = column.astype(str)
    below = s.str.startswith("<").to_numpy()
    above = s.str.startswith(">").to_numpy()
    missing = (s == "").to_numpy()
    value = pd.to_numeric(s.where(~(below | above | missing)), errors="raise").to_numpy()
    return value.astype(float), below, above, missing


# ---- shape of the panel and the truth -------------------------------------------------


def test_columns_order_and_types(big: SimulatedCohort) -> None:
    panel, truth = big.panel, big.truth
    head = ["sample_id", "plate", "therapy", "responder", *CLINICAL_COVARIATES]
    assert list(panel.columns) == head + list(ANALYTE_IDS)
    assert set(REQUIRED) <= set(ANALYTE_IDS)
    assert list(truth.columns) == [
        "sample_id",
        "p_response_ifnb",
        "p_response_ga",
        "logit_ifnb",
        "logit_ga",
        "responder_ifnb",
        "responder_ga",
        "propensity_ifnb",
    ]
    assert panel["sample_id"].iloc[0] == "P0001" and panel["sample_id"].iloc[-1] == "P5000"
    assert panel["sample_id"].is_unique
    assert (truth["sample_id"] == panel["sample_id"]).all()
    assert panel["plate"].str.fullmatch(r"plate\d{3}").all()  # 125 plates -> 3 digits
    assert set(panel["therapy"]) == {"ifnb", "ga"}
    assert set(panel["sex"]) == {"F", "M"}
    for col in ("responder", "relapses_prior_2y", "gd_lesions", "age"):
        assert panel[col].dtype == np.int64
    assert set(panel["responder"]) == {0, 1}
    for a in ANALYTE_IDS:
        assert all(isinstance(v, str) for v in panel[a].iloc[:50])


def test_covariates_are_in_range(big: SimulatedCohort) -> None:
    p = big.panel
    edss = p["edss"].to_numpy()
    assert set(np.unique(edss)) <= {0.0, *np.arange(1.0, 10.01, 0.5)}  # no EDSS 0.5
    assert p["age"].between(18, 65).all()
    assert (p["disease_duration_y"] > 0).all()
    assert (p["disease_duration_y"] <= p["age"] - 15 + 1e-9).all()
    assert (p["relapses_prior_2y"] >= 0).all() and (p["gd_lesions"] >= 0).all()
    assert abs((p["sex"] == "F").mean() - 0.70) < 0.03
    assert abs(p["age"].mean() - 37) < 1.0


def test_sample_id_width_grows_with_n() -> None:
    c = simulate_cohort(12_345, seed=0, n_plates=3)
    assert c.panel["sample_id"].iloc[-1] == "P12345"
    assert c.panel["sample_id"].iloc[0] == "P00001"
    assert sorted(c.panel["plate"].unique()) == ["plate01", "plate02", "plate03"]


def test_params_are_json_and_complete(big: SimulatedCohort) -> None:
    params = json.loads(json.dumps(big.params))
    assert params["n"] == 5000 and params["seed"] == 11 and params["n_plates"] == 125
    assert params["platform"] == "luminex_hs" and params["assignment"] == "randomised"
    assert params["analytes"]["IL10"]["lloq"] == 0.56
    assert {"intercept_ifnb", "intercept_ga", "missing_rate", "plate_effect_sd"} <= set(params)


def test_repr_is_short(big: SimulatedCohort) -> None:
    assert repr(big) == (
        "SimulatedCohort(n=5000, seed=11, platform='luminex_hs', assignment='randomised')"
    )


# ---- concentrations, censoring, strings -----------------------------------------------


def test_latent_marginals_match_the_documented_medians_and_spreads() -> None:
    latent = simulate_cohort(20_000, seed=3).latent
    for a in ANALYTES:
        x = latent[a.id].to_numpy()
        assert 2 ** np.median(x) == pytest.approx(a.median, rel=0.05), a.id
        assert x.std() == pytest.approx(a.sd_log2, rel=0.04), a.id
    corr = latent[list(ANALYTE_IDS)].corr()
    assert corr.loc["IL17A", "IL17F"] > 0.45  # same axis
    assert corr.loc["IFNG", "IL17A"] > 0.1  # Th1-Th17 positive
    assert corr.loc["IL10", "IL17F"] < -0.1  # Treg-Th17 negative
    assert abs(corr.loc["IL4", "IL17F"]) < 0.05  # Th2-Th17 independent


def _documented_censoring() -> dict[str, dict[str, float]]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Censoring rates", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header = [h.strip() for h in rows[0].strip("|").split("|")]
    table: dict[str, dict[str, float]] = {}
    for line in rows[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        table[cells[0]] = {h: float(v) / 100 for h, v in zip(header[1:], cells[1:], strict=True)}
    return table


def test_docs_list_every_analyte_and_platform() -> None:
    table = _documented_censoring()
    assert list(table) == list(ANALYTE_IDS)
    assert all(set(row) == set(PLATFORMS) for row in table.values())


@pytest.mark.parametrize("platform", PLATFORMS)
def test_censoring_rates_match_the_docs(platform: str) -> None:
    documented = _documented_censoring()
    panel = simulate_cohort(5000, seed=5, platform=platform).panel
    for a in ANALYTE_IDS:
        rate = documented[a][platform]
        _, below, _, missing = parse(panel[a])
        measured = below[~missing].mean()
        tol = 4 * math.sqrt(rate * (1 - rate) / 5000) + 0.01  # binomial + plate scatter
        assert abs(measured - rate) <= tol, (a, platform, measured, rate)


def test_standard_luminex_censors_il4_il17a_il2_heavily() -> None:
    # LITERATURE.md section 6.2
    panel = simulate_cohort(2000, seed=1, platform="luminex_standard").panel
    for a, least in (("IL4", 0.8), ("IL2", 0.7), ("IL17A", 0.35)):
        assert parse(panel[a])[1].mean() > least


def test_censored_cells_name_the_platform_limit(big: SimulatedCohort) -> None:
    il10 = big.panel["IL10"]
    assert set(il10[il10.str.startswith("<")]) == {"<0.56"}
    assert set(big.panel["IL4"][big.panel["IL4"].str.startswith("<")]) == {"<1.12"}
    assert set(big.panel["IL23"][big.panel["IL23"].str.startswith(">")]) == {">2500"}
    std = simulate_cohort(300, seed=0, platform="luminex_standard").panel["IL4"]
    assert set(std[std.str.startswith("<")]) == {"<4.5"}


def test_every_cell_is_a_number_a_limit_or_empty(big: SimulatedCohort) -> None:
    for a in ANALYTES:
        col = big.panel[a.id]
        lloq = f"<{np.format_float_positional(a.lloq_for('luminex_hs'), trim='-')}"
        uloq = f">{np.format_float_positional(a.uloq, trim='-')}"
        kinds = col.isin([lloq, uloq, ""]) | col.str.fullmatch(NUMBER.pattern)
        assert kinds.all(), (a.id, col[~kinds].head().tolist())
        value, below, above, _ = parse(col)
        measured = value[~np.isnan(value)]
        assert measured.min() >= a.lloq_for("luminex_hs") * (1 - 5e-4)
        assert measured.max() <= a.uloq * (1 + 5e-4)


def test_values_have_four_significant_digits(big: SimulatedCohort) -> None:
    for a in ("IL10", "IL17F", "IL18", "TGFB1"):
        col = big.panel[a]
        numbers = col[col.str.fullmatch(NUMBER.pattern)]
        for s in numbers.iloc[:300]:
            digits = s.replace(".", "").lstrip("0")
            significant = digits if "." in s else digits[:4]
            assert len(significant) == 4, s
            if "." not in s:
                assert set(digits[4:]) <= {"0"}, s


def test_missing_rate() -> None:
    for rate in (0.0, 0.1):
        panel = simulate_cohort(3000, seed=2, missing_rate=rate).panel
        cells = panel[list(ANALYTE_IDS)].to_numpy()
        share = (cells == "").mean()
        assert abs(share - rate) <= 4 * math.sqrt(rate * (1 - rate) / cells.size)


def test_measurement_error_is_noise_plus_plate_offsets() -> None:
    # TNF on MSD is essentially never censored: measured - true = noise + plate offset.
    for plate_sd in (0.0, 0.5):
        c = simulate_cohort(4000, seed=8, platform="msd", n_plates=40, plate_effect_sd=plate_sd)
        value, *_ = parse(c.panel["TNF"])
        resid = pd.Series(np.log2(value) - c.latent["TNF"].to_numpy())
        ok = resid.notna().to_numpy()
        plate_means = resid[ok].groupby(c.panel["plate"][ok]).mean()
        within = (resid - resid.groupby(c.panel["plate"]).transform("mean"))[ok]
        assert within.std() == pytest.approx(MEASUREMENT_SD_LOG2, rel=0.1)
        # 40 plates: the sd of plate means estimates plate_sd (+ noise/sqrt(100) ~ 0.02)
        assert plate_means.std() == pytest.approx(max(plate_sd, 0.02), abs=0.12 * plate_sd + 0.02)


def test_default_plate_count_is_about_40_samples_per_plate() -> None:
    assert simulate_cohort(600, seed=0).params["n_plates"] == 15
    assert simulate_cohort(10, seed=0).params["n_plates"] == 1
    counts = simulate_cohort(600, seed=0).panel["plate"].value_counts()
    assert counts.min() == counts.max() == 40


def test_to_csv_round_trips(tmp_path: Path) -> None:
    c = simulate_cohort(200, seed=4)
    c.to_csv(tmp_path / "panel.csv", truth_path=tmp_path / "truth.csv")
    back = pd.read_csv(tmp_path / "panel.csv", dtype=str, keep_default_na=False)
    assert list(back.columns) == list(c.panel.columns)
    for col in c.panel.columns:
        assert back[col].tolist() == c.panel[col].astype(str).tolist(), col
    with_na = pd.read_csv(tmp_path / "panel.csv")
    assert with_na["IL10"].isna().sum() == (c.panel["IL10"] == "").sum()
    truth = pd.read_csv(tmp_path / "truth.csv")
    np.testing.assert_allclose(truth["p_response_ga"], c.truth["p_response_ga"], rtol=1e-12)
    only = tmp_path / "only"
    only.mkdir()
    c.to_csv(only / "panel.csv")
    assert [f.name for f in only.iterdir()] == ["panel.csv"]


# ---- determinism ----------------------------------------------------------------------


def test_same_seed_same_cohort_other_seed_other_cohort() -> None:
    a, b, other = simulate_cohort(300, 7), simulate_cohort(300, 7), simulate_cohort(300, 8)
    pd.testing.assert_frame_equal(a.panel, b.panel)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    # another seed: other patients (no patient's probability repeats) ...
    p_a, p_other = a.truth["p_response_ifnb"].to_numpy(), other.truth["p_response_ifnb"].to_numpy()
    assert not a.panel["IL10"].equals(other.panel["IL10"])
    assert np.mean(np.isclose(p_a, p_other, rtol=0, atol=1e-12)) < 0.01
    # ... from the same population: same planted drivers, same distributions
    assert a.drivers == other.drivers
    for col in ("p_response_ifnb", "p_response_ga"):
        assert ks_2samp(a.truth[col], other.truth[col]).pvalue > 0.01, col
    il10 = [pd.to_numeric(c.panel["IL10"], errors="coerce").dropna() for c in (a, other)]
    assert ks_2samp(*il10).pvalue > 0.01


def test_seed_none_is_fresh_but_reproducible() -> None:
    a, b = simulate_cohort(100, None), simulate_cohort(100, None)
    assert not a.truth["logit_ga"].equals(b.truth["logit_ga"])
    again = simulate_cohort(100, a.params["entropy"])
    pd.testing.assert_frame_equal(a.panel, again.panel)


def test_measurement_options_keep_patients_and_outcomes() -> None:
    base = simulate_cohort(400, seed=3)
    for kw in ({"platform": "msd"}, {"missing_rate": 0.2}, {"plate_effect_sd": 0.5}):
        other = simulate_cohort(400, seed=3, **kw)
        pd.testing.assert_frame_equal(base.truth, other.truth)
        pd.testing.assert_frame_equal(base.latent, other.latent)
        assert base.panel["therapy"].equals(other.panel["therapy"])
    # the assignment rule changes who gets what, never the potential outcomes
    conf = simulate_cohort(400, seed=3, assignment="confounded")
    pd.testing.assert_frame_equal(base.truth.iloc[:, :7], conf.truth.iloc[:, :7])


# ---- the truth ------------------------------------------------------------------------


@pytest.mark.parametrize(("prev_ifnb", "prev_ga"), [(0.65, 0.55), (0.8, 0.3), (0.5, 0.5)])
def test_mean_true_probability_is_the_prevalence(prev_ifnb: float, prev_ga: float) -> None:
    c = simulate_cohort(5000, seed=21, prevalence_ifnb=prev_ifnb, prevalence_ga=prev_ga)
    assert c.truth["p_response_ifnb"].mean() == pytest.approx(prev_ifnb, abs=0.015)
    assert c.truth["p_response_ga"].mean() == pytest.approx(prev_ga, abs=0.015)


def test_observed_response_rates_within_binomial_tolerance(big: SimulatedCohort) -> None:
    for therapy, prev in (("ifnb", 0.65), ("ga", 0.55)):
        y = big.panel.loc[big.panel["therapy"] == therapy, "responder"]
        se = math.sqrt(prev * (1 - prev) / len(y))
        assert abs(y.mean() - prev) < 4 * se + 0.015  # + scatter of the mean true p


def test_observed_outcome_is_the_potential_outcome_of_the_given_therapy(
    big: SimulatedCohort,
) -> None:
    t, p = big.truth, big.panel
    for therapy in ("ifnb", "ga"):
        given = p["therapy"] == therapy
        assert (p.loc[given, "responder"] == t.loc[given, f"responder_{therapy}"]).all()


@pytest.mark.parametrize("therapy", ["ifnb", "ga"])
def test_true_probabilities_are_calibrated(large: SimulatedCohort, therapy: str) -> None:
    """The mean potential outcome in each tenth of the true probability matches it."""
    t = large.truth
    bins = pd.qcut(t[f"p_response_{therapy}"], 10, labels=False)
    grouped = t.groupby(bins)
    observed = grouped[f"responder_{therapy}"].mean()
    expected = grouped[f"p_response_{therapy}"].mean()
    se = np.sqrt(expected * (1 - expected) / grouped.size())
    assert (np.abs(observed - expected) < 4 * se).all()
    assert expected.iloc[-1] - expected.iloc[0] > 0.5  # the bins really differ


def _rel(latent: pd.DataFrame, analyte: str) -> np.ndarray:
    return latent[analyte].to_numpy() - math.log2(SPEC[analyte].median)


def _planted_ifnb(latent: pd.DataFrame) -> dict[str, tuple[np.ndarray, float]]:
    """IFN-beta terms (docs/simulator.md) and their planted log-odds coefficients."""
    th17_high = expit((_rel(latent, "IL17F") - 1.0) / 0.25)
    return {
        "IL17F": (_rel(latent, "IL17F"), -0.5),
        "IL10": (_rel(latent, "IL10"), 0.5),
        "CXCL10": (_rel(latent, "CXCL10"), -0.7),
        "IFNG where Th17 is low": (_rel(latent, "IFNG") * (1 - th17_high), 0.7),
        "IL17F > 2x median": (th17_high, -1.5),
        "IL17F > 200 pg/mL": (expit((latent["IL17F"].to_numpy() - math.log2(200)) / 0.25), -2.5),
        "relapses_prior_2y": (latent["relapses_prior_2y"].to_numpy(), -0.25),
        "edss": (latent["edss"].to_numpy(), -0.2),
    }


def _planted_ga(latent: pd.DataFrame) -> dict[str, tuple[np.ndarray, float]]:
    """Glatiramer-acetate terms (docs/simulator.md) and their planted coefficients."""
    ifng, il4 = _rel(latent, "IFNG"), _rel(latent, "IL4")
    return {
        "IL18": (_rel(latent, "IL18"), 1.1),
        "IL4": (il4, 0.5 + 0.4),  # in IL4 - IFNG and in -(TNF - IL4)
        "IFNG": (ifng, -0.5),
        "TNF": (_rel(latent, "TNF"), -0.4),
        "IFNG and IL4 both high": (expit(ifng / 0.25) * expit(il4 / 0.25), 1.0),
        "edss": (latent["edss"].to_numpy(), -0.2),
        "gd_lesions": (latent["gd_lesions"].to_numpy(), -0.15),
    }


@pytest.mark.parametrize(("therapy", "terms"), [("ifnb", _planted_ifnb), ("ga", _planted_ga)])
def test_planted_effects_are_recovered_from_the_outcomes(
    large: SimulatedCohort, therapy: str, terms
) -> None:
    """An unpenalised logistic fit of the drawn outcomes on the documented terms finds
    each planted coefficient within 4 standard errors (and its sign where it is clear)."""
    planted = terms(large.latent)
    X = np.column_stack([x for x, _ in planted.values()])
    truth = np.array([b for _, b in planted.values()])
    y = large.truth[f"responder_{therapy}"].to_numpy()
    fit = LogisticRegression(C=np.inf, max_iter=1000).fit(X, y)
    p = fit.predict_proba(X)[:, 1]
    X1 = np.column_stack([X, np.ones(len(X))])
    se = np.sqrt(np.diag(np.linalg.inv(X1.T @ (X1 * (p * (1 - p))[:, None]))))[:-1]
    coef = fit.coef_[0]
    for name, b, t, s in zip(planted, coef, truth, se, strict=True):
        assert abs(b - t) < 4 * s, (therapy, name, b, t, s)
        if abs(t) > 4 * s:
            assert np.sign(b) == np.sign(t), (therapy, name, b, t)


def test_drivers_are_exactly_the_inputs_of_the_logits() -> None:
    c = simulate_cohort(500, seed=6)
    base = response_logits(c.latent)
    for column in c.latent.columns:
        moved = c.latent.copy()
        moved[column] = moved[column] + 1.0
        logits = response_logits(moved)
        for therapy in ("ifnb", "ga"):
            changed = not np.allclose(logits[therapy], base[therapy], rtol=0, atol=1e-12)
            assert changed == (column in c.drivers[therapy]), (therapy, column)
    assert "IL17A" not in c.drivers["ifnb"]  # the correlated decoy


def test_drivers_are_ordered_by_importance(large: SimulatedCohort) -> None:
    c = large
    rng = np.random.default_rng(0)
    base = response_logits(c.latent)
    for therapy, drivers in c.drivers.items():
        importance = []
        for name in drivers:
            shuffled = c.latent.copy()
            shuffled[name] = rng.permutation(shuffled[name].to_numpy())
            delta = response_logits(shuffled)[therapy] - base[therapy]
            importance.append(float(np.sqrt(np.mean(delta**2))))
        assert importance == sorted(importance, reverse=True), (therapy, importance)


def test_mechanisms_follow_the_literature_directions() -> None:
    c = simulate_cohort(2000, seed=9)
    base = response_logits(c.latent)

    def shift(name: str, by: float) -> dict[str, np.ndarray]:
        moved = c.latent.copy()
        moved[name] = moved[name] + by
        return response_logits(moved)

    # IFN-beta: more IL-17F or CXCL10 -> lower response (Axtell 2010, Comabella 2009)
    assert (shift("IL17F", 1.0)["ifnb"] < base["ifnb"]).all()
    assert (shift("CXCL10", 1.0)["ifnb"] < base["ifnb"]).all()
    # GA: more IL-18 -> higher response (Valenzuela 2016)
    assert (shift("IL18", 1.0)["ga"] > base["ga"]).all()
    # IFN-gamma helps IFN-beta only where Th17 is not dominant (interaction)
    gain = shift("IFNG", 1.0)["ifnb"] - base["ifnb"]
    th17_low = c.latent["IL17F"].to_numpy() < np.log2(16.5)
    th17_high = c.latent["IL17F"].to_numpy() > np.log2(16.5 * 4)
    assert gain[th17_low].mean() > 0.4 > 0.1 > gain[th17_high].mean()
    # all patients with IL-17F > 200 pg/mL had disease activity (Hartung 2013)
    extreme = c.truth["p_response_ifnb"][c.latent["IL17F"] > np.log2(200)]
    assert len(extreme) > 0 and extreme.max() < 0.3


def test_oracle_auc_in_documented_range() -> None:
    aucs = {t: [] for t in ("ifnb", "ga")}
    for seed in range(5):
        c = simulate_cohort(600, seed=seed)
        for t in aucs:
            aucs[t].append(c.oracle_auc(t))
        assert 0.75 < c.oracle_auc() < 0.9
    for t, values in aucs.items():
        assert all(0.74 < v < 0.9 for v in values), (t, values)
        assert 0.8 < np.mean(values) < 0.88, (t, values)
    # the documented values for seed 0
    c0 = simulate_cohort(600, seed=0)
    assert round(c0.oracle_auc("ifnb"), 3) == 0.821
    assert round(c0.oracle_auc("ga"), 3) == 0.866


def test_population_oracle_auc_is_in_the_target_band(big: SimulatedCohort) -> None:
    from sklearn.metrics import roc_auc_score

    for t in ("ifnb", "ga"):
        auc = roc_auc_score(big.truth[f"responder_{t}"], big.truth[f"p_response_{t}"])
        assert 0.8 < auc < 0.88


def test_no_signal_gives_chance_auc_and_constant_probability() -> None:
    c = simulate_cohort(600, seed=0, signal_strength=0)
    for t, prev in (("ifnb", 0.65), ("ga", 0.55)):
        assert c.oracle_auc(t) == 0.5
        np.testing.assert_allclose(c.truth[f"p_response_{t}"], prev, rtol=1e-9)


def test_signal_strength_scales_the_logit_spread() -> None:
    sd = {
        s: simulate_cohort(2000, seed=1, signal_strength=s).truth["logit_ga"].std()
        for s in (0.5, 1.0, 2.0)
    }
    assert sd[0.5] == pytest.approx(sd[1.0] / 2, rel=1e-9)
    assert sd[2.0] == pytest.approx(sd[1.0] * 2, rel=1e-9)
    assert simulate_cohort(2000, seed=1, signal_strength=2.0).oracle_auc("ga") > 0.88


# ---- therapy assignment ---------------------------------------------------------------


def _smd(panel: pd.DataFrame, column: str) -> float:
    x = panel[column].astype(float)
    on = panel["therapy"] == "ifnb"
    return float((x[on].mean() - x[~on].mean()) / x.std())


def test_randomised_assignment_is_balanced(big: SimulatedCohort) -> None:
    assert abs((big.panel["therapy"] == "ifnb").mean() - 0.5) < 0.03
    assert (big.truth["propensity_ifnb"] == 0.5).all()
    for column in ("relapses_prior_2y", "edss", "age"):
        assert abs(_smd(big.panel, column)) < 0.1


def test_confounded_assignment_gives_ifnb_to_more_severe_patients() -> None:
    c = simulate_cohort(5000, seed=11, assignment="confounded", confounding_strength=1.0)
    assert _smd(c.panel, "relapses_prior_2y") > 0.4
    assert _smd(c.panel, "edss") > 0.3
    assert abs(_smd(c.panel, "age")) < 0.15  # age does not enter the propensity directly
    # the therapy actually follows the recorded propensity
    bins = pd.qcut(c.truth["propensity_ifnb"], 5, labels=False, duplicates="drop")
    got = (c.panel["therapy"] == "ifnb").groupby(bins).mean()
    expected = c.truth["propensity_ifnb"].groupby(bins).mean()
    assert (np.abs(got - expected) < 0.05).all()
    # strength 0 is randomisation
    flat = simulate_cohort(300, seed=1, assignment="confounded", confounding_strength=0.0)
    assert (flat.truth["propensity_ifnb"] == 0.5).all()


# ---- bad arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, r"n must be a whole number >= 1, got 0"),
        ({"n": 10.5}, r"n must be a whole number"),
        ({"n": True}, r"n must be a whole number"),
        ({"seed": -1}, r"seed must be a non-negative whole number or None"),
        ({"seed": "abc"}, r"seed must be"),
        ({"prevalence_ifnb": 1.0}, r"prevalence_ifnb must be strictly between 0 and 1"),
        ({"prevalence_ga": 0}, r"prevalence_ga must be strictly between 0 and 1"),
        ({"prevalence_ga": float("nan")}, r"prevalence_ga must be strictly between"),
        ({"assignment": "random"}, r"assignment must be 'randomised' or 'confounded'"),
        ({"platform": "olink"}, r"platform must be one of \['msd', 'luminex_hs'"),
        ({"missing_rate": 1.0}, r"missing_rate must be in \[0, 1\)"),
        ({"missing_rate": -0.1}, r"missing_rate must be in"),
        ({"plate_effect_sd": -1}, r"plate_effect_sd must be a finite number >= 0"),
        ({"signal_strength": float("inf")}, r"signal_strength must be a finite number >= 0"),
        ({"confounding_strength": None}, r"confounding_strength must be a finite number"),
        ({"n": 5, "n_plates": 6}, r"n_plates \(6\) cannot exceed n \(5\)"),
        ({"n_plates": 0}, r"n_plates must be a whole number >= 1 or None"),
    ],
)
def test_bad_arguments_raise_usage_error(kwargs: dict, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        simulate_cohort(**kwargs)


def test_all_bad_arguments_are_reported_at_once() -> None:
    with pytest.raises(UsageError, match=r"n must.*; platform must.*; missing_rate must"):
        simulate_cohort(0, platform="x", missing_rate=2)


def test_oracle_auc_rejects_bad_requests() -> None:
    c = simulate_cohort(50, seed=0)
    with pytest.raises(UsageError, match="unknown therapy 'dmf'"):
        c.oracle_auc("dmf")
    tiny = simulate_cohort(1, seed=0)
    with pytest.raises(UsageError, match="needs both responders and non-responders"):
        tiny.oracle_auc()


def test_response_logits_names_missing_inputs() -> None:
    with pytest.raises(UsageError, match=r"needs the latent values of \['CXCL10'"):
        response_logits({"IL17F": np.zeros(2)})


# ---- effect heterogeneity (issue 15) --------------------------------------------------


def test_no_heterogeneity_gives_the_same_truth_under_both_therapies() -> None:
    c = simulate_cohort(3000, seed=4, heterogeneity="none", assignment="confounded")
    t = c.truth
    np.testing.assert_array_equal(t["logit_ifnb"], t["logit_ga"])
    # one intercept, solved for the mean of the two prevalences (0.60 by default)
    assert abs(t["p_response_ifnb"].mean() - 0.60) < 0.02
    assert c.params["heterogeneity"] == "none"
    assert c.drivers["ifnb"] == c.drivers["ga"]
    assert set(c.drivers["ga"]) == {"IL17F", "IFNG", "CXCL10", "IL10", "relapses_prior_2y",
                                    "edss", "IL18", "IL4", "TNF", "gd_lesions"}
    # confounded assignment still works, independently of the knob
    assert c.truth["propensity_ifnb"].std() > 0.1


@pytest.mark.parametrize(
    ("level", "low", "high"), [("none", 0.0, 0.0), ("small", 0.06, 0.11), ("large", 0.30, 0.40)]
)
def test_heterogeneity_sets_the_size_of_the_true_difference(level, low, high) -> None:
    """Documented in docs/simulator.md (n = 200,000): mean |difference| 0, 0.086, 0.343."""
    c = simulate_cohort(
        20_000, seed=0, heterogeneity=level, prevalence_ifnb=0.6, prevalence_ga=0.6
    )
    diff = (c.truth["p_response_ifnb"] - c.truth["p_response_ga"]).abs().mean()
    assert low <= diff <= high, diff


def test_large_heterogeneity_is_the_unchanged_default() -> None:
    default = simulate_cohort(300, seed=5)
    large = simulate_cohort(300, seed=5, heterogeneity="large")
    pd.testing.assert_frame_equal(default.truth, large.truth)
    assert default.params["heterogeneity"] == "large"


def test_unknown_heterogeneity_is_refused() -> None:
    with pytest.raises(UsageError, match=r"heterogeneity must be one of \['large', 'small'"):
        simulate_cohort(10, heterogeneity="medium")
    with pytest.raises(UsageError, match=r"heterogeneity must be one of"):
        response_logits(simulate_cohort(5, seed=0).latent, heterogeneity="huge")
