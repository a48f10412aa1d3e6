"""Configuration of the feedback loop and marketing experiments (docs/design.md §4 F, §5).

The model being replayed keeps its own :class:`afetler_tf.config.Config`; this
frozen dataclass holds only what protocol F, the online updates, DBGD source
fusion, exposure-constrained matching and UserRec add on top of it.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Optional

SOURCES = ("ranker", "retrieval", "popularity", "new_item")


@dataclasses.dataclass(frozen=True)
class FeedbackConfig:
    """Protocol F replay, online learning and marketing settings.

    Attributes:
        rounds: Number R of replay rounds of equal duration after the warm-up.
        warmup_fraction: Share of interactions (earliest by time) in the warm-up.
        k: List length recommended to each active user per round.
        like_threshold: A rating >= this within the round earns reward +1.
        dislike_threshold: A rating <= this within the round earns penalty -1.
        online_epochs: Passes over a round's revealed interactions per update.
        online_batch_size: Batch size of the online fine-tuning.
        online_learning_rate: Adam learning rate of the online fine-tuning.
        penalty_weight: Weight of a disliked interaction as a negative example.
        rating_weight: Weight of the ranking-head MSE in the online loss.
        candidates: Retrieval candidates per user re-scored by the ranker source.
        sources: Names of the fused sources (subset of SOURCES, in that order).
        initial_weights: Starting source weights w (projected onto the simplex).
        dbgd: Learn w online by Dueling Bandit Gradient Descent (else w fixed).
        dbgd_delta: Exploration step delta of the candidate w' = P(w + delta u).
        dbgd_gamma: Update step gamma of w <- P(w + gamma u) when w' wins.
        dbgd_groups: Interleaving comparisons per round (users split in groups).
        online_replay: Earlier revealed interactions mixed into each update, as
            a multiple of the round's size (experience replay against
            forgetting; 0 = the round only).
        popularity_half_life_days: Half-life of the time decay of the
            popularity source's counts (<= 0: plain counts).
        new_item_min_count: Items with fewer revealed interactions than this
            form the support of the new-item source.
        betas: Minimum exposure shares beta of the trade-off curve; empty
            means ``tradeoff_points`` evenly spaced feasible shares from 0 to
            the largest one (see ``exposure.beta_grid``).
        tradeoff_points: Size of that default grid.
        userrec_k: Users targeted per item when UserRec is evaluated.
        seed: Seed of every random choice (user groups, directions u, draws).
    """

    rounds: int = 10
    warmup_fraction: float = 0.5
    k: int = 10
    like_threshold: float = 4.0
    dislike_threshold: float = 2.0
    online_epochs: int = 2
    online_batch_size: int = 256
    online_learning_rate: float = 1e-3
    penalty_weight: float = 1.0
    rating_weight: float = 1.0
    candidates: int = 100
    sources: tuple[str, ...] = SOURCES
    initial_weights: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25)
    dbgd: bool = True
    dbgd_delta: float = 0.3
    dbgd_gamma: float = 0.1
    dbgd_groups: int = 4
    online_replay: float = 1.0
    popularity_half_life_days: float = 14.0
    new_item_min_count: int = 5
    betas: tuple[float, ...] = ()
    tradeoff_points: int = 6
    userrec_k: int = 10
    seed: int = 42

    def __post_init__(self):
        if self.rounds < 1 or self.k < 1 or self.candidates < self.k:
            raise ValueError(f"Need rounds >= 1, k >= 1 and candidates >= k; got rounds={self.rounds}, "
                             f"k={self.k}, candidates={self.candidates}.")
        if not 0.0 < self.warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in (0, 1), got {self.warmup_fraction}.")
        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown or not self.sources:
            raise ValueError(f"Unknown or no source(s) {unknown}; valid: {list(SOURCES)}.")
        if len(self.initial_weights) != len(self.sources) or min(self.initial_weights) < 0:
            raise ValueError(f"initial_weights must give one non-negative weight per source "
                             f"{list(self.sources)}, got {list(self.initial_weights)}.")
        if self.tradeoff_points < 2:
            raise ValueError(f"tradeoff_points must be >= 2, got {self.tradeoff_points}.")
        if self.dislike_threshold >= self.like_threshold:
            raise ValueError("dislike_threshold must be below like_threshold.")
        for beta in self.betas:
            if not 0.0 <= beta <= 1.0:
                raise ValueError(f"Exposure shares must be in [0, 1], got {beta}.")

    def to_json(self, path: Optional[str] = None) -> str:
        text = json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)
        if path:
            from afetler_tf.files import atomic_write_text
            atomic_write_text(path, text + "\n")
        return text

    @classmethod
    def from_dict(cls, raw: dict) -> "FeedbackConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - fields)
        if unknown:
            raise ValueError(f"Unknown feedback config key(s) {unknown}; valid: {sorted(fields)}.")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
