"""DeepFM over user and item fields: r̂ = μ + b + FM + deep.

Fields (each present only when the data has it): user id, age (bucketised),
gender, occupation, zip prefix; item id, categories (multi-valued: the mean of
the category embeddings), year (bucketised). Every field is looked up inside the
model (``StringLookup``/``Discretization`` with an out-of-vocabulary or missing
bucket), so raw values go in and unknown ids are answered.

With e_f the k-dim embedding and w_f the first-order weight of field f:
    FM   = Σ_f w_f + ½ Σ_k ((Σ_f e_fk)² − Σ_f e_fk²)
    deep = MLP([e_1 ‖ … ‖ e_F])
User and item fields are encoded separately, so ``score_all`` encodes every
user and item once and only runs the interaction part on the pairs.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from afetler_tf import files, training
from afetler_tf.config import Config, DeepFMConfig
from afetler_tf.data.schema import Dataset, Split
from afetler_tf.models.base import Recommender

MISSING = -1e9  # stand-in for NaN: falls in the lowest ("missing") bucket
_SPEC_FILE = "deepfm_spec.json"
_WEIGHTS = "deepfm_weights"
_USER_STRINGS = ("gender", "occupation", "zip")
_PAIR_BATCH = 262144


@dataclasses.dataclass
class Field:
    """One input field: raw column ``name`` of the user or item side.

    Attributes:
        name: Raw feature name (``user_id``, ``age``, ``categories``, ...).
        side: "user" or "item".
        kind: "string", "multi" (``|``-joined strings) or "numeric".
        values: Vocabulary (string kinds) or bucket boundaries (numeric).
        prefix: Keep only the first ``prefix`` characters (0: all), e.g. zip.
    """

    name: str
    side: str
    kind: str
    values: list
    prefix: int = 0


def build_fields(data: Dataset, train: pd.DataFrame, cfg: DeepFMConfig) -> list[Field]:
    """Fields and their vocabularies/boundaries; ids come from ``train`` only."""
    fields = [Field("user_id", "user", "string", _vocab(train["user_id"]))]
    users = data.users
    if "age" in users:
        fields.append(Field("age", "user", "numeric", _boundaries(users["age"], cfg.numeric_buckets)))
    for name in _USER_STRINGS:
        if name in users:
            prefix = cfg.zip_prefix if name == "zip" else 0
            column = users[name].astype(str).str.slice(0, prefix or None)
            fields.append(Field(name, "user", "string", _vocab(column), prefix))
    fields.append(Field("item_id", "item", "string", _vocab(train["item_id"])))
    items = data.items
    if "categories" in items:
        fields.append(Field("categories", "item", "multi", _vocab(items["categories"].explode().dropna())))
    if "year" in items:
        fields.append(Field("year", "item", "numeric", _boundaries(items["year"], cfg.numeric_buckets)))
    return fields


def _vocab(column: pd.Series) -> list[str]:
    return sorted(set(training.as_strings(column.dropna())) - {""})


def _boundaries(column: pd.Series, buckets: int) -> list[float]:
    values = pd.to_numeric(column, errors="coerce").dropna().to_numpy(float)
    inner = np.unique(np.quantile(values, np.linspace(0, 1, buckets + 1)[1:-1])) if len(values) else []
    return [MISSING / 10] + [float(b) for b in inner]  # bucket 0 holds only "missing"


class FieldEncoder(tf.keras.layers.Layer):
    """Raw values of one field -> (embedding (batch, k), first-order weight (batch,))."""

    def __init__(self, field: Field, dim: int, l2: float, **kwargs):
        super().__init__(name=f"field_{field.name}", **kwargs)
        self._field = field
        if field.kind == "numeric":
            self._lookup = tf.keras.layers.Discretization(bin_boundaries=field.values)
            rows = len(field.values) + 1
        else:
            mask = "" if field.kind == "multi" else None
            self._lookup = tf.keras.layers.StringLookup(vocabulary=field.values, mask_token=mask)
            rows = self._lookup.vocabulary_size()
        reg = tf.keras.regularizers.L2(l2) if l2 > 0 else None
        init = tf.keras.initializers.RandomNormal(stddev=0.01)
        self._embedding = tf.keras.layers.Embedding(rows, dim, embeddings_initializer=init,
                                                    embeddings_regularizer=reg)
        self._weight = tf.keras.layers.Embedding(rows, 1, embeddings_initializer="zeros",
                                                 embeddings_regularizer=reg)

    def call(self, values):
        field = self._field
        if field.kind == "numeric":
            values = tf.cast(values, tf.float32)
            values = tf.where(tf.math.is_nan(values), MISSING, values)
        elif field.prefix:
            values = tf.strings.substr(values, 0, field.prefix)
        if field.kind != "multi":
            rows = self._lookup(values)  # (batch,)
            return self._embedding(rows), self._weight(rows)[:, 0]
        tokens = tf.strings.split(values, sep="|").to_tensor(default_value="")  # (batch, L)
        rows = self._lookup(tokens)  # (batch, L); 0 = padding
        mask = tf.cast(rows > 0, tf.float32)[..., None]  # (batch, L, 1)
        count = tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)  # (batch, 1)
        embedding = tf.reduce_sum(self._embedding(rows) * mask, axis=1) / count
        weight = tf.reduce_sum(self._weight(rows) * mask, axis=1) / count
        return embedding, weight[:, 0]


class DeepFMNet(tf.keras.Model):
    """The Keras model: dict of raw field values in, predicted ratings (batch,) out."""

    def __init__(self, fields: Sequence[Field], mean: float, cfg: DeepFMConfig, **kwargs):
        super().__init__(**kwargs)
        self.fields = list(fields)
        self.encoders = [FieldEncoder(f, cfg.embedding_dim, cfg.l2) for f in self.fields]
        reg = tf.keras.regularizers.L2(cfg.dense_l2) if cfg.dense_l2 > 0 else None
        layers = []
        for units in cfg.hidden_units:
            layers += [tf.keras.layers.Dense(units, "relu", kernel_regularizer=reg),
                       tf.keras.layers.Dropout(cfg.dropout)]
        self.deep = tf.keras.Sequential(layers + [tf.keras.layers.Dense(1, kernel_regularizer=reg)])
        self.mean = tf.constant(mean, tf.float32)
        self._flat_dim = len(self.fields) * cfg.embedding_dim

    def encode(self, inputs: dict, side: str):
        """Field embeddings (batch, F_side, k) and summed first-order weights (batch,)."""
        parts = [enc(inputs[f.name]) for f, enc in zip(self.fields, self.encoders) if f.side == side]
        return tf.stack([e for e, _ in parts], axis=1), tf.add_n([w for _, w in parts])

    def interact(self, user_emb, user_w, item_emb, item_w, training=False):
        """μ + first order + FM second order + deep, for aligned rows; (batch,)."""
        e = tf.concat([user_emb, item_emb], axis=1)  # (batch, F, k)
        second = 0.5 * tf.reduce_sum(tf.square(tf.reduce_sum(e, 1)) - tf.reduce_sum(tf.square(e), 1), 1)
        flat = tf.reshape(e, [-1, self._flat_dim])  # (batch, F*k)
        deep = self.deep(flat, training=training)[:, 0]
        return self.mean + user_w + item_w + second + deep

    # One generic signature: every call runs the same graph, so scores are
    # bit-identical whatever the chunk sizes (and after save/load).
    @tf.function(input_signature=[tf.TensorSpec([None, None, None]), tf.TensorSpec([None]),
                                  tf.TensorSpec([None, None, None]), tf.TensorSpec([None])])
    def interact_all(self, user_emb, user_w, item_emb, item_w):
        """Every user row against every item row; (n_users, n_items)."""
        c, n = tf.shape(user_emb)[0], tf.shape(item_emb)[0]
        ue = tf.repeat(user_emb, n, axis=0)  # (c*n, F_user, k), item index fastest
        ie = tf.tile(item_emb, [c, 1, 1])  # (c*n, F_item, k)
        scores = self.interact(ue, tf.repeat(user_w, n), ie, tf.tile(item_w, [c]))
        return tf.reshape(scores, [c, n])

    def call(self, inputs, training=False):
        return self.interact(*self.encode(inputs, "user"), *self.encode(inputs, "item"), training=training)


class DeepFM(Recommender):
    """DeepFM rating model over id and side-information fields (protocol R baseline).

    Example:
        model = DeepFM(Config(model="deepfm"))
        model.fit(data, split)
        model.score_all(["1", "2"], ["50", "181"])  # (2, 2) predicted ratings
    """

    name = "deepfm"
    predicts_ratings = True

    def __init__(self, config: Config):
        super().__init__(config)
        self.net: DeepFMNet | None = None
        self._mean = 0.0
        self._users = self._items = None  # raw side tables indexed by id

    def fit(self, data: Dataset, split: Split, verbose: int = 1) -> dict:
        cfg = self.config.deepfm
        training.set_seed(self.config.train.seed)
        self._set_tables(data)
        self._build(build_fields(data, split.train, cfg), float(training.ratings(split.train).mean()))
        train_ds = self._dataset(split.train, shuffle=True)
        val_ds = self._dataset(split.validation) if len(split.validation) else None
        return training.fit_with_early_stopping(
            self.net, train_ds, val_ds, cfg.epochs, cfg.patience, monitor="val_rmse", verbose=verbose)

    def _set_tables(self, data: Dataset) -> None:
        users = data.users.copy()
        users["user_id"] = training.as_strings(users["user_id"])
        items = data.items.copy()
        items["item_id"] = training.as_strings(items["item_id"])
        if "categories" in items:
            items["categories"] = items["categories"].map(_join)
        self._users = users.drop_duplicates("user_id").set_index("user_id")
        self._items = items.drop_duplicates("item_id").set_index("item_id")

    def _build(self, fields: list[Field], mean: float) -> None:
        cfg = self.config.deepfm
        self._mean = mean
        self.net = DeepFMNet(fields, mean, cfg)
        self.net.compile(optimizer=tf.keras.optimizers.Adam(cfg.learning_rate), loss="mse",
                         metrics=[tf.keras.metrics.RootMeanSquaredError(name="rmse")])

    def side_features(self, ids: Sequence[str], side: str) -> dict:
        """Raw feature arrays of the ``side`` fields for ``ids`` (unknown ids: missing)."""
        ids = training.as_strings(ids)
        table = (self._users if side == "user" else self._items).reindex(ids)
        out = {}
        for field in self.net.fields:
            if field.side != side:
                continue
            if field.name in ("user_id", "item_id"):
                out[field.name] = ids
            elif field.kind == "numeric":
                out[field.name] = pd.to_numeric(table[field.name], errors="coerce").to_numpy("float32")
            else:
                out[field.name] = table[field.name].fillna("").astype(str).to_numpy(object)
        return out

    def _dataset(self, frame: pd.DataFrame, shuffle: bool = False) -> tf.data.Dataset:
        features = self._features_of(frame["user_id"], frame["item_id"])
        batch = self.config.deepfm.batch_size if shuffle else 8192
        return training.make_dataset(features, training.ratings(frame), batch, shuffle,
                                      self.config.train.seed)

    def score(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        if len(user_ids) != len(item_ids):
            raise ValueError(f"score() needs as many users as items, got "
                             f"{len(user_ids)} and {len(item_ids)}.")
        return training.predict_batched(self.net, self._features_of(user_ids, item_ids), _PAIR_BATCH // 4)

    def score_all(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """Encodes users and items once, then interacts them in chunks of users."""
        self._check_fitted()
        u_emb, u_w = self.net.encode(self.side_features(user_ids, "user"), "user")
        i_emb, i_w = self.net.encode(self.side_features(item_ids, "item"), "item")
        n_users, n_items = len(user_ids), len(item_ids)
        chunk = max(1, _PAIR_BATCH // max(n_items, 1))
        rows = [self.net.interact_all(u_emb[s:s + chunk], u_w[s:s + chunk], i_emb, i_w).numpy()
                for s in range(0, n_users, chunk)]
        return np.concatenate(rows).astype("float64") if rows else np.zeros((0, n_items))

    def save(self, directory: str) -> None:
        self._check_fitted()
        os.makedirs(directory, exist_ok=True)
        self.net.save_weights(os.path.join(directory, _WEIGHTS))
        spec = {"fields": [dataclasses.asdict(f) for f in self.net.fields], "mean": self._mean,
                "config": dataclasses.asdict(self.config.deepfm)}
        files.write_json(os.path.join(directory, _SPEC_FILE), spec)

    def load(self, directory: str, data: Dataset, split: Split) -> None:
        """Rebuilds from the saved fields (not from ``data``); ``data`` gives side tables."""
        spec = files.read_json(os.path.join(directory, _SPEC_FILE))
        raw = {**spec["config"], "hidden_units": tuple(spec["config"]["hidden_units"])}
        self.config = self.config.replace(deepfm=DeepFMConfig(**raw))
        self._set_tables(data)
        self._build([Field(**f) for f in spec["fields"]], spec["mean"])
        self.net(self._features_of(["?"], ["?"]))  # creates the variables before restoring
        self.net.load_weights(os.path.join(directory, _WEIGHTS)).expect_partial()

    def _features_of(self, user_ids, item_ids) -> dict:
        return {**self.side_features(user_ids, "user"), **self.side_features(item_ids, "item")}

    def _check_fitted(self) -> None:
        if self.net is None:
            raise RuntimeError("DeepFM is not fitted: call fit() or load() first.")


def _join(categories) -> str:
    """A list of categories as one ``|``-joined string ("" when none)."""
    if isinstance(categories, str):
        return categories
    if categories is None or (isinstance(categories, float) and np.isnan(categories)):
        return ""
    return "|".join(str(c) for c in categories)
