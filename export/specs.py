"""The raw-feature inputs of the exported signatures, and their preparation.

The input names and dtypes come from the model's FeatureSpace (the same
dicts ``space.user_features`` / ``space.item_features`` build for training),
so an export always asks for exactly what the towers read:

    user: user_id (batch,) str + the user table's columns (str, or float32
          for numeric ones such as ``age``)
    history (models with MCAU / target attention):
          history_item_ids (batch, L) str, "" = padding, most recent first
          history_ratings (batch, L) float32, 0 = padding / implicit
    item: item_id, categories ("|"-joined), title (batch,) str + numeric
          columns such as ``year`` (float32)

Serving-side preparation (inside the signature, so every client gets it):
NaN in a numeric feature means "missing" (the FeatureSpace's stand-in
``MISSING``); NaN ratings are 0; histories longer than the training cap are
cut to it, and an empty history (L = 0) is padded to one "" entry.
"""

from __future__ import annotations

import dataclasses

import afetler_tf  # noqa: F401  (Keras-2 set-up before TensorFlow)
import numpy as np
import tensorflow as tf

from afetler_tf.features import MISSING

HISTORY_KEYS = ("history_item_ids", "history_ratings")
K_KEY = "k"


def _spec(name: str, values: np.ndarray) -> tf.TensorSpec:
    if values.dtype.kind in "OUS":
        return tf.TensorSpec([None], tf.string, name=name)
    if values.dtype.kind == "f":
        return tf.TensorSpec([None], tf.float32, name=name)
    raise ValueError(f"Feature {name!r} has dtype {values.dtype}; exports take str or float features.")


def _specs(features: dict) -> dict:
    return {name: _spec(name, np.asarray(values)) for name, values in features.items()}


@dataclasses.dataclass(frozen=True)
class InputSpecs:
    """Signature inputs of one model's exports.

    Attributes:
        user: user feature name -> TensorSpec (batch,).
        item: item feature name -> TensorSpec (batch,).
        history: The two history TensorSpecs (batch, L), or {} without MCAU.
        history_length: Cap L of the training histories.
    """

    user: dict
    item: dict
    history: dict
    history_length: int

    @classmethod
    def from_model(cls, model) -> "InputSpecs":
        """Reads the inputs off an Afetler model's FeatureSpace.

        Raises:
            ValueError: A user and an item feature share a name, or a feature
                is named ``k`` (the index's own input).
        """
        space = model.space
        user = _specs(space.user_features(["<probe>"]))
        item = _specs(space.item_features(["<probe>"]))
        clash = sorted((set(user) & set(item)) | ({K_KEY} & (set(user) | set(item))))
        if clash:
            raise ValueError(f"Feature name(s) {clash} are used twice (user, item or the index's k); "
                             f"rename the column(s) in the data before exporting.")
        history = {}
        if model.uses_history:
            history = {"history_item_ids": tf.TensorSpec([None, None], tf.string, name="history_item_ids"),
                       "history_ratings": tf.TensorSpec([None, None], tf.float32, name="history_ratings")}
        return cls(user, item, history, int(model.config.data.history_length))

    @property
    def query(self) -> dict:
        """Inputs of the query tower: user features + history."""
        return {**self.user, **self.history}

    @property
    def index(self) -> dict:
        """Inputs of the retrieval index: query inputs + scalar int32 ``k``."""
        return {**self.query, K_KEY: tf.TensorSpec([], tf.int32, name=K_KEY)}

    @property
    def ranker(self) -> dict:
        """Inputs of the ranker: query inputs + item features."""
        return {**self.query, **self.item}

    def prepare(self, features: dict) -> dict:
        """Graph-side clean-up of a request (module docstring); returns a new dict."""
        out = dict(features)
        for name, spec in {**self.user, **self.item}.items():
            if name in out and spec.dtype == tf.float32:
                out[name] = tf.where(tf.math.is_nan(out[name]), tf.constant(MISSING, tf.float32), out[name])
        if self.history and HISTORY_KEYS[0] in out:
            ids = out["history_item_ids"][:, :self.history_length]  # (batch, L)
            ratings = out["history_ratings"][:, :self.history_length]
            pad = tf.maximum(1 - tf.shape(ids)[1], 0)  # L = 0 -> one padding column
            out["history_item_ids"] = tf.pad(ids, [[0, 0], [0, pad]], constant_values="")
            ratings = tf.pad(ratings, [[0, 0], [0, pad]])
            out["history_ratings"] = tf.where(tf.math.is_nan(ratings), 0.0, ratings)
        return out
