"""The four exported modules: query tower, candidate tower, index, ranker.

Each is a ``tf.Module`` holding only the Keras parts it needs (a full TFRS
model does not save, DESIGN §1) and one ``serve`` tf.function with an
explicit input signature of raw features; ``serve`` is saved as the
``serving_default`` signature and returns a dict of named outputs.

    QueryModule      user [+ history]          -> embedding (batch, d)
    CandidateModule  item                      -> embedding (batch, d)
    IndexModule      user [+ history] + k      -> item_ids (batch, k) str, scores (batch, k)
    RankerModule     user [+ history] + item   -> rating (batch,), score (batch,)

``k`` is a scalar int32; k < 1 is an InvalidArgument error naming k, and a
larger k than the index can answer (the catalogue size; for ScaNN its 500
re-scored candidates) returns that many.
"""

from __future__ import annotations

import afetler_tf  # noqa: F401  (Keras-2 set-up before TensorFlow)
import tensorflow as tf
import tensorflow_recommenders as tfrs

from export.specs import K_KEY, InputSpecs

INDEX_KINDS = ("brute_force", "scann")


class QueryModule(tf.Module):
    """Raw user features (+ history) -> p_u."""

    def __init__(self, query_tower: tf.keras.Model, inputs: InputSpecs):
        super().__init__(name="query")
        self.query_tower = query_tower
        self._inputs = inputs
        self.serve = tf.function(self._serve, input_signature=[inputs.query])

    def _serve(self, features):
        return {"embedding": self.query_tower(self._inputs.prepare(features))}  # (batch, d)


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

    Args:
        query_tower: The trained query tower.
        index: A BruteForce or ScaNN layer, already indexed (``build_index``).
        most: The cap on k (``max_k``: the catalogue size for BruteForce).
        inputs: The model's InputSpecs.
    """

    def __init__(self, query_tower: tf.keras.Model, index: tfrs.layers.factorized_top_k.TopK,
                 most: int, inputs: InputSpecs):
        super().__init__(name="index")
        self.query_tower = query_tower
        self.index = index
        self._most = int(most)
        self._inputs = inputs
        self.serve = tf.function(self._serve, input_signature=[inputs.index])

    def _serve(self, features):
        k = features[K_KEY]
        check = tf.debugging.assert_positive(k, message="k must be >= 1")
        with tf.control_dependencies([check]):
            k = tf.minimum(k, self._most)
        p_u = self.query_tower(self._inputs.prepare(features))  # (batch, d)
        scores, ids = self.index(p_u, k=k)  # (batch, k) each
        return {"item_ids": ids, "scores": scores}


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
        else:  # <p_u, p_v> / rho + s <q~_u, v_v>, as the index scores
            score = self.item_item((p_u, features["user_id"], p_v, features["item_id"]))
        return {"rating": rating, "score": score}


def scann_options(catalogue_size: int) -> dict:
    """ScaNN tree/quantisation settings scaled to the catalogue.

    About sqrt(n) leaves (at most 2000), 60% of them searched (at least 8),
    asymmetric hashing with 1 dimension per block, and exact re-scoring of
    the best 4000 candidates: recall@10 0.97 against BruteForce on 1M random
    unit vectors of AFETLER's width (96: the towers' 32 + the item-item
    channel's 64) at about 4 ms a request (``python -m export.bench``), where
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
    layer(vectors[:1], k=1)  # DESIGN §1: a saved index must have been called once
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
