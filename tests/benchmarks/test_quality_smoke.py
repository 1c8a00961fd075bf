"""A tiny run of benchmarks/quality.py's code path (seconds, not a measurement)."""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("cytoresp_bench_quality", BENCH / "quality.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def outcome(quality):
    settings = quality.Settings(
        sizes=(160,),
        seeds=2,
        test_n=600,
        tuned_iter=2,
        n_boot=50,
        n_jobs=1,
        real=False,
        timing=False,
    )
    return quality.run(settings, log=lambda _m: None, command="smoke")


def test_simulated_rows_have_every_model_and_a_ratio(quality, outcome):
    sim = outcome.simulated
    assert sorted(sim["therapy"]) == ["ga", "ifnb"] and set(sim["n"]) == {160}
    for _, row in sim.iterrows():
        assert row["seeds"] == 2
        for col in ("oracle", "default", "tuned", "logistic"):
            est = row[col]
            assert 0.4 < est.value <= 1.0 and est.lower <= est.value <= est.upper
        assert math.isclose(
            row["ratio"].value,
            np.mean(outcome.raw.query("therapy == @row.therapy").eval("default / oracle")),
        )
    raw = outcome.raw
    assert len(raw) == 4 and (raw["default"] <= 1).all()


def test_table_and_targets_render(quality, outcome):
    text = quality.render(outcome)
    assert "| simulated, 160 patients, ifnb |" in text
    assert "default not worse than the better" in text
    assert text.count("\n|") >= 4


def test_t_interval(quality):
    est = quality.t_interval([1.0, 2.0, 3.0])
    assert est.value == 2.0
    assert math.isclose(est.upper - 2.0, 4.302652729911275 * 1.0 / math.sqrt(3))
    assert math.isnan(quality.t_interval([0.5]).lower)


def test_write_section_replaces_only_its_own_section(quality, tmp_path):
    path = tmp_path / "results.md"
    path.write_text("# Results\n\n## Speed\n\nfast\n\n## Quality\n\nold\n\n## Other\n\nkeep\n")
    quality.write_section("new table\n", path)
    text = path.read_text()
    assert "old" not in text and "new table" in text
    assert "## Speed\n\nfast" in text and "## Other\n\nkeep" in text
    quality.write_section("again\n", tmp_path / "fresh.md")
    assert (tmp_path / "fresh.md").read_text().startswith("# Results\n\n## Quality\n\nagain")


def test_real_loaders_skip_gracefully_when_the_data_are_absent(quality, tmp_path):
    found, skipped = quality.load_real(tmp_path)
    assert found == [] and len(skipped) == 3


def test_real_loaders_on_the_shared_data(quality):
    if not quality.DATA_ROOT.exists():
        pytest.skip("shared data not available")
    found, _ = quality.load_real()
    by_name = {ds.name.split(" ")[0]: ds for ds in found}
    if "IFN-β" in by_name:
        ds = by_name["IFN-β"]
        assert ds.X.shape == (52, 76) and ds.y.sum() == 33 and ds.protocols == ("loo", "cv")
        assert ds.X.isna().to_numpy().any()  # publishers' mean-imputed zeros -> missing
    if "Septic" in by_name:
        ds = by_name["Septic"]
        assert ds.X.shape == (69, 10) and ds.y.sum() == 29
        assert {"IL1B", "TNF", "IL12B", "ANGPT2", "CXCL8"} <= set(ds.X.columns)
    if "COVID-19" in by_name:
        ds = by_name["COVID-19"]
        assert ds.X.shape == (207, 64) and ds.y.sum() == 59
        assert ds.X_valid.shape == (142, 64) and ds.y_valid.sum() == 37
