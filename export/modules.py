"""The four exported modules: query tower, candidate tower, index, ranker.

Each is a ``tf.Module`` holding only the Keras parts it needs (a full TFRS
model does not save, docs/design.md §1) and one ``serve`` tf.function with an
explicit input signature of raw features; ``serve`` is saved as the
``serving_default`` signature and returns a dict of named outputs.

    QueryModule      user [+ history]          -> embedding (batch, d)
    CandidateModule  item                      -> embedding (batch, d)
    IndexModule      user [+ history] + k      -> item_ids (batch, k) str, scores (batch, k)
                     (signature ``exclude``: + exclude_item_ids (batch, E) str)
    RankerModule     user [+ history] + item   -> rating (batch,), score (batch,)

``k`` is a scalar int32; k < 1 is an InvalidArgument error naming k. The
index never returns an excluded item: ``serving_default`` excludes the
request's history (all of it, not only the part MCAU reads; a model without
a history input excludes nothing), ``exclude`` exactly the ``exclude_item_ids``
given ("" = padding). It asks the index for k + E items (E: the exclusion
list's width) and keeps the best k that are not excluded. A larger k than
the index can answer (the catalogue size, for ScaNN its re-scored
candidates, less the excluded items) returns that many; in a batch, every
row gets the width of the row with the fewest left.

The query and index modules hash the request's history once
(:class:`HistoryLookup`): its rows in the item lookup serve MCAU (the
latest ``history_length``) and the item-item channel (all of it), its
catalogue positions the index's exclusion.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

import afetler_tf  # noqa: F401  (Keras-2 set-up before TensorFlow)
from afetler_tf.layers.towers import HISTORY_INDEX, HISTORY_TABLE
from afetler_tf.models.item_item_fitting import HISTORY as CHANNEL_HISTORY
from afetler_tf.models.item_item_fitting import HISTORY_ROWS
from export.specs import EXCLUDE_KEY, HISTORY_KEYS, K_KEY, InputSpecs

INDEX_KINDS = ("brute_force", "scann")


class HistoryLookup(tf.Module):
    """One hash look-up of a request's history for every part that reads it.

    A table maps each id of ``identifiers`` to its position there and to its
    row in the model's item lookup (the StringLookup that MCAU's history
    embedding and the item-item channel share; 0 = OOV), packed in one int64
    (position << 32 | row). The padding "" and any other id get position
    n = len(identifiers) (none) and row 0, as the item lookup gives them row
    0. So one look-up of the (batch, L) history strings gives the rows of
    MCAU (its latest ``history_length``, with MCAU's per-item table of h
    computed here once: ``HistoryAttention.item_table``) and of the channel
    (all of them), and the catalogue positions the index excludes.
    ("" is left out of the table: a miss costs less than a hit, and most of
    a padded batch is "".)

    Args:
        query_tower: The query encoder (a Tower, or a ChannelEncoder around one).
        identifiers: The ids to map (the index's catalogue); default: the item
            lookup's vocabulary.

    Raises:
        ValueError: "" among the identifiers, or MCAU and the channel with
            different item vocabularies.
    """

    def __init__(self, query_tower: tf.keras.Model, identifiers=None):
        super().__init__(name="history_lookup")
        tower = getattr(query_tower, "encoder", query_tower)
        attention = getattr(tower, "history", None)
        channel = getattr(query_tower, "channel", None)
        lookups = ([attention.item_features.id_lookup] if attention is not None else []) + \
            ([channel.item_lookup] if channel is not None else [])
        if identifiers is None:
            identifiers = lookups[0].get_vocabulary()[1:] if lookups else []
        identifiers = np.asarray(identifiers, object).astype(str)
        if (identifiers == "").any():
            raise ValueError('"" is the history padding, not an item id; drop it from the catalogue.')
        self.size = len(identifiers)
        rows = np.zeros(self.size, np.int64)
        if lookups and self.size:
            keys = tf.constant(identifiers, tf.string)
            rows = lookups[0](keys).numpy().astype(np.int64)
            if any(not np.array_equal(other(keys).numpy(), rows) for other in lookups[1:]):
                raise ValueError("MCAU's history embedding and the item-item channel look items up in "
                                 "different vocabularies; the export expects one.")
        self.attention = attention is not None
        self.channel = channel is not None
        # MCAU's h of every vocabulary item (constant in an export)
        self.item_vectors = None if attention is None else tf.Variable(
            attention.item_table(), trainable=False, name="history_item_table")
        packed = (np.arange(self.size, dtype=np.int64) << 32) | rows
        self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(identifiers, tf.string), tf.constant(packed, tf.int64)),
            tf.constant(self.size << 32, tf.int64))

    def lookup(self, ids):
        """(batch, L) str -> (positions, rows), each (batch, L) int64:
        positions in ``identifiers`` (n: none) and rows of the item lookup (0: OOV)."""
        packed = self.table.lookup(ids)
        return tf.bitwise.right_shift(packed, 32), tf.bitwise.bitwise_and(packed, 0xFFFFFFFF)

    def with_rows(self, prepared: dict, rows, cut) -> dict:
        """``prepared`` (``InputSpecs.prepare_with_history``) plus the history's
        ``rows`` (:meth:`lookup`, of the whole history) under the keys the
        towers read instead of looking the ids up again; ``cut``: the cut of
        MCAU's history (``prepare_with_history``)."""
        out = dict(prepared)
        if self.channel and CHANNEL_HISTORY in out:
            out[HISTORY_ROWS] = rows  # the whole history (item_item.ChannelEncoder)
        if self.attention and HISTORY_KEYS[0] in out:
            out[HISTORY_INDEX] = cut(rows, tf.constant(0, rows.dtype))  # MCAU's part
            out[HISTORY_TABLE] = self.item_vectors
        return out


class QueryModule(tf.Module):
    """Raw user features (+ history) -> p_u."""

    def __init__(self, query_tower: tf.keras.Model, inputs: InputSpecs):
        super().__init__(name="query")
        self.query_tower = query_tower
        self._inputs = inputs
        self.history = HistoryLookup(query_tower) if inputs.history else None
        self.serve = tf.function(self._serve, input_signature=[inputs.query])

    def _serve(self, features):
        prepared, whole, cut = self._inputs.prepare_with_history(features)
        if self.history is not None and whole is not None:
            prepared = self.history.with_rows(prepared, self.history.lookup(whole)[1], cut)
        return {"embedding": self.query_tower(prepared)}  # (batch, d)


class CandidateModule(tf.Module):
    """Raw item features -> p_v."""

    def __init__(self, candidate_tower: tf.keras.Model, inputs: InputSpecs):
        super().__init__(name="candidate")
        self.candidate_tower = candidate_tower
        self._inputs = inputs
        self.serve = tf.function(self._serve, input_signature=[inputs.item])

    def _serve(self, features):
        return {"embedding": self.candidate_tower(self._inputs.prepare(features))}  # (batch, d)


class IndexModule(tf.Module):
    """Raw user features (+ history) and k -> the top-k catalogue items.

    Ids are matched by catalogue position: one hash look-up of the history
    (:class:`HistoryLookup`) serves MCAU, the item-item channel and the
    exclusion. Exact search (``vectors`` given, the "brute_force" index)
    scores the whole catalogue, sets the excluded items' scores to -inf (a
    (batch, n) mask counted from the positions) and takes the top k. An
    approximate index (a ScaNN layer) is asked for k + E items, of which
    the best k not excluded are kept (found by a binary search in each
    row's sorted excluded positions: nothing of the catalogue's size per
    request).

    Args:
        query_tower: The trained query tower.
        index: An indexed ScaNN layer (``build_index``), or None with ``vectors``.
        most: The cap on k (``max_k``: the catalogue size for exact search).
        inputs: The model's InputSpecs.
        identifiers: The ids the index holds (n,).
        vectors: The catalogue's vectors (n, d), for exact search.
    """

    def __init__(self, query_tower: tf.keras.Model, index: tfrs.layers.factorized_top_k.TopK | None,
                 most: int, inputs: InputSpecs, identifiers, vectors=None):
        super().__init__(name="index")
        if (index is None) == (vectors is None):
            raise ValueError("IndexModule takes an approximate index layer or the vectors of exact "
                             "search, one of the two.")
        self.query_tower = query_tower
        self.index = index
        self._most = int(most)
        identifiers = np.asarray(identifiers, object).astype(str)
        self._size = len(identifiers)
        if vectors is not None:
            self.candidates = tf.Variable(np.asarray(vectors, np.float32), trainable=False,
                                          name="candidates")  # (n, d)
            self.identifiers = tf.Variable(identifiers, trainable=False, name="identifiers")
        # catalogue id -> (position, row of the item lookup); n: not in the catalogue, padding ""
        self.history = HistoryLookup(query_tower, identifiers)
        self._inputs = inputs
        self.serve = tf.function(self._serve, input_signature=[inputs.index])
        self.serve_exclude = tf.function(self._serve_exclude, input_signature=[inputs.index_exclude])

    def _serve(self, features):
        prepared, whole, cut = self._inputs.prepare_with_history(features)
        if whole is None:  # no history input: nothing to exclude
            return self._top_k(prepared, tf.zeros([tf.shape(prepared["user_id"])[0], 0], tf.int64))
        positions, rows = self.history.lookup(whole)  # the whole history as sent, looked up once
        return self._top_k(self.history.with_rows(prepared, rows, cut), positions)

    def _serve_exclude(self, features):
        prepared, whole, cut = self._inputs.prepare_with_history(features)
        excluded = self.history.lookup(prepared.pop(EXCLUDE_KEY))[0]  # (batch, E)
        if whole is not None:
            prepared = self.history.with_rows(prepared, self.history.lookup(whole)[1], cut)
        return self._top_k(prepared, excluded)

    def _top_k(self, prepared, excluded):
        """The best k items whose positions are not in ``excluded`` (batch, E)
        int64, n (the catalogue size) = padding or not an item (module docstring)."""
        k = prepared[K_KEY]
        check = tf.debugging.assert_positive(k, message="k must be >= 1")
        with tf.control_dependencies([check]):
            k = tf.minimum(k, self._most)
        p_u = self.query_tower(prepared)  # (batch, d)
        if self.index is None:
            return self._exact(p_u, k, excluded)
        return self._approximate(p_u, k, excluded)

    def _exact(self, p_u, k, excluded):
        scores = tf.matmul(p_u, self.candidates, transpose_b=True)  # (batch, n)
        if excluded.shape[1] != 0:  # -inf added at the excluded items (positions >= n are none)
            scores += tf.raw_ops.DenseBincount(  # (batch, n): the -inf of each excluded position
                input=excluded, size=tf.constant(self._size, tf.int64),
                weights=tf.fill(tf.shape(excluded), tf.constant(-np.inf)), binary_output=False)
        scores, top = tf.math.top_k(scores, k=k)  # k <= n; -inf (excluded) sort last
        left = tf.reduce_min(tf.reduce_sum(tf.cast(tf.not_equal(scores, -np.inf), tf.int32), axis=1))
        return {"item_ids": tf.gather(self.identifiers, top[:, :left]), "scores": scores[:, :left]}

    def _approximate(self, p_u, k, excluded):
        # Each row's excluded positions, sorted, n (matches no item) appended.
        none = tf.constant(self._size, tf.int64)
        banned = tf.sort(tf.concat([excluded, tf.fill([tf.shape(excluded)[0], 1], none)], axis=1), axis=1)
        known = tf.reduce_max(tf.reduce_sum(tf.cast(banned < none, tf.int32), axis=1))
        scores, ids = self.index(p_u, k=tf.minimum(k + known, self._most))  # (batch, wide)
        found = self.history.lookup(ids)[0]  # (batch, wide)
        at = tf.minimum(tf.searchsorted(banned, found), tf.shape(banned)[1] - 1)
        dropped = tf.equal(tf.gather(banned, at, batch_dims=1), found) & (found < none)
        k = tf.minimum(k, tf.reduce_min(tf.reduce_sum(tf.cast(~dropped, tf.int32), axis=1)))
        # Stable: the kept items keep their order (rank by position among the not excluded).
        position = tf.where(dropped, tf.shape(ids)[1], tf.range(tf.shape(ids)[1])[None, :])
        order = tf.argsort(position, axis=1, stable=True)[:, :k]  # (batch, k)
        return {"item_ids": tf.gather(ids, order, batch_dims=1),
                "scores": tf.gather(scores, order, batch_dims=1)}


def index_module(query_tower: tf.keras.Model, inputs: InputSpecs, kind: str, identifiers, vectors,
                 options: dict | None = None) -> "IndexModule":
    """The index module of ``kind``: exact search ("brute_force") or ScaNN."""
    if kind == "brute_force":
        if len(identifiers) == 0:
            raise ValueError("The catalogue is empty: nothing to index.")
        return IndexModule(query_tower, None, len(identifiers), inputs, identifiers, vectors=vectors)
    return IndexModule(query_tower, build_index(kind, vectors, identifiers, options),
                       max_k(kind, len(identifiers), options), inputs, identifiers)


class RankerModule(tf.Module):
    """Raw user (+ history) and item features -> rating and retrieval score.

    The network's ``rate`` reads the towers' and the ranking head's variables;
    those parts are attributes here so the SavedModel tracks them.
    """

    def __init__(self, network, inputs: InputSpecs, candidate_tower=None):
        super().__init__(name="ranker")
        self.query_tower = network.query_tower
        # New items: the model's candidate encoder (tower or NewItemGAN generator).
        self.candidate_tower = candidate_tower if candidate_tower is not None else network.candidate_tower
        self.ranking_head = network.ranking_head
        self.target_attention = network.target_attention
        self.item_item = getattr(network, "item_item", None)  # the retrieval score's channel
        self._rate = network.rate
        self._inputs = inputs
        self.serve = tf.function(self._serve, input_signature=[inputs.ranker])

    def _serve(self, features):
        features = self._inputs.prepare(features)
        p_u, p_v = self.query_tower(features), self.candidate_tower(features)  # (batch, d)
        rating = self._rate(features, p_u, p_v)[:, 0]  # (batch,)
        if self.item_item is None:
            score = tf.reduce_sum(p_u * p_v, axis=-1)
        elif CHANNEL_HISTORY in features:  # <p_u, p_v> / rho + s <q~_u, v_v>, as the index scores
            query = self.item_item.query_from_history(p_u, features[CHANNEL_HISTORY])
            score = tf.reduce_sum(query * self.item_item.candidate(p_v, features["item_id"]), -1)
        else:
            score = self.item_item((p_u, features["user_id"], p_v, features["item_id"]))
        return {"rating": rating, "score": score}


def scann_options(catalogue_size: int) -> dict:
    """ScaNN tree/quantisation settings scaled to the catalogue.

    About sqrt(n) leaves (at most 2000), 60% of them searched (at least 8),
    asymmetric hashing with 1 dimension per block, and exact re-scoring of
    the best 4000 candidates: recall@10 0.97 against BruteForce on 1M random
    unit vectors of AFETLER's width (96: the towers' 32 + the item-item
    channel's 64) at about 4 ms a request (``python -m experiments export``), where
    real item vectors, which cluster, are easier. (At d = 32, a third of the
    leaves, 2 dimensions per block and 500 candidates reached 0.98; at
    d = 96 they reach 0.71.)
    """
    leaves = max(1, min(2000, round(catalogue_size ** 0.5)))
    return {"num_leaves": leaves, "num_leaves_to_search": min(leaves, max(8, round(0.6 * leaves))),
            "dimensions_per_block": 1, "num_reordering_candidates": min(4000, catalogue_size),
            "training_iterations": 12}


def max_k(kind: str, catalogue_size: int, options: dict | None = None) -> int:
    """The most items one query can get: the catalogue, or ScaNN's re-scored candidates."""
    if kind == "scann":
        options = options or scann_options(catalogue_size)
        return min(catalogue_size, options.get("num_reordering_candidates") or catalogue_size)
    return catalogue_size


def build_index(kind: str, vectors, identifiers, options: dict | None = None):
    """An indexed, called-once BruteForce or ScaNN layer over ``vectors`` (n, d).

    Raises:
        ValueError: Unknown kind or an empty catalogue.
        ImportError: ``kind="scann"`` without the scann package.
    """
    if kind not in INDEX_KINDS:
        raise ValueError(f"index must be one of {INDEX_KINDS}, got {kind!r}")
    vectors = tf.convert_to_tensor(vectors, tf.float32)
    if vectors.shape[0] == 0:
        raise ValueError("The catalogue is empty: nothing to index.")
    if kind == "scann":
        require_scann()
        layer = tfrs.layers.factorized_top_k.ScaNN(k=10, **(options or scann_options(vectors.shape[0])))
    else:
        layer = tfrs.layers.factorized_top_k.BruteForce(k=10)
    layer.index(vectors, tf.convert_to_tensor(identifiers, tf.string))
    layer(vectors[:1], k=1)  # docs/design.md §1: a saved index must have been called once
    return layer


def require_scann() -> None:
    """Raises a clear ImportError when the ScaNN ops cannot be loaded."""
    try:
        import scann  # noqa: F401  (registers the ScaNN TF ops)
    except ImportError as e:
        raise ImportError(
            "--index scann needs the scann package, which is not installed: "
            "`pip install --no-deps scann==1.4.2` (built for TF 2.20) or "
            "`pip install -e \".[scann]\"`; or export with --index brute_force.") from e
