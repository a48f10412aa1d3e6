"""Protocol F: replay of time-ordered interactions with rewards and penalties.

The interactions are ordered by time; the first ``warmup_fraction`` train the
model, the rest is cut into R rounds of equal duration. Each round, every user
active in it gets a list of k items *before* anything of the round is shown to
the learner; then the round is scored (+1 per recommended item the user rates
>= like_threshold within the round, -1 per item rated <= dislike_threshold)
and revealed. Rounds without interactions are reported and skipped.

The catalogue (the item table) is known from the start, as a shop knows its
listings; "new items" are those whose first interaction comes after the
warm-up. Lists hold catalogue column indices, -1 padding.

Example:
    replay = make_replay(data.interactions, rounds=10)
    log = simulate(learner, replay, catalogue, k=10)
"""

from __future__ import annotations

import dataclasses
import time
from typing import Protocol, Sequence

import numpy as np
import pandas as pd


@dataclasses.dataclass
class Round:
    """One replay round: interactions with start <= timestamp < end (last: <= end)."""

    index: int
    start: int
    end: int
    interactions: pd.DataFrame


@dataclasses.dataclass
class Replay:
    """Warm-up part, the R rounds (empty ones included) and the new items."""

    warmup: pd.DataFrame
    rounds: list
    new_items: frozenset


def make_replay(interactions: pd.DataFrame, rounds: int = 10, warmup_fraction: float = 0.5,
                seed: int = 42) -> Replay:
    """Splits interactions by time into a warm-up part and ``rounds`` rounds.

    Ties in time are ordered by a seeded shuffle, so the warm-up has exactly
    round(warmup_fraction * n) rows.

    Raises:
        ValueError: Fewer than two interactions, or no interaction after the warm-up.
    """
    if len(interactions) < 2:
        raise ValueError(f"Protocol F needs interactions to replay, got {len(interactions)}.")
    frame = interactions.reset_index(drop=True)
    times = frame["timestamp"].to_numpy(np.int64)
    order = np.lexsort((np.random.default_rng(seed).permutation(len(frame)), times))
    n_warm = int(round(warmup_fraction * len(frame)))
    if not 0 < n_warm < len(frame):
        raise ValueError(f"warmup_fraction {warmup_fraction} leaves no warm-up or no rounds.")
    warmup, rest = frame.iloc[np.sort(order[:n_warm])], frame.iloc[np.sort(order[n_warm:])]
    edges = np.linspace(times[order[n_warm]], times.max(), rounds + 1)
    which = np.clip(np.searchsorted(edges, rest["timestamp"].to_numpy(), side="right") - 1, 0, rounds - 1)
    parts = [Round(r, int(np.ceil(edges[r])), int(np.ceil(edges[r + 1])),
                   rest[which == r].reset_index(drop=True)) for r in range(rounds)]
    new_items = frozenset(set(rest["item_id"].astype(str)) - set(warmup["item_id"].astype(str)))
    return Replay(warmup.reset_index(drop=True), parts, new_items)


def round_feedback(lists: np.ndarray, user_ids: Sequence[str], catalogue: np.ndarray,
                   interactions: pd.DataFrame, like: float = 4.0, dislike: float = 2.0) -> np.ndarray:
    """Reward (+1), penalty (-1) or nothing (0) of each recommended slot.

    Args:
        lists: (users, k) catalogue columns, -1 = empty slot.
        user_ids: (users,) ids, one per row of ``lists``.
        catalogue: (items,) item ids (column -> id).
        interactions: The round's interactions; a pair rated more than once
            counts with its latest rating.

    Returns:
        float array (users, k).
    """
    latest = interactions.sort_values("timestamp", kind="stable").groupby(
        ["user_id", "item_id"], sort=False)["rating"].last()
    users = np.repeat(np.asarray(user_ids, object), lists.shape[1])
    items = np.where(lists.ravel() >= 0, np.asarray(catalogue, object)[lists.ravel()], "")
    rating = latest.reindex(pd.MultiIndex.from_arrays([users, items])).to_numpy(np.float64)
    out = np.where(rating >= like, 1.0, np.where(rating <= dislike, -1.0, 0.0))
    return out.reshape(lists.shape)


def round_metrics(lists: np.ndarray, feedback: np.ndarray, n_items: int,
                  new_columns: np.ndarray) -> dict:
    """Reward, likes, penalties, hit rate, coverage and new-item exposure of a round.

    Args:
        lists: (users, k) columns, -1 = empty slot.
        feedback: (users, k) from :func:`round_feedback`.
        n_items: Catalogue size (coverage denominator).
        new_columns: Bool (items,), True for new items.
    """
    shown = lists >= 0
    new_slots = shown & new_columns[np.where(shown, lists, 0)]
    return {"users": int(len(lists)), "reward": float(feedback.sum()),
            "likes": int((feedback > 0).sum()), "penalties": int((feedback < 0).sum()),
            "hit_rate": float(np.mean((feedback > 0).any(axis=1))) if len(lists) else 0.0,
            "coverage": float(len(np.unique(lists[shown])) / max(n_items, 1)),
            "new_item_exposure": float(new_slots.sum() / max(shown.sum(), 1))}


class Learner(Protocol):
    """What the simulator talks to: recommend first, then observe the round."""

    def recommend(self, user_ids: np.ndarray, k: int) -> np.ndarray:
        """(users, k) catalogue columns for the given users (nothing of the round known)."""

    def observe(self, interactions: pd.DataFrame, lists: np.ndarray, feedback: np.ndarray) -> dict:
        """Reveals the round (and the feedback on the learner's lists); returns learner stats."""


def simulate(learner: Learner, replay: Replay, catalogue: np.ndarray, k: int = 10,
             like: float = 4.0, dislike: float = 2.0, label: str = "", verbose: int = 1) -> list:
    """Runs protocol F for one learner.

    Returns:
        One dict per round: ``round``, and either ``skipped`` (no interactions)
        or the :func:`round_metrics` plus ``cumulative_reward``,
        ``recommend_seconds`` and the learner's stats from ``observe``.
    """
    catalogue = np.asarray(catalogue, object)
    new_columns = np.isin(catalogue, list(replay.new_items))
    log, total = [], 0.0
    for rnd in replay.rounds:
        if rnd.interactions.empty:
            log.append({"round": rnd.index, "skipped": True, "reason": "no interactions"})
            if verbose:
                print(f"{label} round {rnd.index + 1}: no interactions, skipped", flush=True)
            continue
        users = np.asarray(pd.unique(rnd.interactions["user_id"].astype(str)), object)
        start = time.perf_counter()
        lists = learner.recommend(users, k)
        seconds = time.perf_counter() - start
        feedback = round_feedback(lists, users, catalogue, rnd.interactions, like, dislike)
        row = {"round": rnd.index, **round_metrics(lists, feedback, len(catalogue), new_columns)}
        total += row["reward"]
        row.update(cumulative_reward=total, recommend_seconds=seconds,
                   **learner.observe(rnd.interactions, lists, feedback))
        log.append(row)
        if verbose:
            print(f"{label} round {rnd.index + 1}/{len(replay.rounds)}: users {row['users']}, reward "
                  f"{row['reward']:+.0f} (cumulative {total:+.0f}), hit rate {row['hit_rate']:.3f}, "
                  f"new-item exposure {row['new_item_exposure']:.3f}", flush=True)
    return log
