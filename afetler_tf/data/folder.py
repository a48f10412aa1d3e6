"""A folder of the user's own logs: ``interactions.csv|parquet`` (+ users, items, meta.json).

Columns:
    interactions: ``user_id``, ``item_id``, ``timestamp`` (integer seconds or ISO
        date-time) required; ``rating`` optional (empty or absent = implicit).
    users: ``user_id`` + any attribute columns (kept; numeric if all numbers).
    items: ``item_id`` + optional ``title``, ``year``, ``categories`` (one
        "A|B" field), ``category`` (primary; default the first of categories)
        + extra columns (kept as attributes).
    meta.json: optional ``{"rating_range": [1, 5]}``; ratings outside are errors.

Checks and policies (errors name the file, line or row, column and the fix;
anything dropped or ignored is counted in ``Dataset.report``):
    * An interactions column that is not user_id, item_id, timestamp or rating
      is an error if it looks like a misspelling of an absent one ("ratings",
      "Rating", "rate": "did you mean 'rating'?"), since the data would
      otherwise be read as implicit; other extra columns are ignored and
      named in the report. An items column that differs from title, year,
      categories or category only in case or punctuation is an error.
    * A row with more fields than the header (in any of the files) is an
      error: quote the field, or separate categories with '|'.
    * Timestamps must parse and fit int64 seconds (1e20 is an error).
    * Ratings must be finite. Without meta.json they must also look like a
      rating scale: every ``|rating| <= 1e4`` and ``max - min <= 100`` (1-5,
      0-10, 0-100 load; 1e6 does not); wider scales are declared in meta.json.
    * Exact duplicate rows are removed (first kept); then the same (user,
      item) with a different rating or timestamp keeps only its latest row
      (largest timestamp, ties to the last in the file), for rated and
      implicit data alike, so no pair occurs twice (see
      :func:`afetler_tf.data.tables.drop_repeated_pairs`).
"""

from __future__ import annotations

import json
import os
from typing import Optional

import numpy as np
import pandas as pd

from afetler_tf.data import columns, tables
from afetler_tf.data.errors import DataError, closest, where
from afetler_tf.data.readers import Table, drop_blank_rows, read_table, require_columns
from afetler_tf.data.schema import Dataset

INTERACTION_REQUIRED = ("user_id", "item_id", "timestamp")
INTERACTION_KNOWN = ("rating",)
ITEM_KNOWN = ("title", "year", "categories", "category")
_FLOAT32_MAX = float(np.finfo(np.float32).max)  # models train in float32; also rejects inf and NaN


def load(folder: str) -> Dataset:
    """Loads a generic folder (module docstring).

    Raises:
        DataError: Missing interactions file, bad meta.json, or any bad cell.
    """
    report: list[str] = []
    rating_range = declared_rating_range(folder)
    inter_table = read_table(os.path.join(folder, "interactions"))
    if inter_table is None:
        raise DataError(f"{folder} has no interactions.csv or interactions.parquet (and no u.data of the "
                        f"GroupLens layout). Add one with columns user_id, item_id, timestamp and "
                        f"optionally rating.", path=folder)
    inter_table = drop_blank_rows(inter_table, report)
    require_columns(inter_table, INTERACTION_REQUIRED, known=INTERACTION_KNOWN)
    _check_extra_columns(inter_table, report)
    user_table = optional_table(os.path.join(folder, "users"), "user_id", report)
    item_table = optional_table(os.path.join(folder, "items"), "item_id", report, known=ITEM_KNOWN)
    if item_table is not None:
        _check_case_slips(item_table, ("item_id",) + ITEM_KNOWN)
    inter = _interactions(inter_table, rating_range, os.path.join(folder, "meta.json"))
    items = items_table(item_table) if item_table is not None else None
    if items is not None:
        _check_known_items(inter_table, inter, items, item_table.path)
    users = users_table(user_table) if user_table is not None else None
    if items is None:
        report.append(f"{folder}: no items file; {inter['item_id'].nunique()} items were built from "
                      f"the interactions with empty attributes.")
    if users is None:
        report.append(f"{folder}: no users file; {inter['user_id'].nunique()} users were built from "
                      f"the interactions with empty attributes.")
    if rating_range is None and inter["rating"].notna().any():
        rating_range = (float(inter["rating"].min()), float(inter["rating"].max()))
    return tables.dataset(folder, inter, users, items, rating_range, report)


def declared_rating_range(folder: str) -> Optional[tuple[float, float]]:
    path = os.path.join(folder, "meta.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            meta = json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}, line {e.lineno}: not valid JSON ({e.msg}). Write e.g. "
                        f'{{"rating_range": [1, 5]}}.', path=path, line=e.lineno) from e
    if not isinstance(meta, dict):
        raise DataError(f'{path}: expected an object such as {{"rating_range": [1, 5]}}.', path=path)
    unknown = sorted(set(meta) - {"rating_range"})
    if unknown:
        raise DataError(f"{path}: unknown key(s) {unknown}; the only valid key is 'rating_range'.", path=path)
    value = meta.get("rating_range")
    if value is None:
        return None
    ok = isinstance(value, list) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) <= _FLOAT32_MAX
        for v in value) and value[0] < value[1]
    if not ok:
        raise DataError(f"{path}: 'rating_range' must be [min, max] with min < max (finite numbers "
                        f"that fit in float32), got {value!r}.", path=path, column="rating_range")
    return float(value[0]), float(value[1])


def _normal(name: str) -> str:
    """A column name without case, spaces, '_' or '-': 'User ID' -> 'userid'."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _looks_like(name: str, candidates) -> Optional[str]:
    """The candidate column ``name`` is probably a slip of, or None."""
    for candidate in candidates:
        if _normal(name) == _normal(candidate):
            return candidate
    return closest(name, candidates)


def _header_where(table: Table, column: str) -> str:
    """``path, line 1 (header), column 'x'`` (Parquet: ``path, column 'x'``)."""
    return where(table.path, None, column) if table.parquet else \
        f"{table.path}, line 1 (header), column {column!r}"


def _check_extra_columns(table: Table, report: list[str]) -> None:
    """Refuses a near-miss of an absent known column; reports other extra columns.

    An interactions column that is not one of user_id, item_id, timestamp,
    rating is not used. If it looks like a misspelling of a known column that
    is absent (``ratings``, ``Rating``, ``score``-like near misses of
    ``rating``), that is an error: the data would otherwise train silently as
    implicit feedback. Other extra columns are named in the report.

    Raises:
        DataError: An extra column looks like an absent known column.
    """
    present = list(table.frame.columns)
    known = INTERACTION_REQUIRED + INTERACTION_KNOWN
    extra = [c for c in present if c not in known]
    absent = [k for k in known if k not in present]
    for name in extra:
        guess = _looks_like(name, absent)
        if guess is not None:
            position = present.index(name) + 1
            why = " (without it the data is read as implicit feedback)" if guess == "rating" else ""
            raise DataError(f"{_header_where(table, name)}: unknown column {name!r} (column {position}); "
                            f"did you mean {guess!r}? Rename it to {guess!r}{why}. If it holds something "
                            f"else, remove or rename the column (extra interaction columns are not "
                            f"used). Known columns: {', '.join(known)}.",
                            path=table.path, line=None if table.parquet else 1, column=name)
    if extra:
        hint = ""
        if "rating" not in present:
            hint = " If one of them holds the ratings, rename it to 'rating'."
        report.append(f"{table.path}: ignored {len(extra)} unknown column(s) {extra}; interactions use "
                      f"only {', '.join(known)}.{hint}")


def _check_case_slips(table: Table, known) -> None:
    """Refuses an items column that differs from a known, absent one only in case or
    punctuation (``Categories``, ``Title``): it would be kept as a plain text attribute.

    Raises:
        DataError: Such a column is found.
    """
    present = list(table.frame.columns)
    absent = [k for k in known if k not in present]
    for name in present:
        if name in known:
            continue
        for candidate in absent:
            if _normal(name) == _normal(candidate):
                raise DataError(f"{_header_where(table, name)}: did you mean {candidate!r}? Rename the "
                                f"column to {candidate!r} (names are case-sensitive); as it is, it would "
                                f"be kept as a plain attribute.", path=table.path,
                                line=None if table.parquet else 1, column=name)


def optional_table(stem: str, id_column: str, report: list[str], known=()) -> Optional[Table]:
    table = read_table(stem)
    if table is None:
        return None
    table = drop_blank_rows(table, report)
    require_columns(table, (id_column,), known=known)
    return table


def _interactions(table: Table, rating_range, meta_path: str) -> pd.DataFrame:
    if "rating" in table.frame:
        ratings = columns.ratings(table, "rating", rating_range)
        if rating_range is None:
            columns.plausible_ratings(table, "rating", ratings, meta_path)
    else:
        ratings = np.full(len(table.frame), np.nan)
    return tables.interactions(columns.ids(table, "user_id"), columns.ids(table, "item_id"),
                               ratings, columns.timestamps(table, "timestamp"))


def users_table(table: Table) -> pd.DataFrame:
    user_ids = columns.ids(table, "user_id")
    columns.unique_ids(table, "user_id", user_ids)
    extra = {c: columns.attribute(table.frame[c]) for c in table.frame.columns if c != "user_id"}
    return tables.users(user_ids, extra)


def items_table(table: Table) -> pd.DataFrame:
    frame = table.frame
    item_ids = columns.ids(table, "item_id")
    columns.unique_ids(table, "item_id", item_ids)
    years = columns.numbers(table, "year") if "year" in frame else None
    cats = tables.split_categories(frame["categories"]) if "categories" in frame \
        else [[] for _ in range(len(frame))]
    if "category" in frame:  # a stated primary category goes first
        cats = [([p] + [c for c in cs if c != p]) if p else cs for p, cs in zip(frame["category"], cats)]
    extra = {c: columns.attribute(frame[c]) for c in frame.columns
             if c != "item_id" and c not in ITEM_KNOWN}
    return tables.items(item_ids, frame["title"] if "title" in frame else None, years, cats, extra)


def _check_known_items(table: Table, inter: pd.DataFrame, items: pd.DataFrame, items_path: str) -> None:
    unknown = ~inter["item_id"].isin(set(items["item_id"])).to_numpy()
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        count = int(unknown.sum())
        raise DataError(f"{table.where(row, 'item_id')}: item {inter['item_id'].iat[row]!r} is not in "
                        f"{items_path} ({count} interaction(s) with {inter['item_id'][unknown].nunique()} "
                        f"unknown item(s)). Add the items to {os.path.basename(items_path)} or remove "
                        f"their interactions.", path=table.path, line=table.line(row), column="item_id")
