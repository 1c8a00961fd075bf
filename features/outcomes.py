"""Outcome labels from first-year follow-up: Rio, modified Rio, MAGNIMS and NEDA-3.

The ``responder`` label the models learn is not measured; it is derived from what happened
in the first year of treatment (relapses, confirmed EDSS worsening, new or enlarging T2
lesions, gadolinium-enhancing lesions) by a published definition. This module holds those
definitions, each with its source and thresholds (also written out in ``docs/outcomes.md``),
and turns follow-up columns into a score and a 0/1 label.

Missing follow-up values are treated as *unknown*, never as zero: a label is given whenever
every possible value of the missing cells leads to the same label (a patient with two
relapses fails NEDA-3 whatever the MRI showed) and is NaN otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd

from cytoresp.errors import MAX_QUOTED_CHARS, InputError, Problem, UsageError, quote_cell

__all__ = [
    "COLUMN_ALIASES",
    "FOLLOW_UP_COLUMNS",
    "LABEL_DEFINITIONS",
    "OutcomeDefinition",
    "derive_responder",
    "get_definition",
    "outcome_score",
]

RELAPSES = "relapses_y1"
PROGRESSION = "edss_progression_y1"
NEW_T2 = "new_t2_y1"
GD = "gd_lesions_y1"
ACTIVE = "active_lesions_y1"

#: Canonical follow-up columns and what they hold. All refer to the first year (12 months)
#: of the treatment whose response is being labelled; MRI counts compare the 12-month scan
#: with the scan at treatment start. Empty cells mean "not known".
FOLLOW_UP_COLUMNS: Mapping[str, str] = MappingProxyType(
    {
        RELAPSES: "number of clinical relapses during the first treatment year (integer >= 0)",
        PROGRESSION: (
            "confirmed EDSS worsening during the first treatment year: 1 = yes, 0 = no "
            "(also true/false, yes/no); confirmed as the chosen definition requires, "
            "see docs/outcomes.md"
        ),
        NEW_T2: (
            "number of new or enlarging T2 lesions on the 12-month MRI compared with the "
            "baseline MRI (integer >= 0)"
        ),
        GD: "number of gadolinium-enhancing T1 lesions on the 12-month MRI (integer >= 0)",
        ACTIVE: (
            "optional, Rio score only: number of active lesions on the 12-month MRI, i.e. new "
            "or enlarging T2 lesions plus gadolinium-enhancing lesions with each lesion "
            "counted once (integer >= 0)"
        ),
    }
)

#: Other spellings accepted for each canonical column (matching ignores case and
#: surrounding spaces). The baseline covariate ``gd_lesions`` is deliberately *not* an
#: alias of ``gd_lesions_y1``: one is measured before treatment, the other after a year.
COLUMN_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        RELAPSES: ("relapses_1y", "n_relapses_y1"),
        PROGRESSION: ("edss_worsening_y1", "cdw_y1"),
        NEW_T2: ("new_enlarging_t2_y1", "new_t2_lesions_y1"),
        GD: ("gd_enhancing_lesions_y1", "gd_y1"),
        ACTIVE: ("combined_active_lesions_y1", "cua_lesions_y1"),
    }
)

_NA_TOKENS = frozenset({"", "na", "n/a", "nan", "none", "null", "."})
_FLAG_WORDS = {"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0, "y": 1.0, "n": 0.0}

# One array per canonical column, float64 (np.inf allowed in upper bounds).
_Values = dict[str, np.ndarray]


# ---------------------------------------------------------------------------------------
# the scores (each non-decreasing in every input, which the missing-value logic relies on)


def _rio_points(x: _Values) -> np.ndarray:
    return (
        (x[RELAPSES] >= 1).astype(np.float64)
        + (x[PROGRESSION] >= 1).astype(np.float64)
        + (x[ACTIVE] >= 3).astype(np.float64)
    )


def _modified_rio_points(x: _Values) -> np.ndarray:
    return np.minimum(x[RELAPSES], 2.0) + (x[NEW_T2] > 4).astype(np.float64)


def _magnims_points(x: _Values) -> np.ndarray:
    return np.minimum(np.minimum(x[RELAPSES], 2.0) + (x[NEW_T2] >= 3), 2.0)


def _neda3_points(x: _Values) -> np.ndarray:
    mri = (x[NEW_T2] >= 1) | (x[GD] >= 1)
    return (
        (x[RELAPSES] >= 1).astype(np.float64)
        + (x[PROGRESSION] >= 1).astype(np.float64)
        + mri.astype(np.float64)
    )


@dataclass(frozen=True)
class OutcomeDefinition:
    """A published definition of treatment response from first-year follow-up.

    Parameters
    ----------
    name : str
        Key in :data:`LABEL_DEFINITIONS` and value of ``cytoresp train --label-from``.
    title : str
        Human-readable name.
    source : str
        Citation(s) the thresholds come from (details in ``docs/outcomes.md``).
    description : str
        The rule in words.
    required_columns : tuple of str
        Canonical follow-up columns the definition reads (see :data:`FOLLOW_UP_COLUMNS`).
    optional_columns : tuple of str
        Columns used when present (for the Rio score, ``active_lesions_y1``, which then
        makes ``new_t2_y1`` and ``gd_lesions_y1`` optional).
    thresholds : Mapping of str to str
        Each component and the points it gives.
    score_range : tuple of int
        Lowest and highest score.
    responder_max_score : int
        Default cut: score <= this is a responder (label 1), above it a non-responder.
    adjustable : bool
        Whether :func:`derive_responder` accepts another ``responder_max_score``.

    Examples
    --------
    >>> d = LABEL_DEFINITIONS["magnims"]
    >>> d.required_columns, d.score_range, d.responder_max_score
    (('relapses_y1', 'new_t2_y1'), (0, 2), 1)
    """

    name: str
    title: str
    source: str
    description: str
    required_columns: tuple[str, ...]
    optional_columns: tuple[str, ...]
    thresholds: Mapping[str, str]
    score_range: tuple[int, int]
    responder_max_score: int
    adjustable: bool
    points: Callable[[_Values], np.ndarray] = field(repr=False, compare=False)

    def missing_columns(self, present: set[str] | frozenset[str]) -> list[str]:
        """Canonical columns this definition needs that are not in ``present``."""
        if self.name == "rio" and ACTIVE in present:
            needed: tuple[str, ...] = (RELAPSES, PROGRESSION)
        else:
            needed = self.required_columns
        return [c for c in needed if c not in present]


_RIO_SOURCE = (
    "Río J, Castilló J, Rovira A, et al. Measures in the first year of therapy predict the "
    "response to interferon β in MS. Mult Scler 2009;15(7):848-853. "
    "doi:10.1177/1352458509104591; scored 0-3 with >= 2 = high risk as in Sormani MP, Rio J, "
    "Tintorè M, et al. Scoring treatment response in patients with relapsing multiple "
    "sclerosis. Mult Scler 2013;19(5):605-612."
)

LABEL_DEFINITIONS: Mapping[str, OutcomeDefinition] = MappingProxyType(
    {
        "rio": OutcomeDefinition(
            name="rio",
            title="Rio score",
            source=_RIO_SOURCE,
            description=(
                "One point each, after the first year: >= 1 relapse; confirmed EDSS "
                "worsening (>= 1 point, sustained 6 months); > 2 (i.e. >= 3) active lesions "
                "(new/enlarging T2 plus Gd+ lesions, each counted once). Score 0-3; >= 2 is "
                "high risk, so responder = score <= 1."
            ),
            required_columns=(RELAPSES, PROGRESSION, NEW_T2, GD),
            optional_columns=(ACTIVE,),
            thresholds=MappingProxyType(
                {
                    "relapses": ">= 1 relapse: 1 point",
                    "EDSS": "confirmed worsening (>= 1.0 point, sustained 6 months): 1 point",
                    "MRI": ">= 3 active lesions (new/enlarging T2 + Gd+, unique): 1 point",
                    "responder": "score <= 1 (score >= 2 = non-responder)",
                }
            ),
            score_range=(0, 3),
            responder_max_score=1,
            adjustable=True,
            points=_rio_points,
        ),
        "modified_rio": OutcomeDefinition(
            name="modified_rio",
            title="Modified Rio score",
            source=(
                "Sormani MP, Rio J, Tintorè M, et al. Scoring treatment response in patients "
                "with relapsing multiple sclerosis. Mult Scler 2013;19(5):605-612."
            ),
            description=(
                "After the first year: MRI 1 point for > 4 (i.e. >= 5) new T2 lesions; "
                "relapses 0 points for none, 1 for one, 2 for two or more. EDSS is not "
                "used. Score 0-3: 0 low, 1 intermediate, 2-3 high risk; responder = score "
                "<= 1 by default."
            ),
            required_columns=(RELAPSES, NEW_T2),
            optional_columns=(),
            thresholds=MappingProxyType(
                {
                    "MRI": "<= 4 new T2 lesions: 0 points; > 4: 1 point",
                    "relapses": "0 relapses: 0; 1 relapse: 1; >= 2 relapses: 2 points",
                    "responder": "score <= 1 by default (2-3 = high risk = non-responder)",
                }
            ),
            score_range=(0, 3),
            responder_max_score=1,
            adjustable=True,
            points=_modified_rio_points,
        ),
        "magnims": OutcomeDefinition(
            name="magnims",
            title="MAGNIMS score",
            source=(
                "Sormani MP, Gasperini C, Romeo M, et al. Assessing response to interferon-β "
                "in a multicenter dataset of patients with MS. Neurology 2016;87(2):134-140. "
                "doi:10.1212/WNL.0000000000002830"
            ),
            description=(
                "After the first year: 0 = no relapse and < 3 new T2 lesions; 1 = no relapse "
                "and >= 3 new T2, or 1 relapse and < 3 new T2; 2 = 1 relapse and >= 3 new "
                "T2, or >= 2 relapses. 2 is high risk, so responder = score <= 1."
            ),
            required_columns=(RELAPSES, NEW_T2),
            optional_columns=(),
            thresholds=MappingProxyType(
                {
                    "0": "0 relapses and <= 2 new T2 lesions",
                    "1": "0 relapses and >= 3 new T2 lesions, or 1 relapse and <= 2",
                    "2": "1 relapse and >= 3 new T2 lesions, or >= 2 relapses",
                    "responder": "score <= 1 by default (2 = high risk = non-responder)",
                }
            ),
            score_range=(0, 2),
            responder_max_score=1,
            adjustable=True,
            points=_magnims_points,
        ),
        "neda3": OutcomeDefinition(
            name="neda3",
            title="NEDA-3 (no evident disease activity)",
            source=(
                "Havrdova E, Galetta S, Hutchinson M, et al. Lancet Neurol 2009;8(3):254-260 "
                "(AFFIRM post hoc analysis); Giovannoni G, Turner B, Gnanapavan S, et al. Is "
                "it time to target no evident disease activity (NEDA) in multiple sclerosis? "
                "Mult Scler Relat Disord 2015;4(4):329-333. doi:10.1016/j.msard.2015.04.006"
            ),
            description=(
                "Responder = NEDA-3 in the first year: no relapse, no confirmed EDSS "
                "worsening, no new/enlarging T2 lesion and no Gd+ lesion. The score counts "
                "the domains with evident activity (relapse, disability, MRI), 0-3."
            ),
            required_columns=(RELAPSES, PROGRESSION, NEW_T2, GD),
            optional_columns=(),
            thresholds=MappingProxyType(
                {
                    "relapses": ">= 1 relapse: activity",
                    "EDSS": "confirmed worsening: activity",
                    "MRI": ">= 1 new/enlarging T2 or >= 1 Gd+ lesion: activity",
                    "responder": "score == 0 (no activity in any domain)",
                }
            ),
            score_range=(0, 3),
            responder_max_score=0,
            adjustable=False,
            points=_neda3_points,
        ),
    }
)


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


_BY_KEY = {_key(n): n for n in LABEL_DEFINITIONS}


def get_definition(definition: str | OutcomeDefinition) -> OutcomeDefinition:
    """Look up a definition by name (case, ``-``, ``_`` and spaces ignored).

    Parameters
    ----------
    definition : str or OutcomeDefinition
        ``"rio"``, ``"modified_rio"``, ``"magnims"`` or ``"neda3"`` (``"NEDA-3"``,
        ``"modified-rio"`` ... also work), or a definition object (returned as is).

    Returns
    -------
    OutcomeDefinition

    Raises
    ------
    UsageError
        For an unknown name; the message lists the known ones.

    Examples
    --------
    >>> get_definition("NEDA-3").name
    'neda3'
    """
    if isinstance(definition, OutcomeDefinition):
        return definition
    if not isinstance(definition, str) or _key(definition) not in _BY_KEY:
        raise UsageError(
            f"unknown outcome definition {definition!r}; choose one of: "
            f"{', '.join(LABEL_DEFINITIONS)} (see docs/outcomes.md)"
        )
    return LABEL_DEFINITIONS[_BY_KEY[_key(definition)]]


# ---------------------------------------------------------------------------------------
# reading and checking the follow-up columns


def _find_columns(
    frame: pd.DataFrame, source: str, problems: list[Problem]
) -> tuple[dict[str, object], set[str]]:
    """Canonical name -> the frame's column label, and the canonical names given twice."""
    lookup = {s.lower(): c for c, aliases in COLUMN_ALIASES.items() for s in (c, *aliases)}
    found: dict[str, list[object]] = {}
    for label in frame.columns:
        canonical = lookup.get(str(label).strip().lower())
        if canonical is not None:
            found.setdefault(canonical, []).append(label)
    columns: dict[str, object] = {}
    twice: set[str] = set()
    for canonical, labels in found.items():
        if len(labels) == 1:
            columns[canonical] = labels[0]
            continue
        twice.add(canonical)
        names = ", ".join(repr(str(x)) for x in labels)
        problems.append(
            Problem(
                source,
                None,
                str(labels[0]),
                f"columns {names} all mean {canonical!r}; keep exactly one",
            )
        )
    return columns, twice


def _parse(series: pd.Series, flag: bool) -> tuple[np.ndarray, np.ndarray]:
    """Float values (NaN = missing) and a mask of the cells that are not numbers."""
    if pd.api.types.is_bool_dtype(series.dtype):
        values = series.astype("float64").to_numpy()
        return values, np.zeros(len(values), dtype=bool)
    if pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, np.zeros(len(values), dtype=bool)
    text = series.astype("string").str.strip()
    lower = text.str.lower()
    missing = (text.isna() | lower.isin(_NA_TOKENS)).to_numpy(dtype=bool, na_value=True)
    numbers = pd.to_numeric(text.where(~missing), errors="coerce").astype("Float64")
    if flag:
        numbers = numbers.fillna(lower.map(_FLAG_WORDS).astype("Float64"))
    out = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    return out, ~missing & np.isnan(out)


def _show(value: object) -> str:
    """A cell as the user wrote it (``2`` rather than ``2.0``)."""
    if isinstance(value, float | np.floating) and np.isfinite(value) and value == int(value):
        return str(int(value))
    if isinstance(value, str):
        return quote_cell(value)  # at most MAX_QUOTED_CHARS characters of it
    text = str(value)
    return text if len(text) <= MAX_QUOTED_CHARS else quote_cell(text)


def _cell_messages(x: np.ndarray, not_number: np.ndarray, flag: bool) -> list[tuple[int, str]]:
    """(position, message) for every invalid cell of one parsed column."""
    known = ~np.isnan(x)
    with np.errstate(invalid="ignore"):
        finite = known & np.isfinite(x)
        if flag:
            checks = [
                (
                    not_number | (known & (x != 0) & (x != 1)),
                    "{} is not a valid value: write 1 (confirmed EDSS worsening) or 0 "
                    "(none); leave the cell empty if unknown",
                ),
            ]
        else:
            checks = [
                (
                    not_number,
                    "{} is not a number; write a count (0, 1, 2, ...) or leave the cell "
                    "empty if unknown",
                ),
                (known & ~np.isfinite(x), "{} is not a finite count"),
                (finite & (x < 0), "negative count {}; counts are >= 0"),
                (finite & (x >= 0) & (x != np.floor(x)), "count {} is not a whole number"),
            ]
    return [(int(i), template) for mask, template in checks for i in np.flatnonzero(mask)]


def _read_follow_up(
    frame: pd.DataFrame, d: OutcomeDefinition, source: str
) -> dict[str, np.ndarray]:
    """Checked follow-up values of the columns ``d`` uses; raises InputError on any problem."""
    if not isinstance(frame, pd.DataFrame):
        raise UsageError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    problems: list[Problem] = []
    columns, twice = _find_columns(frame, source, problems)
    for canonical in d.missing_columns(frozenset(columns) | frozenset(twice)):
        why = ""
        if d.name == "rio" and canonical in (NEW_T2, GD):
            why = f" (or give {ACTIVE!r} instead of {NEW_T2!r} and {GD!r})"
        problems.append(
            Problem(
                source,
                None,
                canonical,
                f"missing column {canonical!r}, needed by the {d.title}{why}: "
                f"{FOLLOW_UP_COLUMNS[canonical]}",
            )
        )
    cells: list[tuple[int, int, Problem]] = []
    values: dict[str, np.ndarray] = {}
    used = [c for c in (*d.required_columns, *d.optional_columns) if c in columns]
    for order, canonical in enumerate(used):
        raw = frame[columns[canonical]]
        x, not_number = _parse(raw, flag=canonical == PROGRESSION)
        shown = raw.to_numpy(dtype=object)
        for i, template in _cell_messages(x, not_number, flag=canonical == PROGRESSION):
            row = i + 2
            message = template.format(_show(shown[i]))
            cells.append((row, order, Problem(source, row, str(columns[canonical]), message)))
        values[canonical] = x
    if problems or cells:
        raise InputError(problems + [p for _, _, p in sorted(cells, key=lambda t: t[:2])])
    return values


def _bounds(d: OutcomeDefinition, values: dict[str, np.ndarray], n: int) -> tuple[_Values, _Values]:
    """Lowest and highest possible value of every input, missing cells spanning their range."""
    lo: _Values = {}
    hi: _Values = {}
    for canonical in (*d.required_columns, *d.optional_columns):
        x = values.get(canonical, np.full(n, np.nan))
        top = 1.0 if canonical == PROGRESSION else np.inf
        lo[canonical] = np.where(np.isnan(x), 0.0, x)
        hi[canonical] = np.where(np.isnan(x), top, x)
    if d.name == "rio":
        # Active lesions = new/enlarging T2 and Gd+ lesions counted once each. From the two
        # counts alone it lies between the larger of them (every Gd+ lesion is also new on
        # T2, or the reverse) and their sum (no overlap).
        given = ~np.isnan(values.get(ACTIVE, np.full(n, np.nan)))
        lo[ACTIVE] = np.where(given, lo[ACTIVE], np.maximum(lo[NEW_T2], lo[GD]))
        hi[ACTIVE] = np.where(given, hi[ACTIVE], hi[NEW_T2] + hi[GD])
    return lo, hi


def _score_bounds(
    frame: pd.DataFrame, definition: str | OutcomeDefinition, source: str
) -> tuple[OutcomeDefinition, np.ndarray, np.ndarray]:
    d = get_definition(definition)
    values = _read_follow_up(frame, d, source)
    lo, hi = _bounds(d, values, len(frame))
    return d, d.points(lo), d.points(hi)


# ---------------------------------------------------------------------------------------
# public functions


def outcome_score(
    frame: pd.DataFrame,
    definition: str | OutcomeDefinition,
    *,
    source: str = "<DataFrame>",
) -> pd.Series:
    """The definition's score for every row (NaN where missing values leave it open).

    Parameters
    ----------
    frame : DataFrame
        One row per patient with the follow-up columns the definition needs (see
        :data:`FOLLOW_UP_COLUMNS`; names matched ignoring case, aliases in
        :data:`COLUMN_ALIASES`). Other columns are ignored.
    definition : str or OutcomeDefinition
        ``"rio"``, ``"modified_rio"``, ``"magnims"`` or ``"neda3"``.
    source : str, default="<DataFrame>"
        The file name to put in error messages.

    Returns
    -------
    Series
        float64, same index as ``frame``, named ``"<definition>_score"``: the Rio and
        modified Rio scores (0-3), the MAGNIMS score (0-2), or for NEDA-3 the number of
        domains with evident activity (0-3). NaN where a missing value could change it.

    Raises
    ------
    UsageError
        Unknown definition name.
    InputError
        Missing columns or invalid cells, every one listed.

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"relapses_y1": [0, 1, 2, None], "new_t2_y1": [5, 2, 0, 9]})
    >>> outcome_score(f, "modified_rio").tolist()
    [1.0, 1.0, 2.0, nan]
    """
    d, lo, hi = _score_bounds(frame, definition, source)
    score = np.where(lo == hi, lo, np.nan)
    return pd.Series(score, index=frame.index, name=f"{d.name}_score", dtype=np.float64)


def derive_responder(
    frame: pd.DataFrame,
    definition: str | OutcomeDefinition,
    *,
    responder_max_score: int | None = None,
    source: str = "<DataFrame>",
) -> pd.Series:
    """The 0/1 ``responder`` label from first-year follow-up by a published definition.

    Parameters
    ----------
    frame : DataFrame
        One row per patient with the follow-up columns the definition needs (see
        :data:`FOLLOW_UP_COLUMNS` and ``docs/outcomes.md``). Other columns are ignored.
    definition : str or OutcomeDefinition
        ``"rio"``, ``"modified_rio"``, ``"magnims"`` or ``"neda3"`` (case, ``-`` and ``_``
        ignored).
    responder_max_score : int, optional
        Highest score still labelled a responder. Default: the definition's
        :attr:`OutcomeDefinition.responder_max_score` (1 for Rio, modified Rio and MAGNIMS,
        i.e. only the published high-risk group is a non-responder; 0 for NEDA-3, which
        takes no other value). E.g. ``0`` labels only modified-Rio score 0 a responder.
    source : str, default="<DataFrame>"
        The file name to put in error messages.

    Returns
    -------
    Series
        float64 named ``"responder"``, same index as ``frame``: 1.0 responder, 0.0
        non-responder, NaN where a missing follow-up value could change the label. A label
        that every value of the missing cells would give is kept (two relapses fail NEDA-3
        with or without an MRI).

    Raises
    ------
    UsageError
        Unknown definition, or a ``responder_max_score`` the definition does not allow.
    InputError
        Every problem at once: one per missing column, one per invalid cell (not a number,
        negative or fractional count, worsening flag not 0/1) with its spreadsheet row
        (header = row 1, first data row = row 2).

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({
    ...     "relapses_y1": [0, 1, 2, 0],
    ...     "edss_progression_y1": [0, 0, 0, None],
    ...     "new_t2_y1": [0, 0, None, 0],
    ...     "gd_lesions_y1": [0, 0, 1, 0],
    ... })
    >>> derive_responder(f, "neda3").tolist()
    [1.0, 0.0, 0.0, nan]
    >>> derive_responder(f, "magnims").tolist()
    [1.0, 1.0, 0.0, 1.0]
    """
    d = get_definition(definition)
    cut = _check_cut(d, responder_max_score)
    _, lo, hi = _score_bounds(frame, d, source)
    label = np.where(hi <= cut, 1.0, np.where(lo > cut, 0.0, np.nan))
    return pd.Series(label, index=frame.index, name="responder", dtype=np.float64)


def _check_cut(d: OutcomeDefinition, responder_max_score: int | None) -> int:
    if responder_max_score is None:
        return d.responder_max_score
    low, high = d.score_range
    ok_type = isinstance(responder_max_score, int | np.integer) and not isinstance(
        responder_max_score, bool | np.bool_
    )
    if not d.adjustable and responder_max_score != d.responder_max_score:
        raise UsageError(
            f"{d.title} is either achieved or not; responder_max_score must be "
            f"{d.responder_max_score}, got {responder_max_score!r}"
        )
    if not ok_type or not low <= responder_max_score < high:
        raise UsageError(
            f"responder_max_score for the {d.title} must be an integer from {low} to "
            f"{high - 1} (scores run {low}-{high}), got {responder_max_score!r}"
        )
    return int(responder_max_score)
