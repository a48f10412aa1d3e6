"""The GroupLens MovieLens-100k folder layout: ``u.data``, ``u.item``, ``u.user``."""

from __future__ import annotations

import csv
import os

import numpy as np
import pandas as pd

from afetler_tf.data import columns, tables
from afetler_tf.data.errors import DataError
from afetler_tf.data.readers import read_text, require_file
from afetler_tf.data.schema import Dataset

GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
          "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
          "Romance", "Sci-Fi", "Thriller", "War", "Western")
RATING_RANGE = (1.0, 5.0)
_ITEM_COLUMNS = ("item_id", "title", "release_date", "video_release_date", "imdb_url") + GENRES
_USER_COLUMNS = ("user_id", "age", "gender", "occupation", "zip")


def is_grouplens(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "u.data"))


def load(folder: str, name: str = "") -> Dataset:
    """Loads a GroupLens ml-100k folder.

    Args:
        folder: Folder holding ``u.data``, ``u.item`` and ``u.user``.
        name: Dataset name (default: the folder).

    Returns:
        The Dataset, rating range (1, 5).

    Raises:
        DataError: A file is missing or malformed.
    """
    for file in ("u.data", "u.item", "u.user"):
        require_file(os.path.join(folder, file))
    name = name or folder
    report: list[str] = []
    inter = _interactions(os.path.join(folder, "u.data"))
    items = _items(os.path.join(folder, "u.item"))
    check_known(inter, items, os.path.join(folder, "u.data"), first_line=1)
    users = _users(os.path.join(folder, "u.user"))
    return tables.dataset(name, inter, users, items, RATING_RANGE, report)


def _interactions(path: str) -> pd.DataFrame:
    table = read_text(path, sep="\t", names=("user_id", "item_id", "rating", "timestamp"))
    return tables.interactions(columns.ids(table, "user_id"), columns.ids(table, "item_id"),
                               columns.ratings(table, "rating", RATING_RANGE),
                               columns.timestamps(table, "timestamp"))


def _items(path: str) -> pd.DataFrame:
    table = read_text(path, sep="|", encoding="latin-1", names=_ITEM_COLUMNS, quoting=csv.QUOTE_NONE)
    item_ids = columns.ids(table, "item_id")
    columns.unique_ids(table, "item_id", item_ids)
    flags = np.stack([columns.numbers(table, g, integer=True,
                                      fix="Genre flags in u.item must be 0 or 1.") for g in GENRES], axis=1)
    titles, years = [], []
    dates = pd.to_datetime(table.frame["release_date"], format="%d-%b-%Y", errors="coerce")
    for title, date in zip(table.frame["title"], dates):
        clean, title_year = tables.title_and_year(title)
        titles.append(clean)
        years.append(float(date.year) if not pd.isna(date) else title_year)
    categories = [[g for g, f in zip(GENRES, row) if f] for row in flags]
    return tables.items(item_ids, titles, years, categories)


def _users(path: str) -> pd.DataFrame:
    table = read_text(path, sep="|", encoding="latin-1", names=_USER_COLUMNS, quoting=csv.QUOTE_NONE)
    user_ids = columns.ids(table, "user_id")
    columns.unique_ids(table, "user_id", user_ids)
    return tables.users(user_ids, {
        "age": columns.numbers(table, "age", integer=True),
        "gender": tables.str_column(table.frame["gender"]),
        "occupation": tables.str_column(table.frame["occupation"]),
        "zip": tables.str_column(table.frame["zip"]),
    })


def check_known(inter: pd.DataFrame, items: pd.DataFrame, path: str, first_line: int) -> None:
    """Raises DataError at the first interaction whose item is not in the item table.

    Args:
        inter: Interactions, in file order (before any deduplication).
        items: Item table.
        path: Interaction file, for the message.
        first_line: Line number of the first data row (1 without a header).
    """
    unknown = ~inter["item_id"].isin(set(items["item_id"])).to_numpy()
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        line = row + first_line
        raise DataError(f"{path}, line {line}, column 'item_id': item {inter['item_id'].iat[row]!r} "
                        f"is not in the item file ({int(unknown.sum())} interaction(s) affected). Add the "
                        f"item to the item file or remove its interactions.",
                        path=path, line=line, column="item_id")
