"""Popularity baseline: an item's score is its number of training interactions.

The same list for every user. Ties are broken by item id (a tiny offset that
ranks the smaller id higher), so rankings are deterministic. Items never seen in
training score 0.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from afetler_tf import files, training
from afetler_tf.data.schema import Dataset, Split
from afetler_tf.models.base import ItemScoreRecommender

_COUNTS_FILE = "popularity.json"


class PopularityRecommender(ItemScoreRecommender):
    """Scores items by training popularity, the same for every user.

    Example:
        model = PopularityRecommender(Config(model="popularity"))
        model.fit(data, split)
        model.score_all(["1", "2"], ["50", "181"])  # (2, 2)
    """

    name = "popularity"
    predicts_ratings = False

    def __init__(self, config):
        super().__init__(config)
        self._scores: dict[str, float] = {}

    def fit(self, data: Dataset, split: Split, verbose: int = 1) -> dict:
        """Counts each item's training interactions (validation and test unused)."""
        counts = split.train["item_id"].astype(str).value_counts()
        self._set_counts(counts.to_dict())
        if verbose:
            print(f"popularity: {len(counts)} items, top count {int(counts.max()) if len(counts) else 0}")
        return {"n_items": int(len(counts))}

    def _set_counts(self, counts: dict[str, int]) -> None:
        # Tie-break: among equal counts, the smaller id (numeric order when all
        # ids are numbers, else string order) gets the larger offset in [0, 0.5).
        ids = sorted(counts, key=_id_key)
        offsets = 0.5 * (1.0 - np.arange(len(ids)) / max(len(ids), 1))
        self._scores = {i: counts[i] + float(o) for i, o in zip(ids, offsets)}

    def item_scores(self, item_ids: Sequence[str]) -> np.ndarray:
        """Popularity of each item (0 for items unseen in training), shape (n,)."""
        ids = training.as_strings(item_ids)
        return np.array([self._scores.get(i, 0.0) for i in ids], dtype="float64")

    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        counts = {i: int(s) for i, s in self._scores.items()}
        files.write_json(os.path.join(directory, _COUNTS_FILE), {"counts": counts})

    def load(self, directory: str, data: Dataset, split: Split) -> None:
        payload = files.read_json(os.path.join(directory, _COUNTS_FILE))
        self._set_counts(payload["counts"])


def _id_key(item_id: str):
    """Numeric ids in numeric order before any other id, then string order."""
    return (0, int(item_id), "") if item_id.isdigit() else (1, 0, item_id)
