"""Scores of the fused sources, normalised per user (docs/design.md §5).

Sources, each a (users, items) matrix in [0, 1] (min-max per user over the
items the source scores; 0 elsewhere and for excluded items):
    ranker: the model's pair score (ranking head) of the top ``candidates``
        retrieval items; the rest are not scored.
    retrieval: the model's catalogue score <p_u, p_v>.
    popularity: log(1 + time-decayed revealed interactions of the item), the
        same for every user (see ``decayed_counts``).
    new_item: the retrieval score restricted to items with fewer than
        ``new_item_min_count`` revealed interactions (whatever vectors the
        model gives such items: OOV id + content, or a generator).
The final list ranks by sum_s w_s score_s.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from afetler_tf.evaluation import metrics
from afetler_tf.models.base import Recommender


def normalise_rows(scores: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Min-max of each row over ``support`` (bool, same shape); 0 outside it."""
    masked_min = np.where(support, scores, np.inf).min(axis=1, keepdims=True)
    masked_max = np.where(support, scores, -np.inf).max(axis=1, keepdims=True)
    span = np.where(np.isfinite(masked_max - masked_min), masked_max - masked_min, 0.0)
    out = np.where(support, scores - np.where(np.isfinite(masked_min), masked_min, 0.0), 0.0)
    return np.divide(out, span, out=np.zeros_like(out), where=span > 0)


class SourceScorer:
    """Normalised per-source scores of a model over a fixed catalogue.

    Args:
        model: A trained Recommender (pair scores from ``score``, catalogue
            scores from ``score_all``).
        catalogue: (items,) item ids.
        sources: Source names, in the order of the weights.
        candidates: Retrieval items per user re-scored by the ranker.
        new_item_min_count: Support of the new-item source: items with fewer
            revealed interactions.
    """

    def __init__(self, model: Recommender, catalogue: Sequence[str], sources: Sequence[str],
                 candidates: int = 100, new_item_min_count: int = 5):
        self.model, self.catalogue = model, np.asarray(catalogue, object)
        self.sources, self.candidates = tuple(sources), int(candidates)
        self.new_item_min_count = int(new_item_min_count)

    def __call__(self, user_ids: np.ndarray, exclude: np.ndarray, counts: np.ndarray,
                 popularity: np.ndarray) -> np.ndarray:
        """Returns (sources, users, items) scores in [0, 1].

        Args:
            user_ids: (users,) ids.
            exclude: (users, items) bool, items never recommended to the user.
            counts: (items,) revealed interactions per item (new-item support).
            popularity: (items,) time-decayed revealed interactions per item.
        """
        allowed = ~exclude
        retrieval = np.asarray(self.model.score_all(user_ids, self.catalogue), np.float64)
        stack = []
        for name in self.sources:
            if name == "retrieval":
                stack.append(normalise_rows(retrieval, allowed))
            elif name == "popularity":
                score = np.broadcast_to(np.log1p(popularity.astype(np.float64)), retrieval.shape)
                stack.append(normalise_rows(score, allowed))
            elif name == "new_item":
                support = allowed & (counts < self.new_item_min_count)[None, :]
                stack.append(normalise_rows(retrieval, support))
            else:
                stack.append(self._ranker(user_ids, retrieval, exclude))
        return np.stack(stack)

    def _ranker(self, user_ids: np.ndarray, retrieval: np.ndarray, exclude: np.ndarray) -> np.ndarray:
        top = metrics.top_k(retrieval, self.candidates, exclude)  # (users, candidates)
        rows = np.repeat(np.arange(len(user_ids)), top.shape[1])
        cols = top.ravel()
        rows, cols = rows[cols >= 0], cols[cols >= 0]
        scores = np.zeros(retrieval.shape)
        scores[rows, cols] = np.asarray(self.model.score(np.asarray(user_ids, object)[rows],
                                                         self.catalogue[cols]), np.float64)
        support = np.zeros(retrieval.shape, bool)
        support[rows, cols] = True
        return normalise_rows(scores, support)


def decayed_counts(frame: pd.DataFrame, catalogue: pd.Index, half_life_seconds: float) -> np.ndarray:
    """Interactions per catalogue item, each weighted 2^(-age / half-life).

    Age is measured from the latest timestamp in ``frame``; a half-life <= 0
    gives plain counts. Returns float array (items,).
    """
    cols = catalogue.get_indexer(frame["item_id"].astype(str).to_numpy(object))
    times = frame["timestamp"].to_numpy(np.float64)
    weights = np.ones(len(frame)) if half_life_seconds <= 0 or not len(frame) \
        else np.exp2(-(times.max() - times) / half_life_seconds)
    return np.bincount(cols[cols >= 0], weights[cols >= 0], minlength=len(catalogue))


def fused_top_k(stack: np.ndarray, weights: np.ndarray, k: int, exclude: np.ndarray) -> np.ndarray:
    """(users, k) columns ranked by sum_s w_s stack[s] (ties by column)."""
    return metrics.top_k(np.tensordot(np.asarray(weights, np.float64), stack, axes=1), k, exclude)
