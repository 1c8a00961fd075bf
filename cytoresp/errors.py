"""Exceptions raised by cytoresp.

Every error caused by what the user gave us (a file, an option, a model directory)
derives from :class:`CytorespError`; the command line turns those into a clear message
and exit code 2, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: Characters of a cell's content quoted in a message (:func:`quote_cell`).
MAX_QUOTED_CHARS = 40


def quote_cell(value: object, limit: int = MAX_QUOTED_CHARS) -> str:
    """A cell's content quoted for an error message, cut to ``limit`` characters.

    Messages quote what the user wrote so they can find it; a runaway cell (a megabyte of
    garbage) must not make a megabyte message. Longer text is cut and followed by an
    ellipsis and its full length.

    Examples
    --------
    >>> quote_cell("abc")
    "'abc'"
    >>> quote_cell("x" * 1000, limit=5)
    "'xxxxx'… (1,000 characters)"
    """
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text):,} characters)"


class CytorespError(Exception):
    """Base class of every error cytoresp raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem found in an input file.

    Parameters
    ----------
    file : str
        The file's path as the user gave it (or ``"<stdin>"``/``"<DataFrame>"``).
    row : int or None
        1-based row as a spreadsheet shows it (the header is row 1, the first data
        row is row 2), or None when the problem concerns the whole file or column.
    column : str or None
        The column as named in the file, or None.
    message : str
        What is wrong and, where possible, how to fix it.
    """

    file: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:  # a header cell: long ones are cut too
            where.append(f"column {quote_cell(self.column, 2 * MAX_QUOTED_CHARS)}")
        return f"{', '.join(where)}: {self.message}"


class InputError(CytorespError, ValueError):
    """Bad user input. Holds every :class:`Problem` found, not only the first.

    Examples
    --------
    >>> err = InputError([Problem("a.csv", 3, "IL10", "not a number: 'abc'")])
    >>> print(err)
    1 problem in the input:
      a.csv, row 3, column 'IL10': not a number: 'abc'
    """

    def __init__(self, problems: Iterable[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem("<input>", None, None, problems)]
        self.problems: list[Problem] = list(problems)
        n = len(self.problems)
        lines = [f"{n} problem{'s' if n != 1 else ''} in the input:"]
        lines += [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class UsageError(CytorespError, ValueError):
    """A bad option or argument (exit code 2)."""


class ModelIntegrityError(CytorespError):
    """A model file is missing, modified, or not a cytoresp model (exit code 2)."""


class TrackingError(CytorespError):
    """The MLflow tracking store cannot be reached or used (exit code 1)."""
