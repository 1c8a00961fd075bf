"""Vendor and container formats: Luminex xPONENT / Bio-Plex, long (MSD), Excel, Parquet,
format detection, fuzzing, and the real public files."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cytoresp.errors import InputError, UsageError
from cytoresp.panels.long import aggregate_replicates
from cytoresp.panels.panel import ABOVE, BELOW, Panel
from cytoresp.panels.read import read_panel
from cytoresp.panels.registry import get_analyte, resolve_analyte
from cytoresp.panels.sniff import sniff

REPO = Path(__file__).resolve().parents[2]
FORMATS = REPO / "tests" / "data" / "formats"
SHARED = REPO / ".." / "shared" / "data"


def fixture(name: str) -> Path:
    return FORMATS / name


def shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


# ---- detection ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("wide_panel.csv", "wide"), ("xponent_plate1.csv", "luminex"),
     ("bioplex_export.csv", "luminex"), ("msd_long.csv", "long"),
     ("wide_panel.xlsx", "xlsx"), ("wide_panel.parquet", "parquet")],
)
def test_format_is_sniffed_from_content_not_extension(name, fmt, tmp_path):
    data = fixture(name).read_bytes()
    assert sniff(data, "") == fmt
    # renamed to a misleading extension, the content still decides
    odd = tmp_path / "upload.txt"
    odd.write_bytes(data)
    assert len(read_panel(odd)) == len(read_panel(fixture(name)))


@pytest.mark.parametrize(
    ("name", "ids", "analytes"),
    [
        ("wide_panel.csv", ["MS-001", "MS-002", "MS-003", "MS-004", "MS-005"],
         ["IFNG", "TNF", "IL17A", "IL17F", "IL10", "IL4", "CXCL10", "TNFSF13B", "TGFB1"]),
        ("xponent_plate1.csv", ["P001", "P002", "P003", "P004"],
         ["IFNG", "IL10", "IL17A", "IL6", "TNF", "IL12"]),
        ("bioplex_export.csv", ["MS-017", "MS-018", "MS-019"], ["IL6", "IL10", "IFNG", "IL17A"]),
        ("msd_long.csv", ["RR-001", "RR-002", "RR-003"], ["IFNG", "IL10", "IL17A", "TGFB1"]),
        ("wide_panel.xlsx", ["MS-001", "MS-002", "MS-003", "MS-004", "MS-005"],
         ["IFNG", "TNF", "IL17A", "IL17F", "IL10", "IL4", "CXCL10", "TNFSF13B", "TGFB1"]),
        ("wide_panel.parquet", ["MS-001", "MS-002", "MS-003", "MS-004", "MS-005"],
         ["IFNG", "TNF", "IL17A", "IL17F", "IL10", "IL4", "CXCL10", "TNFSF13B", "TGFB1"]),
    ],
)
def test_each_fixture_reads_to_canonical_ids(name, ids, analytes):
    p = read_panel(fixture(name))
    assert list(p.sample_ids) == ids
    assert p.analytes == analytes
    assert p.values.dtypes.unique().tolist() == [np.dtype("float64")]
    assert ((p.censoring == 0) | p.values.notna()).all().all()


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("wide_panel.csv", "wide"), ("xponent_plate1.csv", "luminex"), ("msd_long.csv", "long"),
     ("wide_panel.xlsx", "xlsx"), ("wide_panel.parquet", "parquet")],
)
def test_format_override_gives_the_same_panel(name, fmt):
    a, b = read_panel(fixture(name)), read_panel(fixture(name), format=fmt)
    pd.testing.assert_frame_equal(a.values, b.values)


@pytest.mark.parametrize(
    ("name", "fmt", "match"),
    [("xponent_plate1.csv", "wide", "read it with format='luminex'"),
     ("wide_panel.csv", "xlsx", "cannot open the Excel workbook"),
     ("wide_panel.csv", "parquet", "cannot read the Parquet file"),
     ("wide_panel.xlsx", "wide", "binary file")],
)
def test_a_wrong_format_override_is_an_input_error(name, fmt, match):
    with pytest.raises(InputError, match=match):
        read_panel(fixture(name), format=fmt)


# ---- Luminex xPONENT -----------------------------------------------------------------


def test_xponent_reads_only_the_concentration_section_and_averages_replicates():
    p = read_panel(fixture("xponent_plate1.csv"))
    v, c = p.values, p.censoring
    assert v.loc["P001", "IFNG"] == pytest.approx((2.81 + 3.19) / 2)
    assert v.loc["P003", "IFNG"] == pytest.approx((5.10 + 8.90) / 2)
    assert v.loc["P004", "IFNG"] == 1.55  # a single well
    # TNF-a is in ng/mL per the Units section
    assert v.loc["P001", "TNF"] == pytest.approx((4.12 + 4.36) / 2)
    # '***' wells are missing; 'N/A' too
    assert math.isnan(v.loc["P002", "IL10"]) and math.isnan(v.loc["P004", "IL17A"])
    # all wells 'OOR <' -> censored at the registry LLOQ
    assert c.loc["P003", "IL17A"] == BELOW
    assert v.loc["P003", "IL17A"] == get_analyte("IL17A").lloq
    # an observed '*0.12' replicate wins over an 'OOR <' replicate
    assert (v.loc["P002", "IL12"], c.loc["P002", "IL12"]) == (0.12, 0)
    assert p.plate.unique().tolist() == ["MS-cyto-plate01"]
    w = "\n".join(p.warnings)
    assert "dropped 5 background/standard/control well(s)" in w
    assert "P003/IFNG (38%)" in w
    assert "lines 59" in w  # the extrapolated well, by its file line


def test_xponent_mfi_only_export_is_refused():
    text = fixture("xponent_plate1.csv").read_text(encoding="utf-8")
    mfi_only = text.replace('"DataType:","Concentration"', '"DataType:","Trimmed Mean"')
    with pytest.raises(InputError, match=r"no concentration section \(found 'Median', 'Count'"):
        read_panel(io.StringIO(mfi_only))


def test_xponent_result_section_is_accepted_with_a_note():
    text = fixture("xponent_plate1.csv").read_text(encoding="utf-8")
    p = read_panel(io.StringIO(text.replace('"DataType:","Concentration"',
                                            '"DataType:","Result"')))
    assert p.values.loc["P004", "IFNG"] == 1.55
    assert any("'Result' section" in w for w in p.warnings)


@pytest.mark.parametrize(
    ("old", "new", "row", "column", "match"),
    [
        ('"12(1,D2)","P004","1.55"', '"12(1,D2)","P004","high"', 62, "IFN-g",
         "not a concentration: 'high'"),
        ('"12(1,D2)","P004","1.55"', '"12(1,D2)","P004","-1.55"', 62, "IFN-g",
         "negative concentration"),
        ('"Units:","pg/mL","pg/mL"', '"Units:","IU/mL","pg/mL"', 44, "IFN-g",
         "unknown unit 'IU/mL' for analyte IFNG"),
        ('"12(1,D2)","P004"', '"12(1,D2)",""', 62, "Sample", "without a sample name"),
    ],
)
def test_xponent_errors_name_the_file_line_and_column(old, new, row, column, match):
    text = fixture("xponent_plate1.csv").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert sum(old in ln for ln in lines) >= 1
    # replace only in the concentration section (after the Units section)
    start = next(i for i, ln in enumerate(lines) if "Concentration" in ln)
    if old.startswith('"Units'):
        start = 0
    for i in range(start, len(lines)):
        if old in lines[i]:
            lines[i] = lines[i].replace(old, new)
            break
    with pytest.raises(InputError) as info:
        read_panel(io.StringIO("\n".join(lines) + "\n"))
    hits = [p for p in info.value.problems if match in p.message]
    assert hits, info.value
    if row is not None and "unknown unit" not in match:
        assert (hits[0].row, hits[0].column) == (row, column)
    else:
        assert hits[0].column == column


def test_bioplex_keeps_unknowns_strips_bead_regions_and_reads_the_plate():
    p = read_panel(fixture("bioplex_export.csv"))
    v, c = p.values, p.censoring
    assert v.loc["MS-017", "IL6"] == pytest.approx((4.52 + 4.71) / 2)
    assert (c.loc["MS-017", "IL10"], v.loc["MS-017", "IL10"]) == (BELOW,
                                                                  get_analyte("IL10").lloq)
    assert (c.loc["MS-018", "IL6"], v.loc["MS-018", "IL6"]) == (ABOVE, get_analyte("IL6").uloq)
    assert v.loc["MS-017", "IFNG"] == pytest.approx((0.45 + 0.52) / 2)
    assert math.isnan(v.loc["MS-018", "IL17A"]) and math.isnan(v.loc["MS-019", "IFNG"])
    assert p.plate.unique().tolist() == ["BPX-0211"]
    assert "QC low" not in p.sample_ids


# ---- long ------------------------------------------------------------------------------


def test_long_pivots_averages_converts_and_uses_the_lloq_column():
    p = read_panel(fixture("msd_long.csv"))
    v, c = p.values, p.censoring
    assert v.loc["RR-001", "IFNG"] == pytest.approx((4.21 + 4.45) / 2)
    # lloq column (0.37) wins over the registry LLOQ (0.48) for '< LLOQ'
    assert (v.loc["RR-002", "IFNG"], c.loc["RR-002", "IFNG"]) == (0.37, BELOW)
    assert get_analyte("IFNG").lloq != 0.37
    assert v.loc["RR-002", "IL10"] == pytest.approx(0.9)  # ng/mL rows, averaged
    assert v.loc["RR-002", "TGFB1"] == pytest.approx(15200.0)
    assert v.loc["RR-001", "IL10"] == 0.51  # the observed replicate, not the censored one
    assert p.therapy.tolist()[:2] == ["ifnb", "ga"] and pd.isna(p.therapy.iloc[2])
    assert p.responder.tolist()[:2] == [1.0, 0.0]
    assert p.plate.unique().tolist() == ["MSD-P1"]
    w = "\n".join(p.warnings)
    assert "'Osteopontin'" in w and "RR-001/IL17A (40%)" in w


def test_long_dataframe_input_is_detected():
    df = pd.DataFrame({"sample_id": ["a", "a", "b"], "analyte": ["IL-6", "IL-6", "IL-10"],
                       "value": [1.0, 3.0, 0.5], "unit": ["pg/mL", "pg/mL", "ng/mL"]})
    p = read_panel(df)
    assert p.values.loc["a", "IL6"] == 2.0 and p.values.loc["b", "IL10"] == 500.0


@pytest.mark.parametrize(
    ("text", "row", "column", "match"),
    [
        ("sample_id,analyte,value,unit\na,IL6,1,U/mL\n", 2, "unit", "unknown unit 'U/mL'"),
        ("sample_id,analyte,value\na,IL6,abc\n", 2, "value", "not a concentration: 'abc'"),
        ("sample_id,analyte,value\na,IL6,-1\n", 2, "value", "negative concentration"),
        ("sample_id,analyte,value\n,IL6,1\n", 2, "sample_id", "empty sample id"),
        ("sample_id,analyte,value\na,,1\n", 2, "analyte", "empty analyte name"),
        ("sample_id,analyte,value\na,IL-1,1\n", 2, "analyte", "ambiguous analyte name"),
        ("sample_id,analyte,value,lloq\na,IL6,< LLOQ,zero\n", 2, "lloq", "LLOQ must be"),
        ("sample_id,analyte,value,therapy\na,IL6,1,ga\na,IL10,1,ifnb\n", None, "therapy",
         "different values in column 'therapy'"),
        ("sample_id,analyte,value,therapy\na,IL6,1,xyz\n", 2, "therapy", "unknown therapy"),
    ],
)
def test_long_errors(text, row, column, match):
    with pytest.raises(InputError) as info:
        read_panel(io.StringIO(text))
    hits = [p for p in info.value.problems if match in p.message]
    assert hits, info.value
    assert (hits[0].row, hits[0].column) == (row, column)


def test_long_needs_its_three_columns():
    with pytest.raises(InputError, match="missing: value"):
        read_panel(io.StringIO("sample_id,analyte,conc_x\na,IL6,1\n"), format="long")


def test_aggregate_replicates_rules():
    s = np.array(["a", "a", "b", "b", "c", "c", "d"], dtype=object)
    an = np.array(["IL6"] * 7, dtype=object)
    v = np.array([1.0, 2.0, 0.5, 0.7, 0.5, 900.0, np.nan])
    cens = np.array([0, 0, BELOW, BELOW, BELOW, ABOVE, 0], dtype=np.int8)
    samples, analytes, V, C, notes = aggregate_replicates(s, an, v, cens)
    assert list(samples) == ["a", "b", "c", "d"] and analytes == ["IL6"]
    assert V[0, 0] == 1.5 and C[0, 0] == 0
    assert (V[1, 0], C[1, 0]) == (0.7, BELOW)  # the least informative (largest) LLOQ
    assert math.isnan(V[2, 0]) and C[2, 0] == 0  # below and above: missing
    assert math.isnan(V[3, 0])
    assert any("both below and above" in n for n in notes)
    assert any("CV above 20%" in n and "a/IL6 (47%)" in n for n in notes)


# ---- Excel and Parquet -----------------------------------------------------------------


def _same_panel(a: Panel, b: Panel) -> None:
    pd.testing.assert_frame_equal(a.values, b.values, check_exact=True)
    pd.testing.assert_frame_equal(a.censoring, b.censoring)
    pd.testing.assert_frame_equal(a.covariates, b.covariates, check_exact=True)
    pd.testing.assert_series_equal(a.therapy, b.therapy)
    pd.testing.assert_series_equal(a.responder, b.responder)
    pd.testing.assert_series_equal(a.plate, b.plate)


@pytest.mark.parametrize("name", ["wide_panel.xlsx", "wide_panel.parquet"])
def test_excel_and_parquet_equal_the_csv(name):
    _same_panel(read_panel(fixture(name)), read_panel(fixture("wide_panel.csv")))


def test_excel_reads_the_first_sheet_with_a_panel_and_says_so():
    p = read_panel(fixture("wide_panel.xlsx"))
    assert any("read sheet 'Panel'" in w for w in p.warnings)


def test_excel_errors_use_sheet_rows(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["sample_id", "IL6", "age"])
    ws.append(["a", 1.5, 40])
    ws.append(["b", "lots", 300])
    path = tmp_path / "bad.xlsx"
    wb.save(path)
    with pytest.raises(InputError) as info:
        read_panel(path)
    got = {(p.row, p.column) for p in info.value.problems}
    assert got == {(3, "IL6"), (3, "age")}


def test_excel_long_sheet_and_parquet_long(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Sample", "Assay", "Calc. Concentration"])
    ws.append(["a", "IL-6", 2.0])
    ws.append(["a", "IL-6", 4.0])
    wb.save(tmp_path / "long.xlsx")
    assert read_panel(tmp_path / "long.xlsx").values.loc["a", "IL6"] == 3.0
    df = pd.DataFrame({"sample_id": ["a", "b"], "analyte": ["IL10", "IL10"],
                       "value": ["<0.5", "2"]})
    df.to_parquet(tmp_path / "long.parquet")
    p = read_panel(tmp_path / "long.parquet")
    assert p.censoring["IL10"].tolist() == [BELOW, 0]


@pytest.mark.parametrize(
    ("data", "match"),
    [(b"PK\x03\x04 not really a zip", "cannot open the Excel workbook"),
     (b"PAR1 garbage", "cannot read the Parquet file")],
)
def test_corrupt_containers(data, match):
    with pytest.raises(InputError, match=match):
        read_panel(io.BytesIO(data))


def test_dataframe_rejects_vendor_formats():
    with pytest.raises(UsageError, match="read as 'wide' or 'long'"):
        read_panel(pd.DataFrame({"sample_id": ["a"], "IL6": [1.0]}), format="xlsx")


# ---- fuzzing: any text table gives a Panel or an InputError ----------------------------

_HEADERS = ["sample_id", "Sample", "IL6", "IL-10 (ng/ml)", "IFN-γ", "therapy", "responder",
            "age", "sex", "plate", "analyte", "value", "unit", "lloq", "IL-1", "IL6 (U/mL)",
            "DataType:", "Location", "Type", "", "x"]
_CELLS = st.one_of(
    st.sampled_from(["1", "0.5", "<0.64", "OOR <", ">ULOQ", "*3", "***", "", "NA", "-1",
                     "ga", "ifnb", "F", "IL6", "pg/mL", "Concentration", "X1", "1(1,A1)",
                     "abc", "1e400", '"', ",", "\n"]),
    st.text(max_size=6),
)


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    header=st.lists(st.one_of(st.sampled_from(_HEADERS), st.text(max_size=6)), min_size=1,
                    max_size=6),
    rows=st.lists(st.lists(_CELLS, max_size=7), max_size=6),
    prefix=st.sampled_from(["", '"Program","xPONENT"\n"DataType:","Concentration"\n',
                            "Bio-Plex report\n\n", "\n"]),
    sep=st.sampled_from([",", ";", "\t"]),
)
def test_any_text_table_gives_a_panel_or_an_input_error(header, rows, prefix, sep):
    def line(cells):
        return sep.join('"' + c.replace('"', '""') + '"' if any(x in c for x in '",;\t\n')
                        else c for c in cells)

    text = prefix + "\n".join([line(header), *(line(r) for r in rows)]) + "\n"
    try:
        p = read_panel(io.StringIO(text))
    except InputError as exc:
        assert exc.problems and all(pr.message for pr in exc.problems)
        return
    assert isinstance(p, Panel)
    assert p.values.index.is_unique and len(p.analytes) >= 1
    assert p.values.shape == p.censoring.shape
    assert ((p.values.fillna(0) >= 0).all().all())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_any_bytes_give_a_panel_or_an_input_error(data):
    try:
        read_panel(io.BytesIO(data))
    except InputError:
        pass


# ---- the real public files -------------------------------------------------------------


def test_race_septic_shock_file_reads_with_every_cytokine_mapped():
    path = shared("race_septic_shock_cytokines", "RACE_CytokineData.csv")
    p = read_panel(path)
    assert len(p) == 189
    # Greek headers (IL-1α, IL-1β, TNFα), IL-12(p40) and ANG2 all map
    assert p.analytes == ["CX3CL1", "IL1A", "IL1B", "IL6", "CXCL8", "IL10", "IL12B", "IL18",
                          "TNF", "ANGPT2"]
    assert int(p.values.isna().sum().sum()) == 1  # ANG2 has one missing value
    assert (p.censoring == 0).all().all()
    assert p.covariates["age"].max() == 90.0  # ages '>90' read as their bound
    assert set(p.covariates["sex"].dropna()) == {0.0, 1.0}
    # Plate_ID holds one value per sample: not a plate, so not used as one (issue #13)
    assert p.plate is None
    assert p.values.loc["S00037446", "IL6"] == 321.0


def test_olink_feature_names_map_to_registry_ids():
    path = shared("covid_olink_icu_zoodsma", "feature_map.csv")
    fm = pd.read_csv(path)
    assays = fm.loc[fm["olink_panel"].notna(), "assay"].tolist()
    mapped = {a: resolve_analyte(a) for a in assays}
    assert len(assays) == 62
    expected = {"IL8": "CXCL8", "IL-12B": "IL12B", "IFN-gamma": "IFNG", "TNF": "TNF",
                "TNFB": "LTA", "MCP-1": "CCL2", "CXCL10": "CXCL10", "IL18": "IL18",
                "CSF-1": "CSF1", "TWEAK": "TNFSF12", "TRANCE": "TNFSF11"}
    for name, aid in expected.items():
        assert mapped[name] == aid, name
    # receptors and the TGF-β1 latency peptide are never mapped to a cytokine
    for name in ("IL-10RB", "IL-18R1", "CD40", "LAP TGF-beta-1", "TNFRSF9", "LIF-R"):
        assert mapped[name] is None, name
    assert sum(v is not None for v in mapped.values()) >= 35


def test_a_file_sniffed_as_an_export_without_its_header_reports_both_readers(tmp_path):
    """Issue #13: 'no table header found' alone hid the wide reader's precise problems."""
    path = tmp_path / "title_line.csv"
    path.write_text("My export\nPatient Code,IL-6,IL-10\nA,1,2\n")
    with pytest.raises(InputError) as info:
        read_panel(path)
    messages = [p.message for p in info.value.problems]
    assert any("no table header found" in m for m in messages), messages
    assert any("this row has 3 fields but the header has 1" in m for m in messages), messages
    assert "--format wide" in messages[-1]
