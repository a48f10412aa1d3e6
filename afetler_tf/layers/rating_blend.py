"""The ranker's rating blended with a biased matrix factorisation's (docs/design.md §3.11).

    rating <- c + w_r * rating + w_f * f(u, v),    f(u, v) = mu + b_u + b_v + <P_u, Q_v>

for the pairs whose user and item the factorisation was trained on (and
whose item the ranker's cold-item path does not take); every other pair
keeps the ranker's own rating. The factorisation's tables and the blend's
weights (c, w_r, w_f) are fitted after training
(:mod:`afetler_tf.models.rating_blend`); the layer is non-trainable and
neutral until then (c = 0, w_r = 1, w_f = 0, nothing known).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# The layer's weights, by name (a run saved before the blend existed has none
# of them; it loads with the blend neutral, as it was fitted).
BLEND_WEIGHTS = ("factor_users", "factor_items", "factor_user_bias", "factor_item_bias", "factor_mean",
                 "factor_user_known", "factor_item_known", "blend_intercept", "blend_ranker",
                 "blend_factor")


class RatingBlend(tf.keras.layers.Layer):
    """c + w_r * rating + w_f * f(u, v) where the factorisation knows u and v (module docstring).

    Args:
        num_users, num_items: Sizes of the ranker's vocabularies (rows: size + 1, row 0 = unknown).
        dim: Width of the factors P_u, Q_v.
    """

    def __init__(self, num_users: int, num_items: int, dim: int, **kwargs):
        super().__init__(**kwargs)

        def fitted(name, shape, initializer="zeros"):
            return self.add_weight(name=name, shape=shape, initializer=initializer, trainable=False)
        self.factor_users = fitted("factor_users", (num_users + 1, dim))  # P
        self.factor_items = fitted("factor_items", (num_items + 1, dim))  # Q
        self.factor_user_bias = fitted("factor_user_bias", (num_users + 1,))  # b_u
        self.factor_item_bias = fitted("factor_item_bias", (num_items + 1,))  # b_v
        self.factor_mean = fitted("factor_mean", ())  # mu
        self.factor_user_known = fitted("factor_user_known", (num_users + 1,))  # 1: trained on
        self.factor_item_known = fitted("factor_item_known", (num_items + 1,))
        self.blend_intercept = fitted("blend_intercept", ())  # c
        self.blend_ranker = fitted("blend_ranker", (), "ones")  # w_r
        self.blend_factor = fitted("blend_factor", ())  # w_f

    def factorisation(self, users, items):
        """f(u, v) of user- and item-lookup indices (batch,) -> (batch,)."""
        dot = tf.reduce_sum(tf.gather(self.factor_users, users) * tf.gather(self.factor_items, items), -1)
        return (self.factor_mean + tf.gather(self.factor_user_bias, users)
                + tf.gather(self.factor_item_bias, items) + dot)

    def known(self, users, items):
        """(batch,) bool: the factorisation was trained on both the user and the item."""
        return (tf.gather(self.factor_user_known, users) * tf.gather(self.factor_item_known, items)) > 0.5

    def call(self, users, items, rating, eligible=None):
        """The blended rating (batch, 1) of the ranker's ``rating`` (batch, 1);
        ``eligible`` (batch,) bool: pairs that may be blended (default all)."""
        known = self.known(users, items)
        if eligible is not None:
            known = tf.logical_and(known, eligible)
        blended = (self.blend_intercept + self.blend_ranker * rating
                   + self.blend_factor * self.factorisation(users, items)[:, None])
        return tf.where(known[:, None], blended, rating)

    def set_factorisation(self, user_rows, users, user_bias, item_rows, items, item_bias, mean) -> None:
        """Writes the factorisation's tables: rows ``user_rows`` (n_u,) of the
        ranker's user lookup get factors ``users`` (n_u, dim) and biases
        ``user_bias`` (n_u,), likewise the items; every other row is zeroed
        and unknown. Row 0 (unknown ids) is never written."""
        def table(variable, rows, values):
            out = np.zeros(variable.shape, np.float32)
            out[rows] = values
            variable.assign(out)
        user_rows, item_rows = np.asarray(user_rows), np.asarray(item_rows)
        if (user_rows == 0).any() or (item_rows == 0).any():
            raise ValueError("RatingBlend: row 0 is the unknown ids' row; the factorisation's "
                             "ids must all be in the ranker's vocabulary.")
        table(self.factor_users, user_rows, users)
        table(self.factor_items, item_rows, items)
        table(self.factor_user_bias, user_rows, user_bias)
        table(self.factor_item_bias, item_rows, item_bias)
        table(self.factor_user_known, user_rows, 1.0)
        table(self.factor_item_known, item_rows, 1.0)
        self.factor_mean.assign(float(mean))

    def set_blend(self, intercept: float, ranker: float, factor: float) -> None:
        """(c, w_r, w_f); (0, 1, 0) is the ranker alone."""
        self.blend_intercept.assign(float(intercept))
        self.blend_ranker.assign(float(ranker))
        self.blend_factor.assign(float(factor))
