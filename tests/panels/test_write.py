import os
import stat

import pandas as pd
import pytest

from cytoresp.errors import UsageError
from cytoresp.panels.write import atomic_output, neutralise_formulas, write_table


def test_failure_leaves_previous_file_untouched(tmp_path):
    dest = tmp_path / "out.csv"
    dest.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_output(dest) as fh:
            fh.write("partial")
            raise RuntimeError("boom")
    assert dest.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_failure_leaves_no_file_when_none_existed(tmp_path):
    dest = tmp_path / "out.csv"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(dest) as fh:
            fh.write("partial")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "dest, match",
    [("missing_dir/out.csv", "does not exist"), (".", "is a directory")],
)
def test_unwritable_destinations_fail_before_work(tmp_path, dest, match):
    with pytest.raises(UsageError, match=match):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / dest)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_folder_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    with pytest.raises(UsageError, match="not writable"):
        write_table(pd.DataFrame({"a": [1]}), ro / "x.csv")


def test_formulas_are_neutralised_but_numbers_kept():
    frame = pd.DataFrame(
        {"sample_id": ["=cmd|' /C calc'!A0", "P1", "@SUM(1)", "+1"], "p": [0.1, -0.2, 0.3, 0.4]}
    )
    out = neutralise_formulas(frame)
    assert out["sample_id"].tolist() == ["'=cmd|' /C calc'!A0", "P1", "'@SUM(1)", "'+1"]
    assert out["p"].tolist() == [0.1, -0.2, 0.3, 0.4]


def test_parquet_round_trip(tmp_path):
    frame = pd.DataFrame({"sample_id": ["a", "b"], "p": [0.25, 0.75]})
    write_table(frame, tmp_path / "x.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "x.parquet"), frame)


def test_unknown_output_format_is_refused(tmp_path):
    with pytest.raises(UsageError, match="unsupported output format"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "x.xlsx")
