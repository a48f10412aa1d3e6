"""The error raised for bad input data, with where it is and what to do."""

from __future__ import annotations

import difflib
from typing import Iterable, Optional


class DataError(ValueError):
    """Bad input data: the message names the file, row, column and the fix.

    Attributes:
        path: File (or folder) the problem is in.
        line: 1-based line number in the file (header = line 1) for text
            files, 1-based row number for Parquet; None if not row-specific.
        column: Column name, or None.
    """

    def __init__(self, message: str, path: Optional[str] = None, line: Optional[int] = None,
                 column: Optional[str] = None):
        super().__init__(message)
        self.path = path
        self.line = line
        self.column = column


def where(path: str, line: Optional[int] = None, column: Optional[str] = None,
          parquet: bool = False) -> str:
    """Formats a location, e.g. ``data/interactions.csv, line 7, column 'rating'``."""
    parts = [str(path)]
    if line is not None:
        parts.append(f"{'row' if parquet else 'line'} {line}")
    if column is not None:
        parts.append(f"column {column!r}")
    return ", ".join(parts)


def cell_error(path: str, line: int, column: str, value, problem: str, fix: str,
               parquet: bool = False) -> DataError:
    """A DataError about one cell: location, bad value, problem and fix."""
    return DataError(f"{where(path, line, column, parquet)}: {problem} (value {value!r}). {fix}",
                     path=path, line=line, column=column)


def closest(name: str, valid: Iterable[str]) -> Optional[str]:
    """The valid name closest to ``name`` (case-insensitive), or None."""
    valid = list(valid)
    lowered = {v.lower(): v for v in valid}
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None
