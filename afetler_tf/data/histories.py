"""Per-user interaction histories for MCAU (docs/design.md §2).

A history is built only from the training interactions given, most recent
first (ties: item id, then row order), without the target interaction itself
and, for temporal splits, only from interactions strictly before the target.
Everything is vectorised: the training table is sorted by (user, time desc)
once; each target then reads a window of its user's segment.

Output (n targets, L = max_len):
    history_item_ids: object (n, L) of str, "" = padding.
    history_ratings: float32 (n, L), 0 = padding (and for implicit, NaN, ratings).
    history_length: int32 (n,), number of real entries (a prefix of each row).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

_CHUNK = 1 << 16  # targets per block: bounds the (chunk, L + m) index matrices


class HistoryIndex:
    """Training interactions sorted by user, then time (newest first).

    Built once per interaction table and reusable (:func:`user_histories`
    takes one in place of the table), so a caller that reads histories
    many times does not sort the log again each time."""

    def __init__(self, train: pd.DataFrame):
        user_codes, users = pd.factorize(train["user_id"].to_numpy(dtype=object), sort=True)
        item_codes, items = pd.factorize(train["item_id"].to_numpy(dtype=object), sort=True)
        times = train["timestamp"].to_numpy(dtype=np.int64)
        order = np.lexsort((np.arange(len(train)), item_codes, -times, user_codes))
        self.users = pd.Index(np.asarray(users, dtype=object))
        self.vocab = np.append(np.asarray(items, dtype=object), "")  # last = padding
        self.user_codes = user_codes[order]
        self.times = times[order]
        self.items = item_codes[order]
        ratings = train["rating"].to_numpy(dtype=np.float64)[order] if "rating" in train \
            else np.zeros(len(train))
        self.ratings = np.nan_to_num(ratings, nan=0.0).astype(np.float32)
        self.item_ids = np.asarray(train["item_id"].to_numpy(dtype=object))[order]
        self.user_ids = np.asarray(train["user_id"].to_numpy(dtype=object))[order]
        n_users = len(users)
        self.seg_start = np.searchsorted(self.user_codes, np.arange(n_users), side="left")
        self.seg_end = np.searchsorted(self.user_codes, np.arange(n_users), side="right")
        self.uniq_times = np.unique(self.times)
        # Key ascending along the sorted rows: user, then time descending.
        k = len(self.uniq_times)
        time_rank = np.searchsorted(self.uniq_times, self.times)  # 0 = oldest
        self.key = self.user_codes.astype(np.int64) * (k + 1) + (k - 1 - time_rank)

    def counts(self, user_ids) -> np.ndarray:
        """Number of interactions of each user (0 for an unknown user), (n,)."""
        codes = self.users.get_indexer(np.asarray(user_ids, dtype=object))
        lengths = (self.seg_end - self.seg_start)[np.maximum(codes, 0)] if len(self.seg_end) \
            else np.zeros(len(codes), np.int64)
        return np.where(codes >= 0, lengths, 0)

    def windows(self, user_ids, times: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(start, end) positions of each target's candidate rows (empty for unknown users)."""
        codes = self.users.get_indexer(np.asarray(user_ids, dtype=object))
        known = codes >= 0
        safe = np.where(known, codes, 0)
        start = np.where(known, self.seg_start[safe] if len(self.seg_start) else 0, 0)
        end = np.where(known, self.seg_end[safe] if len(self.seg_end) else 0, 0)
        if times is not None and known.any():
            k = len(self.uniq_times)
            q = np.searchsorted(self.uniq_times, times, side="left")  # train times < t: rank < q
            first_before = np.searchsorted(self.key, safe.astype(np.int64) * (k + 1) + (k - q), side="left")
            start = np.where(known, np.maximum(start, first_before), start)
        return start.astype(np.int64), end.astype(np.int64)

    def self_positions(self, targets: pd.DataFrame) -> np.ndarray:
        """(n, m) sorted positions of train rows equal to each target (user, item, time); -1 = none."""
        rows = pd.DataFrame({"user_id": self.user_ids, "item_id": self.item_ids,
                             "timestamp": self.times, "pos": np.arange(len(self.times))})
        keys = pd.DataFrame({"user_id": targets["user_id"].to_numpy(dtype=object),
                             "item_id": targets["item_id"].to_numpy(dtype=object),
                             "timestamp": targets["timestamp"].to_numpy(dtype=np.int64),
                             "target": np.arange(len(targets))})
        hits = keys.merge(rows, on=["user_id", "item_id", "timestamp"], how="inner")
        if hits.empty:
            return np.full((len(targets), 1), -1, dtype=np.int64)
        hits = hits.sort_values(["target", "pos"])
        rank = hits.groupby("target").cumcount().to_numpy()
        out = np.full((len(targets), int(rank.max()) + 1), -1, dtype=np.int64)
        out[hits["target"].to_numpy(), rank] = hits["pos"].to_numpy()
        return out


def make_histories(train: pd.DataFrame, targets: pd.DataFrame, max_len: int = 50,
                   temporal: bool = False) -> dict[str, np.ndarray]:
    """Histories of each target row's user, from ``train`` only.

    Args:
        train: Training interactions (user_id, item_id, rating, timestamp).
        targets: Rows to build histories for (user_id, item_id, timestamp); a
            target that is itself a row of ``train`` (same user, item and
            timestamp) is left out of its own history. Without a timestamp
            column nothing is excluded.
        max_len: History cap L (most recent first).
        temporal: Only use interactions strictly before the target's timestamp.

    Returns:
        The dict described in the module docstring.

    Raises:
        ValueError: ``max_len`` < 1, or ``temporal`` without target timestamps.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}.")
    has_time = "timestamp" in targets
    if temporal and not has_time:
        raise ValueError("temporal histories need a 'timestamp' column in targets.")
    index = HistoryIndex(train)
    times = targets["timestamp"].to_numpy(dtype=np.int64) if has_time else None
    start, end = index.windows(targets["user_id"].to_numpy(dtype=object), times if temporal else None)
    exclude = index.self_positions(targets) if has_time and not temporal \
        else np.full((len(targets), 1), -1, dtype=np.int64)
    return _gather(index, start, end, exclude, max_len)


def user_histories(train, user_ids: Sequence[str], max_len: int = 50) -> dict[str, np.ndarray]:
    """Serving histories: each user's latest ``max_len`` training interactions (no exclusion).

    ``train``: the interactions (a DataFrame), or a :class:`HistoryIndex` of them.

    Returns:
        The dict described in the module docstring, one row per user id.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}.")
    index = train if isinstance(train, HistoryIndex) else HistoryIndex(train)
    start, end = index.windows(np.asarray(user_ids, dtype=object), None)
    return _gather(index, start, end, np.full((len(start), 1), -1, dtype=np.int64), max_len)


def _gather(index: HistoryIndex, start: np.ndarray, end: np.ndarray, exclude: np.ndarray,
            max_len: int) -> dict[str, np.ndarray]:
    n = len(start)
    ids = np.empty((n, max_len), dtype=object)
    ratings = np.zeros((n, max_len), dtype=np.float32)
    lengths = np.zeros(n, dtype=np.int32)
    for lo in range(0, n, _CHUNK):
        hi = min(n, lo + _CHUNK)
        codes, rates, count = _block(index, start[lo:hi], end[lo:hi], exclude[lo:hi], max_len)
        ids[lo:hi] = index.vocab[codes]
        ratings[lo:hi] = rates
        lengths[lo:hi] = count
    return {"history_item_ids": ids, "history_ratings": ratings, "history_length": lengths}


def _block(index: HistoryIndex, start, end, exclude, max_len):
    """Item codes (pad = len(vocab) - 1), ratings and lengths of one block of targets.

    The kept rows of a target are its window [start, end) minus the excluded
    positions, so the j-th kept row is start + j + (number of excluded rows
    at or before it): with the excluded offsets sorted, offset_k - k is the j
    from which the k-th one shifts the rest.
    """
    inside = (exclude >= start[:, None]) & (exclude < end[:, None])
    offsets = np.sort(np.where(inside, exclude - start[:, None], np.iinfo(np.int64).max // 2), axis=1)
    thresholds = offsets - np.arange(offsets.shape[1])[None, :]  # (n, m)
    j = np.arange(max_len)[None, :]
    shift = (j[:, :, None] >= thresholds[:, None, :]).sum(axis=2)  # (n, L)
    pos = start[:, None] + j + shift
    count = np.clip(end - start - inside.sum(axis=1), 0, max_len).astype(np.int32)
    keep = j < count[:, None]
    pad = len(index.vocab) - 1
    if len(index.items) == 0:
        return np.full(pos.shape, pad), np.zeros(pos.shape, np.float32), count
    safe = np.where(keep, pos, 0)
    codes = np.where(keep, index.items[safe], pad)
    rates = np.where(keep, index.ratings[safe], 0.0).astype(np.float32)
    return codes, rates, count
