"""Panels in and out: reading (every format), validation, the analyte registry, streaming
reads and the atomic writer that every output of cytoresp goes through.

Modules (each with one job; see DESIGN.md):

- :mod:`~cytoresp.panels.panel`: the :class:`Panel` container;
- :mod:`~cytoresp.panels.registry`, :mod:`~cytoresp.panels.units`: analytes and units;
- :mod:`~cytoresp.panels.values`: vectorised cell parsing (numbers, censored values);
- :mod:`~cytoresp.panels.limits`: input size guards;
- :mod:`~cytoresp.panels.sniff`, :mod:`~cytoresp.panels.wide`, :mod:`~cytoresp.panels.long`,
  :mod:`~cytoresp.panels.luminex`, :mod:`~cytoresp.panels.excel`: format detection and
  the format readers, each giving a table;
- :mod:`~cytoresp.panels.validate`: table -> :class:`Panel`;
- :mod:`~cytoresp.panels.read`: :func:`read_panel`;
- :mod:`~cytoresp.panels.stream`: chunked reads (:class:`PanelStream`);
- :mod:`~cytoresp.panels.write`: :func:`atomic_output`, :func:`write_table`,
  :func:`write_panel`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ABOVE": "cytoresp.panels.panel",
    "BELOW": "cytoresp.panels.panel",
    "CLINICAL_COVARIATES": "cytoresp.panels.panel",
    "OBSERVED": "cytoresp.panels.panel",
    "THERAPIES": "cytoresp.panels.panel",
    "Panel": "cytoresp.panels.panel",
    "FORMATS": "cytoresp.panels.read",
    "MAX_PROBLEMS": "cytoresp.panels.read",
    "PanelSource": "cytoresp.panels.read",
    "read_panel": "cytoresp.panels.read",
    "OutputError": "cytoresp.panels.write",
    "atomic_output": "cytoresp.panels.write",
    "check_writable": "cytoresp.panels.write",
    "check_writable_dir": "cytoresp.panels.write",
    "panel_to_frame": "cytoresp.panels.write",
    "write_panel": "cytoresp.panels.write",
    "write_table": "cytoresp.panels.write",
}

__all__ = [
    "ABOVE",
    "BELOW",
    "CLINICAL_COVARIATES",
    "FORMATS",
    "MAX_PROBLEMS",
    "OBSERVED",
    "OutputError",
    "Panel",
    "PanelSource",
    "THERAPIES",
    "atomic_output",
    "check_writable",
    "check_writable_dir",
    "panel_to_frame",
    "read_panel",
    "write_panel",
    "write_table",
]

if TYPE_CHECKING:  # pragma: no cover
    from cytoresp.panels.panel import (
        ABOVE,
        BELOW,
        CLINICAL_COVARIATES,
        OBSERVED,
        THERAPIES,
        Panel,
    )
    from cytoresp.panels.read import FORMATS, MAX_PROBLEMS, PanelSource, read_panel
    from cytoresp.panels.write import (
        OutputError,
        atomic_output,
        check_writable,
        check_writable_dir,
        panel_to_frame,
        write_panel,
        write_table,
    )


def __getattr__(name: str) -> Any:
    # Lazy: importing one module (the registry, the units) does not load every reader.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'cytoresp.panels' has no attribute {name!r}")
