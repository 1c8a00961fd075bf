"""benchmarks/_results.py: one section of docs/results.md replaced, the others kept."""

from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def results(load_benchmark):
    return load_benchmark("_results")


DOC = "# Results\n\n## Speed\n\nold speed\n\n## Quality\n\nold quality\n"


@pytest.mark.parametrize(
    ("before", "heading", "section", "after"),
    [
        (
            DOC,
            "## Speed",
            "## Speed\n\nnew\n",
            "# Results\n\n## Speed\n\nnew\n\n## Quality\n\nold quality\n",
        ),
        (
            DOC,
            "## Quality",
            "## Quality\n\nnew\n",
            "# Results\n\n## Speed\n\nold speed\n\n## Quality\n\nnew\n",
        ),
        (DOC, "## Policy", "## Policy\n\nnew", DOC + "\n## Policy\n\nnew\n"),
        (None, "## Speed", "## Speed\n\nnew\n", "# Results\n\n## Speed\n\nnew\n"),
        # a heading that is only a prefix of another section's heading is not that section
        (
            "# R\n\n## Speed up\n\nx\n",
            "## Speed",
            "## Speed\n\ny\n",
            "# R\n\n## Speed up\n\nx\n\n## Speed\n\ny\n",
        ),
    ],
)
def test_replace_section(results, tmp_path, before, heading, section, after):
    path = tmp_path / "results.md"
    if before is not None:
        path.write_text(before, encoding="utf-8")
    results.replace_section(heading, section, path)
    assert path.read_text(encoding="utf-8") == after
    assert not list(tmp_path.glob("*.tmp"))
