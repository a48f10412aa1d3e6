"""Feature preprocessing that lives inside the towers.

A :class:`FeatureSpace` holds what the preprocessing layers are built from
(vocabularies and bucket boundaries, learned from the training part only) and
turns table rows into the raw feature dicts the models take. The Keras layers
(:class:`UserFeatures`, :class:`ItemFeatures`) map those raw strings and
numbers to embeddings, so a trained or exported model takes raw features and
answers for ids it never saw (one OOV bucket per lookup).

Raw query features: ``user_id`` (str) plus the user table's attributes
(strings, or floats for numeric columns such as ``age``).
Raw candidate features: ``item_id`` (str), ``categories`` (str, ``|``-joined),
``title`` (str) and the item table's numeric attributes (``year``; NaN allowed).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from afetler_tf.data.schema import Dataset

MISSING = -1e9  # numeric stand-in for NaN: falls below every bucket boundary
ITEM_SKIP_COLUMNS = ("item_id", "title", "categories", "category")


@dataclasses.dataclass
class FeatureSpace:
    """Vocabularies and bucket boundaries, learned from training data.

    Attributes:
        user_ids: Users of the training interactions.
        item_ids: Items of the training interactions.
        user_categorical: user column -> vocabulary (values seen >= 2 times).
        user_numeric: user column -> bucket boundaries.
        item_numeric: item column -> bucket boundaries (e.g. ``year``).
        categories: Item category vocabulary.
        title_vocab: Title token vocabulary ([] when there are no titles).
        users: User table indexed by user_id (attribute look-up).
        items: Item table indexed by item_id (content look-up).
    """

    user_ids: list
    item_ids: list
    user_categorical: dict
    user_numeric: dict
    item_numeric: dict
    categories: list
    title_vocab: list
    users: pd.DataFrame
    items: pd.DataFrame

    @classmethod
    def from_data(cls, data: Dataset, train: pd.DataFrame, min_count: int = 2) -> "FeatureSpace":
        users = data.users.set_index("user_id", drop=False)
        items = data.items.set_index("item_id", drop=False)
        user_cat, user_num = {}, {}
        for col in data.users.columns.drop("user_id"):
            if pd.api.types.is_numeric_dtype(data.users[col]):
                user_num[col] = _boundaries(data.users[col])
            else:
                user_cat[col] = _vocabulary(data.users[col].astype(str), min_count)
        item_num = {col: _boundaries(data.items[col]) for col in data.items.columns
                    if col not in ITEM_SKIP_COLUMNS and pd.api.types.is_numeric_dtype(data.items[col])}
        categories = sorted({c for cats in data.items["categories"] for c in cats})
        return cls(
            user_ids=sorted(train["user_id"].unique().tolist()),
            item_ids=sorted(train["item_id"].unique().tolist()),
            user_categorical=user_cat, user_numeric=user_num, item_numeric=item_num,
            categories=categories, title_vocab=_title_vocabulary(data.items), users=users, items=items)

    def user_features(self, user_ids: Sequence[str]) -> dict:
        """Raw query features for ``user_ids`` (unknown users: empty attributes)."""
        ids = pd.Index(np.asarray(user_ids, dtype=object))
        rows = self.users.reindex(ids)
        out = {"user_id": ids.to_numpy(object).astype(str)}
        for col in self.user_categorical:
            out[col] = rows[col].astype(object).where(rows[col].notna(), "").astype(str).to_numpy(object)
        for col in self.user_numeric:
            out[col] = rows[col].astype("float64").fillna(MISSING).to_numpy(np.float32)
        return out

    def item_features(self, item_ids: Sequence[str], items: pd.DataFrame | None = None) -> dict:
        """Raw candidate features for ``item_ids``, looked up in ``items``."""
        table = self.items if items is None else items.set_index("item_id", drop=False)
        ids = pd.Index(np.asarray(item_ids, dtype=object))
        rows = table.reindex(ids)
        cats = rows["categories"].map(lambda c: "|".join(c) if isinstance(c, (list, tuple)) else "")
        out = {"item_id": ids.to_numpy(object).astype(str),
               "categories": cats.astype(str).to_numpy(object)}
        titles = rows["title"] if "title" in rows else pd.Series("", index=ids)
        out["title"] = titles.astype(object).where(titles.notna(), "").astype(str).to_numpy(object)
        for col in self.item_numeric:
            out[col] = rows[col].astype("float64").fillna(MISSING).to_numpy(np.float32)
        return out

    def category_matrix(self) -> np.ndarray:
        """Multi-hot categories per item-lookup index (row 0 = OOV: no category).

        Row i + 1 belongs to ``item_ids[i]``, matching the StringLookup of
        :class:`ItemFeatures`. Shape (len(item_ids) + 1, len(categories)).
        """
        index = {c: j for j, c in enumerate(self.categories)}
        matrix = np.zeros((len(self.item_ids) + 1, len(self.categories)), np.float32)
        cats = self.items["categories"].reindex(self.item_ids)
        for i, item_cats in enumerate(cats, start=1):
            for c in item_cats if isinstance(item_cats, (list, tuple)) else ():
                matrix[i, index[c]] = 1.0
        return matrix


    def primary_categories(self) -> np.ndarray:
        """Index of each item's primary category per item-lookup index, -1 if none."""
        index = {c: j for j, c in enumerate(self.categories)}
        primary = self.items["category"].reindex(self.item_ids).fillna("")
        return np.array([-1] + [index.get(c, -1) for c in primary], np.int32)


def _vocabulary(values: pd.Series, min_count: int) -> list:
    counts = values[values != ""].value_counts()
    return sorted(counts[counts >= min_count].index.tolist())


def _boundaries(values: pd.Series, buckets: int = 10) -> list:
    observed = values.dropna().astype("float64")
    if observed.empty:
        return [0.0]
    qs = np.unique(np.quantile(observed, np.linspace(0, 1, buckets + 1)[:-1]))
    return [float(q) for q in qs]


def _title_vocabulary(items: pd.DataFrame, max_tokens: int = 5000) -> list:
    if "title" not in items:
        return []
    layer = tf.keras.layers.TextVectorization(max_tokens=max_tokens)
    layer.adapt(items["title"].fillna("").astype(str).to_numpy(object))
    return [t for t in layer.get_vocabulary() if t not in ("", "[UNK]")]


@tf.keras.utils.register_keras_serializable(package="afetler_tf")
class UserFeatures(tf.keras.layers.Layer):
    """Embeds raw user features: id, categorical and bucketised numeric columns.

    Input: dict with ``user_id`` (batch,) str and one (batch,) entry per column.
    Output shape: (batch, dim * number_of_fields).
    """

    def __init__(self, user_ids, categorical=None, numeric=None, dim=32, use_id=True, **kwargs):
        super().__init__(**kwargs)
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim!r}")
        self._user_ids, self._dim, self._use_id = list(user_ids), dim, use_id
        self._categorical, self._numeric = dict(categorical or {}), dict(numeric or {})
        self.id_lookup = tf.keras.layers.StringLookup(vocabulary=self._user_ids, num_oov_indices=1)
        self.id_embedding = tf.keras.layers.Embedding(len(self._user_ids) + 1, dim)
        self.fields = {col: _categorical(vocab, dim) for col, vocab in self._categorical.items()}
        self.fields.update({col: _bucketised(b, dim) for col, b in self._numeric.items()})

    def call(self, features):
        parts = [self.id_embedding(self.id_lookup(features["user_id"]))] if self._use_id else []
        parts += [layer(features[col]) for col, layer in self.fields.items()]
        return tf.concat(parts, axis=-1)

    def get_config(self):
        return {**super().get_config(), "user_ids": self._user_ids, "categorical": self._categorical,
                "numeric": self._numeric, "dim": self._dim, "use_id": self._use_id}


@tf.keras.utils.register_keras_serializable(package="afetler_tf")
class ItemFeatures(tf.keras.layers.Layer):
    """Embeds raw item features: id, categories (multi-hot), title tokens, numerics.

    Input: dict with ``item_id``, ``categories`` (``|``-joined), ``title``
    (batch,) str and one (batch,) float entry per numeric column.
    Output shape: (batch, dim * number_of_fields).
    """

    def __init__(self, item_ids, categories, title_vocab=(), numeric=None, dim=32, use_id=True,
                 **kwargs):
        super().__init__(**kwargs)
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim!r}")
        self._item_ids, self._categories = list(item_ids), list(categories)
        self._title_vocab, self._numeric = list(title_vocab), dict(numeric or {})
        self._dim, self._use_id = dim, use_id
        self.id_lookup = tf.keras.layers.StringLookup(vocabulary=self._item_ids, num_oov_indices=1)
        self.id_embedding = tf.keras.layers.Embedding(len(self._item_ids) + 1, dim)
        self.category_lookup = tf.keras.layers.StringLookup(
            vocabulary=self._categories or ["<none>"], num_oov_indices=1, output_mode="multi_hot")
        self.category_embedding = tf.keras.layers.Dense(dim, use_bias=False)
        self.title_lookup = (tf.keras.layers.TextVectorization(vocabulary=self._title_vocab)
                             if self._title_vocab else None)
        self.title_embedding = tf.keras.layers.Embedding(len(self._title_vocab) + 2, dim, mask_zero=True)
        self.fields = {col: _bucketised(b, dim) for col, b in self._numeric.items()}

    @property
    def num_categories(self) -> int:
        """Width of :meth:`categories_multi_hot` (at least 1)."""
        return max(len(self._categories), 1)

    @property
    def numeric_buckets(self) -> dict:
        """Numeric column -> number of buckets (boundaries + 1) of :meth:`bucket`."""
        return {col: len(b) + 1 for col, b in self._numeric.items()}

    def bucket(self, column: str, values):
        """(batch,) raw values of a numeric column -> (batch,) bucket indices."""
        return self.fields[column].layers[0](values)  # the Discretization of _bucketised

    def categories_multi_hot(self, categories):
        """(batch,) ``|``-joined strings -> (batch, n_categories) multi-hot."""
        multi_hot = self.category_lookup(tf.strings.split(categories, "|"))
        return multi_hot[:, 1:]  # drop the OOV column: "" and unknown names add nothing

    def embed_categories(self, multi_hot):
        """Mean category embedding, (batch, n_categories) -> (batch, dim)."""
        count = tf.maximum(tf.reduce_sum(multi_hot, axis=-1, keepdims=True), 1.0)
        return self.category_embedding(multi_hot / count)

    def call(self, features):
        parts = [self.id_embedding(self.id_lookup(features["item_id"]))] if self._use_id else []
        parts.append(self.embed_categories(self.categories_multi_hot(features["categories"])))
        if self.title_lookup is not None:
            tokens = self.title_lookup(features["title"])  # (batch, n_tokens), 0 = padding
            emb = self.title_embedding(tokens)
            mask = tf.cast(tokens > 0, emb.dtype)[..., None]
            parts.append(tf.reduce_sum(emb * mask, 1) / tf.maximum(tf.reduce_sum(mask, 1), 1.0))
        parts += [layer(features[col]) for col, layer in self.fields.items()]
        return tf.concat(parts, axis=-1)

    def get_config(self):
        return {**super().get_config(), "item_ids": self._item_ids, "categories": self._categories,
                "title_vocab": self._title_vocab, "numeric": self._numeric, "dim": self._dim,
                "use_id": self._use_id}


def _categorical(vocabulary, dim):
    return tf.keras.Sequential([
        tf.keras.layers.StringLookup(vocabulary=list(vocabulary), num_oov_indices=1),
        tf.keras.layers.Embedding(len(vocabulary) + 1, dim)])


def _bucketised(boundaries, dim):
    return tf.keras.Sequential([
        tf.keras.layers.Discretization(bin_boundaries=list(boundaries)),
        tf.keras.layers.Embedding(len(boundaries) + 1, dim)])
