"""Vectorised parsing of concentration cells: numbers, censored tokens, flags, missing.

Every function here works on whole columns (pyarrow compute kernels and numpy), never a
Python loop over rows: registry-scale files have millions of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cytoresp.panels.panel import ABOVE, BELOW, OBSERVED

_NUM = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
NUMBER_RE = rf"^{_NUM}$"
_BELOW_NUM = rf"^(?:<|&lt;)\s*=?\s*(?P<n>{_NUM})$"
_ABOVE_NUM = rf"^(?:>|&gt;)\s*=?\s*(?P<n>{_NUM})$"
_FLAG_NUM = rf"^(?:\*\s*(?P<a>{_NUM})|(?P<b>{_NUM})\s*\*)$"
_BELOW_TOKEN = (
    r"^(?:<\s*(?:lloq|llod|lod|loq|lql|dl|ll|lower limit)|oor\s*<|<\s*oor|blq|bloq|bql|"
    r"below (?:detection(?: limit)?|the detection limit|lloq|lod|llod|range|limit|"
    r"quantification limit|the lower limit)|not detected|undetected|undetectable)$"
)
_ABOVE_TOKEN = (
    r"^(?:>\s*(?:uloq|ulod|ulq|hql|ul|upper limit)|oor\s*>|>\s*oor|alq|aloq|aql|"
    r"above (?:detection(?: limit)?|uloq|ulod|range|limit|quantification limit|"
    r"the upper limit))$"
)
#: Cell texts (lower case) read as missing.
MISSING_TOKENS: tuple[str, ...] = (
    "", "na", "n/a", "n.a.", "nan", "-nan", "null", "none", "#n/a", "<na>", "***", "missing",
)


@dataclass(frozen=True)
class ValueFlags:
    """Per-cell findings of :func:`parse_value_column` (boolean arrays, one per cell).

    Attributes
    ----------
    missing : ndarray of bool
        Empty or a missing token (``NA``, ``N/A``, ``NaN``, ``***``).
    extrapolated : ndarray of bool
        Marked ``*12.3`` / ``12.3*`` (extrapolated beyond the standard curve); the value is kept.
    invalid : ndarray of bool
        Not a number nor a known token (value NaN), or not finite.
    negative : ndarray of bool
        A negative concentration (value NaN).
    bad_limit : ndarray of bool
        A censored cell whose limit is not a positive finite number (``<0``, ``<-1``).
    no_limit : ndarray of bool
        Censored without a limit in the cell (``< LLOQ``, ``OOR >``); the value is the
        ``lloq``/``uloq`` given, else NaN.
    """

    missing: np.ndarray
    extrapolated: np.ndarray
    invalid: np.ndarray
    negative: np.ndarray
    bad_limit: np.ndarray
    no_limit: np.ndarray

    @property
    def errors(self) -> np.ndarray:
        """Cells that are input errors (invalid, negative or a bad limit)."""
        return self.invalid | self.negative | self.bad_limit


def is_numeric_column(col: Any) -> bool:
    """True for a numeric (not boolean, not text) numpy array or pandas Series."""
    if isinstance(col, pa.Array | pa.ChunkedArray):
        return False
    dtype = getattr(col, "dtype", None)
    if dtype is None:
        return False
    return (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            and not pd.api.types.is_complex_dtype(dtype))


def as_text(col: Any) -> pa.Array:
    """A column as a pyarrow string array: nulls as ``""``, surrounding whitespace removed.

    Numbers (from a DataFrame or a spreadsheet) are written in their shortest exact form
    (``0.1``), whole floats without ``.0``.

    Examples
    --------
    >>> as_text(pd.Series([" a ", None, 3])).to_pylist()
    ['a', '', '3']
    """
    return pc.utf8_trim_whitespace(_raw_text(col))


def _raw_text(col: Any) -> pa.Array:
    """Like :func:`as_text` without trimming (the value parser trims only what it must)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if isinstance(col, pa.Array):
        arr = col if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) else (
            pc.cast(col, pa.string()))
    elif is_numeric_column(col):
        arr = format_numbers_arrow(np.asarray(col, dtype=np.float64))
    else:
        s = pd.Series(col, copy=False)
        if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) not in ("string",
                                                                                  "empty"):
            # numbers inside an object column: exact shortest form, whole floats as ints
            nums = pd.to_numeric(s.where(s.map(_is_real, na_action="ignore").fillna(False)),
                                 errors="coerce")
            text = s.astype("str")
            has_num = nums.notna().to_numpy()
            if has_num.any():
                text = text.copy()
                text[has_num] = format_numbers(nums.to_numpy(dtype=np.float64)[has_num])
            s = text
        else:
            s = s.astype("str")
        arr = pa.array(s, from_pandas=True)
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            arr = pc.cast(arr, pa.string())
    if pa.types.is_large_string(arr.type):
        arr = pc.cast(arr, pa.string())
    return arr.fill_null("") if arr.null_count else arr


def _is_real(x: Any) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)


def format_numbers_arrow(x: np.ndarray) -> pa.Array:
    """Exact shortest text of float64 values as a pyarrow string array (NaN as ``""``).

    Whole numbers have no ``.0``; every text parses back to the same float64.

    Examples
    --------
    >>> format_numbers_arrow(np.array([0.1, 3.0, np.nan])).to_pylist()
    ['0.1', '3', '']
    """
    x = np.asarray(x, dtype=np.float64) + 0.0  # -0.0 -> 0.0
    return pc.cast(pa.array(x, from_pandas=True), pa.string()).fill_null("")


def format_numbers(x: np.ndarray) -> np.ndarray:
    """Exact shortest text of float64 values (object array): whole numbers without ``.0``.

    Examples
    --------
    >>> format_numbers(np.array([0.1, 3.0, np.nan, 2.5e20])).tolist()
    ['0.1', '3', '', '2.5e+20']
    """
    return np.asarray(format_numbers_arrow(x).to_numpy(zero_copy_only=False), dtype=object)


def _extract_num(arr: pa.Array, pattern: str, groups: tuple[str, ...]) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
    """(matched mask, number) of cells matching a regex with number groups."""
    st = pc.extract_regex(arr, pattern)
    matched = np.asarray(st.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    num = np.full(len(arr), np.nan)
    if matched.any():
        text = None
        for g in groups:
            field = pc.struct_field(st, g).fill_null("")
            text = field if text is None else pc.binary_join_element_wise(
                text, field, pa.scalar("", type=field.type)
            )
        idx = np.flatnonzero(matched)
        num[idx] = pc.cast(pc.take(text, pa.array(idx)), pa.float64()).to_numpy(
            zero_copy_only=False
        )
    return matched, num


def _parse_text(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, ValueFlags]:
    n = len(arr)
    values = np.full(n, np.nan)
    cens = np.zeros(n, dtype=np.int8)
    missing = np.zeros(n, dtype=bool)
    extrap = np.zeros(n, dtype=bool)
    invalid = np.zeros(n, dtype=bool)
    no_limit = np.zeros(n, dtype=bool)
    bad_limit = np.zeros(n, dtype=bool)

    is_num = np.asarray(pc.match_substring_regex(arr, NUMBER_RE).to_numpy(zero_copy_only=False),
                        dtype=bool)
    if is_num.any():
        idx = np.flatnonzero(is_num)
        sub = arr if len(idx) == n else pc.take(arr, pa.array(idx))
        values[idx] = pc.cast(sub, pa.float64()).to_numpy(zero_copy_only=False)

    rest = np.flatnonzero(~is_num)
    if len(rest):
        # only cells that are not plain numbers are trimmed and looked at further
        sub = pc.utf8_trim_whitespace(pc.take(arr, pa.array(rest)))
        m_num = np.asarray(pc.match_substring_regex(sub, NUMBER_RE).to_numpy(
            zero_copy_only=False), dtype=bool)
        if m_num.any():
            values[rest[m_num]] = pc.cast(pc.filter(sub, pa.array(m_num)), pa.float64()
                                          ).to_numpy(zero_copy_only=False)
            is_num[rest[m_num]] = True
            keep = ~m_num
            rest, sub = rest[keep], pc.filter(sub, pa.array(keep))
        sub = pc.utf8_lower(sub)
        sub = pc.replace_substring_regex(sub, r"\s+", " ")
        m_missing = np.asarray(pc.is_in(sub, value_set=pa.array(MISSING_TOKENS)).to_numpy(
            zero_copy_only=False), dtype=bool)
        m_bn, v_bn = _extract_num(sub, _BELOW_NUM, ("n",))
        m_an, v_an = _extract_num(sub, _ABOVE_NUM, ("n",))
        m_fl, v_fl = _extract_num(sub, _FLAG_NUM, ("a", "b"))
        m_bt = np.asarray(pc.match_substring_regex(sub, _BELOW_TOKEN).to_numpy(
            zero_copy_only=False), dtype=bool)
        m_at = np.asarray(pc.match_substring_regex(sub, _ABOVE_TOKEN).to_numpy(
            zero_copy_only=False), dtype=bool)

        missing[rest] = m_missing
        below = m_bn | m_bt
        above = m_an | m_at
        cens[rest[below]] = BELOW
        cens[rest[above]] = ABOVE
        lim = np.where(m_bn, v_bn, np.where(m_an, v_an, np.nan))
        values[rest[m_bn | m_an]] = lim[m_bn | m_an]
        no_limit[rest[m_bt | m_at]] = True
        with np.errstate(invalid="ignore"):
            bad = (m_bn | m_an) & ~(np.isfinite(lim) & (lim > 0))
        bad_limit[rest[bad]] = True
        extrap[rest[m_fl]] = True
        values[rest[m_fl]] = v_fl[m_fl]
        invalid[rest] = ~(m_missing | below | above | m_fl)

    negative = np.zeros(n, dtype=bool)
    observed = cens == OBSERVED
    with np.errstate(invalid="ignore"):
        invalid |= observed & ~missing & ~invalid & ~np.isfinite(values) & ~np.isnan(values)
        negative = observed & (values < 0)
    values[negative | invalid | bad_limit] = np.nan
    cens[bad_limit] = OBSERVED
    values += 0.0  # -0.0 -> 0.0
    flags = ValueFlags(missing, extrap, invalid, negative, bad_limit, no_limit)
    return values, cens, flags


def _parse_numeric(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, ValueFlags]:
    values = np.array(x, dtype=np.float64, copy=True)
    n = len(values)
    missing = np.isnan(values)
    invalid = np.isinf(values)
    negative = values < 0
    values[invalid | negative] = np.nan
    values += 0.0
    z = np.zeros(n, dtype=bool)
    flags = ValueFlags(missing, z, invalid, negative, z.copy(), z.copy())
    return values, np.zeros(n, dtype=np.int8), flags


def parse_value_column(
    series: Any, *, lloq: float | None = None, uloq: float | None = None
) -> tuple[np.ndarray, np.ndarray, ValueFlags]:
    """Parse a column of concentration cells, vectorised.

    Parameters
    ----------
    series : Series, ndarray or pyarrow Array
        Text cells (``"3.2"``, ``"<0.64"``, ``"< LLOQ"``, ``"OOR >"``, ``"*12.3"``, ``"***"``,
        ``""``) or numbers.
    lloq, uloq : float, optional
        Limits for censored cells that give none (``< LLOQ``, ``OOR <``, ``>ULOQ``). Without
        them such cells hold NaN and ``flags.no_limit`` marks them.

    Returns
    -------
    values : ndarray of float64
        The value, or the limit of a censored cell; NaN where missing or an error.
    censoring : ndarray of int8
        ``-1`` below the lower limit, ``+1`` above the upper limit, ``0`` otherwise.
    flags : ValueFlags
        Missing, extrapolated, invalid, negative, bad-limit and no-limit masks.

    Notes
    -----
    Recognised tokens (case-insensitive, spaces ignored around ``<``/``>``):
    below: ``<0.64``, ``< LLOQ``, ``<LOD``, ``OOR <``, ``BLQ``, ``below detection``,
    ``not detected``; above: ``>1000``, ``>ULOQ``, ``OOR >``, ``above detection``;
    extrapolated: ``*12.3``, ``12.3*``; missing: empty, ``NA``, ``N/A``, ``NaN``, ``***``,
    ``null``, ``none``. Anything else (including ``ND``, which may mean "not detected" or
    "not done") is invalid.

    Examples
    --------
    >>> v, c, f = parse_value_column(pd.Series(["3.5", "<0.64", "OOR >", "*2", "***", "abc"]),
    ...                              uloq=1000.0)
    >>> v.tolist()[:4], c.tolist(), f.invalid.tolist()
    ([3.5, 0.64, 1000.0, 2.0], [0, -1, 1, 0, 0, 0], [False, False, False, False, False, True])
    """
    if is_numeric_column(series):
        arr = series.to_numpy(dtype=np.float64, na_value=np.nan) if isinstance(
            series, pd.Series) else np.asarray(series, dtype=np.float64)
        return _parse_numeric(arr)
    values, cens, flags = _parse_text(_raw_text(series))
    if lloq is not None:
        values[flags.no_limit & (cens == BELOW)] = lloq
    if uloq is not None:
        values[flags.no_limit & (cens == ABOVE)] = uloq
    return values, cens, flags
