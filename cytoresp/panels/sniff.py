"""Which format a panel file is in, from its content (not only its extension)."""

from __future__ import annotations

import re

from cytoresp.panels._table import role_key, split_line
from cytoresp.panels.long import looks_long
from cytoresp.panels.registry import resolve_analyte

__all__ = ["sniff"]


def sniff(data: bytes, suffix: str = "") -> str:
    """The format of a panel file: ``wide``, ``long``, ``luminex``, ``xlsx`` or ``parquet``.

    Parameters
    ----------
    data : bytes
        The file, or at least its first 64 KiB.
    suffix : str
        The file name's lower-case suffix (``".xlsx"``), or ``""`` when unknown.

    Examples
    --------
    >>> sniff(b"sample_id,IL6\\nA,1\\n"), sniff(b"Sample,Assay,Value\\nA,IL-6,1\\n")
    ('wide', 'long')
    """
    if data.startswith(b"PK\x03\x04"):
        return "xlsx"
    if data.startswith(b"PAR1"):
        return "parquet"
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix == ".parquet":
        return "parquet"
    head = data[:65536].decode("utf-8", errors="replace")
    if re.search(r"(?im)^\W*(?:DataType:|Program\W+xPONENT|xPONENT|Bio-?Plex)", head):
        return "luminex"
    lines = [ln for ln in head.splitlines() if ln.strip()]
    first = split_line(lines[0]) if lines else []
    if looks_long(first):
        return "long"
    # a preamble before the header, or a plate-well column: an instrument export
    header = next((cells for cells in map(split_line, lines[:200])
                   if any(resolve_analyte(c) for c in cells)), None)
    if header is not None:
        keys = {role_key(c) for c in header}
        if header != first or keys & {"well", "location"}:
            return "luminex"
    return "wide"
