"""Long panel tables (one row per sample x analyte, e.g. MSD Discovery Workbench exports).

Columns: ``sample_id``, ``analyte``, ``value``, ``unit`` (optional, pg/mL by default),
``lloq`` / ``uloq`` (optional; they give the limit of censored cells without one, and win
over the registry), ``plate`` (optional) and any sample-level column of the wide format
(``therapy``, ``responder``, covariates), which must agree across a sample's rows.

Several rows of the same sample and analyte are replicate wells: observed replicates are
averaged (a warning names those whose CV exceeds :data:`CV_WARN_PERCENT`); censored
replicates are dropped when an observed one exists; when all are censored the sample is
censored at the least informative limit (the largest LLOQ, the smallest ULOQ).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cytoresp.errors import InputError, Problem, quote_cell
from cytoresp.panels._table import (
    MAX_PROBLEMS,
    Preparsed,
    Problems,
    Table,
    analyte_header,
    invalid_message,
    list_rows,
    quoted_at,
    role_key,
    role_of,
    text_at,
)
from cytoresp.panels.panel import ABOVE, BELOW, OBSERVED
from cytoresp.panels.registry import get_analyte
from cytoresp.panels.units import SUPPORTED_UNITS, unit_factor
from cytoresp.panels.values import as_text, parse_value_column

#: Replicate wells whose coefficient of variation (%) exceeds this get a warning.
CV_WARN_PERCENT = 20.0

_SAMPLE = ("sample_id", "sampleid", "sample_name", "samplename", "sample")
_ANALYTE = ("analyte", "assay", "analyte_name", "marker", "cytokine", "protein", "target")
_VALUE = ("value", "calc_concentration", "calc_conc", "concentration", "conc", "result",
          "obs_conc")
_UNIT = ("unit", "units", "concentration_unit", "conc_unit")
_LLOQ = ("lloq", "lod", "llod", "lower_limit")
_ULOQ = ("uloq", "ulod", "upper_limit")
#: Per-well instrument columns of long exports, ignored without a warning.
_WELL_COLUMNS = {
    "well", "spot", "location", "dilution", "dilution_factor", "signal", "mean", "cv",
    "calc_conc_mean", "calc_conc_cv", "calc_conc_std_dev", "detection_range", "sample_type",
    "sample_group", "assay_type", "exp_conc", "expected_concentration", "outlier",
    "adjusted_signal", "fit_statistic_rsquared",
}


def _find(keys: list[str], aliases: tuple[str, ...]) -> int | None:
    for alias in aliases:
        if alias in keys:
            return keys.index(alias)
    return None


def looks_long(names: list[str]) -> bool:
    """True when a header has a sample id, an analyte and a value column (long layout).

    Examples
    --------
    >>> looks_long(["Sample", "Assay", "Calc. Concentration", "Unit"])
    True
    >>> looks_long(["sample_id", "IL6", "IL10"])
    False
    """
    keys = [role_key(n) for n in names]
    return (_find(keys, _SAMPLE) is not None and _find(keys, _ANALYTE) is not None
            and _find(keys, _VALUE) is not None)


def aggregate_replicates(
    sample: np.ndarray,
    analyte: np.ndarray,
    values: np.ndarray,
    cens: np.ndarray,
) -> tuple[pd.Index, list[str], np.ndarray, np.ndarray, list[str]]:
    """Pivot long cells to (samples x analytes), averaging replicate wells.

    Parameters
    ----------
    sample, analyte : ndarray of str
        Sample id and canonical analyte id of each cell.
    values, cens : ndarray
        Value (or limit) in pg/mL and censoring code of each cell; NaN = missing.

    Returns
    -------
    samples : Index
        Sample ids in order of first appearance.
    analytes : list of str
        Analyte ids in order of first appearance.
    V, C : ndarray
        Values and censoring codes, shape (samples, analytes).
    notes : list of str
        Warnings: high-CV replicates, censored replicates dropped, conflicting censoring.

    Examples
    --------
    >>> s = np.array(["a", "a", "b"]); an = np.array(["IL6", "IL6", "IL6"])
    >>> _, _, V, C, _ = aggregate_replicates(s, an, np.array([1.0, 3.0, 0.5]),
    ...                                      np.array([0, 0, -1], dtype=np.int8))
    >>> V.ravel().tolist(), C.ravel().tolist()
    ([2.0, 0.5], [0, -1])
    """
    s_codes, s_uniques = pd.factorize(pd.Series(sample, dtype=object), sort=False)
    a_codes, a_uniques = pd.factorize(pd.Series(analyte, dtype=object), sort=False)
    ns, na = len(s_uniques), len(a_uniques)
    key = s_codes.astype(np.int64) * na + a_codes
    obs = (cens == OBSERVED) & ~np.isnan(values)
    below = (cens == BELOW) & ~np.isnan(values)
    above = (cens == ABOVE) & ~np.isnan(values)
    frame = pd.DataFrame({
        "key": key,
        "obs": np.where(obs, values, np.nan),
        "below": np.where(below, values, np.nan),
        "above": np.where(above, values, np.nan),
    })
    g = frame.groupby("key", sort=False)
    agg = pd.DataFrame({
        "n_obs": g["obs"].count(),
        "mean": g["obs"].mean(),
        "sd": g["obs"].std(ddof=1),
        "n_below": g["below"].count(),
        "max_below": g["below"].max(),
        "n_above": g["above"].count(),
        "min_above": g["above"].min(),
    })
    V = np.full(ns * na, np.nan)
    C = np.zeros(ns * na, dtype=np.int8)
    k = agg.index.to_numpy()
    n_obs = agg["n_obs"].to_numpy()
    has_obs = n_obs > 0
    only_below = ~has_obs & (agg["n_below"].to_numpy() > 0) & (agg["n_above"].to_numpy() == 0)
    only_above = ~has_obs & (agg["n_above"].to_numpy() > 0) & (agg["n_below"].to_numpy() == 0)
    both = ~has_obs & (agg["n_below"].to_numpy() > 0) & (agg["n_above"].to_numpy() > 0)
    V[k[has_obs]] = agg["mean"].to_numpy()[has_obs]
    V[k[only_below]] = agg["max_below"].to_numpy()[only_below]
    C[k[only_below]] = BELOW
    V[k[only_above]] = agg["min_above"].to_numpy()[only_above]
    C[k[only_above]] = ABOVE

    notes: list[str] = []

    def name(keys: np.ndarray) -> list[str]:
        return [f"{s_uniques[int(x) // na]}/{a_uniques[int(x) % na]}" for x in keys]

    with np.errstate(invalid="ignore", divide="ignore"):
        cv = 100.0 * agg["sd"].to_numpy() / agg["mean"].to_numpy()
    high = (n_obs >= 2) & (cv > CV_WARN_PERCENT)
    if high.any():
        shown = [f"{nm} ({c:.0f}%)" for nm, c in zip(name(k[high][:10]), cv[high][:10],
                                                      strict=True)]
        more = f" and {int(high.sum()) - 10} more" if high.sum() > 10 else ""
        notes.append(f"{int(high.sum())} replicate group(s) have a CV above "
                     f"{CV_WARN_PERCENT:g}%: {', '.join(shown)}{more}; the mean was used")
    dropped = has_obs & ((agg["n_below"].to_numpy() > 0) | (agg["n_above"].to_numpy() > 0))
    if dropped.any():
        notes.append(f"{int(dropped.sum())} sample/analyte pair(s) mix observed and censored "
                     f"replicates; the observed replicates were averaged "
                     f"(e.g. {', '.join(name(k[dropped][:5]))})")
    if both.any():
        notes.append(f"{int(both.sum())} sample/analyte pair(s) have replicates both below and "
                     f"above the limits; set to missing (e.g. {', '.join(name(k[both][:5]))})")
    samples = pd.Index(np.asarray(s_uniques, dtype=object), dtype=object)
    return (samples, [str(a) for a in a_uniques], V.reshape(ns, na), C.reshape(ns, na), notes)


def read_long_table(table: Table) -> Table:
    """Turn a long :class:`Table` into a wide one (analytes as :class:`Preparsed` columns).

    Problems in the long rows (bad values, units, analytes, conflicting sample-level values)
    are raised together as InputError, with the long file's row numbers.
    """
    problems = Problems(table.source)
    notes = list(table.warnings)
    keys = [role_key(n) for n in table.names]
    js, ja = _find(keys, _SAMPLE), _find(keys, _ANALYTE)
    jv, ju = _find(keys, _VALUE), _find(keys, _UNIT)
    jl, jh = _find(keys, _LLOQ), _find(keys, _ULOQ)
    if js is None or ja is None or jv is None:
        missing = [w for w, j in (("sample_id", js), ("analyte", ja), ("value", jv)) if j is None]
        raise InputError([Problem(table.source, None, None,
                                  f"a long table needs the columns sample_id, analyte and "
                                  f"value; missing: {', '.join(missing)}")])
    used = {js, ja, jv, ju, jl, jh}
    rows = table.rows

    sample = as_text(table.columns[js])
    analyte_text = as_text(table.columns[ja])
    empty_row = np.asarray(pc.equal(sample, "").to_numpy(zero_copy_only=False), dtype=bool) & \
        np.asarray(pc.equal(analyte_text, "").to_numpy(zero_copy_only=False), dtype=bool)
    problems.add_cells(np.asarray(pc.equal(sample, "").to_numpy(zero_copy_only=False),
                                  dtype=bool) & ~empty_row, rows, js, table.names[js],
                       lambda i: "empty sample id; every row needs a sample id")

    # analytes: resolve each distinct name once
    codes, uniques = pd.factorize(pd.Series(analyte_text.to_numpy(zero_copy_only=False),
                                            dtype=object), sort=False)
    ids = np.empty(len(uniques), dtype=object)
    name_factor = np.ones(len(uniques))
    unknown: list[str] = []
    for u, nm in enumerate(uniques):
        if nm == "":
            ids[u] = None
            continue
        header = analyte_header(nm)
        aid = header.analyte
        ids[u] = aid
        if aid is None:
            if header.ambiguity:
                first = int(rows[np.flatnonzero(codes == u)[0]])
                problems.add(f"ambiguous analyte name: {header.ambiguity}", row=first,
                             column=table.names[ja])
            else:
                unknown.append(nm)
            continue
        if header.note:
            notes.append(f"analyte {nm!r}: {header.note}")
        f = header.factor
        if f is None:
            first = int(rows[np.flatnonzero(codes == u)[0]])
            problems.add(f"unknown unit in analyte name {nm!r}; supported: {SUPPORTED_UNITS}",
                         row=first, column=table.names[ja])
        name_factor[u] = f if f is not None else np.nan
    row_id = ids[codes]
    known = np.array([x is not None for x in row_id], dtype=bool)
    empty_analyte = np.asarray(pc.equal(analyte_text, "").to_numpy(zero_copy_only=False),
                               dtype=bool)
    problems.add_cells(empty_analyte & ~empty_row, rows, ja, table.names[ja],
                       lambda i: "empty analyte name")
    if unknown:
        shown = ", ".join(repr(x) for x in unknown[:20])
        notes.append(f"ignored rows of {len(unknown)} analyte(s) that are not in the registry: "
                     f"{shown}{' ...' if len(unknown) > 20 else ''} (see docs/analytes.md)")

    # values and units
    values, cens, flags = parse_value_column(table.columns[jv])
    vcol = table.columns[jv]
    problems.add_cells(flags.invalid & known, rows, jv, table.names[jv],
                       lambda i: invalid_message(text_at(vcol, i)))
    problems.add_cells(flags.negative & known, rows, jv, table.names[jv],
                       lambda i: f"negative concentration {quoted_at(vcol, i)}")
    problems.add_cells(flags.bad_limit & known, rows, jv, table.names[jv],
                       lambda i: f"the limit in {quoted_at(vcol, i)} must be a positive number")
    factor = name_factor[codes].copy()
    if ju is not None:
        ucodes, uuniq = pd.factorize(
            pd.Series(as_text(table.columns[ju]).to_numpy(zero_copy_only=False), dtype=object))
        ufac = np.array([unit_factor(u) if unit_factor(u) is not None else np.nan
                         for u in uuniq], dtype=np.float64)
        row_uf = ufac[ucodes]
        bad_unit = np.isnan(row_uf) & known
        ucol = table.columns[ju]
        problems.add_cells(bad_unit, rows, ju, table.names[ju],
                           lambda i: f"unknown unit {quoted_at(ucol, i)} for analyte "
                                     f"{row_id[i]}; supported: {SUPPORTED_UNITS}")
        factor = factor * np.where(np.isnan(row_uf), 1.0, row_uf)
    values = values * factor
    for jlim, code, attr, label in ((jl, BELOW, "lloq", "LLOQ"), (jh, ABOVE, "uloq", "ULOQ")):
        target = flags.no_limit & (cens == code) & known
        if jlim is not None:
            lim, lc, lf = parse_value_column(table.columns[jlim])
            lcol = table.columns[jlim]
            badlim = (lf.invalid | lf.negative | lf.bad_limit | (lc != OBSERVED)) & known
            problems.add_cells(badlim, rows, jlim, table.names[jlim],
                               lambda i, c=lcol, lab=label: f"{lab} must be a positive number, "
                                                            f"got {quoted_at(c, i)}")
            lim = np.where(badlim, np.nan, lim) * factor
            use = target & ~np.isnan(lim)
            values[use] = lim[use]
            target &= ~use
        if target.any():
            reg = np.array([getattr(get_analyte(a), attr) if a is not None else np.nan
                            for a in ids], dtype=np.float64)[codes]
            values[target] = reg[target]
            notes.append(f"{int(target.sum())} censored cell(s) without a limit got the "
                         f"registry {label} (docs/analytes.md); add an {attr} column or write "
                         f"the limit in the cell to be exact")
    if flags.extrapolated.any():
        ext_rows = rows[flags.extrapolated & known]
        if len(ext_rows):
            notes.append(f"{len(ext_rows)} value(s) marked as extrapolated ('*') were used as "
                         f"measured (rows {list_rows(ext_rows.tolist())})")

    # sample-level columns: the first non-empty value of each sample, which must agree
    sid = sample.to_numpy(zero_copy_only=False).astype(object)
    keep_rows = ~empty_row & (sid != "")
    extra_names: list[str] = []
    extra_cols: list[pa.Array] = []
    sample_codes, sample_uniques = pd.factorize(pd.Series(sid[keep_rows], dtype=object),
                                                sort=False)
    first_pos = np.flatnonzero(keep_rows)[
        pd.Series(np.arange(len(sample_codes))).groupby(sample_codes).first().to_numpy()
    ] if len(sample_codes) else np.zeros(0, dtype=np.int64)
    ignored: list[str] = []
    for j, nm in enumerate(table.names):
        if j in used:
            continue
        if role_of(nm) in (None, "sample_id"):
            # per-well columns (well, signal, dilution, ...) are not sample-level
            if nm and role_key(nm) not in _WELL_COLUMNS:
                ignored.append(nm)
            continue
        text = as_text(table.columns[j]).to_numpy(zero_copy_only=False).astype(object)[keep_rows]
        df = pd.DataFrame({"s": sample_codes, "v": text})
        df = df[df["v"] != ""]
        if df.empty:
            continue
        nun = df.groupby("s")["v"].nunique()
        conflict = nun[nun > 1]
        for k, s_code in enumerate(conflict.index[:MAX_PROBLEMS]):
            vals = df.loc[df["s"] == s_code, "v"].unique()[:5]
            problems.add(f"sample {quote_cell(sample_uniques[s_code])} has different values "
                         f"in column {nm!r}: {', '.join(quote_cell(v) for v in vals)}; a "
                         f"sample-level "
                         f"column must agree across the sample's rows", column=nm)
            if k == MAX_PROBLEMS - 1:
                break
        first = df.groupby("s")["v"].first()
        col = np.full(len(sample_uniques), "", dtype=object)
        col[first.index.to_numpy()] = first.to_numpy()
        extra_names.append(nm)
        extra_cols.append(pa.array(col, type=pa.string()))

    if ignored:
        notes.append(f"ignored column(s) of the long table: "
                     f"{', '.join(repr(x) for x in ignored[:20])}")
    problems.raise_if_any()

    ok = known & keep_rows
    samples, analytes, V, C, agg_notes = aggregate_replicates(
        sid[ok], np.asarray(row_id[ok], dtype=object), values[ok], cens[ok])
    notes += agg_notes
    # samples without any known-analyte row still appear (all missing)
    order = pd.Index(np.asarray(sample_uniques, dtype=object), dtype=object)
    pos = order.get_indexer(samples)
    Vf = np.full((len(order), len(analytes)), np.nan)
    Cf = np.zeros((len(order), len(analytes)), dtype=np.int8)
    Vf[pos], Cf[pos] = V, C
    names = [table.names[js], *extra_names, *analytes]
    cols: list = [pa.array(np.asarray(order, dtype=object), type=pa.string()), *extra_cols]
    cols += [Preparsed(Vf[:, k].copy(), Cf[:, k].copy()) for k in range(len(analytes))]
    return Table(names, cols, rows[first_pos], table.source, notes)
