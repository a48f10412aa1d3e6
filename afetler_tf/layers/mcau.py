"""MCAU: multi-channel hierarchical attention over a user's history (docs/design.md §3).

The history is split into C channels (by rating level, or by primary
category). Item level, per channel c, over the channel's unmasked positions:

    α_cj = softmax_j(wᵀ tanh(W [h_cj ‖ q ‖ h_cj ⊙ q])),   g_c = Σ_j α_cj h_cj

Channel level, over the non-empty channels:

    β_c = softmax_c(vᵀ tanh(U [g_c ‖ q])),                o = Σ_c β_c g_c

All channels are computed in one batched op through a (batch, C, L) channel
mask. Empty channels and users without history give zeros, never NaN.
"""

from __future__ import annotations

import numbers

import tensorflow as tf

_LARGE_NEGATIVE = -1e9  # stands in for -inf in masked softmax (no inf - inf = NaN)


def masked_softmax(logits: tf.Tensor, mask: tf.Tensor, axis: int = -1) -> tf.Tensor:
    """Softmax over the positions where ``mask`` is true; zero elsewhere.

    A slice with no true position gives all zeros (not NaN, not uniform).

    Args:
        logits: Float tensor.
        mask: Bool tensor broadcastable to ``logits``.
        axis: The softmax axis.

    Returns:
        A tensor of ``logits``' broadcast shape with the weights.
    """
    mask = tf.cast(mask, tf.bool)
    shape = tf.broadcast_dynamic_shape(tf.shape(logits), tf.shape(mask))
    logits = tf.broadcast_to(logits, shape)
    mask = tf.broadcast_to(mask, shape)
    logits = tf.where(mask, logits, tf.constant(_LARGE_NEGATIVE, logits.dtype))
    logits -= tf.stop_gradient(tf.reduce_max(logits, axis=axis, keepdims=True))
    weights = tf.exp(logits) * tf.cast(mask, logits.dtype)
    total = tf.reduce_sum(weights, axis=axis, keepdims=True)
    return weights / tf.where(total > 0.0, total, tf.ones_like(total))


def times_matrix(x: tf.Tensor, matrix: tf.Tensor) -> tf.Tensor:
    """``x`` (..., n) times ``matrix`` (n, m) -> (..., m), as one 2-D matmul.

    ``tf.matmul`` of a 3-D tensor and a matrix is a broadcasting batch matmul:
    on CPU (oneDNN) it costs several times a plain matmul over the flattened
    rows, in serving (one request) and in its gradient (a reduction over the
    batch). Same values.
    """
    out = tf.matmul(tf.reshape(x, [-1, tf.shape(x)[-1]]), matrix)
    return tf.reshape(out, tf.concat([tf.shape(x)[:-1], tf.shape(matrix)[-1:]], axis=0))


def _item_level(history, query, w_h, w_hq):
    """h W_h + (h ⊙ q) W_hq at every position and head, as [h, h ⊙ q] [W_h; W_hq]:
    one plain matmul over every position, (B, L, H * A).

    Not one matrix per row, h (W_h + diag(q) W_hq), which costs half the
    multiply-adds but runs as a batched matmul, whose cost depends on the CPU:
    on one 2-CPU machine it was slightly the faster in training, on another
    its backward pass was most of a training step's extra time
    (docs/decisions.md, 2026-11-30, "MCAU's item level as one plain matmul";
    ``python -m experiments op_profile item_level`` times both)."""
    e = tf.shape(history)[-1]
    heads, units = tf.shape(w_h)[0], tf.shape(w_h)[-1]
    kernel = tf.reshape(tf.transpose(tf.concat([w_h, w_hq], axis=1), [1, 0, 2]),
                        [2 * e, heads * units])  # (2e, H * A)
    return times_matrix(tf.concat([history, history * query[:, tf.newaxis, :]], axis=-1), kernel)


def channel_mask(channel_ids: tf.Tensor, mask: tf.Tensor, num_channels: int) -> tf.Tensor:
    """The (batch, C, L) bool mask of position j belonging to channel c.

    Args:
        channel_ids: Int ``(batch, L)`` in ``[0, num_channels)``; any other
            value belongs to no channel.
        mask: Bool ``(batch, L)``, true at real (not padded) positions.
        num_channels: C.

    Returns:
        Bool tensor ``(batch, C, L)``.
    """
    one_hot = tf.one_hot(tf.cast(channel_ids, tf.int32), num_channels, on_value=True, off_value=False, axis=1)
    return tf.logical_and(one_hot, tf.cast(mask, tf.bool)[:, tf.newaxis, :])  # (batch, C, L)


@tf.keras.utils.register_keras_serializable(package="afetler_tf")
class MCAU(tf.keras.layers.Layer):
    """Multi-channel attention unit: hierarchical item- then channel-level attention.

    The formulas are exactly those of docs/design.md §3 (no biases inside the tanh).
    When the query dimension ``e_q`` differs from the history dimension ``e``,
    ``q`` is first projected to ``e`` by a bias-free Dense layer
    (``query_projection``); otherwise it is used as is.

    With ``num_heads = H > 1`` every head has its own ``W, w, U, v`` and runs
    the whole hierarchy; the output ``o`` is the **average of the heads'
    outputs** (dimension stays ``e``, no extra projection), and the returned
    ``alpha`` and ``beta`` are the head-averaged weights (still distributions
    over each non-empty channel's positions / over non-empty channels).

    Weights (``H`` heads, ``A = attention_units``): ``item_kernel`` W
    ``(H, 3e, A)``, ``item_vector`` w ``(H, A)``, ``channel_kernel`` U
    ``(H, 2e, A)``, ``channel_vector`` v ``(H, A)``.

    Input shape:
        A tuple ``(history, channel_ids, mask, query)``: ``history`` float
        ``(batch, L, e)``; ``channel_ids`` int ``(batch, L)`` in ``[0, C)``
        (other values belong to no channel); ``mask`` bool ``(batch, L)``,
        true at real positions; ``query`` float ``(batch, e_q)``.

    Output shape:
        A tuple ``(o, alpha, beta)``: ``o`` ``(batch, e)``; ``alpha``
        ``(batch, C, L)``, zero at masked and out-of-channel positions;
        ``beta`` ``(batch, C)``, zero at empty channels. A user with no
        history gets ``o = 0`` and all-zero weights.

    Example:

    >>> mcau = MCAU(num_channels=3, attention_units=8)
    >>> o, alpha, beta = mcau((tf.ones((2, 5, 4)), tf.zeros((2, 5), tf.int32),
    ...                        tf.ones((2, 5), tf.bool), tf.ones((2, 4))))
    >>> o.shape, alpha.shape, beta.shape
    (TensorShape([2, 4]), TensorShape([2, 3, 5]), TensorShape([2, 3]))
    """

    def __init__(
        self,
        num_channels: int = 3,
        attention_units: int = 32,
        num_heads: int = 1,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        """Initialises the layer.

        Args:
            num_channels: C, the number of history channels.
            attention_units: A, the hidden size of both attention MLPs.
            num_heads: H, independent attention heads (outputs averaged).
            kernel_initializer: Initializer of W, w, U, v and the projection.
            **kwargs: Passed to ``tf.keras.layers.Layer``.

        Raises:
            ValueError: When a count is not a positive int.
        """
        super().__init__(**kwargs)
        for name, value in (
            ("num_channels", num_channels),
            ("attention_units", attention_units),
            ("num_heads", num_heads),
        ):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
        self._num_channels = int(num_channels)
        self._attention_units = int(attention_units)
        self._num_heads = int(num_heads)
        self._kernel_initializer = tf.keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        history_shape, _, _, query_shape = (tf.TensorShape(s) for s in input_shape)
        e, e_q = history_shape[-1], query_shape[-1]
        if e is None or e_q is None:
            raise ValueError(f"MCAU needs known feature dims, got history {history_shape}, query {query_shape}.")
        self._query_projection = None
        if e_q != e:
            self._query_projection = tf.keras.layers.Dense(
                e, use_bias=False, kernel_initializer=self._kernel_initializer, name="query_projection"
            )
            self._query_projection.build(query_shape)
        h, a = self._num_heads, self._attention_units
        self.item_kernel = self._weight("item_kernel", (h, 3 * e, a))  # W
        self.item_vector = self._weight("item_vector", (h, a))  # w
        self.channel_kernel = self._weight("channel_kernel", (h, 2 * e, a))  # U
        self.channel_vector = self._weight("channel_vector", (h, a))  # v
        super().build(input_shape)

    def _weight(self, name, shape):
        # A fresh initializer per weight: an unseeded tf.keras initializer
        # instance repeats its values, so w and v would start identical.
        initializer = tf.keras.initializers.get(tf.keras.initializers.serialize(self._kernel_initializer))
        return self.add_weight(name=name, shape=shape, initializer=initializer, trainable=True)

    def call(self, inputs):
        history, channel_ids, mask, query = inputs
        history = tf.convert_to_tensor(history)  # (B, L, e)
        query = tf.cast(query, history.dtype)  # (B, e_q)
        if self._query_projection is not None:
            query = self._query_projection(query)  # (B, e)
        channels = channel_mask(channel_ids, mask, self._num_channels)  # (B, C, L)

        # Item level: one score per position and head, shared by all channels;
        # the channel mask decides over which positions each softmax runs.
        batch, e = tf.shape(history)[0], tf.shape(history)[-1]
        heads, units = self._num_heads, self._attention_units
        w_h, w_q, w_hq = tf.split(self.item_kernel, [e, e, e], axis=1)  # (H, e, A) each
        per_query = tf.reshape(tf.einsum("bf,hfa->bha", query, w_q), [batch, 1, heads * units])
        hidden = tf.tanh(_item_level(history, query, w_h, w_hq) + per_query)  # (B, L, H * A)
        # w of every head as one block-diagonal (H * A, H) matrix: scores by a matmul.
        item_vector = tf.reshape(self.item_vector[:, :, tf.newaxis] * tf.eye(heads)[:, tf.newaxis, :],
                                 [heads * units, heads])
        scores = tf.transpose(times_matrix(hidden, item_vector), [0, 2, 1])  # (B, H, L)
        alpha = masked_softmax(scores[:, :, tf.newaxis, :], channels[:, tf.newaxis, :, :])  # (B, H, C, L)
        summaries = tf.reshape(tf.matmul(tf.reshape(alpha, [batch, -1, tf.shape(history)[1]]), history),
                               [batch, heads, self._num_channels, e])  # (B, H, C, e)  g_c

        # Channel level over the non-empty channels: [g_c, q] U = g_c U_g + q U_q.
        non_empty = tf.reduce_any(channels, axis=-1)  # (B, C)
        u_g, u_q = tf.split(self.channel_kernel, [e, e], axis=1)  # (H, e, A) each
        channel_query = tf.einsum("bf,hfa->bha", query, u_q)[:, :, tf.newaxis, :]  # (B, H, 1, A)
        hidden = tf.tanh(tf.einsum("bhce,hea->bhca", summaries, u_g) + channel_query)  # (B, H, C, A)
        channel_scores = tf.einsum("bhca,ha->bhc", hidden, self.channel_vector)  # (B, H, C)
        beta = masked_softmax(channel_scores, non_empty[:, tf.newaxis, :])  # (B, H, C)
        output = tf.einsum("bhc,bhce->bhe", beta, summaries)  # (B, H, e)

        # Heads are averaged (H = 1: a no-op).
        return (
            tf.reduce_mean(output, axis=1),  # (B, e)
            tf.reduce_mean(alpha, axis=1),  # (B, C, L)
            tf.reduce_mean(beta, axis=1),  # (B, C)
        )

    def compute_output_shape(self, input_shape):
        history_shape = tf.TensorShape(input_shape[0])
        batch, length, e = history_shape[0], history_shape[1], history_shape[2]
        return (
            tf.TensorShape([batch, e]),
            tf.TensorShape([batch, self._num_channels, length]),
            tf.TensorShape([batch, self._num_channels]),
        )

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "num_channels": self._num_channels,
                "attention_units": self._attention_units,
                "num_heads": self._num_heads,
                "kernel_initializer": tf.keras.initializers.serialize(self._kernel_initializer),
            }
        )
        return config
