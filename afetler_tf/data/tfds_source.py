"""MovieLens-100k from TensorFlow Datasets (``movielens/100k-ratings``).

Only called by :mod:`afetler_tf.data.movielens` when the copy is prepared
already or the download host answers. Genre names are mapped to GroupLens'
spelling so every source yields the same categories.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from afetler_tf.data import tables
from afetler_tf.data.grouplens import GENRES, RATING_RANGE
from afetler_tf.data.schema import Dataset

_GENRE_NAMES = {"Children": "Children's", "Unknown": "unknown", "(no genres listed)": "unknown"}


def load(data_dir: str, download: bool, name: str = "movielens-100k") -> Dataset:
    """Loads (and, if ``download``, first fetches) the TFDS copy."""
    import tensorflow_datasets as tfds

    ds, info = tfds.load("movielens/100k-ratings", split="train", data_dir=data_dir,
                         download=download, with_info=True)
    genre_names = info.features["movie_genres"].feature.names
    return from_records(tfds.as_numpy(ds), genre_names, name)


def from_records(records: Iterable[dict], genre_names: Sequence[str], name: str) -> Dataset:
    """Builds the Dataset from TFDS example dicts (bytes strings, genre label ids)."""
    inter, items, users = [], {}, {}
    for r in records:
        user, item = _text(r["user_id"]), _text(r["movie_id"])
        inter.append((user, item, float(r["user_rating"]), int(r["timestamp"])))
        if item not in items:
            genres = {_GENRE_NAMES.get(genre_names[g], genre_names[g]) for g in r["movie_genres"]}
            order = {g: i for i, g in enumerate(GENRES)}
            items[item] = (_text(r["movie_title"]), sorted(genres, key=lambda g: (order.get(g, 99), g)))
        if user not in users:
            users[user] = (int(r["raw_user_age"]), "M" if bool(r["user_gender"]) else "F",
                           _text(r["user_occupation_text"]), _text(r["user_zip_code"]))
    user_ids, item_ids, ratings, times = zip(*inter)
    parsed = [tables.title_and_year(t) for t, _ in items.values()]
    item_table = tables.items(list(items), [p[0] for p in parsed], [p[1] for p in parsed],
                              [c for _, c in items.values()])
    attrs = list(zip(*users.values()))
    user_table = tables.users(list(users), {
        "age": np.asarray(attrs[0], dtype=np.int64), "gender": tables.str_column(attrs[1]),
        "occupation": tables.str_column(attrs[2]), "zip": tables.str_column(attrs[3])})
    return tables.dataset(name, tables.interactions(user_ids, item_ids, ratings, times),
                          user_table, item_table, RATING_RANGE, [])


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
