"""MovieLens-100k in RecBole's atomic-file format (``ml-100k.{inter,item,user}``).

Tab-separated with typed headers (``user_id:token``); ``class`` holds the
genres separated by spaces; ``release_year`` may be missing or garbled, in
which case the year is taken from a "(1995)" at the end of the title.
"""

from __future__ import annotations

import csv
import os

import numpy as np
import pandas as pd

from afetler_tf.data import columns, tables
from afetler_tf.data.grouplens import RATING_RANGE, check_known
from afetler_tf.data.readers import Table, read_text, require_columns, require_file

FILES = ("ml-100k.inter", "ml-100k.item", "ml-100k.user")


def has_files(folder: str) -> bool:
    return all(os.path.isfile(os.path.join(folder, f)) for f in FILES)


def load(folder: str, name: str = "movielens-100k"):
    """Loads ``folder/ml-100k.{inter,item,user}`` into a Dataset.

    Raises:
        DataError: A file is missing or malformed.
    """
    paths = [os.path.join(folder, f) for f in FILES]
    for path in paths:
        require_file(path)
    inter = _interactions(_read(paths[0]))
    items = _items(_read(paths[1]))
    check_known(inter, items, paths[0], first_line=2)
    users = _users(_read(paths[2]))
    return tables.dataset(name, inter, users, items, RATING_RANGE, [])


def _read(path: str) -> Table:
    """Reads an atomic file and drops the ``:type`` suffixes from its header."""
    table = read_text(path, sep="\t", quoting=csv.QUOTE_NONE)
    table.frame.columns = [c.split(":", 1)[0] for c in table.frame.columns]
    return table


def _interactions(table: Table) -> pd.DataFrame:
    require_columns(table, ("user_id", "item_id", "rating", "timestamp"))
    return tables.interactions(columns.ids(table, "user_id"), columns.ids(table, "item_id"),
                               columns.ratings(table, "rating", RATING_RANGE),
                               columns.timestamps(table, "timestamp"))


def _items(table: Table) -> pd.DataFrame:
    require_columns(table, ("item_id", "movie_title", "release_year", "class"))
    item_ids = columns.ids(table, "item_id")
    columns.unique_ids(table, "item_id", item_ids)
    stated = pd.to_numeric(table.frame["release_year"], errors="coerce").to_numpy(dtype=np.float64)
    titles, years = [], []
    for title, year in zip(table.frame["movie_title"], stated):
        clean, title_year = tables.title_and_year(title)
        titles.append("unknown" if clean == "unkonwn" else clean)  # RecBole's typo for item 267
        years.append(year if np.isfinite(year) else title_year)
    categories = tables.split_categories(table.frame["class"], sep="")
    return tables.items(item_ids, titles, years, categories)


def _users(table: Table) -> pd.DataFrame:
    require_columns(table, ("user_id", "age", "gender", "occupation", "zip_code"))
    user_ids = columns.ids(table, "user_id")
    columns.unique_ids(table, "user_id", user_ids)
    return tables.users(user_ids, {
        "age": columns.numbers(table, "age", integer=True),
        "gender": tables.str_column(table.frame["gender"]),
        "occupation": tables.str_column(table.frame["occupation"]),
        "zip": tables.str_column(table.frame["zip_code"]),
    })
