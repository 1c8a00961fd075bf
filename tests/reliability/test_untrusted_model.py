"""Untrusted model files: a modified model is refused, and loading never unpickles."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from cytoresp.cli import main
from cytoresp.models.persistence import sha256_file


@pytest.fixture
def model_copy(small_model, tmp_path):
    dest = tmp_path / "model"
    shutil.copytree(small_model, dest)
    return dest


def _flip_byte(path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


def _main(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    return code, err.getvalue()


def _rewrite_manifest(model) -> None:
    """What an attacker (not an accident) does: recompute every hash."""
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["files"] = {
        p.name: sha256_file(p) for p in sorted(model.iterdir()) if p.name != "manifest.json"
    }
    (model / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["model.json", "trees_ifnb.ubj"])
def test_one_flipped_byte_is_refused_through_the_cli(rel, model_copy, tmp_path, cohort_csv, name):
    _flip_byte(model_copy / name)
    result = rel.run(
        ["predict", "--model", str(model_copy), "--input", str(cohort_csv),
         "--output", "pred.csv"],
        cwd=tmp_path,
    )  # fmt: skip
    rel.fail(result, 2, f"{name} was modified (sha256 does not match the manifest)")
    assert "refusing to load the model" in result.stderr
    assert not (tmp_path / "pred.csv").exists()
    rel.record(f"standalone model, one byte flipped in {name}", "exit 2, 'was modified', no output")


def test_manifest_covers_every_file_and_records_versions(small_model):
    manifest = json.loads((small_model / "manifest.json").read_text())
    files = {p.name for p in small_model.iterdir()} - {"manifest.json"}
    assert set(manifest["files"]) == files
    assert any(name.startswith("trees_") for name in files)  # the test model has trees
    for name, digest in manifest["files"].items():
        assert digest == sha256_file(small_model / name)
    assert {"cytoresp", "numpy", "scikit-learn", "xgboost"} <= set(manifest["versions"])


def _model_files(small_model):
    return sorted(p.name for p in small_model.iterdir())


def test_every_file_of_the_model_is_covered(small_model, model_copy, tmp_path, cohort_csv):
    """Flip a byte in each file in turn (in-process): every one is caught."""
    for name in _model_files(small_model):
        shutil.rmtree(model_copy)
        shutil.copytree(small_model, model_copy)
        _flip_byte(model_copy / name, offset=len((model_copy / name).read_bytes()) - 2)
        code, err = _predict(model_copy, cohort_csv, tmp_path)
        assert code == 2, (name, err)
        assert "refusing to load" in err or "unreadable or malformed" in err, (name, err)
        assert not (tmp_path / "pred.csv").exists()


def _predict(model, panel, tmp_path):
    """``cytoresp predict`` of ``panel`` with ``model`` into tmp_path/pred.csv."""
    return _main(
        ["predict", "--model", str(model), "--input", str(panel),
         "--output", str(tmp_path / "pred.csv")]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda m: (m / "extra.bin").write_bytes(b"x"), "files not in the manifest: extra.bin"),
        (lambda m: (m / "trees_ga.ubj").unlink(), "trees_ga.ubj is missing"),
        (lambda m: (m / "manifest.json").unlink(), "holds neither a cytoresp model"),
        (lambda m: (m / "manifest.json").write_text("{not json"), "unreadable or malformed"),
        (
            lambda m: (m / "manifest.json").write_text(
                json.dumps({"format": "cytoresp-model", "format_version": 99, "files": {}})
            ),
            "written by a newer cytoresp",
        ),
        (
            lambda m: (m / "manifest.json").write_text(
                json.dumps({"format": "other", "format_version": 1, "files": {}})
            ),
            "is not a cytoresp model",
        ),
    ],
    ids=["extra-file", "missing-file", "no-manifest", "manifest-not-json", "newer-format",
         "foreign-format"],
)  # fmt: skip
def test_tampered_model_directory_is_refused(model_copy, tmp_path, cohort_csv, tamper, message):
    tamper(model_copy)
    code, err = _predict(model_copy, cohort_csv, tmp_path)
    assert code == 2, err
    assert message in err, err
    assert not (tmp_path / "pred.csv").exists()


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (
            lambda m: (m / "trees_ifnb.ubj").write_bytes(b"garbage" * 10),
            "malformed",
        ),
        (
            lambda m: (m / "model.json").write_text("[" * 100_000),
            "cannot load the model",
        ),
        (
            lambda m: _set_trees(m, "/etc/hostname"),
            "names a tree file for 'ifnb' that the manifest does not list: '/etc/hostname'",
        ),
        (
            lambda m: _set_trees(m, "../../../../etc/hostname"),
            "that the manifest does not list",
        ),
    ],
    ids=["garbage-trees", "deeply-nested-json", "absolute-tree-path", "tree-path-traversal"],
)
def test_consistent_but_hostile_model_is_refused_cleanly(
    model_copy, tmp_path, cohort_csv, tamper, message
):
    """The manifest rewritten to match (an attacker, not an accident): still exit 2, clean."""
    tamper(model_copy)
    _rewrite_manifest(model_copy)
    code, err = _predict(model_copy, cohort_csv, tmp_path)
    assert code == 2, err
    assert message in err, err
    assert "Stack trace" not in err and "Traceback" not in err, err
    assert not (tmp_path / "pred.csv").exists()


def _set_trees(model, value: str) -> None:
    spec = json.loads((model / "model.json").read_text())
    spec["heads"]["ifnb"]["trees"] = value
    (model / "model.json").write_text(json.dumps(spec))


_NO_UNPICKLING = textwrap.dedent(
    """
    import sys
    found = []

    def audit(event, args):
        # every unpickler looks globals up through find_class: that is how a pickle
        # builds arbitrary objects (and runs code); plain data never needs it
        if event == "pickle.find_class":
            found.append(args)
            raise RuntimeError(f"unpickling {args}")

    sys.addaudithook(audit)
    import mlflow
    import cytoresp
    from cytoresp.models.mlflow_flavour import log_response_model

    model = cytoresp.load_model(sys.argv[1])            # a standalone directory
    panel = cytoresp.read_panel(sys.argv[2])
    p_dir = model.predict_proba(panel)
    mlflow.set_tracking_uri(sys.argv[3])
    with mlflow.start_run():
        info = log_response_model(model, model.model_frame(panel).head(3),
                                  registered_model_name="nopickle")
    p_uri = cytoresp.load_model("models:/nopickle/1").predict_proba(panel)  # via the registry
    pyfunc = mlflow.pyfunc.load_model("models:/nopickle/1")                  # MLflow's own loader
    p_pyfunc = pyfunc.predict(model.model_frame(panel).astype(float).reset_index(drop=True))
    assert (p_dir.to_numpy() == p_uri.to_numpy()).all()
    assert abs(p_pyfunc.to_numpy() - p_dir.to_numpy()).max() < 1e-12
    print("find_class events:", len(found))
    """
)


@pytest.mark.slow
def test_no_load_path_unpickles(small_model, cohort_csv, tmp_path, rel, store_copy):
    """Standalone dir, models:/ URI and mlflow.pyfunc.load_model: no pickle.find_class."""
    proc = subprocess.run(
        [sys.executable, "-c", _NO_UNPICKLING, str(small_model), str(cohort_csv),
         store_copy(tmp_path / "mlflow.db")],
        cwd=tmp_path, env=rel.env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "find_class events: 0" in proc.stdout
    rel.record(
        "load a model (directory, models:/ URI, mlflow.pyfunc) under a pickle audit hook",
        "0 pickle.find_class events",
    )


#: Calls that deserialise objects (and may run code) or evaluate text as code.
_FORBIDDEN_CALLS = {
    ("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"),
    ("cloudpickle", "load"), ("cloudpickle", "loads"), ("dill", "load"), ("dill", "loads"),
    ("joblib", "load"), ("marshal", "loads"), ("shelve", "open"), ("yaml", "load"),
    ("yaml", "unsafe_load"), ("pd", "read_pickle"), ("pandas", "read_pickle"),
    ("torch", "load"), ("skops.io", "load"), ("sio", "load"),
}  # fmt: skip
_FORBIDDEN_MODULES = {"pickle", "cloudpickle", "dill", "marshal", "shelve", "_pickle"}


def _package_sources(repo):
    for folder in ("cytoresp", "features", "models", "train", "predict"):
        yield from sorted((repo / folder).rglob("*.py"))


def test_package_source_never_deserialises_objects(rel):
    """A static check: no pickle-family import or call, no eval/exec, no allow_pickle."""
    problems = []
    for path in _package_sources(rel.REPO):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(rel.REPO)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names]
                module = node.module if isinstance(node, ast.ImportFrom) else None
                for name in [module, *names]:
                    if name and name.split(".")[0] in _FORBIDDEN_MODULES:
                        problems.append(f"{where}: imports {name}")
            if isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Name) and func.id in ("eval", "exec"):
                    problems.append(f"{where}: calls {func.id}()")
                if isinstance(func, ast.Attribute):
                    owner = ast.unparse(func.value)
                    if (owner, func.attr) in _FORBIDDEN_CALLS:
                        problems.append(f"{where}: calls {owner}.{func.attr}()")
                for kw in node.keywords:
                    if kw.arg == "allow_pickle" and not (
                        isinstance(kw.value, ast.Constant) and kw.value.value is False
                    ):
                        problems.append(f"{where}: allow_pickle={ast.unparse(kw.value)}")
                    if kw.arg == "serialization_format" and ast.unparse(kw.value) != "'skops'":
                        problems.append(f"{where}: serialization_format={ast.unparse(kw.value)}")
    assert problems == []
