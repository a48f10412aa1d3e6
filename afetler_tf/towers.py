"""Query tower, item (candidate) tower and ranking head (docs/design.md §3).

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


class RankingHead(tf.keras.Model):
    """MLP over [p_u ‖ p_v ‖ p_u ⊙ p_v ‖ extras ‖ b_u ‖ b_v] -> rating.

    Args:
        user_ids, item_ids: Vocabularies of the bias terms (OOV bias = row 0).
        units: Hidden sizes; a final Dense(1) is added.
        global_mean: Initial output offset (the training mean rating).
        content_bias: Optional :class:`ContentBias`: b_v of the items it
            routes (never-trained ids) comes from their content, and their
            interaction term m is shrunk: o_u + gamma * (m - o_u), with o_u
            the user's mean interaction term over the warm items
            (``user_offset``, non-trainable, fitted with gamma by
            ``cold_path.fit_interaction_scale``; 0 until then) and gamma the
            ContentBias's ``interaction_scale``. ``item_offset`` o_v, the
            item's mean of m - o_u over its warm training pairs, is the part
            of its main effect the MLP carries: the content bias is fitted to
            b_v + o_v (both non-trainable, 0 until fitted). ``user_affinity``
            t_u (one weight per content regressor of the ContentBias,
            non-trainable, fitted by ``cold_path.fit_user_affinity``, 0
            until then) is the user's taste for content: a routed item's
            rating gains kappa * t_u . x(v), x(v) its content regressors and
            kappa the ContentBias's ``affinity_scale``. A trained item's
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
        self.content_bias = content_bias  # optional ContentBias (over the same item vocabulary)
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
        """``item_features``: the raw candidate features; with a ContentBias,
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


class ContentBias(tf.keras.layers.Layer):
    """An item bias from content, for the ranker's never-trained item ids.

        b(x) = w_0 + w_cat . m / max(|m|, 1) + sum_col w_col[bucket(x_col)]

    with m the item's category multi-hot and one weight per bucket of each
    numeric attribute (a missing value falls in bucket 0, with the lowest). Non-trainable: it is
    fitted after training (:meth:`fit`, by the NewItemGAN stage) to the
    learned item biases of the warm items; until then every weight is 0, so
    the ranker is unchanged. ``routed`` marks the item-vocabulary rows whose
    bias it replaces (row 0 = OOV, always; rarely seen items when the GAN's
    min_interactions asks for it).

    ``interaction_scale`` (gamma, non-trainable, default 1) shrinks the
    ranker's interaction term (its MLP) m for the routed items toward the
    user's mean term o_u: a cold item's rating is mu + b_u + b(x) + o_u +
    gamma * (m - o_u) (:class:`RankingHead`), where the interaction on
    generated vectors adds more error than it explains. Fitted by
    ``cold_path.fit_interaction_scale``, together with ``affinity_scale``
    (kappa, non-trainable, default 0), the share of the user's fitted taste
    for the item's content (:class:`RankingHead`'s ``user_affinity``) added
    to that term.

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
        self.interaction_scale = self.add_weight(name="interaction_scale", shape=(),
                                                 initializer="ones", trainable=False)
        self.affinity_scale = self.add_weight(name="affinity_scale", shape=(),
                                              initializer="zeros", trainable=False)
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
        (an exported index: one look-up of the history for every use), and
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
        h += tf.matmul(tf.one_hot(tf.where(in_channel, channel_ids, self._num_channels),
                                  self._num_channels + 1), rows)
        o, alpha, beta = self.mcau((h, channel_ids, mask, query))
        details = {"mask": mask, "channel_ids": channel_ids, "history_categories": multi_hot}
        return o, alpha, beta, details
