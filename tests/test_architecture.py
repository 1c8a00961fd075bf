"""The layering of docs/architecture.md holds: which package may import which.

Parsed from the source (every import statement, lazy ones included), so a new import that
crosses a layer fails here before it can create a cycle or a dependency the other way.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cytoresp
import cytoresp.datasets
import cytoresp.features
import cytoresp.models
import cytoresp.panels
import cytoresp.predict
import cytoresp.train

#: What each package may import from cytoresp besides itself (docs/architecture.md).
ALLOWED: dict[str, set[str]] = {
    "cytoresp.panels": {"cytoresp.errors", "cytoresp.interrupts"},
    "cytoresp.features": {"cytoresp.errors", "cytoresp.panels"},
    "cytoresp.models": {"cytoresp.errors", "cytoresp.interrupts", "cytoresp.panels",
                        "cytoresp.features"},
    "cytoresp.train": {"cytoresp.errors", "cytoresp.interrupts", "cytoresp.panels",
                       "cytoresp.features", "cytoresp.models"},
    "cytoresp.predict": {"cytoresp.errors", "cytoresp.interrupts", "cytoresp.panels",
                         "cytoresp.features", "cytoresp.models"},
    "cytoresp.datasets": {"cytoresp.errors", "cytoresp.panels"},
}  # fmt: skip
#: Modules of the root package that everything may use: they import no other cytoresp code.
LEAVES = ("cytoresp.errors", "cytoresp.interrupts")


def _package_files(package) -> list[Path]:
    return sorted(Path(package.__file__).parent.glob("*.py"))


def _cytoresp_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every ``cytoresp`` import in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.split(".")[0] == "cytoresp"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "cytoresp":
                found.append((node.module, [a.name for a in node.names]))
    return found


def _target(module: str, names: list[str]) -> set[str]:
    """The cytoresp packages/leaf modules an import statement reaches."""
    parts = module.split(".")
    if len(parts) >= 2:
        return {".".join(parts[:2])}
    return {f"cytoresp.{n}" for n in names}  # `from cytoresp import interrupts`


CASES = [
    (name, path)
    for name, package in [
        ("cytoresp.panels", cytoresp.panels),
        ("cytoresp.features", cytoresp.features),
        ("cytoresp.models", cytoresp.models),
        ("cytoresp.train", cytoresp.train),
        ("cytoresp.predict", cytoresp.predict),
        ("cytoresp.datasets", cytoresp.datasets),
    ]
    for path in _package_files(package)
]


def test_every_package_has_modules_to_check():
    packages = {name for name, _ in CASES}
    assert packages == set(ALLOWED)
    assert len(CASES) > 40


@pytest.mark.parametrize(("package", "path"), CASES, ids=[f"{n}:{p.stem}" for n, p in CASES])
def test_imports_follow_the_layers(package, path):
    allowed = ALLOWED[package] | {package}
    imports = _cytoresp_imports(path)
    bad = sorted({module for module, names in imports if not _target(module, names) <= allowed})
    assert not bad, f"{package}.{path.stem} imports {bad}; allowed: {sorted(allowed)}"


@pytest.mark.parametrize(("package", "path"), CASES, ids=[f"{n}:{p.stem}" for n, p in CASES])
def test_no_private_name_crosses_a_package(package, path):
    bad = [
        f"{module}.{name}"
        for module, names in _cytoresp_imports(path)
        if not module.startswith(package)
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not bad, f"{package}.{path.stem} imports private names of other packages: {bad}"


@pytest.mark.parametrize("leaf", LEAVES)
def test_leaf_modules_import_no_other_cytoresp_code(leaf):
    path = Path(cytoresp.__file__).parent / f"{leaf.split('.')[1]}.py"
    assert _cytoresp_imports(path) == []
