"""Every docstring example of the package runs (issue #12).

``pytest --doctest-modules features/`` would import the files a second time under the
folder's name (``features.builder``, not ``cytoresp.features.builder``), duplicating every
class. Here each module is imported by its real dotted name, found from the package list in
pyproject.toml, and its examples run with :mod:`doctest`. Examples that need a trained
model or input files get them as extra globals (the ``examples_globals`` fixture) and run in
a fresh temporary working directory holding those files.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
import io
import pkgutil
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]

#: A fast training configuration for the examples' model (seconds, not minutes).
FAST_TRAINING = {
    "n_repeats": 1,
    "n_splits": 3,
    "n_boot": 0,
    "n_jobs": 1,
    "n_ensemble": 3,  # models/recommend.py's examples read the ensemble
    "model": {"n_estimators": 20, "early_stopping": False, "C": 1.0, "C_ridge": 1.0},
}

#: Panel files the examples read, all holding the same new patients (``P0007`` among them).
PANEL_FILES = ("panel.csv", "new.csv", "new_patients.csv", "cohort.csv")
MODEL_DIR = "model_dir"

OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _setuptools() -> dict[str, Any]:
    with (REPO / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)["tool"]["setuptools"]


def package_modules() -> list[str]:
    """Every module of every package, private ones included, by its real dotted name.

    The packages' ``__path__`` comes from their import spec, so collecting does not run
    the subpackages' ``__init__`` (only the tests import them).
    """
    names = []
    for package in _setuptools()["packages"]:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, package
        names.append(package)
        for info in pkgutil.iter_modules(list(spec.submodule_search_locations)):
            if not info.ispkg:
                names.append(f"{package}.{info.name}")
    return sorted(names)


def source_files() -> dict[str, Path]:
    """The package's ``.py`` files, by the dotted name the folder mapping gives them."""
    out = {}
    for package, folder in _setuptools()["package-dir"].items():
        for path in (REPO / folder).rglob("*.py"):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join((package, *parts))] = path
    return out


MODULES = package_modules()


def test_every_module_is_enumerated():
    assert len(MODULES) > 40
    for name in (
        "cytoresp",
        "cytoresp.panels.read",
        "cytoresp.panels._table",
        "cytoresp.features.builder",
        "cytoresp.models.estimator",
        "cytoresp.train.fitting",
        "cytoresp.predict.report",
    ):
        assert name in MODULES
    # every source file of the package folders is in the list, under its real name
    assert sorted(source_files()) == MODULES


def test_no_example_is_skipped():
    skip = re.compile(r"doctest:.*\+SKIP")
    offenders = [
        f"{path.relative_to(REPO)}:{i}"
        for path in sorted(source_files().values())
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if skip.search(line)
    ]
    assert offenders == []


# ---- the objects the examples use ------------------------------------------------------


@pytest.fixture(scope="module")
def examples_data(tmp_path_factory) -> dict[str, Any]:
    """A small model trained once, new patients, and the files the examples name."""
    from cytoresp.datasets import simulate_cohort
    from cytoresp.panels import read_panel
    from cytoresp.train.config import TrainConfig
    from cytoresp.train.fitting import fit_response_model, therapy_rows

    training = read_panel(simulate_cohort(200, seed=1).panel, require_labels=True)
    model, _ = fit_response_model(training, config=TrainConfig(**FAST_TRAINING))
    new = simulate_cohort(40, seed=2).panel
    panel = read_panel(new)
    assert "P0007" in set(panel.sample_ids)
    frame_i, y_i = therapy_rows(training, "ifnb")
    frame_g, y_g = therapy_rows(training, "ga")

    files = tmp_path_factory.mktemp("example-files")
    for name in PANEL_FILES:
        new.to_csv(files / name, index=False)
    model.save(files / MODEL_DIR)
    return {
        "files": files,
        "globals": {
            "model": model,
            "panel": panel,
            "frame": model.model_frame(panel),
            "frame_i": frame_i,
            "y_i": y_i,
            "frame_g": frame_g,
            "y_g": y_g,
        },
    }


@pytest.fixture
def example_cwd(examples_data, tmp_path, monkeypatch) -> Path:
    """A fresh working directory holding the panel files and the saved model."""
    files = examples_data["files"]
    for name in PANEL_FILES:
        shutil.copy(files / name, tmp_path / name)
    shutil.copytree(files / MODEL_DIR, tmp_path / MODEL_DIR)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, examples_data, example_cwd):
    module = importlib.import_module(name)
    # the fixture's names never hide one of the module's own
    extra = {k: v for k, v in examples_data["globals"].items() if k not in vars(module)}
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name, extraglobs=extra)
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    report = io.StringIO()
    for test in tests:
        runner.run(test, out=report.write)
    assert runner.failures == 0, f"{name}: {runner.failures} failing\n{report.getvalue()}"
    # every example written in the file was found and run (none hidden where the finder
    # does not look, such as a function defined inside another)
    prompts = re.findall(r"^\s*>>>", inspect.getsource(module), flags=re.MULTILINE)
    assert runner.tries == len(prompts), name
