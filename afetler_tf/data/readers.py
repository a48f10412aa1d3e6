"""Reading delimited text and Parquet tables into a uniform all-string view.

Every table is read as strings first and parsed column by column afterwards,
so a bad value can be reported with its file, line and column instead of
being turned into NaN by pandas. Text files keep blank lines as rows of ""
so that row ``k`` (0-based) of the frame is line ``k + 2`` of the file.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd

from afetler_tf.data.errors import DataError, closest, where


@dataclasses.dataclass
class Table:
    """A table read as strings, with where each row came from.

    Attributes:
        path: The file read.
        frame: One object column of str per file column; missing cells are "".
        lines: 1-based line number in the file of each row (header = line 1);
            for Parquet, the 1-based row number.
        parquet: Whether ``lines`` are Parquet row numbers.
    """

    path: str
    frame: pd.DataFrame
    lines: np.ndarray
    parquet: bool = False

    def where(self, row: Optional[int] = None, column: Optional[str] = None) -> str:
        """Location of frame row ``row`` (0-based) in the file."""
        line = None if row is None else int(self.lines[row])
        return where(self.path, line, column, self.parquet)

    def line(self, row: int) -> int:
        return int(self.lines[row])

    def subset(self, rows: np.ndarray) -> "Table":
        """The rows selected by a boolean mask or integer positions."""
        return Table(self.path, self.frame[rows].reset_index(drop=True) if rows.dtype == bool
                     else self.frame.iloc[rows].reset_index(drop=True), self.lines[rows], self.parquet)


def require_file(path: str) -> None:
    """Raises DataError if ``path`` is not an existing file."""
    if not os.path.exists(path):
        raise DataError(f"{path} does not exist. Check the path (it is resolved from {os.getcwd()}).",
                        path=path)
    if not os.path.isfile(path):
        raise DataError(f"{path} is not a file.", path=path)


def read_text(path: str, sep: str = ",", encoding: str = "utf-8-sig",
              names: Optional[Sequence[str]] = None, quoting: int = csv.QUOTE_MINIMAL) -> Table:
    """Reads a delimited text file as strings.

    Args:
        path: File to read.
        sep: Field separator.
        encoding: Text encoding ("utf-8-sig" also accepts a byte-order mark).
        names: Column names for a file without a header line; None = the
            first line is the header.
        quoting: ``csv`` quoting mode (QUOTE_NONE for files whose fields
            contain stray quote characters, e.g. MovieLens titles).

    Returns:
        The Table.

    Raises:
        DataError: The file is missing, empty, has no data rows, or repeats a
            column name in its header.
    """
    require_file(path)
    header_line = _first_line(path, encoding)
    if header_line is None:
        need = "rows" if names else \
            f"a header line (the column names, separated by {sep!r}) and at least one row"
        raise DataError(f"{path} is empty. It needs {need}.", path=path)
    if names is None:
        header = [h.strip() for h in next(csv.reader([header_line], delimiter=sep, quoting=quoting))]
        _check_header(path, header, sep)
    try:
        frame = pd.read_csv(path, sep=sep, encoding=encoding, dtype=str, keep_default_na=False,
                            skip_blank_lines=False, quoting=quoting, header=None if names else 0,
                            names=list(names) if names else None, index_col=False)
    except pd.errors.ParserError as e:  # e.g. "Expected 4 fields in line 7, saw 5"
        raise DataError(f"{path}: {e}. Every row needs as many {sep!r}-separated fields as the header; "
                        f"quote fields that contain {sep!r}.", path=path) from e
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not {encoding} text (byte {e.start}: {e.reason}). Save the file as "
                        f"UTF-8.", path=path) from e
    if names is None:
        frame.columns = header
    if len(frame) == 0:
        raise DataError(f"{path} has a header line but no rows. Add data rows or remove the file.",
                        path=path)
    first = 1 if names else 2
    frame = _clean(frame)
    return Table(path, frame, np.arange(first, first + len(frame)))


def read_parquet(path: str) -> Table:
    """Reads a Parquet file as strings (see module docstring).

    Raises:
        DataError: The file is missing, unreadable, empty, or repeats a column name.
    """
    require_file(path)
    try:
        import pyarrow.parquet as pq
        names = list(pq.read_schema(path).names)
    except Exception as e:  # pyarrow raises several types for a bad file
        raise DataError(f"{path} could not be read as Parquet ({e}). Re-export it, or write it "
                        f"as CSV with the same name and a .csv suffix.", path=path) from e
    _check_header(path, [n.strip() for n in names], None)
    frame = pd.read_parquet(path)
    if len(frame) == 0:
        raise DataError(f"{path} has no rows. Add data rows or remove the file.", path=path)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = pd.DataFrame({c: _as_strings(frame[c]) for c in frame.columns})
    return Table(path, _clean(frame), np.arange(1, len(frame) + 1), parquet=True)


def read_table(stem: str) -> Optional[Table]:
    """Reads ``stem.csv`` or ``stem.parquet``; None if neither exists.

    Raises:
        DataError: Both exist (ambiguous), or the file is bad (see readers).
    """
    csv_path, pq_path = f"{stem}.csv", f"{stem}.parquet"
    has_csv, has_pq = os.path.exists(csv_path), os.path.exists(pq_path)
    if has_csv and has_pq:
        raise DataError(f"Both {csv_path} and {pq_path} exist; keep only one of them.", path=csv_path)
    if has_csv:
        return read_text(csv_path)
    if has_pq:
        return read_parquet(pq_path)
    return None


def require_columns(table: Table, required: Iterable[str], known: Iterable[str] = ()) -> None:
    """Raises DataError naming each missing column and the closest present one.

    Args:
        table: Table to check.
        required: Columns that must be present.
        known: Other valid (optional) column names, used to spot misspellings
            of them as well.
    """
    present = list(table.frame.columns)
    missing = [c for c in required if c not in present]
    if not missing:
        return
    hints = []
    for name in missing:
        guess = closest(name, [p for p in present if p not in set(required) | set(known)])
        hints.append(f"{name!r}" + (f" (found {guess!r}: rename it to {name!r})" if guess else ""))
    sep_hint = ""
    if len(present) == 1 and any(s in present[0] for s in (";", "\t", "|")):
        sep_hint = " The header looks like one column: the file must be comma-separated."
    raise DataError(f"{table.path}: missing required column(s) {', '.join(hints)}. "
                    f"Columns found: {present}.{sep_hint}", path=table.path, line=1, column=missing[0])


def _first_line(path: str, encoding: str) -> Optional[str]:
    """The first line of the file (without newline); None if the file is blank."""
    with open(path, encoding=encoding, errors="replace", newline="") as f:
        first = f.readline()
        if first.strip():
            return first.rstrip("\r\n")
        if not first or not f.read(1 << 16).strip():
            return None
    return first.rstrip("\r\n")


def _check_header(path: str, header: list[str], sep: Optional[str]) -> None:
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if not name:
            raise DataError(f"{where(path, 1)}: column {position} of the header has no name. "
                            f"Give every column a name.", path=path, line=1)
        if name in seen:
            raise DataError(f"{where(path, 1)}: duplicate column name {name!r} (columns {seen[name]} "
                            f"and {position}). Rename or remove one of them.",
                            path=path, line=1, column=name)
        seen[name] = position


def _as_strings(series: pd.Series) -> pd.Series:
    """A typed Parquet column as object strings ("" for missing)."""
    if pd.api.types.is_datetime64_any_dtype(series):
        values = series.dt.strftime("%Y-%m-%dT%H:%M:%S%z") if series.dt.tz is not None \
            else series.dt.strftime("%Y-%m-%dT%H:%M:%S")
        return pd.Series(np.where(series.isna(), "", values.astype(object)), dtype=object)
    if pd.api.types.is_float_dtype(series):
        finite = series.dropna()
        if len(finite) and np.all(np.mod(finite.to_numpy(), 1) == 0):
            return pd.Series([("" if pd.isna(v) else str(int(v))) for v in series], dtype=object)
    out = []
    for v in series.tolist():
        if isinstance(v, (list, tuple, np.ndarray)):
            out.append("|".join(str(x) for x in v))
        elif v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            out.append("")
        else:
            out.append(str(v))
    return pd.Series(out, dtype=object)


def _clean(frame: pd.DataFrame) -> pd.DataFrame:
    """Strips whitespace; every column becomes object dtype of str."""
    return pd.DataFrame({c: pd.Series(frame[c].astype(object).fillna("").astype(str).str.strip()
                                      .to_numpy(dtype=object), dtype=object)
                         for c in frame.columns})


def drop_blank_rows(table: Table, report: list[str]) -> Table:
    """Removes rows whose cells are all empty (blank lines), with a report line."""
    blank = (table.frame == "").all(axis=1).to_numpy()
    if not blank.any():
        return table
    first = table.line(int(np.flatnonzero(blank)[0]))
    report.append(f"{table.path}: skipped {int(blank.sum())} blank line(s) "
                  f"(first: {'row' if table.parquet else 'line'} {first}).")
    return table.subset(~blank)
