"""Batch scoring: probabilities per therapy, recommendation, drivers and warnings.

:func:`score_file` streams: it reads the panel in chunks (:mod:`cytoresp.predict.streaming`),
scores each chunk and appends it to the output, so memory does not grow with the number of
rows, and the output appears atomically only when every row is scored. Chunks are scored
in parallel on a pool of threads, one per core, each running XGBoost with one thread (the
heavy work, XGBoost, numpy and pyarrow, runs outside the GIL); XGBoost's own threading is
not used on top, so the two never compete for the cores.

Everything per row is vectorised. The one costly part is the recommendation of a model
with a bootstrap ensemble (:mod:`cytoresp.models.recommend`): the interval on the
difference between therapies needs every member's prediction. :func:`recommended_therapy`
gives exactly the ensemble rule's answer while evaluating members in blocks and dropping,
after each block, the rows whose answer is already certain to be ``either``.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

from cytoresp.features.panel import Panel
from cytoresp.models.response_model import DEFAULT_EQUIVALENCE_MARGIN, ResponseModel
from cytoresp.predict.writers import check_writable

__all__ = [
    "ScoreSummary",
    "available_cores",
    "recommended_therapy",
    "score_file",
    "score_frame",
    "score_panel",
    "xgboost_threads",
]

#: Members evaluated before the first check for rows already decided (``either``), then
#: after each further block: the rule needs at least 4 draws against the point estimate.
_MEMBER_BLOCKS = (5, 10, 15, 20, 30, 40)


class Cancelled(Exception):
    """Scoring of a chunk stopped because the run is being abandoned."""


@dataclass
class ScoreSummary:
    """What a scoring run did."""

    n_rows: int
    therapies: list[str]
    output: str
    n_with_warnings: int


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - not Linux
        return max(os.cpu_count() or 1, 1)


def _boosters(model: ResponseModel) -> list[tuple[Any, Any]]:
    """(estimator, booster) of every head and ensemble member with trees."""
    ests = [head.model for head in model.heads.values()]
    if model.ensemble is not None:
        ests += [m for members in model.ensemble.members.values() for m in members]
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
# the recommendation


def recommended_therapy(
    model: ResponseModel,
    frame: pd.DataFrame,
    proba: pd.DataFrame,
    margin: float = DEFAULT_EQUIVALENCE_MARGIN,
    cancel: threading.Event | None = None,
) -> np.ndarray:
    """``ifnb`` / ``ga`` / ``either`` per row: the same answer as ``model.recommend_frame``.

    With a bootstrap ensemble, members are evaluated in blocks; a row leaves as soon as
    enough draws of the difference lie on the other side of zero from the point estimate
    that the percentile interval must include zero (``either``). The remaining rows get
    every draw and the ensemble's own interval rule
    (:func:`~cytoresp.models.recommend.recommend_with_interval`).

    Parameters
    ----------
    model : ResponseModel
        A model with both heads.
    frame : DataFrame
        Its aligned model frame.
    proba : DataFrame
        ``p_response_ifnb`` and ``p_response_ga`` of the rows (the main heads).
    margin : float
        The fixed-margin rule of models without an ensemble.
    cancel : threading.Event, optional
        Checked between blocks of members: when set, :class:`Cancelled` is raised.

    Returns
    -------
    ndarray of object
    """
    from cytoresp.models.recommend import member_margins, recommend_with_interval
    from cytoresp.models.response_model import recommend_from_proba

    ens = model.ensemble
    if ens is None or not set(ens.therapies) >= {"ifnb", "ga"}:
        rec = recommend_from_proba(proba, margin)["recommended_therapy"]
        return np.asarray(rec.to_numpy(), dtype=object)
    n = len(frame)
    B = ens.n_members
    level = ens.level
    alpha = (1.0 - level) / 2.0
    # lower quantile <= sorted[floor(h) + 1] and upper >= sorted[floor(H)] (linear rule),
    # with h, H the positions alpha (B-1) and (1-alpha)(B-1); a margin guards rounding.
    need_below = math.floor(alpha * (B - 1) + 1e-9) + 2  # draws <= 0 that exclude ifnb
    need_above = B - math.floor((1.0 - alpha) * (B - 1) - 1e-9)  # draws >= 0 that exclude ga
    d = (proba["p_response_ifnb"] - proba["p_response_ga"]).to_numpy(dtype=np.float64)
    rec = np.full(n, "either", dtype=object)
    alive = np.flatnonzero((d > 0) | (d < 0))
    draws = np.empty((B, n), dtype=np.float64)
    against = np.zeros(n, dtype=np.int64)
    edges = [b for b in _MEMBER_BLOCKS if b < B] + [B]
    # the heads' features once (C order: XGBoost reads rows), the members' calibrated
    # probabilities as BootstrapEnsemble.probability_draws computes them
    feats = {}
    for t in ("ifnb", "ga"):
        head = model.heads[t]
        feats[t] = np.ascontiguousarray(
            head.features.transform(frame[head.input_columns]), dtype=np.float64
        )
    start = 0
    for stop in edges:
        if len(alive) == 0:
            break
        if cancel is not None and cancel.is_set():
            raise Cancelled
        p = {}
        for t in ("ifnb", "ga"):
            a, b = model.heads[t].calibration
            margins = member_margins(ens.members[t][start:stop], feats[t][alive])
            p[t] = 0.5 * (1.0 + np.tanh(0.5 * (a + b * margins)))
        dd = p["ifnb"] - p["ga"]
        draws[start:stop, alive] = dd
        up = d[alive] > 0
        against[alive] += np.where(up, (dd <= 0).sum(axis=0), (dd >= 0).sum(axis=0))
        need = np.where(up, need_below, need_above)
        alive = alive[against[alive] < need]
        start = stop
    if len(alive):
        full = recommend_with_interval(proba.iloc[alive], draws[:, alive], level)
        rec[alive] = full["recommended_therapy"].to_numpy(dtype=object)
    return rec


# ---------------------------------------------------------------------------------------
# scoring


def score_frame(
    model: ResponseModel,
    frame: pd.DataFrame,
    therapy: str | None = None,
    explain: int = 0,
    margin: float = DEFAULT_EQUIVALENCE_MARGIN,
    cancel: threading.Event | None = None,
) -> pd.DataFrame:
    """The prediction table of an aligned model frame (see :func:`score_panel`).

    ``cancel``, when set from another thread, stops the work at the next stage
    (:class:`Cancelled`): an interrupted streaming run does not wait for whole chunks.
    """

    def check() -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled

    therapies = model._therapies(therapy)
    proba = model.predict_proba_frame(frame, therapies)
    out: dict[str, Any] = {"sample_id": np.asarray(frame.index, dtype=object)}
    for t in therapies:
        out[f"p_response_{t}"] = proba[f"p_response_{t}"].to_numpy()
    if len(therapies) == 2:
        check()
        out["recommended_therapy"] = recommended_therapy(model, frame, proba, margin, cancel)
    for t in therapies if explain > 0 else []:
        check()
        out[f"drivers_{t}"] = model.top_drivers(frame, t, explain).to_numpy()
    out["warnings"] = model.row_warnings(frame).to_numpy()
    return pd.DataFrame(out)


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

    Examples
    --------
    >>> table = score_panel(model, "new_patients.csv", explain=3)  # doctest: +SKIP
    >>> list(table.columns)  # doctest: +SKIP
    ['sample_id', 'p_response_ifnb', 'p_response_ga', 'recommended_therapy',
     'drivers_ifnb', 'drivers_ga', 'warnings']
    """
    return score_frame(model, model.model_frame(data), therapy, explain, margin)


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
    margin: float = DEFAULT_EQUIVALENCE_MARGIN,
    format: str | None = None,  # noqa: A002 - read_panel's keyword
) -> ScoreSummary:
    """Score a panel file chunk by chunk and write the predictions atomically.

    Parameters
    ----------
    model : ResponseModel
    source : path or ``"-"``
        A panel file (CSV and Parquet are streamed; other formats are read whole, see
        :mod:`cytoresp.predict.streaming`), or ``-`` for standard input.
    dest : path or ``"-"``
        ``.csv`` or ``.parquet``; ``-`` writes CSV to standard output.
    therapy : {"ifnb", "ga"}, optional
        Score one head only (default: every head, with a recommendation).
    explain : int
        Add the ``explain`` largest cytokine drivers per therapy (0: none, and none
        computed).
    chunk_rows : int, optional
        Rows per chunk (default :data:`~cytoresp.predict.streaming.DEFAULT_CHUNK_ROWS`).
    n_workers : int, optional
        Chunks scored at the same time, each on one thread (default: every available
        core). Memory grows with it (about one chunk's working set per worker), not with
        the number of rows.
    progress : rich Console, optional
        Show a progress bar (rows, rows/s) on this console.
    format : {"wide", "luminex", "long", "xlsx", "parquet"}, optional
        Force the input format (:func:`~cytoresp.features.reader.read_panel`); the file
        is then read whole before scoring (not streamed).

    Returns
    -------
    ScoreSummary

    Raises
    ------
    InputError
        For bad input, listing the problems with file, row and column; nothing is written.

    Examples
    --------
    >>> score_file(model, "cohort.csv", "predictions.parquet", explain=3)  # doctest: +SKIP
    """
    from cytoresp.predict.streaming import DEFAULT_CHUNK_ROWS, TableWriter, iter_chunks

    check_writable(dest)
    therapies = model._therapies(therapy)
    workers = max(int(n_workers or available_cores()), 1)
    if format is not None:
        from cytoresp.features.reader import read_panel

        source = read_panel(source, format=format)  # read whole; chunks are handed out
    if "plate" in model.input_columns:
        # per-plate normalisation: a plate not seen in training is normalised by the
        # median of its rows in the input, so every row must be in the one chunk
        chunk_rows = 2**31 - 1
    stream, chunks = iter_chunks(source, chunk_rows or DEFAULT_CHUNK_ROWS)
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

        for chunk in chunks:
            frame = model.model_frame(chunk.panel)
            future = pool.submit(score_frame, model, frame, therapy, explain, margin, cancel)
            pending.append((future, chunk.bytes_read))
            drain(workers)
        drain(0)
    return ScoreSummary(
        n_rows=n_rows, therapies=therapies, output=str(dest), n_with_warnings=n_warn
    )
