"""Read a training file whose outcome is derived from follow-up columns (``--label-from``)."""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

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
    *,
    label: str | None = None,
    positive: str | None = None,
    therapies: Mapping[str, Any] | None = None,
    therapy_if_absent: str | None = None,
    columns: tuple[Any, ...] | None = None,
    select_rows: Mapping[str, Any] | None = None,
) -> Panel:
    """The training panel, with ``responder`` from a column or a named outcome definition.

    Parameters
    ----------
    source : path or DataFrame
        A wide table with the cytokines, ``therapy`` and, with ``label_from``, the
        first-year follow-up columns of :data:`cytoresp.features.outcomes.FOLLOW_UP_COLUMNS`.
    label_from : str, optional
        ``rio``, ``modified_rio``, ``magnims`` or ``neda3``
        (:mod:`cytoresp.features.outcomes`). Without it and ``label``, ``responder`` must
        be a column.
    format : {"wide", "luminex", "long", "xlsx", "parquet"}, optional
        Force the file format (:func:`~cytoresp.panels.read.read_panel`); with
        ``label_from``, ``label`` or ``therapy_if_absent`` only a wide table (CSV,
        ``xlsx`` or ``parquet``) can be used.
    label : str, optional
        The outcome column (any two-level column: ``relapse_free_2y``, ``status``...).
    positive : str, optional
        Its value that counts as the outcome (1); needed unless the column holds 0/1,
        yes/no or true/false.
    therapies : mapping, optional
        Declared therapies (:func:`~cytoresp.panels.therapies.declared_therapies`).
    therapy_if_absent : str, optional
        Therapy id of every row when the table has no therapy column.
    columns : tuple of DeclaredColumn, optional
        Declared covariates and measurements (:mod:`cytoresp.panels.declared`).
    select_rows : mapping, optional
        Keep only the rows whose columns hold these values (``{"Timepoint": "T0"}``).

    Returns
    -------
    Panel
        Patients whose label cannot be decided (missing follow-up or outcome) keep a
        missing ``responder`` and are left out of training, with a warning.

    Examples
    --------
    >>> table = pd.DataFrame({"sample_id": ["a", "b", "c"], "IL6": [1.0, 2.0, 3.0],
    ...                       "DMT": ["Tysabri", "Avonex", "Copaxone"],
    ...                       "outcome": ["survived", "died", ""]})
    >>> p = read_training_panel(table, label="outcome", positive="survived")
    >>> p.responder.tolist(), p.therapy.tolist()
    ([1.0, 0.0, nan], ['natalizumab', 'ifnb', 'ga'])
    """
    from cytoresp.panels.read import read_panel

    if label_from is not None and label is not None:
        raise UsageError("give --label or --label-from, not both")
    if label_from is None and label is None and therapy_if_absent is None and not select_rows:
        return read_panel(source, require_labels=True, format=format, therapies=therapies,
                          columns=columns)
    from cytoresp.panels.read import FORMATS

    if format is not None and format not in FORMATS:
        raise UsageError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    what = ("--label-from" if label_from else "--label" if label else
            "therapy_if_absent" if therapy_if_absent else "select_rows")
    if format in ("luminex", "long"):
        raise UsageError(
            f"{what} needs one row per patient with the outcome columns (a wide "
            f"CSV, xlsx or parquet table), not a {format} file"
        )
    table, name = _raw_table(source, format)
    if select_rows:
        table = _select_rows(table, name, select_rows)
    if therapy_if_absent is not None and not _has_role(table, "therapy"):
        table["therapy"] = therapy_if_absent
    undecided = ""
    if label_from is not None:
        from cytoresp.features.outcomes import derive_responder

        _refuse_responder(table, name, f"--label-from {label_from}")
        derived = derive_responder(table, label_from, source=name)
        table["responder"] = np.where(derived.isna(), "", derived.astype("Int64").astype(str))
        undecided = f"have follow-up too incomplete to decide the {label_from} label"
    elif label is not None:
        table = _label_column(table, name, label, positive)
        undecided = f"have no value in the outcome column {label!r}"
    panel = read_panel(table, require_labels=label_from is None and label is None,
                       therapies=therapies, columns=columns)
    panel.source = name
    if panel.responder is None:  # therapy_if_absent alone, no responder column
        raise InputError([Problem(name, None, None, "training data needs a 'responder' "
                                  "column, or --label COLUMN (docs/outcomes.md)")])
    n_unknown = int(panel.responder.isna().sum())
    if n_unknown and undecided:
        panel.warnings.append(
            f"{n_unknown} patient(s) {undecided}; they are left out of training"
        )
    return panel


def _select_rows(table: pd.DataFrame, name: str, select: Mapping[str, Any]) -> pd.DataFrame:
    """The rows of ``table`` whose columns hold the given values (compared as text)."""
    keep = np.ones(len(table), dtype=bool)
    for column, value in select.items():
        if column not in table.columns:
            raise InputError([Problem(name, None, None,
                                      f"select_rows: no column {column!r} in the table")])
        keep &= (table[column].astype("string").fillna("").str.strip()
                 == str(value).strip()).to_numpy()
    if not keep.any():
        raise InputError([Problem(name, None, None,
                                  f"select_rows {dict(select)!r} keeps no row")])
    return table.loc[keep].reset_index(drop=True)


def _has_role(table: pd.DataFrame, role: str) -> bool:
    from cytoresp.panels.read import role_of

    return any(role_of(str(c)) == role for c in table.columns)


def _refuse_responder(table: pd.DataFrame, name: str, given: str) -> None:
    if _has_role(table, "responder"):
        raise InputError(
            [Problem(name, None, "responder",
                     f"the file has a 'responder' column and {given} was given; "
                     "remove one of the two so the label is unambiguous")]
        )


_TRUE = {"1", "1.0", "true", "yes", "y"}
_FALSE = {"0", "0.0", "false", "no", "n"}


def _label_column(table: pd.DataFrame, name: str, label: str, positive: str | None
                  ) -> pd.DataFrame:
    """``table`` with ``responder`` (1/0/empty) from the two-level column ``label``."""
    import difflib

    cols = [str(c) for c in table.columns]
    hit = [c for c in table.columns if str(c) == label] or [
        c for c in table.columns if str(c).strip().lower() == label.strip().lower()]
    if not hit:
        close = difflib.get_close_matches(label, cols, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise InputError([Problem(name, None, None,
                                  f"no outcome column {label!r} (--label){hint}; columns: "
                                  f"{', '.join(cols[:20])}{' ...' if len(cols) > 20 else ''}")])
    column = hit[0]
    if str(column) != "responder":
        _refuse_responder(table.drop(columns=[column]), name, f"--label {label}")
    text = table[column].astype("string").fillna("").str.strip()
    levels = sorted(set(text[text != ""]))
    if positive is not None:
        pos = [v for v in levels if v == positive.strip()] or [
            v for v in levels if v.lower() == positive.strip().lower()]
        if not pos:
            raise InputError([Problem(name, None, str(column),
                                      f"--positive {positive!r} is not a value of {label!r} "
                                      f"(values: {', '.join(map(repr, levels[:10]))})")])
        is_pos = text.str.lower() == pos[0].lower()
        n_levels = len({v.lower() for v in levels})  # 'Died' and 'died' are one value
    elif {v.lower() for v in levels} <= _TRUE | _FALSE:
        is_pos = text.str.lower().isin(_TRUE)
        n_levels = int(is_pos[text != ""].nunique())  # '1' and 'yes' are one value
    else:
        raise InputError([Problem(name, None, str(column),
                                  f"the outcome column {label!r} holds "
                                  f"{', '.join(map(repr, levels[:10]))}: say which value is "
                                  f"the outcome with --positive VALUE")])
    if n_levels != 2:
        raise InputError([Problem(name, None, str(column),
                                  f"the outcome column {label!r} must have exactly two values "
                                  f"(besides empty cells), found {n_levels}: "
                                  f"{', '.join(map(repr, levels[:10]))}")])
    out = table.drop(columns=[column])
    out["responder"] = np.where(text == "", "", np.where(is_pos, "1", "0"))
    return out
