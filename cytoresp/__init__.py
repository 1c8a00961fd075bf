"""cytoresp: predict response to interferon-beta or glatiramer acetate from a cytokine panel.

The public API:

- :func:`read_panel` / :func:`write_panel`: read and validate a cytokine panel file.
- :func:`simulate_cohort`: the built-in, literature-grounded simulated cohort.
- :func:`fit_response_model`: cross-validate and fit a model without MLflow.
- :func:`load_model`: load a model from an MLflow URI or a model directory.
- :class:`ResponseModel`: ``predict_proba``, ``explain``, ``recommend``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "read_panel": "cytoresp.panels",
    "write_panel": "cytoresp.panels",
    "Panel": "cytoresp.panels",
    "simulate_cohort": "cytoresp.datasets",
    "fit_response_model": "cytoresp.train.fitting",
    "TrainConfig": "cytoresp.train.config",
    "load_model": "cytoresp.models.mlflow_flavour",
    "ResponseModel": "cytoresp.models.response_model",
    "InputError": "cytoresp.errors",
}

__all__ = [
    "InputError",
    "Panel",
    "ResponseModel",
    "TrainConfig",
    "__version__",
    "fit_response_model",
    "load_model",
    "read_panel",
    "simulate_cohort",
    "write_panel",
]

if TYPE_CHECKING:  # pragma: no cover
    from cytoresp.datasets import simulate_cohort
    from cytoresp.errors import InputError
    from cytoresp.models.mlflow_flavour import load_model
    from cytoresp.models.response_model import ResponseModel
    from cytoresp.panels import Panel, read_panel, write_panel
    from cytoresp.train.config import TrainConfig
    from cytoresp.train.fitting import fit_response_model


def __getattr__(name: str) -> Any:
    # Lazy imports keep `import cytoresp` and the CLI's start fast (MLflow is heavy).
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'cytoresp' has no attribute {name!r}")
