"""Batch scoring: probabilities per therapy, recommendation, drivers and warnings."""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike

import pandas as pd

from cytoresp.features.panel import Panel
from cytoresp.models.response_model import DEFAULT_EQUIVALENCE_MARGIN, ResponseModel
from cytoresp.predict.writers import check_writable, write_table


@dataclass
class ScoreSummary:
    """What a scoring run did."""

    n_rows: int
    therapies: list[str]
    output: str
    n_with_warnings: int


def score_panel(
    model: ResponseModel,
    data: Panel | pd.DataFrame | str | PathLike,
    therapy: str | None = None,
    explain: int = 0,
    margin: float = DEFAULT_EQUIVALENCE_MARGIN,
) -> pd.DataFrame:
    """The prediction table of DESIGN.md, one row per sample in input order.

    Columns: ``sample_id``, ``p_response_<therapy>`` (one or both),
    ``recommended_therapy`` (where both heads are scored), ``drivers_<therapy>`` (with
    ``explain > 0``: the ``explain`` largest signed cytokine-level contributions), and
    ``warnings`` (missing analytes, values outside the training range).
    """
    frame = model.model_frame(data)
    therapies = model._therapies(therapy)
    proba = model.predict_proba_frame(frame, therapy)
    out = proba.copy()
    if len(therapies) == 2:
        out["recommended_therapy"] = model.recommend_frame(frame, margin)["recommended_therapy"]
    for t in therapies if explain > 0 else []:
        out[f"drivers_{t}"] = model.top_drivers(frame, t, explain).to_numpy()
    out["warnings"] = model.row_warnings(frame).to_numpy()
    out.index.name = "sample_id"
    return out.reset_index()


def score_file(
    model: ResponseModel,
    source: str | PathLike,
    dest: str | PathLike,
    therapy: str | None = None,
    explain: int = 0,
) -> ScoreSummary:
    """Score a panel file and write the predictions atomically (``-`` for stdin/stdout)."""
    check_writable(dest)
    table = score_panel(model, source, therapy=therapy, explain=explain)
    write_table(table, dest)
    return ScoreSummary(
        n_rows=len(table),
        therapies=model._therapies(therapy),
        output=str(dest),
        n_with_warnings=int((table["warnings"] != "").sum()),
    )
