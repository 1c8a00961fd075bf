"""Writing one section of ``docs/results.md`` from a benchmark, leaving the others intact."""

from __future__ import annotations

import os
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results.md"


def replace_section(heading: str, text: str, path: Path = RESULTS) -> None:
    """Replace the section that starts with ``heading`` by ``text`` (or append it).

    ``text`` is the whole section, heading line included. The section ends at the next
    ``## `` heading or at the end of the file. The file is replaced atomically.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "results.md"
    >>> _ = path.write_text("# Results\\n\\n## A\\n\\nold\\n\\n## B\\n\\nkept\\n")
    >>> replace_section("## A", "## A\\n\\nnew\\n", path)
    >>> print(path.read_text())
    # Results
    <BLANKLINE>
    ## A
    <BLANKLINE>
    new
    <BLANKLINE>
    ## B
    <BLANKLINE>
    kept
    <BLANKLINE>
    """
    old = path.read_text(encoding="utf-8") if path.exists() else "# Results\n"
    pattern = re.compile(rf"^{re.escape(heading)}[ \t]*\n.*?(?=^## |\Z)", re.S | re.M)
    block = text.strip("\n") + "\n\n"
    if pattern.search(old):
        new = pattern.sub(lambda _m: block, old, count=1)
    else:
        new = old.rstrip("\n") + "\n\n" + block
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(new.rstrip("\n") + "\n", encoding="utf-8")
    os.replace(tmp, path)
