"""Read a training file whose outcome is derived from follow-up columns (``--label-from``)."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from cytoresp.errors import InputError, Problem, UsageError
from cytoresp.panels.panel import Panel


def _raw_table(
    source: str | PathLike | pd.DataFrame, format: str | None = None  # noqa: A002
) -> tuple[pd.DataFrame, str]:
    if isinstance(source, pd.DataFrame):
        return source.copy(), "<DataFrame>"
    name = str(source)
    suffix = Path(name).suffix.lower()
    try:
        if format == "parquet" or (format is None and suffix in (".parquet", ".pq")):
            table = pd.read_parquet(name)
        elif format == "xlsx" or (format is None and suffix in (".xlsx", ".xlsm")):
            table = pd.read_excel(name, dtype=str)
        else:
            table = pd.read_csv(name, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise InputError([Problem(name, None, None, "file not found")]) from None
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise InputError([Problem(name, None, None, f"cannot read the table: {exc}")]) from None
    return table, name


def read_training_panel(
    source: str | PathLike | pd.DataFrame,
    label_from: str | None = None,
    format: str | None = None,  # noqa: A002 - read_panel's keyword
) -> Panel:
    """The training panel, with ``responder`` derived by a named outcome definition.

    Parameters
    ----------
    source : path or DataFrame
        A wide table with the cytokines, ``therapy`` and, with ``label_from``, the
        first-year follow-up columns of :data:`cytoresp.features.outcomes.FOLLOW_UP_COLUMNS`.
    label_from : str, optional
        ``rio``, ``modified_rio``, ``magnims`` or ``neda3``
        (:mod:`cytoresp.features.outcomes`). Without it, ``responder`` must be a column.
    format : {"wide", "luminex", "long", "xlsx", "parquet"}, optional
        Force the file format (:func:`~cytoresp.panels.read.read_panel`); with
        ``label_from`` only a wide table (CSV, ``xlsx`` or ``parquet``) can be used.

    Returns
    -------
    Panel
        Patients whose label cannot be decided (missing follow-up) keep a missing
        ``responder`` and are left out of training, with a warning.
    """
    from cytoresp.panels.read import read_panel

    if label_from is None:
        return read_panel(source, require_labels=True, format=format)
    from cytoresp.features.outcomes import derive_responder
    from cytoresp.panels.read import FORMATS

    if format is not None and format not in FORMATS:
        raise UsageError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    if format in ("luminex", "long"):
        raise UsageError(
            f"--label-from needs one row per patient with the follow-up columns (a wide "
            f"CSV, xlsx or parquet table), not a {format} file"
        )
    table, name = _raw_table(source, format)
    if "responder" in {str(c).strip().lower() for c in table.columns}:
        raise InputError(
            [Problem(name, None, "responder",
                     f"the file has a 'responder' column and --label-from {label_from} was given; "
                     "remove one of the two so the label is unambiguous")]
        )
    derived = derive_responder(table, label_from, source=name)
    table["responder"] = np.where(derived.isna(), "", derived.astype("Int64").astype(str))
    panel = read_panel(table, require_labels=False)
    panel.source = name
    n_unknown = int(panel.responder.isna().sum())
    if n_unknown:
        panel.warnings.append(
            f"{n_unknown} patient(s) have follow-up too incomplete to decide the "
            f"{label_from} label; they are left out of training"
        )
    return panel
