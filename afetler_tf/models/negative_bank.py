"""Cross-batch negatives: a FIFO bank of earlier batches' candidate vectors.

The retrieval softmax of one batch only sees the batch's own candidates as
negatives; the bank appends the last ``size`` candidate vectors (with their
ids and sampling probabilities, so accidental hits are removed and log-Q
still applies) as extra negatives. Vectors are stored without gradient.
"""

from __future__ import annotations

import tensorflow as tf


class NegativeBank(tf.Module):
    """FIFO bank of ``size`` (vector, id, probability) rows.

    Example:
        bank = NegativeBank(4096, dim=32)
        v, ids, prob = bank.read()        # only the rows written so far
        bank.write(p_v, item_ids, probs)  # overwrites the oldest rows
    """

    def __init__(self, size: int, dim: int, name: str = "negative_bank"):
        super().__init__(name=name)
        if size <= 0 or dim <= 0:
            raise ValueError(f"NegativeBank needs positive size and dim, got {size!r}, {dim!r}")
        self._size = size
        self.vectors = tf.Variable(tf.zeros((size, dim)), trainable=False)
        self.ids = tf.Variable(tf.fill((size,), ""), trainable=False)
        self.probabilities = tf.Variable(tf.ones((size,)), trainable=False)
        self.filled = tf.Variable(0, trainable=False, dtype=tf.int32)
        self.position = tf.Variable(0, trainable=False, dtype=tf.int32)

    def read(self):
        """(vectors (n, d), ids (n,), probabilities (n,)), n = rows filled."""
        n = self.filled
        return self.vectors[:n], self.ids[:n], self.probabilities[:n]

    def write(self, vectors, ids, probabilities) -> None:
        """Stores a batch (stop-gradient), overwriting the oldest rows."""
        batch = tf.shape(vectors)[0]
        rows = tf.math.floormod(self.position + tf.range(batch), self._size)[:, None]  # (batch, 1)
        self.vectors.scatter_nd_update(rows, tf.stop_gradient(vectors))
        self.ids.scatter_nd_update(rows, ids)
        self.probabilities.scatter_nd_update(rows, tf.cast(probabilities, tf.float32))
        self.position.assign(tf.math.floormod(self.position + batch, self._size))
        self.filled.assign(tf.minimum(self.filled + batch, self._size))
