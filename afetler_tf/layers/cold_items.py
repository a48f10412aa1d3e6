"""The ranking head's path for items it never trained: the cold-item calibration.

A new item has no learned bias b_v and its interaction term m (the ranking
MLP over generated vectors) adds more error than it explains, so for the
items it routes (the OOV row, and items below ``gan.min_interactions``) the
ranking head uses

    b_v  <- b(x)                                 (content regression of b_v + o_v)
    m    <- o_u + gamma (m - o_u) + kappa t_u . x (v)

with x(v) the item's content regressors, o_u the user's mean interaction
term over warm items, o_v the item's (so the content bias is fitted to the
main effect b_v + o_v), t_u the user's taste for content, gamma in [0, 1]
the shrinkage of m and kappa in [0, 1] the taste's share. Every weight is
non-trainable and neutral until fitted after training
(:mod:`afetler_tf.models.cold_path`): b = 0, o = 0, t = 0, gamma = 1, kappa = 0.
"""

from __future__ import annotations

import tensorflow as tf

from afetler_tf.layers.content import ContentRegression


class ColdItemPath(tf.keras.layers.Layer):
    """Content bias and interaction calibration of never-trained items (module docstring).

    Args:
        content_bias: The :class:`ContentRegression` b(x) over the ranker's
            item vocabulary (it also marks which rows are routed here).
        num_users: Size of the ranker's user vocabulary (rows: num_users + 1, row 0 = unknown).
    """

    def __init__(self, content_bias: ContentRegression, num_users: int, **kwargs):
        super().__init__(**kwargs)
        self.content_bias = content_bias
        num_items = content_bias.routed.shape[0] - 1

        def fitted(name, shape, initializer="zeros"):
            return self.add_weight(name=name, shape=shape, initializer=initializer, trainable=False)
        self.user_offset = fitted("user_offset", (num_users + 1,))  # o_u
        self.item_offset = fitted("item_offset", (num_items + 1,))  # o_v
        self.user_affinity = fitted("user_affinity", (num_users + 1, content_bias.width))  # t_u
        self.interaction_scale = fitted("interaction_scale", (), "ones")  # gamma
        self.affinity_scale = fitted("affinity_scale", ())  # kappa

    @property
    def width(self) -> int:
        return self.content_bias.width

    def routed_items(self, index):
        """Item-lookup indices (batch,) -> (batch,) bool: taken by this path."""
        return self.content_bias.routed_items(index)

    def design(self, features):
        """Raw candidate features (batch,) -> (batch, width) content regressors x(v)."""
        return self.content_bias.design(features)

    def bias(self, design):
        """(batch, width) regressors -> (batch,) content bias b(x)."""
        return self.content_bias.bias(design)

    def interaction(self, users, interaction, design):
        """The calibrated interaction term (batch, 1) of a routed item, from the
        ranker's own term ``interaction`` (batch, 1), the user-lookup indices
        ``users`` (batch,) and the item's regressors ``design`` (batch, width)."""
        o_u = tf.gather(self.user_offset, users)[:, None]  # (batch, 1)
        affinity = tf.reduce_sum(tf.gather(self.user_affinity, users) * design, -1, keepdims=True)
        return o_u + self.interaction_scale * (interaction - o_u) + self.affinity_scale * affinity
