"""Content bias: the rating a model can give a new item from its content alone.

    r(u, i) = mu + b_u + c_i,    c_i = w . x_i

mu is the training mean rating; b_u the user's mean deviation from it,
damped towards 0 (``shrinkage`` pseudo-interactions); x_i the item's
content (multi-hot categories, one-hot bucket of each numeric attribute such
as the year, a constant); w a ridge regression, weighted by each warm item's
number of training interactions, of the warm items' damped mean residuals
r - mu - b_u. No item id is used, so a cold item is rated like any other: a
reference for protocol C's RMSE/MAE (what content explains of a new item's
ratings, without any interaction model). Catalogue scores are the predicted
ratings.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd

from afetler_tf import io
from afetler_tf import train as training
from afetler_tf.data.schema import Dataset, Split
from afetler_tf.features import FeatureSpace
from afetler_tf.models.base import Recommender, check_pairs


class ContentBias(Recommender):
    """mu + b_u + w . content(i) (module docstring).

    Example:
        model = ContentBias(Config(model="content_bias"))
        model.fit(data, split)
        model.score(["1"], ["1682"])  # a rating, also for items never trained on
    """

    name = "content_bias"
    predicts_ratings = True

    def __init__(self, config, shrinkage: float = 5.0, ridge: float = 1.0):
        super().__init__(config)
        self._shrinkage, self._ridge = float(shrinkage), float(ridge)
        self._mu, self._user_bias, self._weights = 0.0, {}, np.zeros(0)
        self._categories, self._boundaries, self._items = [], {}, pd.DataFrame()

    def fit(self, data: Dataset, split: Split, verbose: int = 1) -> dict:
        """Learns from ``split.train`` only. Returns {"items", "r2"} of the content fit.

        Raises:
            ValueError: The data has no ratings (implicit feedback).
        """
        if not data.has_ratings:
            raise ValueError(f"{data.name}: content_bias predicts ratings, and these interactions "
                             f"have none (implicit feedback); use category_popularity instead.")
        train = split.train.assign(user_id=split.train["user_id"].astype(str),
                                   item_id=split.train["item_id"].astype(str))
        space = FeatureSpace.from_data(data, split.train)
        self._categories, self._boundaries = list(space.categories), dict(space.item_numeric)
        self._items = data.items.set_index(data.items["item_id"].astype(str))
        self._mu = float(train["rating"].mean())
        self._user_bias = _damped_means(train["rating"] - self._mu, train["user_id"],
                                        self._shrinkage).to_dict()
        residual = train["rating"] - self._mu - train["user_id"].map(self._user_bias)
        item_bias = _damped_means(residual, train["item_id"], self._shrinkage)
        counts = train["item_id"].value_counts().reindex(item_bias.index).to_numpy(np.float64)
        x = self.content(item_bias.index)
        w = np.sqrt(counts)[:, None]
        gram = (x * w).T @ (x * w) + self._ridge * np.eye(x.shape[1])
        self._weights = np.linalg.solve(gram, (x * w).T @ (item_bias.to_numpy() * w[:, 0]))
        fitted = x @ self._weights
        total = np.sum(counts * (item_bias.to_numpy() - np.average(item_bias, weights=counts)) ** 2)
        r2 = 1.0 - np.sum(counts * (item_bias.to_numpy() - fitted) ** 2) / total if total else 0.0
        if verbose:
            print(f"content_bias: {len(item_bias)} items, content explains R^2 = {r2:.3f} "
                  f"of their biases")
        return {"items": int(len(item_bias)), "r2": float(r2)}

    def content(self, item_ids: Sequence[str]) -> np.ndarray:
        """x_i: (n, categories + sum of (boundaries + 1) + 1); unknown items: the constant only."""
        rows = self._items.reindex(training.as_strings(item_ids))
        cats = np.array([[c in cs for c in self._categories] if isinstance(cs, (list, tuple))
                         else [False] * len(self._categories) for cs in rows["categories"]], np.float64)
        parts = [cats.reshape(len(rows), len(self._categories))]
        for column, bounds in self._boundaries.items():
            values = rows[column].astype("float64").to_numpy()
            bucket = np.where(np.isnan(values), 0, np.digitize(values, bounds))  # 0: missing too
            parts.append(np.eye(len(bounds) + 1)[bucket])
        parts.append(np.ones((len(rows), 1)))
        return np.hstack(parts)

    def item_bias(self, item_ids: Sequence[str]) -> np.ndarray:
        """c_i = w . x_i, (n,)."""
        return self.content(item_ids) @ self._weights

    def score(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        check_pairs(user_ids, item_ids)
        users = pd.Series(training.as_strings(user_ids)).map(self._user_bias).fillna(0.0)
        return self._mu + users.to_numpy(np.float64) + self.item_bias(item_ids)

    def score_all(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        users = pd.Series(training.as_strings(user_ids)).map(self._user_bias).fillna(0.0)
        return self._mu + users.to_numpy(np.float64)[:, None] + self.item_bias(item_ids)[None, :]

    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        io.write_json(os.path.join(directory, "content_bias.json"), {
            "mu": self._mu, "user_bias": self._user_bias, "weights": self._weights.tolist(),
            "categories": self._categories, "boundaries": self._boundaries})

    def load(self, directory: str, data: Dataset, split: Split) -> None:
        saved = io.read_json(os.path.join(directory, "content_bias.json"))
        self._mu, self._user_bias = saved["mu"], saved["user_bias"]
        self._weights = np.asarray(saved["weights"], np.float64)
        self._categories, self._boundaries = saved["categories"], saved["boundaries"]
        self._items = data.items.set_index(data.items["item_id"].astype(str))


def _damped_means(values: pd.Series, keys: pd.Series, shrinkage: float) -> pd.Series:
    """Per key: sum of values / (count + shrinkage)."""
    grouped = values.groupby(keys.to_numpy())
    return grouped.sum() / (grouped.count() + shrinkage)
