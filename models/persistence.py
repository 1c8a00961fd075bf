"""Standalone model directory: JSON spec + native XGBoost trees + sha256 manifest.

Nothing here unpickles anything: loading a model reads JSON and XGBoost's own UBJSON
format, so a model file cannot execute code. The manifest lists the sha256 of every file;
a modified, missing or unexpected file is refused before anything is parsed.

Layout::

    model/
      manifest.json       format, version, sha256 of every other file, library versions
      model.json          therapies, feature transformers, linear parts, calibration, ...
      trees_ifnb.ubj      XGBoost booster per therapy (absent for a head without trees)
      trees_ga.ubj
      trees_L3_ifnb.ubj   a landmark head's booster (format 5: train --landmarks)
      ensemble_ifnb.ubj.gz  bootstrap refits of the heads (cytoresp.models.recommend): their
      ensemble_ga.ubj.gz    trees back to back, gzip; linear parts under "ensemble" in model.json
      model_card.md       the model card (cytoresp.models.card), built from model.json's content;
                          folders saved before cards existed have none and still load
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from cytoresp.errors import ModelIntegrityError
from cytoresp.models.card import CARD_FILE, render_card
from cytoresp.panels.write import atomic_dir

FORMAT_NAME = "cytoresp-model"
FORMAT_VERSION = 5  # 2: a head's calibration is the calibrator's dict, not an [a, b] pair
#                      3: a head stores its explanation background sample
#                      4: a head's classifier may be a SuperLearnerClassifier ("class" in
#                         its state); the folder holds model_card.md
#                      5: landmark heads ("landmarks" in model.json, trees_L<month>_<therapy>.ubj);
#                         written only by models that have them (a baseline-only model is
#                         still written as format 4, readable by the cytoresp before)
#: The format a model without landmark heads is written in.
BASELINE_FORMAT_VERSION = 4
MANIFEST = "manifest.json"
SPEC = "model.json"

#: Distributions whose versions are recorded with every model.
RECORDED_LIBRARIES = ("cytoresp", "numpy", "pandas", "scikit-learn", "xgboost", "shap", "mlflow")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a model depends on."""
    versions = {}
    for name in RECORDED_LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def save_model_dir(model, path: str | os.PathLike) -> Path:
    """Write ``model`` as a standalone directory, atomically.

    The directory is built next to its destination and renamed into place, so a crash
    never leaves a half-written model. An existing model directory at ``path`` is
    replaced; any other existing path is refused.
    """
    dest = Path(path)
    if dest.exists() and not (dest.is_dir() and (dest / MANIFEST).exists() or _is_empty_dir(dest)):
        raise ModelIntegrityError(
            f"{dest} exists and is not a cytoresp model directory; choose another --out"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    landmarks = getattr(model, "landmarks", None)
    version = FORMAT_VERSION if landmarks is not None else BASELINE_FORMAT_VERSION
    with atomic_dir(dest) as tmp:
        spec: dict[str, Any] = {
            "format": FORMAT_NAME,
            "format_version": version,
            "therapies": model.therapies,
            "training_ranges": {k: list(v) for k, v in model.training_ranges.items()},
            "training_quantiles": {
                k: list(map(float, v))
                for k, v in getattr(model, "training_quantiles", {}).items()
            },
            "metadata": model.metadata,
            "heads": {},
        }
        for therapy, head in model.heads.items():
            spec["heads"][therapy] = _head_state(head, tmp, f"trees_{therapy}.ubj")
        if landmarks is not None:  # landmark heads (models/landmarks.py), format 5
            spec["landmarks"] = {
                "window": landmarks.window,
                "alert_sensitivity": landmarks.alert_sensitivity,
                "change": {str(m): step.to_dict() for m, step in landmarks.change.items()},
                "metadata": landmarks.metadata,
                "heads": {
                    str(month): {
                        t: {**_head_state(h, tmp, f"trees_L{month}_{t}.ubj"),
                            "alert_threshold": h.alert_threshold}
                        for t, h in heads.items()
                    }
                    for month, heads in landmarks.heads.items()
                },
            }
        ensemble = getattr(model, "ensemble", None)
        if ensemble is not None:  # bootstrap refits of the heads (cytoresp.models.recommend)
            spec["ensemble"], blobs = ensemble.to_state()
            for name, blob in blobs.items():
                (tmp / name).write_bytes(blob)
        choice = getattr(model, "choice", None)
        if choice is not None:  # the therapy choice's gate and calibrations (models/choice.py)
            spec["choice"] = choice.to_dict()
        (tmp / SPEC).write_text(json.dumps(_jsonable(spec), indent=1, allow_nan=True))
        versions = library_versions()
        (tmp / CARD_FILE).write_text(render_card(model, versions=versions), encoding="utf-8")
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir())}
        manifest = {
            "format": FORMAT_NAME,
            "format_version": version,
            "files": files,
            "versions": versions,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return dest


def _head_state(head, tmp: Path, tree_name: str) -> dict[str, Any]:
    """A head's JSON state; its booster (if any) written to ``tmp / tree_name``."""
    trees = head.model.booster_bytes()
    tree_file = None
    if trees is not None:
        tree_file = tree_name
        (tmp / tree_file).write_bytes(trees)
    return {
        "input_columns": list(head.input_columns),
        "background": list(map(float, head.background)),
        "calibration": head.calibrator.to_dict(),
        "threshold": float(head.threshold),
        "features": head.features.to_dict(),
        "model": head.model.to_dict(),
        "trees": tree_file,
        "background_sample": _background_state(head),
    }


def _load_head(therapy: str, h: dict[str, Any], root: Path):
    """A :class:`TherapyHead` from its JSON state (:func:`_head_state`)."""
    from cytoresp.features.builder import PanelFeatures
    from cytoresp.models.response_model import TherapyHead

    trees = (root / h["trees"]).read_bytes() if h["trees"] else None
    pipeline = Pipeline(
        [
            ("features", PanelFeatures.from_dict(h["features"])),
            ("model", classifier_from_dict(h["model"], trees)),
        ]
    )
    alert = h.get("alert_threshold")
    return TherapyHead(
        therapy=therapy,
        pipeline=pipeline,
        input_columns=list(h["input_columns"]),
        background=np.asarray(h["background"], dtype=np.float64),
        calibrator=_load_calibrator(h["calibration"]),
        threshold=float(h["threshold"]),
        background_sample=_load_background(
            h.get("background_sample"), len(pipeline[0].input_names_)
        ),
        alert_threshold=None if alert is None else float(alert),
    )


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def verify_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Check every file of a model directory against its manifest; return the manifest.

    Raises
    ------
    ModelIntegrityError
        If the manifest is missing or unreadable, a listed file is missing or its
        sha256 differs, or the directory holds a file the manifest does not list.
    """
    root = Path(path)
    if not root.is_dir():
        raise ModelIntegrityError(f"{root} is not a directory holding a cytoresp model")
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise ModelIntegrityError(f"{root} has no {MANIFEST}: not a cytoresp model directory")
    try:
        manifest = json.loads(manifest_path.read_text())
        files = dict(manifest["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelIntegrityError(f"{manifest_path} is unreadable or malformed: {exc}") from None
    if manifest.get("format") != FORMAT_NAME:
        raise ModelIntegrityError(
            f"{root} is not a cytoresp model (format {manifest.get('format')!r})"
        )
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise ModelIntegrityError(
            f"{root} was written by a newer cytoresp (format {manifest['format_version']}); upgrade"
        )
    problems = []
    for name, expected in files.items():
        if Path(name).name != name:
            problems.append(f"manifest names a file outside the directory: {name!r}")
            continue
        f = root / name
        if not f.is_file():
            problems.append(f"{name} is missing")
        elif sha256_file(f) != expected:
            problems.append(f"{name} was modified (sha256 does not match the manifest)")
    extra = sorted(p.name for p in root.iterdir() if p.name not in files and p.name != MANIFEST)
    if extra:
        problems.append(f"files not in the manifest: {', '.join(extra)}")
    if problems:
        raise ModelIntegrityError(f"refusing to load the model in {root}: " + "; ".join(problems))
    return manifest


def _load_calibrator(state: Any):
    """A head's calibrator: a saved :class:`LogisticCalibrator`, or the ``[intercept,
    slope]`` pair that models saved before the calibrator object was persisted hold."""
    from cytoresp.models.calibration import LogisticCalibrator

    if isinstance(state, dict):
        return LogisticCalibrator.from_dict(state)
    return LogisticCalibrator.from_legacy(state)


def _background_state(head) -> dict[str, Any] | None:
    """A head's background sample as JSON lists (NaN kept), or None."""
    sample = getattr(head, "background_sample", None)
    if sample is None:
        return None
    return {"Z": sample.Z, "censored": sample.censored, "weights": sample.weights}


def _load_background(state: Any, width: int):
    """The background sample of a head (None for models saved before format 3)."""
    from cytoresp.models.shapley import Background

    if state is None:
        return None
    Z = np.asarray(state["Z"], dtype=np.float64)
    censored = np.asarray(state["censored"], dtype=np.float64)
    weights = np.asarray(state["weights"], dtype=np.float64)
    shape_ok = Z.ndim == 2 and Z.shape[1] == width and censored.shape == Z.shape
    if not shape_ok or weights.shape != (len(Z),) or len(Z) == 0:
        raise ValueError("background_sample has inconsistent shapes")
    if not (np.all(np.isfinite(weights)) and np.all(weights >= 0) and weights.sum() > 0):
        raise ValueError("background_sample weights must be finite, >= 0 and not all 0")
    return Background(Z, censored, weights)


def classifier_from_dict(state: dict[str, Any], trees: bytes | None):
    """A head's classifier from its stored state (``models.default.classifier_from_dict``)."""
    from cytoresp.models.default import classifier_from_dict as rebuild

    return rebuild(state, trees)


def load_model_dir(path: str | os.PathLike):
    """Load a standalone model directory written by :func:`save_model_dir`."""
    from cytoresp.models.response_model import ResponseModel

    root = Path(path)
    manifest = verify_manifest(root)
    try:
        spec = json.loads((root / SPEC).read_text())
        heads = {}
        for therapy, h in spec["heads"].items():
            heads[therapy] = _load_head(therapy, h, root)
        landmarks = None
        if spec.get("landmarks") is not None:  # format 5: landmark heads
            from cytoresp.features.change import ChangeFromBaseline
            from cytoresp.models.landmarks import LandmarkHeads

            lm = spec["landmarks"]
            landmarks = LandmarkHeads(
                heads={
                    int(month): {t: _load_head(t, h, root) for t, h in hs.items()}
                    for month, hs in lm["heads"].items()
                },
                change={int(m): ChangeFromBaseline.from_dict(d)
                        for m, d in lm["change"].items()},
                window=None if lm.get("window") is None else float(lm["window"]),
                alert_sensitivity=float(lm["alert_sensitivity"]),
                metadata=dict(lm.get("metadata") or {}),
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelIntegrityError(f"{root / SPEC} is malformed: {exc}") from None
    metadata = dict(spec.get("metadata", {}))
    metadata.setdefault("saved_with", manifest.get("versions", {}))
    ensemble = None
    if spec.get("ensemble") is not None:  # models saved before the ensemble have none
        from cytoresp.models.recommend import BootstrapEnsemble

        def read_listed(name: str) -> bytes:
            if not isinstance(name, str) or name not in manifest["files"]:
                raise ModelIntegrityError(
                    f"the ensemble names a file not in the manifest: {name!r}"
                )
            return (root / name).read_bytes()

        ensemble = BootstrapEnsemble.from_state(spec["ensemble"], read_listed)
    choice = None
    if spec.get("choice") is not None:  # models saved before the therapy choice have none
        from cytoresp.models.choice import TherapyChoice

        choice = TherapyChoice.from_dict(spec["choice"])
    return ResponseModel(
        heads=heads,
        training_ranges={k: tuple(v) for k, v in spec.get("training_ranges", {}).items()},
        metadata=metadata,
        ensemble=ensemble,
        choice=choice,
        training_quantiles={
            k: [float(x) for x in v] for k, v in spec.get("training_quantiles", {}).items()
        },
        landmarks=landmarks,
    )
