"""Columns a training config declares beside the registered analytes and covariates.

A real cohort holds more than cytokine concentrations and the six clinical covariates of
DESIGN.md: other covariates (BMI, smoking), measurements on another scale (Olink NPX,
log-expression of transcripts), and its own name for the sample id. The training config
declares them (``docs/data-format.md``, "Declared columns")::

    sample_id = "patient"                   # the column holding the sample id
    [covariates]
    bmi = "numeric"
    smoking = { kind = "categorical", levels = ["never", "former", "current"] }
    [measurements]
    "m00_*" = "log"                         # glob patterns match several columns
    "IL6 (NPX)" = "log"
    NfL = "concentration"                   # must be an analyte of docs/analytes.md

``numeric`` and ``log`` columns enter the model as numbers (standardised by the heads;
``log`` says the values are already on a log scale, so they are not logged again);
``categorical`` columns become one 0/1 column per level after the first (the reference),
named ``<column>=<level>``; ``concentration`` columns are analytes (pg/mL, censoring,
log2), so they must be in the analyte registry. Ratios and axis scores are built from
registered cytokines only. The model keeps the declaration, so files scored later are read
the same way.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DeclaredColumn", "KINDS", "declared_columns", "match_declared"]

#: Kinds of declared covariates and measurement scales.
COVARIATE_KINDS = ("numeric", "categorical")
MEASUREMENT_KINDS = ("concentration", "log", "numeric")
KINDS = ("numeric", "log", "categorical", "concentration", "sample_id")


@dataclass(frozen=True)
class DeclaredColumn:
    """One declared column (or glob pattern of columns).

    Attributes
    ----------
    pattern : str
        The header, or a glob pattern (``m00_*``); matched case-sensitively after stripping.
    kind : str
        ``numeric``, ``log``, ``categorical``, ``concentration`` or ``sample_id``.
    levels : tuple of str
        Categorical levels, the first is the reference.
    """

    pattern: str
    kind: str
    levels: tuple[str, ...] = ()

    def model_columns(self, header: str) -> list[str]:
        """Model-frame column names of a matched header.

        Examples
        --------
        >>> DeclaredColumn("smoking", "categorical", ("never", "current")).model_columns("smoking")
        ['smoking=current']
        """
        if self.kind == "categorical":
            return [f"{header}={level}" for level in self.levels[1:]]
        return [header]


def declared_columns(
    covariates: Mapping[str, Any] | None = None,
    measurements: Mapping[str, Any] | None = None,
    sample_id: str | None = None,
) -> tuple[DeclaredColumn, ...]:
    """Check a config's declarations and return them.

    Raises
    ------
    ValueError
        For an unknown kind, a categorical covariate without levels, or a column declared
        twice.

    Examples
    --------
    >>> [d.kind for d in declared_columns({"bmi": "numeric"}, {"m00_*": "log"}, "patient")]
    ['sample_id', 'numeric', 'log']
    >>> declared_columns({"bmi": "ratio"})
    Traceback (most recent call last):
    ...
    ValueError: covariate 'bmi': kind must be one of numeric, categorical, got 'ratio'
    """
    out: list[DeclaredColumn] = []
    if sample_id is not None:
        out.append(DeclaredColumn(str(sample_id).strip(), "sample_id"))
    for name, spec in (covariates or {}).items():
        levels: tuple[str, ...] = ()
        if isinstance(spec, Mapping):
            unknown = set(spec) - {"kind", "levels"}
            if unknown:
                raise ValueError(f"covariate {name!r}: unknown key(s) {sorted(unknown)}; "
                                 f"use kind and levels")
            kind = spec.get("kind")
            levels = tuple(str(v) for v in spec.get("levels", ()))
        else:
            kind = spec
        if kind not in COVARIATE_KINDS:
            raise ValueError(f"covariate {name!r}: kind must be one of "
                             f"{', '.join(COVARIATE_KINDS)}, got {kind!r}")
        if kind == "categorical" and (len(levels) < 2 or len(set(levels)) != len(levels)):
            raise ValueError(f"categorical covariate {name!r} needs its levels, two or more "
                             f"distinct ones, the reference first: {{ kind = \"categorical\", "
                             f"levels = [\"never\", \"current\"] }}")
        out.append(DeclaredColumn(str(name).strip(), kind, levels))
    for name, kind in (measurements or {}).items():
        if kind not in MEASUREMENT_KINDS:
            raise ValueError(f"measurement {name!r}: scale must be one of "
                             f"{', '.join(MEASUREMENT_KINDS)}, got {kind!r}")
        out.append(DeclaredColumn(str(name).strip(), kind))
    seen: set[str] = set()
    for d in out:
        if d.pattern in seen or not d.pattern:
            raise ValueError(f"column {d.pattern!r} is declared twice (or empty)")
        seen.add(d.pattern)
    return tuple(out)


def match_declared(header: str, declared: tuple[DeclaredColumn, ...] | None
                   ) -> DeclaredColumn | None:
    """The declaration a header falls under: an exact name first, then a glob pattern.

    Examples
    --------
    >>> decl = declared_columns(measurements={"m00_*": "log", "m00_G01": "numeric"})
    >>> match_declared("m00_G01", decl).kind, match_declared("m00_G02", decl).kind
    ('numeric', 'log')
    >>> match_declared("m03_G01", decl) is None
    True
    """
    if not declared:
        return None
    name = str(header).strip()
    for d in declared:
        if d.pattern == name:
            return d
    for d in declared:
        if any(ch in d.pattern for ch in "*?[") and fnmatch.fnmatchcase(name, d.pattern):
            return d
    return None
