"""The two-tower network's loss terms, as parts it is built from.

A retrieval objective (one per network):

- :class:`CatalogueSoftmax`: the exact softmax over every training item
  (``afetler.negatives="catalogue"``, default): the catalogue goes through the
  candidate tower once a step and the batch's candidates are its rows;
- :class:`InBatchSoftmax`: TFRS's in-batch softmax with the log-Q
  correction (``"batch"``), optionally with a bank of earlier batches'
  candidates as extra negatives.

Auxiliary losses (joint stage only; each named after its tracked term):
:class:`MimicLoss` (adaptive-mimic, fusion's a_u/a_v toward the other
tower's output) and :class:`CategoryAlignmentLoss` (items of one primary
category pulled together). docs/design.md §3 gives the formulas.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from afetler_tf import losses
from afetler_tf.models.negative_bank import NegativeBank
from afetler_tf.training import with_autograph

CATALOGUE_SOFTMAX_LIMIT = 50_000  # items; larger catalogues: afetler.negatives="batch"


def retrieval_task(temperature: float) -> tfrs.tasks.Retrieval:
    """In-batch softmax, one loss per query (the caller takes the mean over the
    batch, so loss weights are comparable). Reduction NONE because Keras
    refuses SUM_OVER_BATCH_SIZE outside ``compile`` under a tf.distribute
    strategy; under one, the batch is the replica's share (per-replica negatives)."""
    loss = tf.keras.losses.CategoricalCrossentropy(
        from_logits=True, reduction=tf.keras.losses.Reduction.NONE)
    return tfrs.tasks.Retrieval(loss=loss, temperature=temperature, remove_accidental_hits=True)


def id_codes(ids: tf.Tensor) -> tf.Tensor:
    """(n,) int32 codes of the (n,) ids, equal exactly where the ids are equal
    (``tf.unique``): what a TFRS ``Retrieval`` task with
    ``remove_accidental_hits`` should get as ``candidate_ids``. It compares
    the ids of every pair of candidates, n^2 comparisons, which on id strings
    were the largest op of a NewItemGAN step (``python -m experiments
    op_profile gan``); on the codes the same pairs come out equal."""
    return tf.unique(ids).idx


def check_catalogue_size(items: int) -> None:
    """Refuses the exact softmax over a catalogue above CATALOGUE_SOFTMAX_LIMIT items."""
    if items > CATALOGUE_SOFTMAX_LIMIT:
        raise ValueError(
            f"afetler.negatives='catalogue' passes all {items:,} training items through the item "
            f"tower at every step; above {CATALOGUE_SOFTMAX_LIMIT:,} items use the in-batch softmax: "
            f"--set afetler.negatives=batch")


class CatalogueSoftmax(tf.Module):
    """Exact softmax over every training item: the sampled in-batch softmax
    and its log-Q correction replaced by the quantity they estimate.

    Args:
        catalogue: Raw features of every training item, in the id
            vocabulary's order (row r = vocabulary index r + 1).
        temperature: Softmax temperature.
    """

    def __init__(self, catalogue: dict, temperature: float):
        super().__init__(name="catalogue_softmax")
        self.catalogue = {k: tf.constant(v) for k, v in catalogue.items()}
        self.temperature = temperature

    def __call__(self, features, p_u, candidate_tower, training=False) -> tuple:
        """(loss, the batch's candidate-tower outputs {"p", "a"?})."""
        catalogue = candidate_tower.forward(self.catalogue, training=training)
        candidate = self.candidates(features, catalogue, candidate_tower, training)
        return self.loss(features, p_u, catalogue["p"], candidate_tower), candidate

    @staticmethod
    def candidates(features, catalogue, candidate_tower, training=False) -> dict:
        """The batch's candidate-tower outputs as rows of the catalogue's (the
        tower maps equal features to equal outputs: no dropout in it), so the
        batch's items are not run through the tower a second time; a batch
        with an item outside the training vocabulary (validation) runs it."""
        rows = candidate_tower.features.id_lookup(features["item_id"]) - 1  # OOV: -1
        return tf.cond(tf.reduce_all(rows >= 0),
                       lambda: {k: tf.gather(catalogue[k], rows) for k in ("p", "a") if k in catalogue},
                       lambda: {k: v for k, v in candidate_tower.forward(
                           features, training=training).items() if k in ("p", "a")})

    def loss(self, features, p_u, p_all, candidate_tower):
        """Mean softmax cross-entropy of the batch's items against the catalogue
        (``p_all`` (n, d)). Rows whose item is outside the vocabulary
        (validation only) are left out of the mean."""
        logits = tf.matmul(p_u, p_all, transpose_b=True) / self.temperature  # (batch, n)
        labels = candidate_tower.features.id_lookup(features["item_id"]) - 1  # OOV: -1
        known = labels >= 0
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.maximum(labels, 0), logits)
        count = tf.maximum(tf.reduce_sum(tf.cast(known, loss.dtype)), 1.0)
        return tf.reduce_sum(tf.where(known, loss, tf.zeros_like(loss))) / count


class InBatchSoftmax(tf.Module):
    """TFRS's in-batch softmax with the log-Q correction (the items'
    ``sampling_probability``); with a :class:`NegativeBank`, earlier batches'
    candidates (stop-gradient) are appended after the batch's own as extra
    negatives, labels staying on the diagonal."""

    def __init__(self, temperature: float, bank: Optional[NegativeBank] = None):
        super().__init__(name="in_batch_softmax")
        self.task = retrieval_task(temperature)
        self.bank = bank

    def __call__(self, features, p_u, candidate_tower, training=False) -> tuple:
        """(loss, the batch's candidate-tower outputs)."""
        candidate = candidate_tower.forward(features, training=training)
        return self.loss(features, p_u, candidate["p"], training), candidate

    def loss(self, features, p_u, p_v, training=False):
        ids, prob = features["item_id"], features["sampling_probability"]
        candidates = p_v
        if self.bank is not None and training:
            bank_v, bank_ids, bank_prob = self.bank.read()
            candidates = tf.concat([p_v, bank_v], 0)
            ids, prob = tf.concat([ids, bank_ids], 0), tf.concat([prob, bank_prob], 0)
            self.bank.write(p_v, features["item_id"], features["sampling_probability"])
        retrieval = with_autograph(self.task)  # the network's compute_loss is traced without it
        return tf.reduce_mean(retrieval(p_u, candidates, compute_metrics=False, candidate_ids=id_codes(ids),
                                        candidate_sampling_probability=prob))


class MimicLoss:
    """``weight`` (L_mimic(a_u, p_v) + L_mimic(a_v, p_u)): each tower's
    augmented vector learns the other tower's output (adaptive fusion)."""

    name = "mimic"

    def __init__(self, weight: float):
        self.weight = weight

    def __call__(self, features, query: dict, candidate: dict):
        return self.weight * (losses.mimic_loss(query["a"], candidate["p"])
                              + losses.mimic_loss(candidate["a"], query["p"]))


class CategoryAlignmentLoss:
    """``weight`` L_CA over the batch's items with a primary category.

    Args:
        weight: The term's weight.
        primary: (n_items + 1,) primary category per item-vocabulary row
            (-1: none or unknown item).
    """

    name = "category_alignment"

    def __init__(self, weight: float, primary: np.ndarray, id_lookup):
        self.weight = weight
        self._primary = tf.constant(primary, tf.int32)
        self._id_lookup = id_lookup

    def __call__(self, features, query: dict, candidate: dict):
        primary = tf.gather(self._primary, self._id_lookup(features["item_id"]))  # (batch,)
        known = primary >= 0
        return self.weight * losses.category_alignment_loss(tf.boolean_mask(candidate["p"], known),
                                                            tf.boolean_mask(primary, known))
