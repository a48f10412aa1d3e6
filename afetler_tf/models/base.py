"""The interface every recommender in afetler_tf implements.

Evaluation (``afetler_tf.evaluation``), the CLIs and the benchmark talk to models
only through :class:`Recommender`, so a baseline and AFETLER are measured by the
very same code.
"""

from __future__ import annotations

import abc
from typing import Callable, Sequence

import numpy as np

from afetler_tf.config import Config
from afetler_tf.data.schema import Dataset, Split


class Recommender(abc.ABC):
    """A trainable recommender.

    Attributes:
        name: Model name as in ``Config.model``.
        predicts_ratings: True when :meth:`score` is on the rating scale (MF,
            DeepFM, models with a ranking head); False when it is an affinity
            score (retrieval dot product, popularity), which protocol R maps to
            ratings with a linear fit on the validation set.

    :meth:`score` answers protocol R (rank a user's test items, predict their
    ratings); :meth:`score_all` answers protocols T and C (rank the catalogue).
    A two-stage model scores pairs with its ranker and the catalogue with its
    retrieval towers; a one-stage model returns the same score from both.
    """

    name: str = "recommender"
    predicts_ratings: bool = False

    def __init__(self, config: Config):
        self.config = config

    @abc.abstractmethod
    def fit(self, data: Dataset, split: Split, verbose: int = 1) -> dict:
        """Trains on ``split.train`` (early stopping on ``split.validation``).

        Returns:
            A dict of training history (e.g. per-epoch losses), JSON-serialisable.
        """

    @abc.abstractmethod
    def score(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """Scores (user, item) pairs, element-wise; higher means more relevant.

        Unknown ids must be answered (OOV path), never raise.

        Returns:
            float array of shape (n,).
        """

    @abc.abstractmethod
    def score_all(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """Scores every user against every item.

        Returns:
            float array of shape (len(user_ids), len(item_ids)).
        """

    def catalogue_scorer(self, item_ids: Sequence[str]) -> Callable[[Sequence[str]], np.ndarray]:
        """A function scoring user batches against the same ``item_ids``, as
        :meth:`score_all` does; a model whose item side costs work overrides it
        to do that work once (an evaluation scores every user batch against one
        catalogue)."""
        return lambda user_ids: self.score_all(user_ids, item_ids)

    def save(self, directory: str) -> None:
        """Writes the weights under ``directory`` (created if needed)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be saved yet.")

    def load(self, directory: str, data: Dataset, split: Split) -> None:
        """Restores weights written by :meth:`save` (model rebuilt from data)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be loaded yet.")


def check_pairs(user_ids: Sequence[str], item_ids: Sequence[str]) -> None:
    """Raises ValueError unless :meth:`Recommender.score` got as many users as items."""
    if len(user_ids) != len(item_ids):
        raise ValueError(f"score() needs as many users as items, got "
                         f"{len(user_ids)} and {len(item_ids)}.")


class ItemScoreRecommender(Recommender):
    """A recommender whose score depends on the item alone (popularity kinds):
    a subclass implements :meth:`item_scores`; every user gets the same row."""

    @abc.abstractmethod
    def item_scores(self, item_ids: Sequence[str]) -> np.ndarray:
        """One score per item, float array of shape (n,)."""

    def score(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        check_pairs(user_ids, item_ids)
        return self.item_scores(item_ids)

    def score_all(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        row = self.item_scores(item_ids)
        return np.broadcast_to(row, (len(user_ids), len(row))).copy()
