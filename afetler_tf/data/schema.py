"""The canonical tables every data source is turned into (docs/design.md §2).

Whatever the source (MovieLens-100k, a GroupLens folder, a shop's CSV/Parquet
logs), loading ends in a :class:`Dataset`; splitting ends in a :class:`Split`.
Models, metrics and CLIs rely only on these two types.

Tables (pandas):
    interactions: ``user_id`` (str), ``item_id`` (str), ``rating`` (float64; NaN
        for implicit data), ``timestamp`` (int64 seconds).
    users: ``user_id`` (str) + optional attribute columns (MovieLens: ``age``
        int, ``gender``, ``occupation``, ``zip`` str).
    items: ``item_id`` (str), ``title`` (str), ``year`` (float64, NaN if
        unknown), ``categories`` (list of str), ``category`` (str: first of
        ``categories``, "" if none) + optional numeric attribute columns.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import pandas as pd

INTERACTION_COLUMNS = ("user_id", "item_id", "rating", "timestamp")


@dataclasses.dataclass
class Dataset:
    """A loaded, validated data set.

    Attributes:
        name: Source name, e.g. "movielens-100k" or the folder path.
        interactions: Interaction table (see module docstring).
        users: User table; every ``user_id`` of ``interactions`` is in it.
        items: Item table; every ``item_id`` of ``interactions`` is in it.
        rating_range: Declared (min, max) rating, or None for implicit data.
        report: Human-readable lines about anything filtered or fixed while
            loading (counts), so nothing is dropped silently.
    """

    name: str
    interactions: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    rating_range: Optional[tuple[float, float]] = (1.0, 5.0)
    report: list[str] = dataclasses.field(default_factory=list)

    @property
    def has_ratings(self) -> bool:
        return bool(self.interactions["rating"].notna().any())

    def summary(self) -> str:
        return (f"{self.name}: {len(self.interactions)} interactions, "
                        f"{self.interactions.user_id.nunique()} users, "
                        f"{self.interactions.item_id.nunique()} items")


@dataclasses.dataclass
class Split:
    """A deterministic train/validation/test split of a Dataset's interactions.

    Attributes:
        kind: "random", "temporal", "cold-items" or "none".
        seed: Seed used.
        train: Interactions the model learns from (validation removed).
        validation: Carve-out of the training part for early stopping, tuning
            and calibration (never the test set).
        test: Held-out interactions (empty for "none").
        cold_items: Item ids removed from training entirely ("cold-items"), else
            an empty tuple.
    """

    kind: str
    seed: int
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    cold_items: tuple[str, ...] = ()
