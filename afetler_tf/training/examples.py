"""Training examples: raw feature dicts of (user, item) pairs and their batches.

The (user, item) pairs' features with their log-Q sampling probabilities
(docs/design.md §1: retrieval without them loses to popularity), the rating
labels, and the ``tf.data`` pipeline that shuffles and batches them.
"""

from __future__ import annotations

from typing import Mapping, Optional

import numpy as np
import pandas as pd
import tensorflow as tf

from afetler_tf.features import FeatureSpace


def as_strings(values) -> np.ndarray:
    """Any id sequence (list, numpy, pandas StringDtype) as an object array of str."""
    return np.asarray(pd.Series(values, dtype="object").astype(str).to_numpy(object))


def ratings(frame: pd.DataFrame) -> np.ndarray:
    """The ``rating`` column as float32, with a clear error for implicit data."""
    if "rating" not in frame or frame["rating"].isna().any():
        raise ValueError("Rating models (mf, deepfm) need an explicit `rating` for every "
                         "interaction; use popularity, two_tower or afetler for implicit data.")
    return frame["rating"].to_numpy("float32")


def sampling_probabilities(train: pd.DataFrame) -> pd.Series:
    """item_id -> frequency in ``train`` / number of training interactions."""
    return train["item_id"].value_counts() / len(train)


def pair_examples(space: FeatureSpace, frame: pd.DataFrame, probabilities: pd.Series) -> dict:
    """Raw features of the (user, item) pairs of ``frame``, plus labels.

    Returns:
        dict of numpy arrays of length len(frame): query and candidate
        features, ``rating`` (float32; 0 where missing) and
        ``sampling_probability`` (items unseen in training get the smallest
        observed probability, so log-Q stays finite).
    """
    out = space.user_features(frame["user_id"].to_numpy(object))
    out.update(space.item_features(frame["item_id"].to_numpy(object)))
    out["rating"] = frame["rating"].fillna(0.0).to_numpy(np.float32)
    floor = float(probabilities.min()) if len(probabilities) else 1.0
    prob = frame["item_id"].map(probabilities).astype("float64").fillna(floor)
    out["sampling_probability"] = prob.to_numpy(np.float32)
    return out


def make_dataset(features: Mapping[str, np.ndarray], labels: Optional[np.ndarray], batch_size: int,
                 shuffle: bool = False, seed: int = 42,
                 drop_remainder: bool = False) -> tf.data.Dataset:
    """Batches of features (or (features, labels)); reshuffled every epoch when ``shuffle``.

    In-memory data is sharded across workers by element (AutoShardPolicy.DATA):
    every worker holds the same arrays and takes its share of each batch.

    The pipeline shuffles and batches row numbers and gathers each batch's
    rows in one op per feature: the same batches as slicing, shuffling and
    batching the rows themselves (the shuffle's order depends on its seed
    only), at a fraction of the cost with string features and histories.
    The pipeline is not autotuned (a fixed prefetch of two batches).
    """
    tensors = {key: tf.constant(value) for key, value in features.items()}
    label_tensor = None if labels is None else tf.constant(labels)
    n = len(next(iter(features.values())))
    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)

    def rows(index):
        batch = {key: tf.gather(value, index) for key, value in tensors.items()}
        return batch if label_tensor is None else (batch, tf.gather(label_tensor, index))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    # No autotuning thread: nothing here runs in parallel to tune, and a
    # dropped iterator waits for that thread's current sleep (seconds, late
    # in a fit; docs/decisions.md, 2026-11-30, "In-memory input pipelines
    # are not autotuned").
    options.autotune.enabled = False
    return ds.batch(batch_size, drop_remainder=drop_remainder).map(rows).with_options(
        options).prefetch(2)
