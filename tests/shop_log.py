"""A generated shop log in the own-data layout (README "Your own data").

Ids carry spaces and non-ASCII letters, items have a numeric attribute
(``price``) and ``|``-joined categories, users a string attribute (``city``);
each user prefers one category (rates its items 4-5, others 1-3), so a model
that learns anything ranks the user's own category first. ``rated=False``
writes the implicit variant (no rating column).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

CATEGORIES = ["Ev & Bahçe", "Elektronik", "Giyim", "Kitap"]
CITIES = ["İstanbul", "Ankara", "İzmir"]


def items_table(ids, rng) -> pd.DataFrame:
    k = len(CATEGORIES)
    return pd.DataFrame({
        "item_id": [f"ürün {j}" for j in ids],
        "title": [f"Ürün {CATEGORIES[j % k].split()[0]} no {j}" for j in ids],
        "categories": [CATEGORIES[j % k] + ("|" + CATEGORIES[(j + 1) % k] if j % 7 == 0 else "")
                       for j in ids],
        "price": np.round(rng.uniform(5, 500, len(ids)), 2)})


def write_shop_log(folder: str, rated: bool = True, n_users: int = 60, n_items: int = 80,
                   per_user: int = 15, seed: int = 0) -> str:
    """Writes interactions.csv, users.csv and items.csv under ``folder``; returns it."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    k = len(CATEGORIES)
    users = pd.DataFrame({"user_id": [f"müşteri {u}" for u in range(n_users)],
                          "city": rng.choice(CITIES, n_users)})
    rows = []
    for u in range(n_users):
        own = [j for j in range(n_items) if j % k == u % k]
        other = [j for j in range(n_items) if j % k != u % k]
        picks = list(rng.choice(own, per_user * 2 // 3, replace=False)) + \
            list(rng.choice(other, per_user - per_user * 2 // 3, replace=False))
        for j in picks:
            rating = float(rng.integers(4, 6)) if j % k == u % k else float(rng.integers(1, 4))
            rows.append((f"müşteri {u}", f"ürün {j}", rating, 1_600_000_000 + int(rng.integers(0, 10**7))))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    if not rated:
        inter = inter.drop(columns="rating")
    inter.to_csv(os.path.join(folder, "interactions.csv"), index=False)
    users.to_csv(os.path.join(folder, "users.csv"), index=False)
    items_table(range(n_items), rng).to_csv(os.path.join(folder, "items.csv"), index=False)
    return folder


def write_new_items(path: str, first: int = 1000, n: int = 3, seed: int = 1) -> str:
    """New products (content only) for add_items; returns ``path``."""
    items_table(range(first, first + n), np.random.default_rng(seed)).to_csv(path, index=False)
    return path
