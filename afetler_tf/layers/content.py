"""Item content as regressors: the content bias of never-trained items, and per-key ridge fits."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class ContentRegression(tf.keras.layers.Layer):
    """An item bias from content, for the ranker's never-trained item ids.

        b(x) = w_0 + w_cat . m / max(|m|, 1) + sum_col w_col[bucket(x_col)]

    with m the item's category multi-hot and one weight per bucket of each
    numeric attribute (a missing value falls in bucket 0, with the lowest). Non-trainable: it is
    fitted after training (:meth:`fit`; in AFETLER by the cold-item path,
    :class:`~afetler_tf.layers.cold_items.ColdItemPath`) to the learned item
    biases of the warm items; until then every weight is 0, so the ranker is
    unchanged. ``routed`` marks the item-vocabulary rows whose
    bias it replaces (row 0 = OOV, always; rarely seen items when the GAN's
    min_interactions asks for it).

    Args:
        item_features: The candidate tower's ItemFeatures (shared; supplies
            the category lookup and the numeric bucketisers).
        num_items: Size of the ranker's item vocabulary (rows: num_items + 1).

    Input: raw candidate features (batch,). Output: (batch,) float32.
    """

    def __init__(self, item_features, num_items: int, **kwargs):
        super().__init__(**kwargs)
        self.item_features = item_features
        self._buckets = item_features.numeric_buckets
        width = item_features.num_categories + sum(self._buckets.values())
        self.weight = self.add_weight(name="weight", shape=(width,), initializer="zeros",
                                      trainable=False)
        self.intercept = self.add_weight(name="intercept", shape=(), initializer="zeros",
                                         trainable=False)
        routed = np.zeros(num_items + 1, np.float32)
        routed[0] = 1.0
        self.routed = self.add_weight(name="routed", shape=(num_items + 1,), trainable=False,
                                      initializer=tf.keras.initializers.Constant(routed))
        self.width = width

    def design(self, features):
        """Raw candidate features (batch,) -> (batch, width) regressors (no intercept)."""
        multi_hot = self.item_features.categories_multi_hot(features["categories"])
        parts = [multi_hot / tf.maximum(tf.reduce_sum(multi_hot, -1, keepdims=True), 1.0)]
        for col, depth in self._buckets.items():
            bucket = self.item_features.bucket(col, features[col])
            parts.append(tf.one_hot(tf.cast(bucket, tf.int32), depth))
        return tf.concat(parts, -1)

    def routed_items(self, index):
        """Item-lookup indices (batch,) -> (batch,) bool: bias from content."""
        return tf.gather(self.routed, index) > 0.5

    def bias(self, design):
        """(batch, width) regressors (:meth:`design`) -> (batch,) content bias."""
        return self.intercept + tf.linalg.matvec(design, self.weight)

    def call(self, features):
        return self.bias(self.design(features))

    def fit(self, features: dict, targets, weights=None, ridge: float = 1.0,
            routed_index=None) -> dict:
        """Weighted ridge fit of ``targets`` (n,) (learned item biases) on the
        content of ``features`` (n items); ``weights`` (n,) per item (default
        1; the caller passes training interactions, so the fit minimises the
        error per interaction). The penalty ``ridge * mean(weights)`` spares
        the intercept; ``ridge=0`` is plain least squares (minimum norm).
        ``routed_index``: item-lookup indices to route besides OOV.

        Returns: {"items": n, "r2": weighted R^2 of the fit}.
        """
        x = self.design(features).numpy().astype(np.float64)  # (n, width)
        y = np.asarray(targets, np.float64).reshape(-1)
        w = np.ones(len(y)) if weights is None else np.asarray(weights, np.float64).reshape(-1)
        a = np.concatenate([np.ones((len(y), 1)), x], 1) * np.sqrt(w)[:, None]
        penalty = np.sqrt(ridge * w.mean()) * np.eye(a.shape[1])[1:]
        coef = np.linalg.lstsq(np.concatenate([a, penalty]),
                               np.concatenate([y * np.sqrt(w), np.zeros(len(penalty))]),
                               rcond=None)[0]
        self.intercept.assign(float(coef[0]))
        self.weight.assign(coef[1:].astype(np.float32))
        routed = np.zeros(self.routed.shape[0], np.float32)
        routed[0] = 1.0
        if routed_index is not None:
            routed[np.asarray(routed_index, np.int64)] = 1.0
        self.routed.assign(routed)
        fitted = coef[0] + x @ coef[1:]
        mean = np.average(y, weights=w)
        total = np.average((y - mean) ** 2, weights=w)
        r2 = 1.0 - np.average((y - fitted) ** 2, weights=w) / total if total > 0 else 0.0
        return {"items": int(len(y)), "r2": float(r2)}


def ridge_per_key(keys, design, targets, size: int, ridge: float, chunk: int = 4096) -> np.ndarray:
    """Per key k in [0, size): argmin_t sum_{i: keys_i = k} (targets_i - t . design_i)^2
    + ridge * |t|^2, i.e. (X_k'X_k + ridge I)^-1 X_k'y_k; 0 for keys
    without rows. Rows are accumulated in chunks (memory: size x width^2).

    Returns: (size, width) float64."""
    if ridge <= 0:
        raise ValueError(f"ridge must be > 0 (keys without rows have no data), got {ridge}")
    order = np.argsort(keys, kind="stable")
    keys, design, targets = keys[order], design[order], targets[order]
    width = design.shape[1]
    gram, moment = np.zeros((size, width * width)), np.zeros((size, width))
    for lo in range(0, len(keys), chunk):
        k, x, y = keys[lo:lo + chunk], design[lo:lo + chunk], targets[lo:lo + chunk]
        starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])  # one segment per key
        outer = (x[:, :, None] * x[:, None, :]).reshape(len(k), -1)
        gram[k[starts]] += np.add.reduceat(outer, starts)
        moment[k[starts]] += np.add.reduceat(x * y[:, None], starts)
    system = gram.reshape(size, width, width) + ridge * np.eye(width)[None]
    return np.linalg.solve(system, moment[:, :, None])[:, :, 0]
