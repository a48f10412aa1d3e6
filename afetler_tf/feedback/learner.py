"""The replayed recommender: fused sources, optionally learning online.

A :class:`FusionLearner` answers the simulator of protocol F. It blends the
normalised source scores with weights w and never recommends an item the
user already interacted with in what was revealed. With ``learn=True`` it is
the feedback loop: w moves by DBGD on team-draft interleaved lists, the
towers are fine-tuned on each revealed round, and the popularity and
new-item sources count what was revealed. With ``learn=False`` it is the
same model frozen after warm-up (weights, histories, counts and w fixed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from afetler_tf.feedback.config import FeedbackConfig
from afetler_tf.feedback.dbgd import DuelingBanditGD, interleaving_winner, project_simplex, team_draft
from afetler_tf.feedback.online import OnlineUpdater
from afetler_tf.feedback.sources import SourceScorer, decayed_counts, fused_top_k


class FusionLearner:
    """Source fusion over a catalogue, frozen or learning online.

    Args:
        model: The warm-up-trained recommender (it is fine-tuned in place
            when learning).
        catalogue: (items,) item ids; lists hold columns of it.
        warmup: The warm-up interactions (revealed before round 1).
        config: Feedback settings.
        learn: Feedback loop (True) or frozen baseline (False).
    """

    def __init__(self, model, catalogue, warmup: pd.DataFrame, config: FeedbackConfig,
                 learn: bool = True):
        self.catalogue = pd.Index(np.asarray(catalogue, object))
        self.config, self.learn = config, learn
        self.revealed = warmup.reset_index(drop=True)
        self._half_life = config.popularity_half_life_days * 86400.0
        self.counts = self._counts(self.revealed)
        self.popularity = decayed_counts(self.revealed, self.catalogue, self._half_life)
        self.scorer = SourceScorer(model, self.catalogue.to_numpy(object), config.sources,
                                   config.candidates, config.new_item_min_count)
        self.weights = project_simplex(np.asarray(config.initial_weights, np.float64))
        self.bandit = (DuelingBanditGD(self.weights, config.dbgd_delta, config.dbgd_gamma, config.seed)
                       if learn and config.dbgd else None)
        self.updater = OnlineUpdater(model, config) if learn else None
        self._rng = np.random.default_rng(config.seed)
        self._duels = []

    def _counts(self, frame: pd.DataFrame) -> np.ndarray:
        cols = self.catalogue.get_indexer(frame["item_id"].astype(str).to_numpy(object))
        return np.bincount(cols[cols >= 0], minlength=len(self.catalogue))

    def _exclude(self, user_ids: np.ndarray) -> np.ndarray:
        """(users, items) True where the user already interacted (revealed)."""
        seen = self.revealed[self.revealed["user_id"].isin(set(user_ids))]
        rows = pd.Index(user_ids).get_indexer(seen["user_id"].astype(str).to_numpy(object))
        cols = self.catalogue.get_indexer(seen["item_id"].astype(str).to_numpy(object))
        mask = np.zeros((len(user_ids), len(self.catalogue)), bool)
        mask[rows[cols >= 0], cols[cols >= 0]] = True
        return mask

    def recommend(self, user_ids: np.ndarray, k: int) -> np.ndarray:
        """(users, k) columns: the fused list, or with DBGD the interleaved one."""
        exclude = self._exclude(user_ids)
        stack = self.scorer(user_ids, exclude, self.counts, self.popularity)  # (sources, users, items)
        if self.bandit is None:
            return fused_top_k(stack, self.weights, k, exclude)
        lists = np.full((len(user_ids), k), -1, np.int64)
        teams = np.full((len(user_ids), k), -1, np.int64)
        groups = np.array_split(self._rng.permutation(len(user_ids)), self.config.dbgd_groups)
        self._duels = []
        for rows in (g for g in groups if len(g)):
            u, candidate = self.bandit.propose()
            list_a = fused_top_k(stack[:, rows], self.bandit.w, k, exclude[rows])
            list_b = fused_top_k(stack[:, rows], candidate, k, exclude[rows])
            for i, row in enumerate(rows):
                lists[row], teams[row] = team_draft(list_a[i], list_b[i], k, self._rng)
            self._duels.append((rows, u))
        self._teams = teams
        return lists

    def observe(self, interactions: pd.DataFrame, lists: np.ndarray, feedback: np.ndarray) -> dict:
        """Learns from the revealed round (when learning); returns w and costs."""
        self.revealed = pd.concat([self.revealed, interactions], ignore_index=True)
        stats = {}
        if self.bandit is not None:
            outcomes = [interleaving_winner(self._teams[rows], feedback[rows]) for rows, _ in self._duels]
            for (rows, u), outcome in zip(self._duels, outcomes):
                self.bandit.update(u, outcome == 1)
            self.weights = self.bandit.w
            stats["dbgd_candidate_wins"] = int(sum(o == 1 for o in outcomes))
            stats["dbgd_comparisons"] = len(outcomes)
        if self.learn:
            self.counts = self._counts(self.revealed)
            self.popularity = decayed_counts(self.revealed, self.catalogue, self._half_life)
            stats.update(self.updater.update(interactions, self.revealed))
        stats["weights"] = {name: float(w) for name, w in zip(self.config.sources, self.weights)}
        return stats
