"""cytoresp.panels stands alone: no import cycle, nothing from features/models/train/predict."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import cytoresp.panels

PACKAGE = Path(cytoresp.panels.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
FORBIDDEN = ("cytoresp.features", "cytoresp.models", "cytoresp.train", "cytoresp.predict")


def _imports(path: Path) -> list[str]:
    """Every module an import statement of ``path`` names (lazy imports included)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def test_the_package_has_the_expected_modules():
    assert {"_table", "panel", "registry", "read", "stream", "validate", "write"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_no_module_imports_features_models_train_or_predict(module):
    bad = [n for n in _imports(PACKAGE / f"{module}.py") if n.startswith(FORBIDDEN)]
    assert not bad, f"cytoresp.panels.{module} imports {bad}"


@pytest.mark.parametrize("module", MODULES)
def test_no_private_name_of_another_module_is_imported(module):
    """Modules share names through _table (public there), never another's private ones."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    bad = [
        f"{node.module}.{a.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cytoresp.")
        for a in node.names
        if a.name.startswith("_")
    ]
    assert not bad, f"cytoresp.panels.{module} imports private names {bad}"


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_alone_in_a_fresh_interpreter(module):
    """A cycle shows up as an ImportError when a module in it is imported first."""
    code = (
        f"import sys, cytoresp.panels.{module}\n"
        f"bad = [m for m in sys.modules if m.startswith({FORBIDDEN!r})]\n"
        f"assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
