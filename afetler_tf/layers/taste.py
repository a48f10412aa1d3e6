"""Users' taste for content: a term the ranking head adds to a trained item's rating.

    rating += kappa_w * t'_u . x(v)

t'_u the user's taste, a ridge regression of the ranker's residuals on the
items' content regressors x(v), and kappa_w in [0, 1] its share, both fitted
after training (:mod:`afetler_tf.models.taste`); 0 until then.
"""

from __future__ import annotations

import tensorflow as tf


class UserTaste(tf.keras.layers.Layer):
    """kappa_w * t'_u . x(v) (module docstring); non-trainable, 0 until fitted.

    Args:
        num_users: Size of the ranker's user vocabulary (rows: num_users + 1, row 0 = unknown).
        width: Number of content regressors x(v).
    """

    def __init__(self, num_users: int, width: int, **kwargs):
        super().__init__(**kwargs)
        self.user_taste = self.add_weight(name="user_taste", shape=(num_users + 1, width),
                                          initializer="zeros", trainable=False)
        self.taste_scale = self.add_weight(name="taste_scale", shape=(), initializer="zeros",
                                           trainable=False)

    def call(self, users, design):
        """User-lookup indices (batch,), regressors (batch, width) -> (batch, 1)."""
        return self.taste_scale * tf.reduce_sum(tf.gather(self.user_taste, users) * design, -1,
                                                keepdims=True)
