"""Validation during training: protocol T on the validation carve-out (never the test set)."""

from __future__ import annotations

import tensorflow as tf

from afetler_tf.data.schema import Split
from afetler_tf.evaluation import evaluate


def validation_split(split):
    """``split`` with its validation interactions as the test set (and no
    validation): what the validation checks evaluate. The test set is dropped.

    A "none" split (everything trains, no test set) keeps its validation
    carve-out, so its validation view is scored like a random split's: early
    stopping and the fitted shares work the same way in every split.
    """
    kind = "random" if split.kind == "none" else split.kind
    return Split(kind, split.seed, split.train, split.validation.iloc[:0], split.validation)


def validation_ndcg(recommender, data, split, k: int = 10) -> float:
    """NDCG@k of protocol T on the validation set of ``split`` (never the test set)."""
    return float(evaluate(recommender, data, validation_split(split), protocols=("T",), k=k)
                 ["T"][f"ndcg@{k}"])


class ValidationRanking(tf.keras.callbacks.Callback):
    """Adds ``val_ndcg@k``, protocol T on the validation set, to each epoch's logs.

    Candidates exclude each user's training items; relevant = the user's
    validation items. Lets early stopping pick the epoch by the ranking
    quality it is after rather than by a loss proxy. The test set is never
    touched.
    """

    def __init__(self, recommender, data, split, k: int = 10):
        super().__init__()
        self._recommender, self._data, self._split, self._k = recommender, data, split, k

    def on_epoch_end(self, epoch, logs=None):
        ndcg = validation_ndcg(self._recommender, self._data, self._split, self._k)
        if logs is not None:
            logs[f"val_ndcg@{self._k}"] = ndcg
