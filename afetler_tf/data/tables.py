"""Building the canonical tables of :mod:`afetler_tf.data.schema` from parsed columns.

Ids are plain ``object`` arrays of python ``str`` (not pandas' StringDtype)
so ``.to_numpy()`` feeds TensorFlow directly; timestamps are int64, ratings
and years float64, categories lists of str.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from afetler_tf.data.schema import Dataset

ITEM_COLUMNS = ("item_id", "title", "year", "categories", "category")
_TITLE_YEAR = re.compile(r"^(.*?)\s*\((\d{4})\)\s*$")


def str_column(values) -> pd.Series:
    """An object Series of python str."""
    return pd.Series(np.asarray([str(v) for v in values], dtype=object), dtype=object)


def _column(values) -> pd.Series:
    """An attribute column; text stays object dtype (pandas 3 would infer ``str``)."""
    array = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    return pd.Series(array, dtype=object if array.dtype == object else array.dtype)


def interactions(user_ids, item_ids, ratings, timestamps) -> pd.DataFrame:
    """The canonical interaction table."""
    return pd.DataFrame({
        "user_id": str_column(user_ids),
        "item_id": str_column(item_ids),
        "rating": np.asarray(ratings, dtype=np.float64),
        "timestamp": np.asarray(timestamps, dtype=np.int64),
    })


def items(item_ids, titles=None, years=None, categories: Optional[Sequence[list]] = None,
          extra: Optional[dict] = None) -> pd.DataFrame:
    """The canonical item table; missing parts are "", NaN and []."""
    n = len(item_ids)
    cats = [list(c) for c in categories] if categories is not None else [[] for _ in range(n)]
    frame = pd.DataFrame({
        "item_id": str_column(item_ids),
        "title": str_column(titles if titles is not None else [""] * n),
        "year": np.asarray(years if years is not None else np.full(n, np.nan), dtype=np.float64),
        "categories": pd.Series(cats, dtype=object),
        "category": str_column([c[0] if c else "" for c in cats]),
    })
    for name, column in (extra or {}).items():
        frame[name] = _column(column)
    return frame


def users(user_ids, extra: Optional[dict] = None) -> pd.DataFrame:
    """The canonical user table."""
    frame = pd.DataFrame({"user_id": str_column(user_ids)})
    for name, column in (extra or {}).items():
        frame[name] = _column(column)
    return frame


def split_categories(values, sep: str = "|") -> list[list[str]]:
    """Splits "A|B" fields into lists, dropping empty parts and repeats, keeping order."""
    out = []
    for value in values:
        parts = [p.strip() for p in str(value).split(sep)] if sep else str(value).split()
        out.append(list(dict.fromkeys(p for p in parts if p)))
    return out


def title_and_year(title: str) -> tuple[str, float]:
    """'Toy Story (1995)' -> ('Toy Story', 1995.0); no trailing year -> (title, NaN)."""
    match = _TITLE_YEAR.match(title)
    if match:
        return match.group(1), float(match.group(2))
    return title, float("nan")


def drop_duplicates(frame: pd.DataFrame, report: list[str], source: str) -> pd.DataFrame:
    """Removes exact duplicate interaction rows (keeping the first), with a report line."""
    dup = frame.duplicated(keep="first")
    count = int(dup.sum())
    if count:
        report.append(f"{source}: removed {count} exact duplicate interaction row(s) "
                      f"(same user_id, item_id, rating and timestamp); the first of each was kept.")
        frame = frame[~dup.to_numpy()].reset_index(drop=True)
    return frame


def drop_repeated_pairs(frame: pd.DataFrame, report: list[str], source: str) -> pd.DataFrame:
    """Keeps one interaction per (user_id, item_id): the latest, with a report line.

    Policy: among rows with the same user and item, the one with the largest
    timestamp is kept; ties go to the row that comes last in the file. The
    others are dropped and counted: for rated data as "conflicting" duplicates
    (same pair, different rating or time), for implicit data as repeated
    interactions. Kept rows stay in file order. Afterwards no pair occurs
    twice, so a pair cannot land in both train and test.
    """
    if len(frame) < 2:
        return frame
    user_codes, _ = pd.factorize(frame["user_id"])
    item_codes, item_uniques = pd.factorize(frame["item_id"])
    pair = user_codes.astype(np.int64) * len(item_uniques) + item_codes  # one int per (user, item)
    if not pd.Series(pair).duplicated().any():
        return frame
    order = np.lexsort((np.arange(len(frame)), frame["timestamp"].to_numpy()))  # time, then file order
    latest = pd.Series(pair[order]).duplicated(keep="last").to_numpy()
    drop = np.zeros(len(frame), dtype=bool)
    drop[order[latest]] = True
    count, n_pairs = int(drop.sum()), int(np.unique(pair[drop]).size)
    if frame["rating"].notna().any():
        what = (f"dropped {count} conflicting duplicate interaction row(s): {n_pairs} (user_id, item_id) "
                f"pair(s) appear more than once with a different rating or timestamp")
    else:
        what = (f"dropped {count} repeated interaction row(s): {n_pairs} (user_id, item_id) pair(s) "
                f"appear more than once at different times")
    report.append(f"{source}: {what}; the latest of each pair was kept (largest timestamp, then last "
                  f"in the file).")
    return frame[~drop].reset_index(drop=True)


def complete_users(table: Optional[pd.DataFrame], inter: pd.DataFrame, report: list[str],
                   source: str) -> pd.DataFrame:
    """Adds users that interact but are not in the user table (empty attributes), with a report line."""
    seen = pd.unique(inter["user_id"].to_numpy(dtype=object))
    if table is None:
        return users(seen)
    missing = np.setdiff1d(seen, table["user_id"].to_numpy(dtype=object).astype(str), assume_unique=True)
    if len(missing):
        report.append(f"{source}: {len(missing)} user(s) with interactions are not in the users table; "
                      f"they were added with empty attributes.")
        table = pd.concat([table, users(missing)], ignore_index=True)
        for column in table.columns[1:]:
            if table[column].dtype == object:
                table[column] = table[column].fillna("")
    return table.reset_index(drop=True)


def complete_items(table: Optional[pd.DataFrame], inter: pd.DataFrame, report: list[str],
                   source: str) -> pd.DataFrame:
    """Adds items that interact but are not in the item table (empty attributes), with a report line."""
    seen = pd.unique(inter["item_id"].to_numpy(dtype=object))
    if table is None:
        return items(seen)
    missing = np.setdiff1d(seen, table["item_id"].to_numpy(dtype=object).astype(str), assume_unique=True)
    if len(missing):
        report.append(f"{source}: {len(missing)} item(s) with interactions are not in the items table; "
                      f"they were added with empty attributes.")
        table = pd.concat([table, items(missing)], ignore_index=True)
        for column in table.columns:
            if column not in ITEM_COLUMNS and table[column].dtype == object:
                table[column] = table[column].fillna("")
    return table.reset_index(drop=True)


def dataset(name: str, inter: pd.DataFrame, user_table: Optional[pd.DataFrame],
            item_table: Optional[pd.DataFrame], rating_range, report: list[str]) -> Dataset:
    """Deduplicates, completes the user/item tables and returns the Dataset.

    Exact duplicate rows are removed first (:func:`drop_duplicates`), then
    repeated (user, item) pairs keep only their latest row
    (:func:`drop_repeated_pairs`); both are counted in ``report``.
    """
    inter = drop_duplicates(inter, report, name)
    inter = drop_repeated_pairs(inter, report, name)
    users_out = complete_users(user_table, inter, report, name)
    items_out = complete_items(item_table, inter, report, name)
    if rating_range is not None:
        rating_range = (float(rating_range[0]), float(rating_range[1]))
    return Dataset(name, inter.reset_index(drop=True), users_out, items_out,
                   rating_range=rating_range, report=report)
