"""The wheel carries every module, and they import from outside the repository."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = {
    "cytoresp": REPO / "cytoresp",
    "cytoresp.features": REPO / "features",
    "cytoresp.models": REPO / "models",
    "cytoresp.train": REPO / "train",
    "cytoresp.predict": REPO / "predict",
}


def source_modules() -> set[str]:
    """Every module of the source tree, as its import name."""
    modules = set()
    for package, root in PACKAGE_DIRS.items():
        for path in root.rglob("*.py"):
            rel = path.relative_to(root).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if package == "cytoresp" and rel.parts[0] in {"features", "models", "train", "predict"}:
                continue
            modules.add(".".join([package, *parts]))
    return modules


@pytest.mark.slow
def test_wheel_installs_in_fresh_venv_and_imports_every_module(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("cytoresp-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    in_wheel = {
        n[:-3].replace("/", ".").removesuffix(".__init__") for n in names if n.endswith(".py")
    }
    missing = source_modules() - in_wheel
    assert not missing, f"modules missing from the wheel: {sorted(missing)}"

    venv = tmp_path / "fresh"
    # without pip (ensurepip costs seconds): this environment's pip installs into it
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    py = venv / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Third-party dependencies come from the test environment's site-packages, added as a
    # plain path: its .pth files (the editable install of cytoresp) are not processed.
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-deps",
         "--no-index", str(wheel)],
        check=True,
        timeout=120,
    )
    modules = sorted(source_modules())
    code = (
        "import importlib, cytoresp, sys\n"
        f"mods = {modules!r}\n"
        "for m in mods: importlib.import_module(m)\n"
        "print(cytoresp.__file__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [str(py), "-c", code],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    location = Path(out.stdout.strip().splitlines()[-1])
    assert Path(site) in location.parents, f"imported cytoresp from {location}, not the wheel"
