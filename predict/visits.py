"""Scoring panels with visits: the latest landmark per patient, the change and the alert.

A model trained with landmark heads (``cytoresp train --landmarks 0,3,6``) scores a panel
that holds ``patient_id`` and ``month`` one row per patient
(:func:`cytoresp.models.landmarks.score_visits`); any other panel is scored as usual,
one row per sample (:func:`cytoresp.predict.batch.score_panel`). The whole panel is read
at once (a patient's visits may be anywhere in the file).
"""

from __future__ import annotations

import pandas as pd

from cytoresp.models.landmarks import score_visits
from cytoresp.models.response_model import ResponseModel
from cytoresp.panels.panel import Panel

__all__ = ["visits_table"]


def visits_table(
    model: ResponseModel, panel: Panel, therapy: str | None = None, explain: int = 0
) -> pd.DataFrame:
    """The prediction table of ``panel``: by patient when it holds visits, else by sample."""
    if getattr(panel, "has_visits", False):
        return score_visits(model, panel, therapy=therapy, explain=explain)
    from cytoresp.predict.batch import score_panel

    return score_panel(model, panel, therapy=therapy, explain=explain)
