"""Synthetic shop logs with planted structure, at any size, written as shards.

    python -m afetler_tf.data.synthetic --out /tmp/shop --interactions 1000000 \\
        --items 100000 --users 50000 --shards 8 --format csv

Structure: items belong to ``categories`` categories (item j: category
j mod K) with Zipf-like popularity inside each; user u prefers category
u mod K, picks from it with probability ``affinity`` (rating 4-5) and from
a random other one otherwise (rating 1-3). A model that learns anything
ranks a user's preferred category first. Interactions are generated and
written chunk by chunk, so memory stays bounded whatever the size. The
folder is the streamed layout of :mod:`afetler_tf.data.streaming`
(``items.csv``, ``users.csv``, ``interactions/part-*.{csv,parquet,tfrecord}``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

import numpy as np
import pandas as pd

CHUNK = 500_000


def catalogue(n_users: int, n_items: int, categories: int, seed: int) -> tuple:
    """(users, items) tables as written to users.csv / items.csv."""
    rng = np.random.default_rng(seed)
    names = [f"c{k}" for k in range(categories)]
    j = np.arange(n_items)
    items = pd.DataFrame({"item_id": [f"i{x}" for x in j], "title": [f"item {x}" for x in j],
                          "year": 1990 + j % 30, "categories": [names[x % categories] for x in j]})
    users = pd.DataFrame({"user_id": [f"u{x}" for x in range(n_users)],
                          "age": rng.integers(18, 70, n_users),
                          "gender": rng.choice(["F", "M"], n_users)})
    return users, items


def interactions(n: int, n_users: int, n_items: int, categories: int, rng,
                 affinity: float = 0.8, start: int = 0) -> pd.DataFrame:
    """``n`` interactions with the planted structure (module docstring)."""
    user = rng.integers(0, n_users, n)
    liked = rng.random(n) < affinity
    other = (user + rng.integers(1, max(categories, 2), n)) % categories
    category = np.where(liked, user % categories, other)
    per_category = -(-n_items // categories)
    rank = np.minimum(rng.zipf(1.3, n) - 1, per_category - 1)  # popular items first
    item = rank * categories + category
    item = np.where(item < n_items, item, category)  # last row of the grid may be short
    rating = np.where(liked, rng.integers(4, 6, n), rng.integers(1, 4, n)).astype(float)
    return pd.DataFrame({"user_id": np.char.add("u", user.astype(str)),
                         "item_id": np.char.add("i", item.astype(str)), "rating": rating,
                         "timestamp": 1_600_000_000 + start + np.arange(n)})


def generate(out: str, n_interactions: int, n_items: int, n_users: int, categories: int = 20,
             shards: int = 4, fmt: str = "csv", seed: int = 0) -> list[str]:
    """Writes the folder; returns the shard paths."""
    if min(n_interactions, n_items, n_users, categories, shards) < 1 or fmt not in (
            "csv", "parquet", "tfrecord"):
        raise ValueError("sizes must be >= 1 and fmt one of csv, parquet, tfrecord")
    os.makedirs(os.path.join(out, "interactions"), exist_ok=True)
    users, items = catalogue(n_users, n_items, categories, seed)
    users.to_csv(os.path.join(out, "users.csv"), index=False)
    items.to_csv(os.path.join(out, "items.csv"), index=False)
    rng, paths, done = np.random.default_rng(seed + 1), [], 0
    bounds = np.linspace(0, n_interactions, shards + 1).astype(int)
    for s in range(shards):
        path = os.path.join(out, "interactions", f"part-{s:05d}.{fmt}")
        tmp = path + ".tmp"
        writer = _writer(tmp, fmt)
        for lo in range(bounds[s], bounds[s + 1], CHUNK):
            n = min(CHUNK, bounds[s + 1] - lo)
            writer(interactions(n, n_users, n_items, categories, rng, start=done), lo == bounds[s])
            done += n
        writer(None, False)
        os.replace(tmp, path)  # a shard appears whole or not at all
        paths.append(path)
    return paths


def _writer(path: str, fmt: str):
    """A function(frame, first) appending ``frame`` to ``path``; frame None closes it."""
    if fmt == "csv":
        f = open(path, "w")
        return lambda frame, first: f.close() if frame is None else frame.to_csv(
            f, index=False, header=first)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq
        state = {}

        def write(frame, first):
            if frame is None:
                return state["w"].close() if state else pq.write_table(pa.table({}), path)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            state.setdefault("w", pq.ParquetWriter(path, table.schema)).write_table(table)
        return write
    import tensorflow as tf
    writer = tf.io.TFRecordWriter(path)

    def write_records(frame, first):
        if frame is None:
            return writer.close()
        for u, i, r, t in frame.itertuples(index=False):
            feature = {"user_id": _bytes(u), "item_id": _bytes(i),
                       "rating": tf.train.Feature(float_list=tf.train.FloatList(value=[r])),
                       "timestamp": tf.train.Feature(int64_list=tf.train.Int64List(value=[t]))}
            writer.write(tf.train.Example(features=tf.train.Features(
                feature=feature)).SerializeToString())
    return write_records


def _bytes(text: str):
    import tensorflow as tf
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()]))


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m afetler_tf.data.synthetic", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--interactions", type=int, default=100_000)
    p.add_argument("--items", type=int, default=10_000)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--categories", type=int, default=20)
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--format", choices=("csv", "parquet", "tfrecord"), default="csv")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    paths = generate(a.out, a.interactions, a.items, a.users, a.categories, a.shards, a.format,
                     a.seed)
    print(f"wrote {a.interactions} interactions in {len(paths)} {a.format} shard(s), "
          f"{a.items} items, {a.users} users to {a.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
