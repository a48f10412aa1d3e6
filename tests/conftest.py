"""Shared fixtures: tiny synthetic data with planted structure.

``tiny_data``: 40 users, 60 items in 4 categories; each user likes one
category (rates its items 4-5) and dislikes the others (1-3), so a model that
learns anything ranks a user's own category first.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import pandas as pd
import pytest

import afetler_tf  # noqa: F401  (Keras-2 set-up before TensorFlow)
from afetler_tf.data.schema import Dataset, Split

CATEGORIES = ["Action", "Comedy", "Drama", "Horror"]


def synthetic_dataset(n_users=40, n_items=60, per_user=18, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    items = pd.DataFrame({
        "item_id": [f"i{j}" for j in range(n_items)],
        "title": [f"movie {CATEGORIES[j % 4].lower()} {j}" for j in range(n_items)],
        "year": [1980.0 + j % 20 for j in range(n_items)],
    })
    items["categories"] = [[CATEGORIES[j % 4]] + ([CATEGORIES[(j + 1) % 4]] if j % 5 == 0 else [])
                           for j in range(n_items)]
    items["category"] = items["categories"].map(lambda c: c[0])
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)],
                          "age": rng.integers(18, 60, n_users),
                          "gender": rng.choice(["F", "M"], n_users).astype(object),
                          "occupation": rng.choice(["a", "b", "c"], n_users).astype(object)})
    rows = []
    for u in range(n_users):
        liked = u % 4
        own = [j for j in range(n_items) if j % 4 == liked]
        other = [j for j in range(n_items) if j % 4 != liked]
        picks = list(rng.choice(own, per_user * 2 // 3, replace=False)) + \
            list(rng.choice(other, per_user - per_user * 2 // 3, replace=False))
        for j in picks:
            rating = float(rng.integers(4, 6)) if j % 4 == liked else float(rng.integers(1, 4))
            rows.append((f"u{u}", f"i{j}", rating, int(1_000_000 + rng.integers(0, 100_000))))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    inter["user_id"] = inter["user_id"].astype(object)
    inter["item_id"] = inter["item_id"].astype(object)
    return Dataset("synthetic", inter, users, items, rating_range=(1.0, 5.0))


def synthetic_split(data: Dataset, seed=0) -> Split:
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(data.interactions))
    n_test, n_val = len(perm) // 5, len(perm) // 10
    frame = data.interactions
    return Split("random", seed, frame.iloc[perm[n_test + n_val:]].reset_index(drop=True),
                 frame.iloc[perm[n_test:n_test + n_val]].reset_index(drop=True),
                 frame.iloc[perm[:n_test]].reset_index(drop=True))


@pytest.fixture(scope="session")
def tiny_data() -> Dataset:
    return synthetic_dataset()


@pytest.fixture(scope="session")
def tiny_split(tiny_data) -> Split:
    return synthetic_split(tiny_data)


def write_shop(folder, data: Dataset):
    """Writes ``data`` as a shop's own logs (the generic folder format); returns ``folder``."""
    data.interactions.to_csv(folder / "interactions.csv", index=False)
    data.users.to_csv(folder / "users.csv", index=False)
    items = data.items.drop(columns=["category"]).copy()
    items["categories"] = items["categories"].map("|".join)
    items.to_csv(folder / "items.csv", index=False)
    return folder


def write(folder, name, text):
    """Writes ``text`` to ``folder/name`` (UTF-8); returns the path."""
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def load_error(folder):
    """The DataError (a ValueError) that loading ``folder`` raises."""
    from afetler_tf.data import DataError, load_dataset

    with pytest.raises(DataError) as info:
        load_dataset(str(folder))
    assert isinstance(info.value, ValueError)
    return info.value

