"""Query tower and item (candidate) tower (docs/design.md §3; the ranking head: :mod:`afetler_tf.layers.ranking`).

    raw user features ─► UserFeatures ─[MCAU over history]─[AdaptiveFusion a_u]─► MLP ─► p_u
    raw item features ─► ItemFeatures ─────────────────────[AdaptiveFusion a_v]─► MLP ─► p_v
    [p_u ‖ p_v ‖ p_u ⊙ p_v ‖ o_target ‖ b_u ‖ b_v] ─► RankingHead ─► rating

The base two-tower model uses the towers without MCAU and fusion; AFETLER
switches them on (see ``afetler_tf.models.afetler``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from afetler_tf.layers.mcau import times_matrix

# Optional history inputs of HistoryAttention (``call``): the history already
# looked up, and the per-item table of h computed once.
HISTORY_INDEX = "history_item_index"  # (batch, L) int: rows of the item lookup (0: OOV / padding)
HISTORY_TABLE = "history_item_table"  # (n_items + 1, e) float: HistoryAttention.item_table()


def mlp(units: Sequence[int], name: str, dropout: float = 0.0) -> tf.keras.Sequential:
    """ReLU MLP whose last layer is linear (the tower output)."""
    layers = []
    for i, width in enumerate(units):
        last = i == len(units) - 1
        layers.append(tf.keras.layers.Dense(width, activation=None if last else "relu"))
        if dropout and not last:
            layers.append(tf.keras.layers.Dropout(dropout))
    return tf.keras.Sequential(layers, name=name)


class Tower(tf.keras.Model):
    """Feature layer -> [MCAU over history] -> [AdaptiveFusion] -> MLP -> vector.

    Args:
        features: A UserFeatures or ItemFeatures layer.
        units: MLP sizes; the last one is the output dimension d.
        normalize: L2-normalise the output (cosine retrieval scores).
        history: Optional HistoryAttention; its output o is appended to x.
        fusion: Optional AdaptiveFusion keyed by ``inputs[id_key]``.
        id_key: The raw id feature the fusion looks up ("user_id"/"item_id").
    """

    def __init__(self, features: tf.keras.layers.Layer, units: Sequence[int], normalize: bool = True,
                 history=None, fusion=None, id_key: str = "", **kwargs):
        super().__init__(**kwargs)
        if fusion is not None and not id_key:
            raise ValueError("A tower with fusion needs id_key ('user_id' or 'item_id').")
        self.features = features
        self.history = history
        self.fusion = fusion
        self.mlp = mlp(units, name=f"{self.name}_mlp")
        self._normalize, self._id_key = normalize, id_key

    def forward(self, inputs, training=False) -> dict:
        """Returns {"p": (batch, d)} plus "a" (augmented vectors) with fusion
        and "alpha", "beta" (MCAU weights) with history attention."""
        x = self.features(inputs)  # (batch, fields * e)
        out = {}
        if self.history is not None:
            o, out["alpha"], out["beta"], _ = self.history(inputs, query=x)
            x = tf.concat([x, o], axis=-1)  # (batch, fields * e + e)
        if self.fusion is not None:
            x, out["a"] = self.fusion((x, inputs[self._id_key]), return_augmented=True)
        p = self.mlp(x, training=training)  # (batch, d)
        out["p"] = tf.math.l2_normalize(p, axis=-1) if self._normalize else p
        return out

    def call(self, inputs, training=False):
        return self.forward(inputs, training=training)["p"]


class HistoryAttention(tf.keras.layers.Layer):
    """Encodes a user's history and attends over it with MCAU.

    A history item's vector is h = e_id(item) + e_cat(categories), sharing the
    id and category embeddings of the candidate tower's ItemFeatures (so the
    history speaks the candidate tower's language). Channels: by rating
    level (liked >= 4 -> 0, neutral 3 -> 1, disliked <= 2 -> 2; implicit
    data: all liked) or by the item's primary category.

    Input: dict with ``history_item_ids`` (batch, L) str ("" = padding) and
    ``history_ratings`` (batch, L) float; a query (batch, e_q).
    Output: (o (batch, e), alpha (batch, C, L), beta (batch, C), details).
    """

    def __init__(self, item_features, category_matrix, primary_categories, mcau,
                 channels: str = "rating", like_threshold: float = 4.0, **kwargs):
        super().__init__(**kwargs)
        if channels not in ("rating", "category"):
            raise ValueError(f"channels must be 'rating' or 'category', got {channels!r}")
        self.item_features = item_features
        self.mcau = mcau
        self._channels, self._like = channels, float(like_threshold)
        self._categories = tf.constant(category_matrix, tf.float32)  # (n_items + 1, K)
        self._primary = tf.constant(primary_categories, tf.int32)  # (n_items + 1,), -1 = none
        num_channels = 3 if channels == "rating" else int(np.shape(category_matrix)[1])
        # A learned vector per channel (row C: no channel) is added to h, so the
        # attention output o still tells "liked X" from "disliked X".
        self.channel_embedding = tf.keras.layers.Embedding(
            num_channels + 1, item_features.id_embedding.output_dim, embeddings_initializer="zeros")
        self._num_channels = num_channels

    def train_own_weights(self, trainable: bool) -> None:
        """Makes its own weights (the MCAU's and the channel embedding)
        trainable or not; the item features it shares with the candidate
        tower keep their setting."""
        self.mcau.trainable = trainable
        self.channel_embedding.trainable = trainable

    @property
    def width(self) -> int:
        """e, the width of h and of the attention output o."""
        return self.item_features.id_embedding.output_dim

    def encode(self, item_ids, categories=None):
        """(..., ) str ids -> (h (..., e), multi-hot categories (..., K), index (...,)).

        ``categories``: the items' raw ``|``-joined categories (the target of
        the ranker): the multi-hot then comes from this content, not from the
        id-indexed matrix, so an item outside the vocabulary keeps its
        categories; its id part (the untrained OOV row) is left out.
        """
        index = self.item_features.id_lookup(item_ids)
        if categories is None:  # h of every vocabulary item once, then one gather
            return tf.gather(self.item_table(), index), tf.gather(self._categories, index), index
        multi_hot = self.item_features.categories_multi_hot(categories)
        e_id = self.item_features.id_embedding(index) * tf.cast(index > 0, tf.float32)[..., None]
        return e_id + self.item_features.embed_categories(multi_hot), multi_hot, index

    def channel_ids(self, ratings, index):
        if self._channels == "category":
            return tf.gather(self._primary, index)
        liked = tf.logical_or(ratings >= self._like, ratings <= 0.0)  # <= 0: implicit data
        return tf.where(liked, 0, tf.where(ratings >= self._like - 1.0, 1, 2))

    def item_table(self):
        """h (without the channel part) of every item of the vocabulary,
        (n_items + 1, e); row 0: the OOV id (no category)."""
        return (self.item_features.id_embedding(tf.range(tf.shape(self._categories)[0]))
                + self.item_features.embed_categories(self._categories))

    def call(self, inputs, query):
        """``inputs``: ``history_item_ids`` and ``history_ratings`` (class
        docstring); optionally ``inputs[HISTORY_INDEX]``, the ids' rows in the
        item lookup (batch, L) int, where a caller has looked them up already
        (an exported index, training examples: one look-up of the history for
        every use; ``Afetler.examples``), and
        ``inputs[HISTORY_TABLE]``, :meth:`item_table` computed once (an export's
        constant). Either gives the same h as the ids alone."""
        ids = inputs["history_item_ids"]
        if HISTORY_INDEX in inputs:
            index = inputs[HISTORY_INDEX]  # (batch, L)
            table = inputs[HISTORY_TABLE] if HISTORY_TABLE in inputs else self.item_table()
            h, multi_hot = tf.gather(table, index), tf.gather(self._categories, index)
        else:
            h, multi_hot, index = self.encode(ids)  # (batch, L, e), (batch, L, K), (batch, L)
        mask = tf.strings.length(ids) > 0  # (batch, L): not "" (a tenth of the cost of comparing strings)
        channel_ids = self.channel_ids(tf.cast(inputs["history_ratings"], tf.float32), index)
        in_channel = tf.logical_and(channel_ids >= 0, channel_ids < self._num_channels)
        # One-hot times the (C + 1, e) table: its gradient is one small matmul
        # (a gather's would be a segment sum over every history position).
        rows = self.channel_embedding(tf.range(self._num_channels + 1))  # (C + 1, e)
        h += times_matrix(tf.one_hot(tf.where(in_channel, channel_ids, self._num_channels),
                                     self._num_channels + 1), rows)
        o, alpha, beta = self.mcau((h, channel_ids, mask, query))
        details = {"mask": mask, "channel_ids": channel_ids, "history_categories": multi_hot}
        return o, alpha, beta, details
