"""Streamed reads word their errors as the whole-file reader does, from one read."""

from __future__ import annotations

import pytest

import cytoresp.panels.stream as stream_module
from cytoresp.errors import InputError
from cytoresp.panels import read_panel
from cytoresp.panels.stream import PanelStream


def _rows(n: int, start: int = 0) -> str:
    return "".join(f"S{i},{i + 1}.5,<0.2\n" for i in range(start, start + n))


def _problems(call) -> list[str]:
    with pytest.raises(InputError) as info:
        call()
    return [str(p) for p in info.value.problems]


@pytest.fixture
def no_second_read(monkeypatch):
    """A streamed CSV must not hand the file to the whole-file reader to word an error."""

    def refuse(*args, **kwargs):
        raise AssertionError("the stream read the file a second time")

    monkeypatch.setattr(stream_module, "read_panel", refuse)


@pytest.mark.parametrize("n_bad", [1, 12])
def test_bad_field_counts_have_the_whole_file_message(tmp_path, no_second_read, n_bad):
    text = "sample_id,IL6,IL10\n" + _rows(300)
    lines = text.splitlines()
    for k in range(n_bad):
        lines[150 + 10 * k] += ",extra"
    path = tmp_path / "p.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    stream = PanelStream(path, chunk_rows=40)
    assert stream.mode == "csv"
    streamed = _problems(lambda: list(stream))
    whole = _problems(lambda: read_panel(path))
    assert streamed == whole
    assert "row 151" in streamed[0] and "4 fields but the header has 3" in streamed[0]


def test_a_byte_that_is_not_utf8_is_named_with_its_line(tmp_path, no_second_read):
    data = ("sample_id,IL6,IL10\n" + _rows(5000)).encode("utf-8")
    at = data.index(b"S4000,")
    data = data[:at] + b"Jos\xe9," + data[at + len(b"S4000,"):]
    path = tmp_path / "latin1.csv"
    path.write_bytes(data)
    stream = PanelStream(path, chunk_rows=500)
    assert stream.mode == "csv"
    streamed = _problems(lambda: list(stream))
    assert streamed == _problems(lambda: read_panel(path))
    assert streamed[0].startswith(f"{path}, row 4002: not UTF-8 text (byte 0xe9)")


def test_chunk_problems_are_merged_without_reading_message_text(tmp_path):
    """Problems past the cap in every chunk are counted in the one summary line."""
    body = "".join(f"S{i},bad{i},1\n" for i in range(200))
    path = tmp_path / "bad.csv"
    path.write_text("sample_id,IL6,IL10\n" + body, encoding="utf-8")
    streamed = _problems(lambda: list(PanelStream(path, chunk_rows=30)))
    whole = _problems(lambda: read_panel(path))
    assert streamed[:50] == whole[:50]
    assert whole[-1].endswith("... and 150 more problem(s) not listed; fix the ones above and "
                              "run again")
