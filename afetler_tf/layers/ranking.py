"""The ranking head: a rating from the two towers' outputs (docs/design.md §3).

    [p_u ‖ p_v ‖ p_u ⊙ p_v ‖ o_target ‖ b_u ‖ b_v] ─► RankingHead ─► rating
"""

from __future__ import annotations

from typing import Optional, Sequence

import tensorflow as tf

from afetler_tf.layers.cold_items import ColdItemPath
from afetler_tf.layers.rating_blend import RatingBlend
from afetler_tf.layers.taste import UserTaste
from afetler_tf.layers.towers import mlp


class RankingHead(tf.keras.Model):
    """MLP over [p_u ‖ p_v ‖ p_u ⊙ p_v ‖ extras ‖ b_u ‖ b_v] -> rating:

        rating = mu + b_u + b_v + m,   m = MLP(...)

    composed with the fitted extras, each a layer of its own (both
    non-trainable and neutral until fitted after training):

    - ``cold_items``, a :class:`~afetler_tf.layers.cold_items.ColdItemPath`:
      for the items it routes (never-trained ids), b_v comes from their
      content and m is calibrated (``ColdItemPath.interaction``);
    - ``taste``, a :class:`~afetler_tf.layers.taste.UserTaste`: a trained
      item's rating gains kappa_w t'_u . x(v);
    - ``blend``, a :class:`~afetler_tf.layers.rating_blend.RatingBlend`: the
      rating of a pair a matrix factorisation was trained on becomes
      c + w_r rating + w_f f(u, v) (items the cold-item path takes keep
      their own rating).

    Args:
        user_ids, item_ids: Vocabularies of the bias terms (OOV bias = row 0).
        units: Hidden sizes; a final Dense(1) is added.
        global_mean: The output offset mu (the training mean rating).
        cold_items: Optional ColdItemPath over the same item vocabulary.
        taste: Optional UserTaste over the same user vocabulary (read with
            ``cold_items``' content regressors, so it needs one).
        blend: Optional RatingBlend over the same vocabularies.
    """

    def __init__(self, user_ids, item_ids, units: Sequence[int], global_mean: float = 3.5,
                 cold_items: Optional[ColdItemPath] = None, taste: Optional[UserTaste] = None,
                 blend: Optional[RatingBlend] = None, **kwargs):
        super().__init__(**kwargs)
        if taste is not None and cold_items is None:
            raise ValueError("RankingHead: the users' taste reads the cold-item path's content "
                             "regressors; pass cold_items too.")
        self.user_lookup = tf.keras.layers.StringLookup(vocabulary=list(user_ids), num_oov_indices=1)
        self.item_lookup = tf.keras.layers.StringLookup(vocabulary=list(item_ids), num_oov_indices=1)
        self.user_bias = tf.keras.layers.Embedding(len(user_ids) + 1, 1, embeddings_initializer="zeros")
        self.item_bias = tf.keras.layers.Embedding(len(item_ids) + 1, 1, embeddings_initializer="zeros")
        self.mlp = mlp(list(units) + [1], name="ranking_mlp")
        self.global_mean = float(global_mean)  # mu, the training ratings' mean
        self.cold_items, self.taste, self.blend = cold_items, taste, blend

    def call(self, inputs, training=False, item_features=None):
        """``item_features``: the raw candidate features; with a ColdItemPath,
        items it routes (never-trained ids) get b_v from their content."""
        p_u, p_v, user_id, item_id = inputs[:4]
        extras = list(inputs[4:])
        users = self.user_lookup(user_id)
        b_u = self.user_bias(users)  # (batch, 1)
        index = self.item_lookup(item_id)
        b_v = self.item_bias(index)  # (batch, 1)
        with_content = self.cold_items is not None and item_features is not None
        routed = None
        if with_content:
            routed = self.cold_items.routed_items(index)[:, None]  # (batch, 1) bool
            content = self.cold_items.design(item_features)  # (batch, width)
            b_v = tf.where(routed, self.cold_items.bias(content)[:, None], b_v)
        x = tf.concat([p_u, p_v, p_u * p_v] + extras + [b_u, b_v], axis=-1)
        interaction = self.mlp(x, training=training)  # (batch, 1)
        if with_content:
            cold = self.cold_items.interaction(users, interaction, content)
            warm = interaction + self.taste(users, content) if self.taste is not None else interaction
            interaction = tf.where(routed, cold, warm)
        rating = self.global_mean + b_u + b_v + interaction  # (batch, 1)
        if self.blend is None:
            return rating
        if routed is None and self.cold_items is not None:  # no content given: routed by id alone
            routed = self.cold_items.routed_items(index)[:, None]
        return self.blend(users, index, rating, None if routed is None else tf.logical_not(routed[:, 0]))
