"""Validation during training: protocol T on the validation carve-out (never the test set)."""

from __future__ import annotations

import tensorflow as tf

from afetler_tf.data.schema import Split
from afetler_tf.evaluation import run_topn, topn_task


def validation_split(split):
    """``split`` with its validation interactions as the test set (and no
    validation): what the validation checks evaluate. The test set is dropped.

    A "none" split (everything trains, no test set) keeps its validation
    carve-out, so its validation view is scored like a random split's: early
    stopping and the fitted shares work the same way in every split.
    """
    kind = "random" if split.kind == "none" else split.kind
    return Split(kind, split.seed, split.train, split.validation.iloc[:0], split.validation)


class ValidationNdcg:
    """NDCG@k of protocol T on the validation set of ``split`` (never the test
    set), as :func:`afetler_tf.evaluation.evaluate` scores it: the split's
    part (relevant items, each user's excluded training items, the
    catalogue) is computed once, so a check repeated after every epoch or
    grid point only scores the model.

    Raises:
        ValueError: ``split`` has no validation interactions.
    """

    def __init__(self, data, split, k: int = 10):
        view = validation_split(split)
        if view.test.empty:
            raise ValueError(f"Split {split.kind!r} has no validation interactions, which early "
                             "stopping and the fitted shares are chosen on: set "
                             "data.validation_fraction > 0 (e.g. --set data.validation_fraction=0.1).")
        self._task, self._k = topn_task(data, view), k

    def __call__(self, recommender) -> float:
        return float(run_topn(recommender, self._task, self._k)[f"ndcg@{self._k}"])


def validation_ndcg(recommender, data, split, k: int = 10) -> float:
    """NDCG@k of protocol T on the validation set of ``split`` (never the test
    set); one check (:class:`ValidationNdcg` for repeated ones)."""
    return ValidationNdcg(data, split, k)(recommender)


class ValidationRanking(tf.keras.callbacks.Callback):
    """Adds ``val_ndcg@k``, protocol T on the validation set, to each epoch's logs.

    Candidates exclude each user's training items; relevant = the user's
    validation items. Lets early stopping pick the epoch by the ranking
    quality it is after rather than by a loss proxy. The test set is never
    touched.
    """

    def __init__(self, recommender, data, split, k: int = 10):
        super().__init__()
        self._recommender, self._ndcg, self._k = recommender, ValidationNdcg(data, split, k), k

    def on_epoch_end(self, epoch, logs=None):
        ndcg = self._ndcg(self._recommender)
        if logs is not None:
            logs[f"val_ndcg@{self._k}"] = ndcg
