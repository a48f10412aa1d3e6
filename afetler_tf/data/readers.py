"""Reading delimited text and Parquet tables into a uniform all-string view.

Every table is read as strings first and parsed column by column afterwards,
so a bad value can be reported with its file, line and column instead of
being turned into NaN by pandas. Text files are split with the ``csv``
module; blank lines are kept as rows of "" and every row remembers the line
it starts on (a quoted field may span lines), so errors name the real line.
A row with more fields than the header (an unquoted ``Action,Comedy``, a
stray trailing comma) is an error: pandas would drop the extra fields or
shift the others into the wrong columns without a word.
"""

from __future__ import annotations

import csv
import dataclasses
import gc
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
        DataError: The file is missing, empty, has no data rows, repeats a
            column name in its header, or has a row with more fields than
            the header (the message names the line and says to quote the
            field or use '|' between categories).
    """
    require_file(path)
    header_line = _first_line(path, encoding)
    if header_line is None:
        need = "rows" if names else \
            f"a header line (the column names, separated by {sep!r}) and at least one row"
        raise DataError(f"{path} is empty. It needs {need}.", path=path)
    header, records, lines = _read_records(path, sep, encoding, names, quoting)
    if len(records) == 0:
        raise DataError(f"{path} has a header line but no rows. Add data rows or remove the file.",
                        path=path)
    columns = list(names) if names else header
    frame = pd.DataFrame({c: pd.Series(records[:, j], dtype=object) for j, c in enumerate(columns)})
    return Table(path, _clean(frame), lines)


def _read_records(path: str, sep: str, encoding: str, names: Optional[Sequence[str]],
                  quoting: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(header, records as a 2-D object array of the header's width, 1-based first line of each).

    A blank line is a record of "" (dropped later with a report line). A record
    with fewer fields than the header is padded with "" (missing trailing cells);
    one with more fields is an error, since pandas would silently drop or shift
    them (an unquoted ``Action,Comedy`` or a stray trailing separator).

    Raises:
        DataError: Repeated or empty header names, a record with too many
            fields, undecodable text or malformed quoting.
    """
    header: list[str] = []
    reader = None
    try:
        with open(path, encoding=encoding, newline="") as f:
            reader = csv.reader(f, delimiter=sep, quoting=quoting)
            if names is None:
                header = [h.strip() for h in next(reader, [])] or [""]
                _check_header(path, header, sep)
            first = reader.line_num + 1
            records = _all_records(reader)
            last = reader.line_num
        if last - first + 1 == len(records):  # one line per record: no quoted line breaks
            lines = np.arange(first, first + len(records), dtype=np.int64)
        else:
            lines = _record_lines(path, sep, encoding, quoting, skip=0 if names else 1)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not {encoding} text (byte {e.start}: {e.reason}). Save the file as "
                        f"UTF-8.", path=path) from e
    except csv.Error as e:  # e.g. a field over csv.field_size_limit(), or a NUL byte
        line = reader.line_num if reader is not None else None
        raise DataError(f"{where(path, line)}: cannot be read as {sep!r}-separated text ({e}). Check "
                        f"the quoting of this line.", path=path, line=line) from e
    columns = list(names) if names else header
    width = len(columns)
    lengths = np.fromiter(map(len, records), dtype=np.int64, count=len(records))
    if (lengths > width).any():
        row = int(np.flatnonzero(lengths > width)[0])
        raise _too_many_fields(path, int(lines[row]), records[row], columns, sep, quoting)
    for row in np.flatnonzero(lengths < width):
        records[row] = records[row] + [""] * (width - len(records[row]))
    array = np.empty((len(records), width), dtype=object)
    if records:
        array[:] = records
    return header, array, lines


def _all_records(reader) -> list[list[str]]:
    """``list(reader)`` with the garbage collector paused: a million small lists would
    otherwise set off repeated full collections of the (large, TensorFlow) heap."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return list(reader)
    finally:
        if enabled:
            gc.enable()


def _record_lines(path: str, sep: str, encoding: str, quoting: int, skip: int) -> np.ndarray:
    """The 1-based line each record starts on, after ``skip`` header records."""
    lines = []
    with open(path, encoding=encoding, newline="") as f:
        reader = csv.reader(f, delimiter=sep, quoting=quoting)
        for _ in range(skip):
            next(reader, None)
        start = reader.line_num + 1
        for _ in reader:
            lines.append(start)
            start = reader.line_num + 1
    return np.asarray(lines, dtype=np.int64)


def _too_many_fields(path: str, line: int, record: list[str], columns: Sequence[str],
                     sep: str, quoting: int) -> DataError:
    """The error for a record with more fields than the header (file, line, what to do)."""
    width = len(columns)
    extra = record[width:]
    message = (f"{where(path, line)}: {len(record)} {sep!r}-separated fields, but the header has "
               f"{width} ({', '.join(columns)}); the extra field(s) would be lost or shift the "
               f"others into the wrong columns. ")
    if not any(v.strip() for v in extra):
        message += f"Remove the trailing {sep!r} at the end of the line."
    elif quoting == csv.QUOTE_NONE:  # a fixed format (GroupLens) without quoting
        message += f"Extra value(s): {extra!r}. Remove the extra {sep!r}: fields cannot contain it."
    else:
        message += (f"Extra value(s): {extra!r}. If a field contains {sep!r}, put it in double quotes "
                    f"(e.g. \"Action{sep}Comedy\")")
        if "categories" in columns:
            message += "; write several categories as one field separated by '|' (Action|Comedy)"
        message += f"; or remove the extra {sep!r}."
    return DataError(message, path=path, line=line)


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
        hints.append(f"{name!r}" + (f" (found {guess!r}: did you mean {name!r}? rename it to {name!r})"
                                    if guess else ""))
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
