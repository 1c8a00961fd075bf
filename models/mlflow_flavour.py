"""MLflow integration: log a ResponseModel as a pyfunc model, and load models by URI.

The model is logged with ``loader_module`` and ``data_path`` (MLflow's custom-flavour
mechanism), not as a pickled ``PythonModel``: the artifact holds the standalone model
directory (JSON + native XGBoost + manifest) and loading it goes through
:func:`cytoresp.models.persistence.load_model_dir`, which checks the manifest and never
unpickles. The pyfunc ``predict`` returns one probability column per therapy.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cytoresp.errors import ModelIntegrityError, TrackingError
from cytoresp.models.persistence import MANIFEST, load_model_dir, save_model_dir

LOADER_MODULE = "cytoresp.models.mlflow_flavour"
MODEL_DATA_DIR = "cytoresp_model"

#: Distributions pinned in the logged model's requirements (explicit: inference is slow
#: and drags in test tools, see STACK-NOTES.md).
PINNED_REQUIREMENTS = ("cytoresp", "numpy", "pandas", "scikit-learn", "xgboost", "mlflow")


def pip_requirements() -> list[str]:
    """Exact pins of what loading a logged model needs."""
    reqs = []
    for name in PINNED_REQUIREMENTS:
        try:
            reqs.append(f"{name}=={importlib_metadata.version(name)}")
        except importlib_metadata.PackageNotFoundError:
            reqs.append(name)
    return reqs


class CytorespPyfunc:
    """What ``mlflow.pyfunc.load_model`` returns the predictions of.

    ``predict`` takes the model frame (float columns: analytes in pg/mL, ``-L`` for a
    value censored below ``L``, clinical covariates) and returns ``p_response_<therapy>``.
    A model trained with per-plate normalisation also takes a string column ``plate``
    (the plate labels; numeric plate codes from ``plate_codes`` are accepted too). A
    plate not seen in training is normalised by the median of its rows *in the same
    request*, so send a new plate's samples together (docs/methods.md).
    """

    def __init__(self, model):
        self.model = model

    def predict(self, model_input: pd.DataFrame, params: dict[str, Any] | None = None):
        from cytoresp.models.response_model import align_frame

        frame = pd.DataFrame(model_input)
        plate = None
        if "plate" in frame.columns and not pd.api.types.is_numeric_dtype(frame["plate"]):
            from cytoresp.panels.panel import plate_codes

            plate = plate_codes(frame["plate"].to_numpy())
            frame = frame.drop(columns="plate")
        frame = frame.apply(pd.to_numeric, errors="coerce")
        if plate is not None:
            frame["plate"] = plate
        if "plate" in self.model.input_columns and "plate" not in frame.columns:
            from cytoresp.errors import InputError

            raise InputError(
                "this model was trained with per-plate normalisation: the input needs a "
                "'plate' column (the plate label of every row)"
            )
        frame = align_frame(frame, self.model.input_columns)
        therapy = (params or {}).get("therapy")
        return self.model.predict_proba_frame(frame, therapy).reset_index(drop=True)

    def unwrap_python_model(self):
        return self.model


def _load_pyfunc(data_path: str) -> CytorespPyfunc:
    """Entry point MLflow calls (``loader_module``)."""
    return CytorespPyfunc(_load_checked(Path(data_path)))


def signature_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Float64 copy of a model frame: integer columns break MLflow signature checks.

    A ``plate`` column of labels (per-plate normalisation) stays a string column.
    """
    if "plate" in frame.columns and not pd.api.types.is_numeric_dtype(frame["plate"]):
        out = frame.drop(columns="plate").astype(np.float64)
        out["plate"] = frame["plate"].fillna("").astype(str).to_numpy()
        return out[list(frame.columns)].reset_index(drop=True)
    return frame.astype(np.float64).reset_index(drop=True)


def log_response_model(
    model,
    input_example: pd.DataFrame,
    name: str = "model",
    registered_model_name: str | None = None,
):
    """Log ``model`` to the active MLflow run (and register it when a name is given).

    Returns
    -------
    mlflow.models.model.ModelInfo
    """
    import mlflow
    from mlflow.models import infer_signature

    example = signature_frame(input_example)
    output = CytorespPyfunc(model).predict(example)
    signature = infer_signature(example, output)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()):
        # redirect_stderr: MLflow prints registration chatter straight to stderr
        data = save_model_dir(model, Path(tmp) / MODEL_DATA_DIR)
        return mlflow.pyfunc.log_model(
            name=name,
            loader_module=LOADER_MODULE,
            data_path=str(data),
            pip_requirements=pip_requirements(),
            signature=signature,
            input_example=example,
            registered_model_name=registered_model_name,
        )


def _find_data_dir(root: Path) -> Path:
    from mlflow.models import Model

    mlmodel = Model.load(str(root / "MLmodel"))
    flavor = mlmodel.flavors.get("python_function", {})
    if flavor.get("loader_module") != LOADER_MODULE or "data" not in flavor:
        raise ModelIntegrityError(f"{root} is an MLflow model, but not a cytoresp model")
    data = root / flavor["data"]
    if (data / MANIFEST).exists():
        return data
    nested = data / MODEL_DATA_DIR
    return nested if (nested / MANIFEST).exists() else data


def is_uri(text: str) -> bool:
    """True for MLflow model URIs such as ``models:/NAME@champion`` or ``runs:/ID/model``."""
    return text.startswith(("models:/", "runs:/", "mlflow-artifacts:/")) or "://" in text


def load_model(uri_or_path: str | os.PathLike):
    """Load a cytoresp model from an MLflow URI or a local directory.

    Parameters
    ----------
    uri_or_path : str or path
        ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``runs:/RUN_ID/model``, a
        standalone model directory (``train --out DIR``), or a local MLflow model
        directory. The tracking store is ``MLFLOW_TRACKING_URI`` if set, else MLflow's
        default.

    Returns
    -------
    ResponseModel

    Examples
    --------
    From the registry, ``cytoresp.load_model("models:/cytoresp@champion")``; from a
    standalone model directory (``cytoresp train --out model_dir``):

    >>> import cytoresp
    >>> model = cytoresp.load_model("model_dir")
    >>> model.therapies
    ['ifnb', 'ga']
    """
    text = os.fspath(uri_or_path)
    local = Path(text)
    if not is_uri(text):
        if not local.exists():
            raise ModelIntegrityError(
                f"no model at {text!r}: give a model directory (train --out DIR) or an MLflow "
                "URI such as models:/NAME/1 or models:/NAME@candidate"
            )
        if (local / MANIFEST).exists():
            return _load_checked(local)
        if (local / "MLmodel").exists():
            return _load_checked(local, mlflow_dir=True)
        raise ModelIntegrityError(f"{local} holds neither a cytoresp model nor an MLflow model")

    import mlflow
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory() as tmp:
        try:
            root = Path(mlflow.artifacts.download_artifacts(artifact_uri=text, dst_path=tmp))
        except MlflowException as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            tracking = mlflow.get_tracking_uri()
            if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or (
                "not found" in message.lower() or "does not exist" in message.lower()
            ):
                raise ModelIntegrityError(
                    f"{text}: {message} (tracking store {tracking})"
                ) from None
            raise TrackingError(f"cannot load {text} from {tracking}: {message}") from None
        return _load_checked(root, mlflow_dir=True)


def _load_checked(root: Path, mlflow_dir: bool = False):
    """:func:`load_model_dir` for an untrusted directory: readable errors, confined files.

    Every failure is a :class:`ModelIntegrityError` (exit code 2) whose message has no
    native backtrace (XGBoost appends one to its errors), and a tree file that model.json
    names must be one of the files the manifest lists (not ``../x`` or ``/etc/x``).
    """
    try:
        data = _find_data_dir(root) if mlflow_dir else root
        _check_tree_files(data)
        return load_model_dir(data)
    except ModelIntegrityError as exc:
        raise ModelIntegrityError(_without_native_trace(str(exc))) from None
    except Exception as exc:  # noqa: BLE001 - a damaged model file must not crash the CLI
        reason = _without_native_trace(str(exc)).splitlines() or [""]
        raise ModelIntegrityError(
            f"cannot load the model in {root}: its files are damaged or not a cytoresp "
            f"model ({type(exc).__name__}: {reason[0][:300]})"
        ) from None


def _without_native_trace(message: str) -> str:
    return message.split("\nStack trace:", 1)[0].rstrip()


def _check_tree_files(data: Path) -> None:
    import json

    from cytoresp.models.persistence import verify_manifest

    listed = set(verify_manifest(data)["files"])  # its own errors first
    try:
        heads = json.loads((data / "model.json").read_text())["heads"]
        named = {t: h.get("trees") for t, h in heads.items()}
    except Exception:  # noqa: BLE001 - load_model_dir reports a missing or malformed file
        return
    for therapy, trees in named.items():
        if trees is not None and (not isinstance(trees, str) or trees not in listed):
            raise ModelIntegrityError(
                f"refusing to load the model in {data}: model.json names a tree file for "
                f"{therapy!r} that the manifest does not list: {trees!r}"
            )
