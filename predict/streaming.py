"""Write a table as it is scored, chunk after chunk: :class:`TableWriter`, progress bar.

Reading in chunks is :mod:`cytoresp.panels.stream`; this module holds what the streaming
scorer (:func:`cytoresp.predict.batch.score_file`) writes and shows.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pyarrow as pa

from cytoresp.panels.stream import Progress
from cytoresp.panels.write import atomic_output, neutralise_formulas, output_format

__all__ = ["TableWriter", "rich_progress"]


# ---------------------------------------------------------------------------------------
# writing


class TableWriter:
    """Write DataFrames one after another into one CSV or Parquet file, atomically.

    The destination appears only when the ``with`` block ends without an error (temp file
    + rename, :func:`~cytoresp.panels.write.atomic_output`); ``"-"`` writes CSV to
    standard output. CSV cells that a spreadsheet would run as a formula are neutralised.

    Examples
    --------
    >>> import pandas as pd
    >>> parts = [pd.DataFrame({"sample_id": ["P1", "P2"], "p_response_ga": [0.5, 0.25]}),
    ...          pd.DataFrame({"sample_id": ["P3"], "p_response_ga": [0.75]})]
    >>> with TableWriter("predictions.csv") as out:
    ...     for part in parts:
    ...         out.write(part)
    >>> out.n_rows
    3
    >>> print(open("predictions.csv").read(), end="")
    "sample_id","p_response_ga"
    "P1",0.5
    "P2",0.25
    "P3",0.75
    """

    def __init__(self, dest: str | os.PathLike):
        self.dest = dest
        self.format = output_format(dest)
        self.n_rows = 0
        self._stack = contextlib.ExitStack()
        self._fh: Any = None
        self._parquet: Any = None
        self._schema: pa.Schema | None = None
        self._header_done = False

    def __enter__(self) -> TableWriter:
        self._fh = self._stack.enter_context(atomic_output(self.dest, "wb"))
        return self

    def write(self, frame: pd.DataFrame) -> None:
        """Append the rows of ``frame`` (same columns every time)."""
        if self.format == "parquet":
            import pyarrow.parquet as pq

            if self._schema is None:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                self._schema = table.schema
                self._parquet = pq.ParquetWriter(self._fh, self._schema)
            else:
                table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
            self._parquet.write_table(table)
        else:
            # Arrow's CSV writer: about ten times faster than DataFrame.to_csv; shortest
            # round-trip floats and empty cells for NaN as to_csv, every text cell quoted
            import pyarrow.csv as pa_csv

            table = pa.Table.from_pandas(neutralise_formulas(frame), preserve_index=False)
            options = pa_csv.WriteOptions(
                include_header=not self._header_done, quoting_style="needed"
            )
            buffer = pa.BufferOutputStream()
            pa_csv.write_csv(table, buffer, write_options=options)
            self._fh.write(memoryview(buffer.getvalue()))
            self._header_done = True
        self.n_rows += len(frame)

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self._parquet is not None:
            if exc_type is None:
                try:
                    self._parquet.close()
                except BaseException as err:
                    self._stack.__exit__(type(err), err, err.__traceback__)
                    raise
            else:
                with contextlib.suppress(Exception):
                    self._parquet.close()
        return bool(self._stack.__exit__(exc_type, exc, tb))


# ---------------------------------------------------------------------------------------
# progress


@contextlib.contextmanager
def rich_progress(
    console: Any, total_bytes: int | None, label: str = "scoring"
) -> Iterator[Progress]:
    """A rich progress bar on ``console`` (rows, rows/s); yields ``update(rows, bytes)``.

    Examples
    --------
    >>> from rich.console import Console
    >>> with rich_progress(Console(stderr=True), 1000) as update:
    ...     update(500, 400)
    """
    import time

    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    state = {"rows": 0, "start": time.perf_counter()}

    def rate(_task: Any) -> str:
        seconds = max(time.perf_counter() - state["start"], 1e-9)
        return f"{state['rows']:,} rows, {state['rows'] / seconds:,.0f} rows/s"

    class _Rate(TextColumn):
        def render(self, task):  # noqa: D102 - rich API
            from rich.text import Text

            return Text(rate(task))

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%") if total_bytes else TextColumn(""),
        _Rate(""),
        TimeElapsedColumn(),
        TimeRemainingColumn() if total_bytes else TextColumn(""),
        console=console,
        transient=True,
    )
    with bar:
        task = bar.add_task(label, total=total_bytes)

        def update(rows: int, bytes_read: int | None) -> None:
            state["rows"] = rows
            if bytes_read is not None:
                bar.update(task, completed=bytes_read)
            else:
                bar.refresh()

        yield update
