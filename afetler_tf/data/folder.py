"""A folder of the user's own logs: ``interactions.csv|parquet`` (+ users, items, meta.json).

Columns:
    interactions: ``user_id``, ``item_id``, ``timestamp`` (integer seconds or ISO
        date-time) required; ``rating`` optional (empty or absent = implicit).
    users: ``user_id`` + any attribute columns (kept; numeric if all numbers).
    items: ``item_id`` + optional ``title``, ``year``, ``categories`` (one
        "A|B" field), ``category`` (primary; default the first of categories)
        + extra columns (kept as attributes).
    meta.json: optional ``{"rating_range": [1, 5]}``; ratings outside are errors.
"""

from __future__ import annotations

import json
import os
from typing import Optional

import numpy as np
import pandas as pd

from afetler_tf.data import columns, tables
from afetler_tf.data.errors import DataError
from afetler_tf.data.readers import Table, drop_blank_rows, read_table, require_columns
from afetler_tf.data.schema import Dataset

INTERACTION_REQUIRED = ("user_id", "item_id", "timestamp")
ITEM_KNOWN = ("title", "year", "categories", "category")


def load(folder: str) -> Dataset:
    """Loads a generic folder (module docstring).

    Raises:
        DataError: Missing interactions file, bad meta.json, or any bad cell.
    """
    report: list[str] = []
    rating_range = _rating_range(folder)
    inter_table = read_table(os.path.join(folder, "interactions"))
    if inter_table is None:
        raise DataError(f"{folder} has no interactions.csv or interactions.parquet (and no u.data of the "
                        f"GroupLens layout). Add one with columns user_id, item_id, timestamp and "
                        f"optionally rating.", path=folder)
    inter_table = drop_blank_rows(inter_table, report)
    require_columns(inter_table, INTERACTION_REQUIRED, known=("rating",))
    user_table = _optional(os.path.join(folder, "users"), "user_id", report)
    item_table = _optional(os.path.join(folder, "items"), "item_id", report, known=ITEM_KNOWN)
    inter = _interactions(inter_table, rating_range)
    items = _items(item_table) if item_table is not None else None
    if items is not None:
        _check_known_items(inter_table, inter, items, item_table.path)
    users = _users(user_table) if user_table is not None else None
    if items is None:
        report.append(f"{folder}: no items file; {inter['item_id'].nunique()} items were built from "
                      f"the interactions with empty attributes.")
    if users is None:
        report.append(f"{folder}: no users file; {inter['user_id'].nunique()} users were built from "
                      f"the interactions with empty attributes.")
    if rating_range is None and inter["rating"].notna().any():
        rating_range = (float(inter["rating"].min()), float(inter["rating"].max()))
    return tables.dataset(folder, inter, users, items, rating_range, report)


def _rating_range(folder: str) -> Optional[tuple[float, float]]:
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
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) and value[0] < value[1]
    if not ok:
        raise DataError(f"{path}: 'rating_range' must be [min, max] with min < max, got {value!r}.",
                        path=path, column="rating_range")
    return float(value[0]), float(value[1])


def _optional(stem: str, id_column: str, report: list[str], known=()) -> Optional[Table]:
    table = read_table(stem)
    if table is None:
        return None
    table = drop_blank_rows(table, report)
    require_columns(table, (id_column,), known=known)
    return table


def _interactions(table: Table, rating_range) -> pd.DataFrame:
    if "rating" in table.frame:
        ratings = columns.ratings(table, "rating", rating_range)
    else:
        ratings = np.full(len(table.frame), np.nan)
    return tables.interactions(columns.ids(table, "user_id"), columns.ids(table, "item_id"),
                               ratings, columns.timestamps(table, "timestamp"))


def _users(table: Table) -> pd.DataFrame:
    user_ids = columns.ids(table, "user_id")
    columns.unique_ids(table, "user_id", user_ids)
    extra = {c: columns.attribute(table.frame[c]) for c in table.frame.columns if c != "user_id"}
    return tables.users(user_ids, extra)


def _items(table: Table) -> pd.DataFrame:
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
