"""cytoresp.models: what a fitted model needs to score and explain.

``cytoresp.models.default_classifier()`` is the unfitted classifier each therapy head ends
in (:mod:`cytoresp.models.default`); it is imported on first use, so that importing a
light submodule does not load XGBoost.
"""

from typing import Any

__all__ = ["default_classifier"]


def __getattr__(name: str) -> Any:
    if name == "default_classifier":
        from cytoresp.models.default import default_classifier

        return default_classifier
    raise AttributeError(f"module 'cytoresp.models' has no attribute {name!r}")
