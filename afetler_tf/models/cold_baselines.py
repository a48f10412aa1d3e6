"""Reference points for cold items (protocol C): random and category popularity.

Neither uses item ids, so both answer for items never seen in training:

- :class:`RandomRecommender`: seeded uniform scores (the floor any model must beat).
- :class:`CategoryPopularity`: an item scores the popularity of its categories,
  pop(c) = training interactions with items of category c / warm items of
  category c (the mean interactions of an item of c), averaged over the
  item's categories; items without a known category score 0. The same list
  for every user, like the popularity baseline.

Both are affinity scores (``predicts_ratings`` False): protocol R maps them to
ratings with the linear fit on the validation set.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd

from afetler_tf import files, training
from afetler_tf.data.schema import Dataset, Split
from afetler_tf.models.base import ItemScoreRecommender, Recommender, check_pairs


class RandomRecommender(Recommender):
    """Uniform random scores from a generator seeded with ``train.seed``.

    Example:
        model = RandomRecommender(Config(model="random"))
        model.fit(data, split)
        model.score_all(["1"], ["50", "181"])  # (1, 2)
    """

    name = "random"

    def __init__(self, config):
        super().__init__(config)
        self._rng = np.random.default_rng(config.train.seed)

    def fit(self, data: Dataset, split: Split, verbose: int = 1) -> dict:
        """Nothing to learn; resets the seeded generator."""
        self._rng = np.random.default_rng(self.config.train.seed)
        return {}

    def score(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        check_pairs(user_ids, item_ids)
        return self._rng.random(len(item_ids))

    def score_all(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        return self._rng.random((len(user_ids), len(item_ids)))

    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)

    def load(self, directory: str, data: Dataset, split: Split) -> None:
        self.fit(data, split, verbose=0)


class CategoryPopularity(ItemScoreRecommender):
    """Scores an item by the mean popularity of its categories (module docstring)."""

    name = "category_popularity"

    def __init__(self, config):
        super().__init__(config)
        self._popularity: dict[str, float] = {}
        self._categories: pd.Series = pd.Series(dtype=object)

    def fit(self, data: Dataset, split: Split, verbose: int = 1) -> dict:
        """pop(c) from ``split.train`` only (validation and test unused)."""
        self._categories = data.items.set_index("item_id")["categories"]
        counts = split.train["item_id"].astype(str).value_counts()
        per_item = pd.DataFrame({"count": counts, "categories": self._categories.reindex(counts.index)})
        exploded = per_item.explode("categories").dropna(subset=["categories"])
        self._popularity = exploded.groupby("categories")["count"].mean().astype(float).to_dict()
        if verbose:
            print(f"category_popularity: {len(self._popularity)} categories")
        return {"n_categories": len(self._popularity)}

    def item_scores(self, item_ids: Sequence[str]) -> np.ndarray:
        """Mean pop(c) over each item's categories (0 if none is known), (n,)."""
        cats = self._categories.reindex(training.as_strings(item_ids))
        out = [np.mean([self._popularity[c] for c in cs if c in self._popularity] or [0.0])
               if isinstance(cs, (list, tuple)) else 0.0 for cs in cats]
        return np.asarray(out, np.float64)

    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        files.write_json(os.path.join(directory, "category_popularity.json"), {"popularity": self._popularity})

    def load(self, directory: str, data: Dataset, split: Split) -> None:
        self._categories = data.items.set_index("item_id")["categories"]
        self._popularity = files.read_json(os.path.join(directory, "category_popularity.json"))["popularity"]
