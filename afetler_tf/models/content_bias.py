"""Content bias: the rating a model can give a new item from its content alone.

    r(u, i) = mu + b_u + c(x_i) + t_u . x_i

mu is the training mean rating; b_u the user's mean deviation from it,
damped towards 0 (``shrinkage`` pseudo-interactions); c the ranker's own
content regression (:class:`afetler_tf.layers.content.ContentRegression`: categories and
numeric buckets such as the year, x_i) fitted, weighted by each warm item's
number of training interactions, to the warm items' damped mean residuals
b_i of r - mu - b_u; t_u the user's taste for content, a ridge fit
(``taste_ridge``, :func:`afetler_tf.layers.content.ridge_per_key`) of the user's
residuals r - mu - b_u - b_i on x_i (as AFETLER's cold path does, there
scaled by a factor fitted on validation data; here unscaled). No item id is
used, so a cold item is rated like any other: a reference for protocol C's
RMSE/MAE (what content explains of a new item's ratings, without any
interaction model). Catalogue scores are the predicted ratings.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd

from afetler_tf import files, training
from afetler_tf.data.schema import Dataset, Split
from afetler_tf.features import FeatureSpace, ItemFeatures
from afetler_tf.layers.content import ContentRegression, ridge_per_key
from afetler_tf.models.base import Recommender, check_pairs


class ContentBias(Recommender):
    """mu + b_u + c(content of i) + t_u . content of i (module docstring).

    Example:
        model = ContentBias(Config(model="content_bias"))
        model.fit(data, split)
        model.score(["1"], ["1682"])  # a rating, also for items never trained on
    """

    name = "content_bias"
    predicts_ratings = True

    def __init__(self, config, shrinkage: float = 5.0, ridge: float = 1.0, taste_ridge: float = 10.0):
        super().__init__(config)
        self._shrinkage, self._ridge, self._taste_ridge = float(shrinkage), float(ridge), float(taste_ridge)
        self._mu, self._user_bias, self._taste = 0.0, {}, {}
        self._space, self._regression = None, None

    def fit(self, data: Dataset, split: Split, verbose: int = 1) -> dict:
        """Learns from ``split.train``'s rated rows only (logs may mix rated and
        unrated interactions). Returns {"items", "r2"} of the content fit.

        Raises:
            ValueError: The data has no ratings (implicit feedback).
        """
        if not data.has_ratings:
            raise ValueError(f"{data.name}: content_bias predicts ratings, and these interactions "
                             f"have none (implicit feedback); use category_popularity instead.")
        rated = split.train[split.train["rating"].notna().to_numpy()]
        train = rated.assign(user_id=rated["user_id"].astype(str), item_id=rated["item_id"].astype(str))
        self._build(data, split)
        self._mu = float(train["rating"].mean())
        self._user_bias = _damped_means(train["rating"] - self._mu, train["user_id"],
                                        self._shrinkage).to_dict()
        residual = train["rating"] - self._mu - train["user_id"].map(self._user_bias)
        item_bias = _damped_means(residual, train["item_id"], self._shrinkage)
        counts = train["item_id"].value_counts().reindex(item_bias.index).to_numpy(np.float64)
        fitted = self._regression.fit(self._space.item_features(item_bias.index), item_bias.to_numpy(),
                                      weights=counts, ridge=self._ridge)
        users = pd.Index(sorted(train["user_id"].unique()))
        taste = ridge_per_key(users.get_indexer(train["user_id"]), self._design(train["item_id"]),
                              (residual - train["item_id"].map(item_bias)).to_numpy(np.float64),
                              len(users), self._taste_ridge)
        self._taste = dict(zip(users, taste))
        if verbose:
            print(f"content_bias: {fitted['items']} items, content explains R^2 = "
                  f"{fitted['r2']:.3f} of their biases")
        return fitted

    def _build(self, data: Dataset, split: Split) -> None:
        self._space = FeatureSpace.from_data(data, split.train)
        space = self._space
        features = ItemFeatures(space.item_ids, space.categories, space.title_vocab,
                                space.item_numeric, dim=1)
        self._regression = ContentRegression(features, len(space.item_ids))

    def item_bias(self, item_ids: Sequence[str]) -> np.ndarray:
        """c(x_i), (n,); an item with no known content gets the intercept."""
        return self._regression(self._space.item_features(training.as_strings(item_ids))
                                ).numpy().astype(np.float64)

    def _design(self, item_ids: Sequence[str]) -> np.ndarray:
        """x_i: the content regressors, (n, width) float64."""
        return training.batched(self._regression.design, self._space.item_features(
            training.as_strings(item_ids))).astype(np.float64)

    def _users(self, user_ids: Sequence[str]) -> np.ndarray:
        return pd.Series(training.as_strings(user_ids)).map(self._user_bias).fillna(0.0).to_numpy(
            np.float64)

    def _tastes(self, user_ids: Sequence[str]) -> np.ndarray:
        """t_u, (n, width); 0 for unknown users."""
        zero = np.zeros(self._regression.width)
        return np.stack([self._taste.get(u, zero) for u in training.as_strings(user_ids)])

    def score(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        check_pairs(user_ids, item_ids)
        taste = np.sum(self._tastes(user_ids) * self._design(item_ids), 1)
        return self._mu + self._users(user_ids) + self.item_bias(item_ids) + taste

    def score_all(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        taste = self._tastes(user_ids) @ self._design(item_ids).T  # (users, items)
        return self._mu + self._users(user_ids)[:, None] + self.item_bias(item_ids)[None, :] + taste

    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        files.write_json(os.path.join(directory, "content_bias.json"), {
            "mu": self._mu, "user_bias": self._user_bias,
            "intercept": float(self._regression.intercept.numpy()),
            "weight": self._regression.weight.numpy().tolist(),
            "taste": {u: t.tolist() for u, t in self._taste.items()}})

    def load(self, directory: str, data: Dataset, split: Split) -> None:
        saved = files.read_json(os.path.join(directory, "content_bias.json"))
        self._build(data, split)
        self._mu, self._user_bias = saved["mu"], saved["user_bias"]
        self._regression.intercept.assign(saved["intercept"])
        self._regression.weight.assign(np.asarray(saved["weight"], np.float32))
        self._taste = {u: np.asarray(t, np.float64) for u, t in saved["taste"].items()}


def _damped_means(values: pd.Series, keys: pd.Series, shrinkage: float) -> pd.Series:
    """Per key: sum of values / (count + shrinkage)."""
    grouped = values.groupby(keys.to_numpy())
    return grouped.sum() / (grouped.count() + shrinkage)
