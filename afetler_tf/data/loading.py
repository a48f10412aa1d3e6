"""``load_dataset``: one entry point for every source."""

from __future__ import annotations

import os
from typing import Optional

from afetler_tf.data import folder, grouplens, movielens
from afetler_tf.data.errors import DataError
from afetler_tf.data.schema import Dataset

SOURCES = ("movielens-100k",)


def load_dataset(source: str = "movielens-100k", cache_dir: Optional[str] = None) -> Dataset:
    """Loads and validates a data set into the canonical tables.

    Args:
        source: "movielens-100k", or a folder: the GroupLens ml-100k layout
            (``u.data``, ``u.item``, ``u.user``) or a generic folder with
            ``interactions.csv|parquet`` and optional ``users``/``items`` files
            and ``meta.json`` (see :mod:`afetler_tf.data.folder`).
        cache_dir: Where MovieLens-100k is cached; default ``$AFETLER_DATA`` or
            ``~/.cache/afetler_tf``.

    Returns:
        The Dataset; ``Dataset.report`` lists anything removed or added.

    Raises:
        DataError: The source does not exist or holds bad data; the message
            names the file, line and column and says what to do.
    """
    if source in SOURCES:
        return movielens.load(cache_dir)
    path = os.path.expanduser(str(source))
    if not os.path.exists(path):
        raise DataError(f"Data source {source!r} is neither a known data set ({', '.join(SOURCES)}) nor "
                        f"an existing folder (resolved from {os.getcwd()}). Pass 'movielens-100k' or the "
                        f"path of a folder with interactions.csv.", path=path)
    if not os.path.isdir(path):
        raise DataError(f"{path} is a file; pass the folder that holds it (named interactions.csv or "
                        f"interactions.parquet, with optional users and items files).", path=path)
    if grouplens.is_grouplens(path):
        return grouplens.load(path)
    return folder.load(path)
