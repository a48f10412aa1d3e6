"""Parsing one column of a string Table, with errors that point at the cell."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from afetler_tf.data.errors import DataError, cell_error
from afetler_tf.data.readers import Table


_INT64_LIMIT = float(2 ** 63)  # exactly representable: valid seconds are in [-2**63, 2**63)


def _first_bad(table: Table, bad: np.ndarray) -> int:
    return int(np.flatnonzero(bad)[0])


def _raise(table: Table, bad: np.ndarray, column: str, problem: str, fix: str) -> None:
    row = _first_bad(table, bad)
    more = int(bad.sum()) - 1
    suffix = f" ({more} more row(s) have the same problem.)" if more > 0 else ""
    raise cell_error(table.path, table.line(row), column, table.frame[column].iat[row],
                     problem, fix + suffix, table.parquet)


def ids(table: Table, column: str) -> np.ndarray:
    """The column as an object array of non-empty str.

    Raises:
        DataError: A cell is empty.
    """
    values = table.frame[column].to_numpy(dtype=object)
    bad = values == ""
    if bad.any():
        _raise(table, bad, column, f"missing {column}",
               f"Every row needs a {column}; fill it in or delete the row.")
    return values


def ratings(table: Table, column: str,
            rating_range: Optional[tuple[float, float]] = None) -> np.ndarray:
    """The column as float64; empty cells are NaN (implicit feedback).

    Raises:
        DataError: A cell is not a finite number, or lies outside ``rating_range``.
    """
    raw = table.frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = (raw.to_numpy(dtype=object) != "") & ~np.isfinite(values)
    if bad.any():
        _raise(table, bad, column, "rating is not a number",
               "Ratings must be numbers (e.g. 4 or 3.5); leave the cell empty for implicit feedback.")
    if rating_range is not None:
        low, high = rating_range
        bad = np.isfinite(values) & ((values < low) | (values > high))
        if bad.any():
            _raise(table, bad, column, f"rating outside the declared range [{low:g}, {high:g}]",
                   "Fix the rating, or change 'rating_range' in meta.json.")
    return values


MAX_ABS_RATING = 1e4
MAX_RATING_SPAN = 100.0


def plausible_ratings(table: Table, column: str, values: np.ndarray, meta_path: str) -> None:
    """Refuses implausible ratings when no rating range was declared in meta.json.

    Rule (only without a declared ``rating_range``): every rating must have
    ``|rating| <= 1e4`` and ``max - min <= 100`` over the file, so 1-5, 0-10
    and 0-100 scales load while a typo such as 1e6 (which would dominate the
    loss) or 1e300 (which overflows float32 during training) stops here. A
    real scale beyond that is declared in meta.json, which then bounds the
    ratings instead.

    Args:
        table: The interactions table (for the location).
        column: The rating column.
        values: Its parsed ratings (NaN = implicit).
        meta_path: Where meta.json would be, for the message.

    Raises:
        DataError: A rating breaks the rule; names the row with the most
            extreme value and says to write meta.json or fix the rating.
    """
    finite = np.isfinite(values)
    if not finite.any():
        return
    low, high = float(values[finite].min()), float(values[finite].max())
    huge = finite & (np.abs(values) > MAX_ABS_RATING)
    if huge.any():
        problem = f"implausible rating: |rating| > {MAX_ABS_RATING:g} and no meta.json declares the scale"
        bad = huge
    elif high - low > MAX_RATING_SPAN:
        problem = (f"implausible ratings: they span {low:g} to {high:g}, more than "
                   f"{MAX_RATING_SPAN:g}, and no meta.json declares the scale")
        median = float(np.median(values[finite]))
        extreme = high if high - median >= median - low else low
        bad = finite & (values == extreme)
    else:
        return
    example = f' (here {{"rating_range": [{_num(low)}, {_num(high)}]}})' \
        if max(abs(low), abs(high)) <= 1e9 else ""
    fix = (f"Fix the rating; or, if the ratings really use such a scale, declare it in {meta_path} as "
           f'{{"rating_range": [lo, hi]}}{example}.')
    _raise(table, bad, column, problem, fix)


def _num(value: float) -> str:
    """A number as written in JSON: 5 rather than 5.0."""
    return str(int(value)) if value == int(value) else repr(value)


def timestamps(table: Table, column: str) -> np.ndarray:
    """The column as int64 seconds; accepts integer seconds or ISO date-times.

    Naive date-times are taken as UTC. Fractional seconds are truncated.

    Raises:
        DataError: A cell is empty, cannot be read as either form, or is a
            number outside the int64 range (e.g. 1e20, which numpy would turn
            into int64-min with only a warning).
    """
    raw = table.frame[column]
    empty = raw.to_numpy(dtype=object) == ""
    if empty.any():
        _raise(table, empty, column, "missing timestamp",
               "Every interaction needs a timestamp: integer seconds since 1970 or an ISO date-time "
               "such as 2024-05-01T13:45:00.")
    numeric = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    out = np.zeros(len(raw), dtype=np.int64)
    is_num = np.isfinite(numeric)
    too_big = is_num & ~((numeric >= -_INT64_LIMIT) & (numeric < _INT64_LIMIT))
    if too_big.any():
        _raise(table, too_big, column, "timestamp out of range (not a number of seconds that fits "
               "in a 64-bit integer)",
               "Use integer seconds since 1970 (e.g. 881250949) or an ISO date-time "
               "(e.g. 2024-05-01T13:45:00Z).")
    out[is_num] = numeric[is_num].astype(np.int64)
    rest = ~is_num
    if rest.any():
        parsed = pd.to_datetime(raw[rest], errors="coerce", utc=True, format="ISO8601")
        bad = np.zeros(len(raw), dtype=bool)
        bad[rest] = parsed.isna().to_numpy()
        if bad.any():
            _raise(table, bad, column, "unparsable timestamp",
                   "Use integer seconds since 1970 (e.g. 881250949) or an ISO date-time "
                   "(e.g. 2024-05-01 or 2024-05-01T13:45:00Z).")
        epoch = pd.Timestamp("1970-01-01", tz="UTC")
        out[rest] = ((parsed - epoch) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)
    return out


def numbers(table: Table, column: str, integer: bool = False, fix: str = "") -> np.ndarray:
    """The column as float64 (NaN for empty cells) or, if ``integer``, int64 with no gaps.

    Raises:
        DataError: A non-empty cell is not a number (or, if ``integer``, a cell
            is empty or not a whole number).
    """
    raw = table.frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    empty = raw.to_numpy(dtype=object) == ""
    bad = ~empty & ~np.isfinite(values)
    if integer:
        bad |= empty | (np.isfinite(values) & (np.mod(values, 1) != 0))
    if bad.any():
        kind = "a whole number" if integer else "a number"
        _raise(table, bad, column, f"{column} is not {kind}", fix or f"Write {column} as {kind}.")
    return values.astype(np.int64) if integer else values


def attribute(series: pd.Series) -> pd.Series:
    """An extra attribute column, typed by its content.

    int64 if every cell is a whole number, float64 (NaN for empty cells) if
    every non-empty cell is a number, else object str. Codes with a leading
    zero (zip codes such as "01234") stay text.
    """
    values = series.to_numpy(dtype=object)
    empty = values == ""
    numeric = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    leading_zero = series.str.match(r"^[+-]?0\d").to_numpy(dtype=bool)
    if empty.all() or not np.all(np.isfinite(numeric[~empty])) or leading_zero.any():
        return pd.Series(values, dtype=object)
    if not empty.any() and np.all(np.mod(numeric, 1) == 0) and not any("." in v for v in values):
        return pd.Series(numeric.astype(np.int64))
    return pd.Series(numeric)


def unique_ids(table: Table, column: str, values: np.ndarray) -> None:
    """Raises DataError if an id occurs twice in a users/items table."""
    dup = pd.Series(values).duplicated().to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero(values == values[row])[0])
        raise DataError(f"{table.where(row, column)}: {column} {values[row]!r} already appears on "
                        f"{'row' if table.parquet else 'line'} {table.line(first)}. Each {column} "
                        f"must appear once in this file; merge the two rows.",
                        path=table.path, line=table.line(row), column=column)
