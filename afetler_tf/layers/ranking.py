"""The ranking head: a rating from the two towers' outputs (docs/design.md §3).

    [p_u ‖ p_v ‖ p_u ⊙ p_v ‖ o_target ‖ b_u ‖ b_v] ─► RankingHead ─► rating
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from afetler_tf.layers.towers import mlp


class RankingHead(tf.keras.Model):
    """MLP over [p_u ‖ p_v ‖ p_u ⊙ p_v ‖ extras ‖ b_u ‖ b_v] -> rating.

    Args:
        user_ids, item_ids: Vocabularies of the bias terms (OOV bias = row 0).
        units: Hidden sizes; a final Dense(1) is added.
        global_mean: Initial output offset (the training mean rating).
        content_bias: Optional :class:`~afetler_tf.layers.content.ContentRegression`: b_v of the items it
            routes (never-trained ids) comes from their content, and their
            interaction term m is shrunk: o_u + gamma * (m - o_u), with o_u
            the user's mean interaction term over the warm items
            (``user_offset``, non-trainable, fitted with gamma by
            ``cold_path.fit_interaction_scale``; 0 until then) and gamma the
            ContentRegression's ``interaction_scale``. ``item_offset`` o_v, the
            item's mean of m - o_u over its warm training pairs, is the part
            of its main effect the MLP carries: the content bias is fitted to
            b_v + o_v (both non-trainable, 0 until fitted). ``user_affinity``
            t_u (one weight per content regressor of the ContentRegression,
            non-trainable, fitted by ``cold_path.fit_user_affinity``, 0
            until then) is the user's taste for content: a routed item's
            rating gains kappa * t_u . x(v), x(v) its content regressors and
            kappa the ContentRegression's ``affinity_scale``. A trained item's
            rating gains kappa_w * t'_u . x(v) in the same way, t'_u the
            user's taste fitted on the ranker's own residuals
            (``user_taste``) and kappa_w its ``taste_scale``
            (``models.taste.fit_user_taste``; 0 until fitted).
    """

    def __init__(self, user_ids, item_ids, units: Sequence[int], global_mean: float = 3.5,
                 content_bias=None, **kwargs):
        super().__init__(**kwargs)
        self.user_lookup = tf.keras.layers.StringLookup(vocabulary=list(user_ids), num_oov_indices=1)
        self.item_lookup = tf.keras.layers.StringLookup(vocabulary=list(item_ids), num_oov_indices=1)
        self.user_bias = tf.keras.layers.Embedding(len(user_ids) + 1, 1, embeddings_initializer="zeros")
        self.item_bias = tf.keras.layers.Embedding(len(item_ids) + 1, 1, embeddings_initializer="zeros")
        self.mlp = mlp(list(units) + [1], name="ranking_mlp")
        self.global_mean = float(global_mean)  # mu, the training ratings' mean
        self.content_bias = content_bias  # optional ContentRegression (over the same item vocabulary)
        self.user_offset = self.item_offset = self.user_affinity = None
        self.user_taste = self.taste_scale = None
        if content_bias is not None:
            def fitted(name, shape):  # non-trainable, 0 until fitted after training
                return self.add_weight(name=name, shape=shape, initializer="zeros", trainable=False)
            self.user_offset = fitted("user_offset", (len(user_ids) + 1,))
            self.item_offset = fitted("item_offset", (len(item_ids) + 1,))
            self.user_affinity = fitted("user_affinity", (len(user_ids) + 1, content_bias.width))
            self.user_taste = fitted("user_taste", (len(user_ids) + 1, content_bias.width))
            self.taste_scale = fitted("taste_scale", ())

    def call(self, inputs, training=False, item_features=None):
        """``item_features``: the raw candidate features; with a ContentRegression,
        items it routes (never-trained ids) get b_v from their content."""
        p_u, p_v, user_id, item_id = inputs[:4]
        extras = list(inputs[4:])
        users = self.user_lookup(user_id)
        b_u = self.user_bias(users)  # (batch, 1)
        index = self.item_lookup(item_id)
        b_v = self.item_bias(index)  # (batch, 1)
        with_content = self.content_bias is not None and item_features is not None
        if with_content:
            routed = self.content_bias.routed_items(index)[:, None]  # (batch, 1) bool
            content = self.content_bias.design(item_features)  # (batch, width)
            b_v = tf.where(routed, self.content_bias.bias(content)[:, None], b_v)
        x = tf.concat([p_u, p_v, p_u * p_v] + extras + [b_u, b_v], axis=-1)
        interaction = self.mlp(x, training=training)  # (batch, 1)
        if with_content:
            o_u = tf.gather(self.user_offset, users)[:, None]  # (batch, 1)
            affinity = tf.reduce_sum(tf.gather(self.user_affinity, users) * content, -1, keepdims=True)
            shrunk = (o_u + self.content_bias.interaction_scale * (interaction - o_u)
                      + self.content_bias.affinity_scale * affinity)
            taste = tf.reduce_sum(tf.gather(self.user_taste, users) * content, -1, keepdims=True)
            interaction = tf.where(routed, shrunk, interaction + self.taste_scale * taste)
        return self.global_mean + b_u + b_v + interaction  # (batch, 1)
