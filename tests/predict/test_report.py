"""The per-patient HTML report: content, escaping, self-containment, headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from cytoresp.cli import main
from cytoresp.datasets import simulate_cohort
from cytoresp.errors import InputError
from cytoresp.panels.read import read_panel
from cytoresp.predict.report import build_report, percentile_of, render_html

EVIL_ID = '<script>alert("x")</script>&$1'


@pytest.fixture(scope="module")
def new_table():
    table = simulate_cohort(30, seed=8).panel.copy()
    table["sample_id"] = table["sample_id"].astype(object)
    table.loc[0, "sample_id"] = EVIL_ID
    table["IL10"] = table["IL10"].astype(object)
    table["IL17F"] = table["IL17F"].astype(object)
    table.loc[0, "IL10"] = np.nan  # missing analyte
    table.loc[0, "IL17F"] = "90000"  # far above anything seen in training
    table.loc[1, "IL10"] = "<0.5"  # censored below
    return table


@pytest.fixture(scope="module")
def report(trained, new_table):
    model, _ = trained
    return build_report(model, new_table, EVIL_ID)


def test_percentile_of_interpolates_and_handles_ties_and_ends():
    grid = np.linspace(0.0, 100.0, 101)
    assert percentile_of(37.5, grid) == pytest.approx(37.5)
    assert percentile_of(-5.0, grid) == 0.0 and percentile_of(500.0, grid) == 100.0
    assert np.isnan(percentile_of(float("nan"), grid))
    tied = [0.5] * 31 + list(np.linspace(1.0, 10.0, 70))  # 30 % of patients below the LLOQ
    assert percentile_of(0.5, tied) == pytest.approx(15.0)


def test_report_probabilities_match_the_model_and_carry_their_interval(trained, new_table, report):
    model, _ = trained
    proba = model.predict_proba(read_panel(new_table)).loc[EVIL_ID]
    assert [s.therapy for s in report.therapies] == ["ifnb", "ga"]
    for section in report.therapies:
        assert section.probability == pytest.approx(proba[f"p_response_{section.therapy}"])
        lo, hi = section.interval
        assert 0 < lo < section.probability < hi < 1
        assert section.interval_level == pytest.approx(model.ensemble.level)
        assert section.n_members == model.ensemble.n_members
        assert set(section.cv) >= {"roc_auc", "brier"}
        auc, auc_lo, auc_hi = section.cv["roc_auc"]
        assert auc_lo <= auc <= auc_hi
    assert report.recommendation.startswith("P(response): IFN-β")


def test_report_probability_goes_through_the_heads_calibrator(trained, new_table):
    import dataclasses

    from scipy.special import expit

    from cytoresp.models.calibration import LogisticCalibrator

    model, _ = trained
    known = LogisticCalibrator.from_coefficients(-0.3, 0.7)
    heads = {t: dataclasses.replace(h, calibrator=known) for t, h in model.heads.items()}
    recalibrated = dataclasses.replace(model, heads=heads)
    report = build_report(recalibrated, new_table, EVIL_ID, plots=False)
    frame = model.model_frame(read_panel(new_table)).loc[[EVIL_ID]]
    for section in report.therapies:
        head = model.heads[section.therapy]
        margin = float(head.model.decision_function(head.engineered(frame))[0])
        assert section.log_odds == pytest.approx(-0.3 + 0.7 * margin, rel=1e-12)
        assert section.probability == pytest.approx(expit(-0.3 + 0.7 * margin), rel=1e-12)
        lo, hi = section.interval  # the ensemble's draws, through the same calibrator
        assert 0 < lo < hi < 1


def test_drivers_are_the_largest_contributions_in_plain_language(trained, new_table, report):
    model, _ = trained
    frame = model.model_frame(read_panel(new_table)).loc[[EVIL_ID]]
    for section in report.therapies:
        _, contrib = model.heads[section.therapy].cytokine_contributions(frame)
        top = contrib.iloc[0].abs().sort_values(ascending=False).index[:5].tolist()
        assert [d.input for d in section.drivers] == top
        for d in section.drivers:
            effect = "raises" if d.contribution > 0 else "lowers"
            assert np.isfinite(d.alone)
            if np.sign(d.alone) == np.sign(d.contribution):  # (b) holds: said as an effect
                assert f"{effect} the chance of response to" in d.sentence
            else:  # an interaction flips it: never worded as raising or lowering
                assert "runs through other inputs" in d.sentence
                assert "raises" not in d.sentence and "lowers" not in d.sentence
            assert d.sentence.startswith(d.label)
        by_input = {d.input: d for d in section.drivers}
        if "IL10" in by_input:
            assert by_input["IL10"].direction == "missing"
            assert "not measured" in by_input["IL10"].sentence
        if "IL17F" in by_input:
            assert by_input["IL17F"].sentence.startswith("IL-17F higher than typical")


def test_percentiles_and_warnings_of_the_patient(trained, new_table, report):
    model, _ = trained
    rows = {v.input: v for v in report.values}
    assert rows["IL10"].value_text == "missing" and rows["IL10"].flag == "missing"
    assert rows["IL17F"].percentile == 100.0 and rows["IL17F"].flag == "outside the training range"
    ifng = float(new_table.loc[0, "IFNG"])
    expected = percentile_of(ifng, model.training_quantiles["IFNG"])
    assert rows["IFNG"].percentile == pytest.approx(expected)
    assert 0 < expected < 100 and rows["IFNG"].percentile_text.endswith(("st", "nd", "rd", "th"))
    assert any(w.startswith("missing:") and "IL10" in w for w in report.warnings)
    assert any(w.startswith("outside training range:") and "IL17F" in w for w in report.warnings)
    censored = build_report(model, new_table, new_table.loc[1, "sample_id"], plots=False)
    row = {v.input: v for v in censored.values}["IL10"]
    assert row.value_text.startswith("< 0.5 pg/mL")
    assert row.percentile_text.startswith("at or below")
    assert any(w.startswith("below the lower limit") and "IL10" in w for w in censored.warnings)


def test_html_is_self_contained_and_escapes_user_strings(report):
    page = render_html(report)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;$1" in page
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith(("data:", "#")) for s in sources)
    assert not re.search(r"https?://", page)
    assert page.count('src="data:image/png;base64,') == 2
    assert "@import" not in page and "url(" not in page


def test_unknown_sample_is_an_input_error(trained, new_table):
    model, _ = trained
    with pytest.raises(InputError, match="sample 'P9999' is not in the panel"):
        build_report(model, new_table, "P9999")


def _chromium() -> str:
    return shutil.which("chromium") or shutil.which("chromium-browser") or ""


def _report(model_dir, new_table, tmp_path, sample: str):
    """Run ``cytoresp report`` for one sample: (exit code, panel file, report path)."""
    panel_csv = tmp_path / "new.csv"
    new_table.to_csv(panel_csv, index=False)
    out = tmp_path / "report.html"
    args = ["report", "--model", str(model_dir), "--input", str(panel_csv)]
    return main([*args, "--sample", sample, "--out", str(out)]), panel_csv, out


def test_report_command_writes_a_page_that_chromium_renders(model_dir, new_table, tmp_path):
    code, panel_csv, out = _report(model_dir, new_table, tmp_path, EVIL_ID)
    assert code == 0 and out.is_file()
    if not _chromium():
        pytest.skip("chromium is not installed (.ci/run installs it)")
    proc = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            out.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
    assert console == []
    dom = proc.stdout
    model = __import__("cytoresp").load_model(str(model_dir))
    proba = model.predict_proba(read_panel(panel_csv)).loc[EVIL_ID]
    for therapy in ("ifnb", "ga"):
        shown = re.search(rf'id="p-{therapy}">([0-9.]+)<', dom)
        assert shown and float(shown.group(1)) == pytest.approx(
            proba[f"p_response_{therapy}"], abs=0.005
        )
    assert "&lt;script&gt;" in dom and "<script>alert" not in dom


def test_report_command_leaves_nothing_for_an_unknown_sample(
    model_dir, new_table, tmp_path, capsys
):
    code, panel_csv, out = _report(model_dir, new_table, tmp_path, "nobody")
    assert code == 2 and not out.exists() and list(tmp_path.iterdir()) == [panel_csv]
    assert "sample 'nobody' is not in the panel" in capsys.readouterr().err


def _with_verdict(model, therapy_lower: dict[str, tuple[float, float]]):
    """A copy of ``model`` whose stored verdict has these (logistic, prevalence) lower bounds."""
    import copy
    import dataclasses

    from cytoresp.models.verdict import verdict_to_dict

    meta = copy.deepcopy(model.metadata)
    for t, lowers in therapy_lower.items():
        for base, lower in zip(("logistic", "prevalence"), lowers, strict=True):
            key = f"{t}_auc_diff_vs_{base}"
            meta["cv_metrics"][t] |= {key: lower + 0.05, f"{key}_lower": lower,
                                      f"{key}_upper": lower + 0.1}
    meta["baseline_verdict"] = verdict_to_dict(meta)
    return dataclasses.replace(model, metadata=meta)


def test_a_head_that_did_not_beat_its_baselines_is_flagged_above_its_probability(
    trained, new_table
):
    model, _ = trained
    flagged = _with_verdict(model, {"ifnb": (-0.1, 0.1), "ga": (0.02, 0.2)})
    rep = build_report(flagged, new_table, "P0002", plots=False)
    assert rep.cautions == {
        "ifnb": "this model did not beat a plain logistic regression in cross-validation; "
                "treat its numbers with caution"
    }
    page = render_html(rep)
    caution = page.index('id="caution-ifnb"')
    assert page.index("<h2>Probability of response</h2>") < caution < page.index('id="p-ifnb"')
    assert 'id="caution-ga"' not in page
    # the model card, linked from the top of the page and shown at its end
    assert page.index('href="#model-card"') < caution < page.index('id="model-card"')
    assert "## Verdict against the baselines" in page
    # both heads clearly above: no caution at all
    clear = _with_verdict(model, {"ifnb": (0.01, 0.1), "ga": (0.02, 0.2)})
    rep = build_report(clear, new_table, "P0002", plots=False)
    assert rep.cautions == {} and 'class="warn caution"' not in render_html(rep)
