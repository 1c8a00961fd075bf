"""Batch scoring: probabilities per therapy, recommendation, drivers and warnings.

:func:`score_file` streams: it reads the panel in chunks (:mod:`cytoresp.panels.stream`),
scores each chunk and appends it to the output, so memory does not grow with the number of
rows, and the output appears atomically only when every row is scored. Chunks are scored
in parallel on a pool of threads, one per core, each running XGBoost with one thread (the
heavy work, XGBoost, numpy and pyarrow, runs outside the GIL); XGBoost's own threading is
not used on top, so the two never compete for the cores.

Everything per row is vectorised. The recommendation (:mod:`cytoresp.models.choice`)
needs only the heads' probabilities and a few stored numbers per pair of therapies, so it
costs about as much as scoring the heads.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

from cytoresp.models.response_model import ResponseModel
from cytoresp.panels.panel import Panel
from cytoresp.panels.write import check_writable

__all__ = [
    "ScoreSummary",
    "available_cores",
    "score_file",
    "score_frame",
    "score_panel",
    "xgboost_threads",
]


class Cancelled(Exception):
    """Scoring of a chunk stopped because the run is being abandoned."""


@dataclass
class ScoreSummary:
    """What a scoring run did.

    ``notes``: the input's warnings (ignored columns, "did you mean", ...), each once.
    ``missing``: per input the model needs, the number of rows where it is missing.
    """

    n_rows: int
    therapies: list[str]
    output: str
    n_with_warnings: int
    notes: list[str] = field(default_factory=list)
    missing: dict[str, int] = field(default_factory=dict)


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - not Linux
        return max(os.cpu_count() or 1, 1)


def _boosters(model: ResponseModel) -> list[tuple[Any, Any]]:
    """(estimator, booster) of every head with trees (the ensemble is not scored here)."""
    ests = [head.model for head in model.heads.values()]
    return [(e, e.booster_) for e in ests if getattr(e, "booster_", None) is not None]


_TRIM: list[Any] = []


def _trim_heap() -> None:
    """Return freed heap memory to the system (glibc ``malloc_trim``), if available.

    Chunks allocate and free large temporaries from several threads; without this, glibc
    keeps much of the freed memory in its arenas and the resident size creeps up with the
    number of chunks instead of staying at the working set of the chunks in flight.
    """
    if not _TRIM:
        try:
            import ctypes

            _TRIM.append(ctypes.CDLL("libc.so.6").malloc_trim)
        except (OSError, AttributeError):
            _TRIM.append(None)
    if _TRIM[0] is not None:
        _TRIM[0](0)


@contextlib.contextmanager
def xgboost_threads(model: ResponseModel, n_threads: int) -> Iterator[None]:
    """Let every booster of ``model`` predict on ``n_threads`` threads, then restore them."""
    boosters = _boosters(model)
    for _, booster in boosters:
        booster.set_param({"nthread": int(n_threads)})
    try:
        yield
    finally:
        for est, booster in boosters:
            booster.set_param({"nthread": int(getattr(est, "n_jobs", 1) or 1)})


# ---------------------------------------------------------------------------------------
# scoring


def score_frame(
    model: ResponseModel,
    frame: pd.DataFrame,
    therapy: str | None = None,
    explain: int = 0,
    cancel: threading.Event | None = None,
) -> pd.DataFrame:
    """The prediction table of an aligned model frame (see :func:`score_panel`).

    ``cancel``, when set from another thread, stops the work at the next stage
    (:class:`Cancelled`): an interrupted streaming run does not wait for whole chunks.
    """

    def check() -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled

    therapies = model.resolve_therapies(therapy)
    out: dict[str, Any] = {"sample_id": np.asarray(frame.index, dtype=object)}
    check()
    # the heads' log-odds once, for the probabilities and the explanations' totals
    margins = {t: model.heads[t].calibrated_margin(frame) for t in therapies}
    if len(therapies) >= 2:
        table = model.recommend_frame(frame, margins=margins)
    else:
        table = model.predict_proba_frame(frame, therapies, margins=margins)
    for col in table.columns:
        out[col] = table[col].to_numpy()
    for t in therapies if explain > 0 else []:
        check()
        out[f"drivers_{t}"] = model.top_drivers(frame, t, explain, margins[t]).to_numpy()
    out["warnings"] = model.row_warnings(frame).to_numpy()
    return pd.DataFrame(out)


def score_panel(
    model: ResponseModel,
    data: Panel | pd.DataFrame | str | PathLike,
    therapy: str | None = None,
    explain: int = 0,
) -> pd.DataFrame:
    """The prediction table of DESIGN.md, one row per sample in input order.

    Columns: ``sample_id``, ``p_response_<therapy>`` (one or more); where two or more
    heads are scored, the recommendation columns of :meth:`ResponseModel.recommend`
    (:data:`~cytoresp.models.choice.RECOMMENDATION_COLUMNS`); ``drivers_<therapy>`` (with
    ``explain > 0``: the ``explain`` largest signed cytokine-level contributions), and
    ``warnings`` (missing analytes, values outside the training range).

    Examples
    --------
    >>> table = score_panel(model, "new_patients.csv", explain=3)
    >>> list(table.columns)
    ['sample_id', 'p_response_ifnb', 'p_response_ga', 'leading_therapy', 'runner_up',
     'difference', 'difference_lower', 'difference_upper', 'recommended_therapy',
     'recommendation_reason', 'drivers_ifnb', 'drivers_ga', 'warnings']
    """
    return score_frame(model, model.model_frame(data), therapy, explain)


def score_file(
    model: ResponseModel,
    source: str | PathLike,
    dest: str | PathLike,
    therapy: str | None = None,
    explain: int = 0,
    *,
    chunk_rows: int | None = None,
    n_workers: int | None = None,
    progress: Any = None,
    format: str | None = None,  # noqa: A002 - read_panel's keyword
    strict: bool = False,
) -> ScoreSummary:
    """Score a panel file chunk by chunk and write the predictions atomically.

    Parameters
    ----------
    model : ResponseModel
    source : path or ``"-"``
        A panel file (CSV and Parquet are streamed; other formats are read whole, see
        :mod:`cytoresp.panels.stream`), or ``-`` for standard input.
    dest : path or ``"-"``
        ``.csv`` or ``.parquet``; ``-`` writes CSV to standard output.
    therapy : str, optional
        Score one head only (a therapy id of the model; default: every head, with a
        recommendation when there are two or more).
    explain : int
        Add the ``explain`` largest cytokine drivers per therapy (0: none, and none
        computed).
    chunk_rows : int, optional
        Rows per chunk (default :data:`~cytoresp.panels.stream.DEFAULT_CHUNK_ROWS`).
    n_workers : int, optional
        Chunks scored at the same time, each on one thread (default: every available
        core). Memory grows with it (about one chunk's working set per worker), not with
        the number of rows.
    progress : rich Console, optional
        Show a progress bar (rows, rows/s) on this console.
    format : {"wide", "luminex", "long", "xlsx", "parquet"}, optional
        Force the input format (:func:`~cytoresp.panels.read.read_panel`); the file
        is then read whole before scoring (not streamed).
    strict : bool
        Refuse the input (InputError, nothing written) when it has an ignored column, a
        guessed role, or lacks an input the model needs (``cytoresp predict --strict``).

    Returns
    -------
    ScoreSummary

    Raises
    ------
    InputError
        For bad input, listing the problems with file, row and column; nothing is written.

    Examples
    --------
    >>> score_file(model, "cohort.csv", "predictions.parquet", explain=3)
    ScoreSummary(n_rows=40, therapies=['ifnb', 'ga'], output='predictions.parquet',
                 n_with_warnings=...)
    """
    from cytoresp.panels.stream import DEFAULT_CHUNK_ROWS, iter_chunks
    from cytoresp.predict.streaming import TableWriter

    check_writable(dest)
    therapies = model.resolve_therapies(therapy)
    workers = max(int(n_workers or available_cores()), 1)
    if format is not None:
        from cytoresp.panels.read import read_panel

        # read whole; chunks are handed out
        source = read_panel(source, format=format, therapies=model.declared_therapies,
                            columns=model.declared_columns)
    if "plate" in model.input_columns:
        # per-plate normalisation: a plate not seen in training is normalised by the
        # median of its rows in the input, so every row must be in the one chunk
        chunk_rows = 2**31 - 1
    stream, chunks = iter_chunks(source, chunk_rows or DEFAULT_CHUNK_ROWS,
                                 therapies=model.declared_therapies,
                                 columns=model.declared_columns)
    n_rows = n_warn = 0
    with contextlib.ExitStack() as stack:
        update = None
        if progress is not None:
            from cytoresp.predict.streaming import rich_progress

            update = stack.enter_context(rich_progress(progress, stream.total_bytes))
        # parallel over chunks, one XGBoost thread each: threads that never wait on each
        # other (XGBoost's own threads synchronise per call, costly on a busy machine)
        stack.enter_context(xgboost_threads(model, 1))
        writer = stack.enter_context(TableWriter(dest))
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=workers))
        cancel = threading.Event()
        stack.callback(pool.shutdown, wait=True, cancel_futures=True)
        stack.callback(cancel.set)  # first on the way out: running chunks stop early
        pending: deque = deque()

        def drain(keep: int) -> None:
            nonlocal n_rows, n_warn
            while len(pending) > keep:
                future, bytes_read = pending.popleft()
                table = future.result()
                writer.write(table)
                n_rows += len(table)
                n_warn += int((table["warnings"] != "").sum())
                if update is not None:
                    update(n_rows, bytes_read)
                del table
                _trim_heap()

        notes: list[str] = []
        missing: dict[str, int] = {}
        for chunk in chunks:
            frame = model.model_frame(chunk.panel)
            for note in chunk.panel.warnings:
                if note not in notes and len(notes) < 50:
                    notes.append(note)
            for col, k in frame.isna().sum().items():
                if k:
                    missing[col] = missing.get(col, 0) + int(k)
            if strict:
                check_strict(model, chunk.panel, frame)
            future = pool.submit(score_frame, model, frame, therapy, explain, cancel)
            pending.append((future, chunk.bytes_read))
            drain(workers)
        drain(0)
    return ScoreSummary(
        n_rows=n_rows, therapies=therapies, output=str(dest), n_with_warnings=n_warn,
        notes=notes, missing=missing,
    )


def check_strict(model: ResponseModel, panel: Panel, frame: pd.DataFrame) -> None:
    """``--strict``: an InputError for ignored columns, guessed roles and absent inputs.

    An input is absent when the panel has no column for it at all (an analyte or covariate
    the model was trained on); a cell missing here and there is not an error.
    """
    from cytoresp.errors import InputError, Problem

    present = set(panel.analytes) | set(panel.covariates.columns)
    if panel.plate is not None:
        present.add("plate")
    absent = [c for c in model.input_columns if c not in present]
    found = [Problem(panel.source, None, None, f"--strict: {note}") for note in panel.strict_notes]
    if absent:
        found.append(Problem(panel.source, None, None,
                             f"--strict: the model needs {', '.join(absent)}, which the file "
                             f"does not have (its columns are matched by name: "
                             f"docs/analytes.md)"))
    if found:
        raise InputError(found)
