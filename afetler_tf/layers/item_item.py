"""ItemItemChannel: a fixed item-item score added to a two-tower dot product.

AFETLER's retrieval score is the towers' ``<p_u, p_v>`` plus an item-item
channel, a rank-k item-item model ``W V^T`` (EASE's item-item weights
factored, :mod:`afetler_tf.models.ease`, or iALS's item factors folded in,
:mod:`afetler_tf.models.ials`; fitted in closed form by
:mod:`afetler_tf.models.item_item_fitting`): the user's part is ``q_u = x_u W`` (x_u:
the items u interacted with), the item's part ``v_v``. Both parts are put on
one scale per user: each is divided by the root mean square of the user's
scores over the trained catalogue, so the share ``s`` weighs two scores of
RMS 1:

    score(u, v) = <p_u, p_v> / rho(p_u) + s * <q~_u, v_v> (+ beta * pi_v, below),
    rho(p) = sqrt(p^T M p),  M = mean over trained items of p_v p_v^T,
    q~_u = q_u / sqrt(q_u^T N q_u),  N = mean over trained items of v_v v_v^T.

A popularity prior rides on the same vectors: ``+ beta * pi_v``, pi_v =
log(1 + n_v) / std over the trained items of log(1 + n_v) (n_v: the item's
training interactions; 0 for an unknown item), beta >= 0 chosen on
validation with s (0 where popularity adds nothing the towers and EASE
have not). The layer writes the score as one dot product of longer
vectors, the form a retrieval index serves:

    query_from_history(p_u, history_item_ids) = [p_u / rho(p_u) ‖ s q~_u ‖ beta]   (batch, d + k + 1)
    candidate(p_v, item_ids)                  = [p_v ‖ v_v ‖ pi_v]                 (batch, d + k + 1)

q_u is computed from the history the caller passes (x_u: the distinct known
items in it, each once), so a new user who arrives with a history gets the
channel, and a user whose history grew is scored on all of it. The history
is read whole, not cut to MCAU's ``data.history_length``: the weights were
fitted and the share chosen with each user's whole training history, so a
cut history would score differently from the fitted model. (``query(p_u,
user_ids)`` reads the table of q~_u computed at fit time instead; runs kept
for compatibility use it.)

Ids go through the layer's own lookups (one OOV index, row 0). Every table
is non-trainable and set by :meth:`ItemItemChannel.assign`; row 0 stays zero,
so an unknown user or item, and a history padding "", gets no item-item
score (only the towers').
Before ``assign`` the channel is neutral: s = beta = 0 and M = I (unit-norm
tower vectors keep their scores).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from afetler_tf.layers.fusion import _as_vocabulary, _is_positive_int


# The popularity prior's weights: a checkpoint written before them restores
# without them, the prior off (Afetler.load).
PRIOR_WEIGHTS = ("prior_table", "prior_share")


def _lookup(vocabulary: list) -> tf.keras.layers.Layer:
    if isinstance(vocabulary[0], str):
        return tf.keras.layers.StringLookup(vocabulary=vocabulary, num_oov_indices=1)
    return tf.keras.layers.IntegerLookup(vocabulary=vocabulary, num_oov_indices=1)


def binary_counts(values, size: int):
    """(batch, L) int32/int64 in [0, ...) -> (batch, size) float32, 1 where
    the row holds the value (once or more), 0 elsewhere; values >= ``size``
    are left out. ``tf.math.bincount(..., axis=-1, binary_output=True)`` with
    a fixed size, without its pass over the values for their maximum."""
    values = tf.convert_to_tensor(values)
    return tf.raw_ops.DenseBincount(input=values, size=tf.constant(size, values.dtype),
                                    weights=tf.zeros([0], tf.float32), binary_output=True)


@tf.keras.utils.register_keras_serializable(package="afetler_tf")
class ItemItemChannel(tf.keras.layers.Layer):
    """The item-item channel of the retrieval score (module docstring).

    Args:
        user_vocabulary: Known user ids (str or int); row r + 1 of the user table.
        item_vocabulary: Known item ids; row r + 1 of the item tables.
        rank: k, the width of q_u and v_v.
        dim: d, the width of the tower vectors.

    Weights (all non-trainable): ``user_table`` (n_users + 1, k) = q~_u,
    ``item_table`` (n_items + 1, k) = v_v, ``history_table`` (n_items + 1, k)
    = W (kept so q_u can be recomputed when histories grow), ``moment`` (d, d)
    = M, ``item_moment`` (k, k) = N (set with the item table, and by
    :meth:`refresh_item_moment` after restoring a checkpoint written before
    it existed), ``share`` () = s, ``prior_table`` (n_items + 1,) = pi_v and
    ``prior_share`` () = beta (:meth:`set_prior`; :data:`PRIOR_WEIGHTS`).
    """

    def __init__(self, user_vocabulary: Sequence, item_vocabulary: Sequence, rank: int, dim: int,
                 **kwargs):
        super().__init__(**kwargs)
        if not (_is_positive_int(rank) and _is_positive_int(dim)):
            raise ValueError(f"rank and dim must be positive integers, got {rank!r} and {dim!r}.")
        self.user_vocabulary = _as_vocabulary(user_vocabulary)
        self.item_vocabulary = _as_vocabulary(item_vocabulary)
        self.rank, self.dim = int(rank), int(dim)
        self.user_lookup = _lookup(self.user_vocabulary)
        self.item_lookup = _lookup(self.item_vocabulary)
        n_users, n_items = len(self.user_vocabulary) + 1, len(self.item_vocabulary) + 1
        zeros = tf.keras.initializers.Zeros()
        self.user_table = self.add_weight(name="user_table", shape=(n_users, self.rank),
                                          initializer=zeros, trainable=False)
        self.item_table = self.add_weight(name="item_table", shape=(n_items, self.rank),
                                          initializer=zeros, trainable=False)
        self.history_table = self.add_weight(name="history_table", shape=(n_items, self.rank),
                                             initializer=zeros, trainable=False)
        self.moment = self.add_weight(name="moment", shape=(self.dim, self.dim),
                                      initializer=tf.keras.initializers.Identity(), trainable=False)
        self.item_moment = self.add_weight(name="item_moment", shape=(self.rank, self.rank),
                                           initializer=zeros, trainable=False)
        self.share = self.add_weight(name="share", shape=(), initializer=zeros, trainable=False)
        self.prior_table = self.add_weight(name="prior_table", shape=(n_items,), initializer=zeros,
                                           trainable=False)
        self.prior_share = self.add_weight(name="prior_share", shape=(), initializer=zeros,
                                           trainable=False)

    def assign(self, user_table: np.ndarray, item_table: np.ndarray, history_table: np.ndarray,
               moment: np.ndarray, share: float) -> None:
        """Sets the tables; each table's rows follow its vocabulary (no OOV row:
        row 0 is kept at zero here)."""
        for name, table, rows, width in (("user_table", user_table, len(self.user_vocabulary), self.rank),
                                         ("item_table", item_table, len(self.item_vocabulary), self.rank),
                                         ("history_table", history_table, len(self.item_vocabulary),
                                          self.rank)):
            table = np.asarray(table, np.float32)
            if table.shape != (rows, width):
                raise ValueError(f"{name} must have shape {(rows, width)}, got {table.shape}.")
            getattr(self, name).assign(np.vstack([np.zeros((1, width), np.float32), table]))
        moment = np.asarray(moment, np.float32)
        if moment.shape != (self.dim, self.dim):
            raise ValueError(f"moment must have shape {(self.dim, self.dim)}, got {moment.shape}.")
        self.moment.assign(moment)
        self.refresh_item_moment()
        self.set_share(share)

    def refresh_item_moment(self) -> None:
        """N = mean over the known items of v_v v_v^T, from the item table."""
        v = self.item_table.numpy()[1:].astype(np.float64)
        self.item_moment.assign((v.T @ v / max(len(v), 1)).astype(np.float32))

    def set_share(self, share: float) -> None:
        if not share >= 0:
            raise ValueError(f"share must be >= 0, got {share!r}.")
        self.share.assign(float(share))

    def set_prior(self, prior: Optional[np.ndarray] = None, share: Optional[float] = None) -> None:
        """Sets pi_v (``prior``, (n_items,) in the vocabulary's order; row 0,
        the unknown item, stays 0) and/or beta (``share`` >= 0)."""
        if prior is not None:
            prior = np.asarray(prior, np.float32)
            if prior.shape != (len(self.item_vocabulary),):
                raise ValueError(f"prior must have shape {(len(self.item_vocabulary),)}, got {prior.shape}.")
            self.prior_table.assign(np.concatenate([np.zeros(1, np.float32), prior]))
        if share is not None:
            if not share >= 0:
                raise ValueError(f"prior share must be >= 0, got {share!r}.")
            self.prior_share.assign(float(share))

    def _prior_column(self, p_u):
        return tf.fill([tf.shape(p_u)[0], 1], self.prior_share)  # (b, 1) = beta

    def query(self, p_u, user_ids):
        """[p_u / rho(p_u) ‖ s q~_u ‖ beta], (batch, d + k + 1)."""
        p_u = tf.convert_to_tensor(p_u)
        rho = tf.sqrt(tf.reduce_sum(tf.matmul(p_u, self.moment) * p_u, -1, keepdims=True))  # (b, 1)
        q = tf.gather(self.user_table, self.user_lookup(tf.reshape(user_ids, [-1])))  # (b, k)
        return tf.concat([tf.math.divide_no_nan(p_u, rho), self.share * q, self._prior_column(p_u)], -1)

    def query_from_history(self, p_u, history_item_ids):
        """[p_u / rho(p_u) ‖ s q~_u ‖ beta] with q_u = x_u W from ``history_item_ids``
        (batch, L) str, "" = padding, any L; (batch, d + k + 1)."""
        return self.query_from_rows(p_u, self.item_lookup(history_item_ids))

    def query_from_rows(self, p_u, rows):
        """:meth:`query_from_history` with the history already looked up:
        ``rows`` (batch, L) int, the item tables' rows (0 = unknown / padding)."""
        x = binary_counts(rows, self.history_table.shape[0])  # (b, n): x_u, each item once
        return self.query_from_q(p_u, tf.matmul(x, self.history_table))  # row 0 of W is zero

    def query_from_q(self, p_u, q):
        """[p_u / rho(p_u) ‖ s q~_u ‖ beta] from q_u = x_u W (batch, k), computed by the caller."""
        p_u = tf.convert_to_tensor(p_u)
        rho = tf.sqrt(tf.reduce_sum(tf.matmul(p_u, self.moment) * p_u, -1, keepdims=True))  # (b, 1)
        rms = tf.sqrt(tf.reduce_sum(tf.matmul(q, self.item_moment) * q, -1, keepdims=True))  # (b, 1)
        return tf.concat([tf.math.divide_no_nan(p_u, rho), self.share * tf.math.divide_no_nan(q, rms),
                          self._prior_column(p_u)], -1)

    def candidate(self, p_v, item_ids):
        """[p_v ‖ v_v ‖ pi_v], (batch, d + k + 1)."""
        rows = self.item_lookup(tf.reshape(item_ids, [-1]))
        v = tf.gather(self.item_table, rows)  # (b, k)
        return tf.concat([tf.convert_to_tensor(p_v), v, tf.gather(self.prior_table, rows)[:, None]], -1)

    def call(self, inputs):
        """``(p_u, user_ids, p_v, item_ids)`` -> the scores of the pairs, (batch,)."""
        p_u, user_ids, p_v, item_ids = inputs
        return tf.reduce_sum(self.query(p_u, user_ids) * self.candidate(p_v, item_ids), -1)

    def get_config(self) -> dict:
        return dict(super().get_config(), user_vocabulary=self.user_vocabulary,
                    item_vocabulary=self.item_vocabulary, rank=self.rank, dim=self.dim)
