"""Deterministic train/validation/test splits (docs/design.md §2).

Kinds:
    random: ``test_fraction`` of interactions uniformly at random.
    temporal: the latest ``test_fraction`` of interactions by time (a global
        cut at the 80th percentile of timestamps by default). Interactions that
        share the cut's timestamp are ordered by a seeded shuffle, so the sizes
        are exact even with ties, and max(train time) <= min(test time).
    cold-items: ``test_fraction`` of the items with interactions, chosen at
        random, leave training entirely; all their interactions are the test
        set, every other interaction trains.
    none: everything trains; the test set is empty.
Validation: ``validation_fraction`` of the training part, at random (temporal:
the latest part by time). Rows keep their order in the data set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from afetler_tf.data.schema import Dataset, Split

SPLIT_KINDS = ("random", "temporal", "cold-items", "none")


def make_split(data: Dataset, kind: str = "random", seed: int = 42, test_fraction: float = 0.2,
               validation_fraction: float = 0.1) -> Split:
    """Splits ``data.interactions`` (module docstring).

    Args:
        data: The Dataset.
        kind: One of SPLIT_KINDS.
        seed: Seed of every random choice (numpy ``default_rng``).
        test_fraction: Share of interactions (cold-items: of items) held out.
        validation_fraction: Share of the training part carved out for validation.

    Returns:
        The Split; every frame has a fresh 0..n-1 index.

    Raises:
        ValueError: Unknown kind, or a fraction outside [0, 1).
    """
    if kind not in SPLIT_KINDS:
        raise ValueError(f"Unknown split kind {kind!r}; valid: {', '.join(SPLIT_KINDS)}.")
    for label, value in (("test_fraction", test_fraction), ("validation_fraction", validation_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{label} must be in [0, 1), got {value}.")
    frame = data.interactions.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    cold: tuple[str, ...] = ()
    if kind == "random":
        train_rows, test_rows = _random(len(frame), test_fraction, rng)
    elif kind == "temporal":
        train_rows, test_rows = _latest(frame["timestamp"].to_numpy(), test_fraction, rng)
    elif kind == "cold-items":
        train_rows, test_rows, cold = _cold_items(frame, test_fraction, rng)
    else:
        train_rows, test_rows = np.arange(len(frame)), np.arange(0)
    times = frame["timestamp"].to_numpy()[train_rows]
    if kind == "temporal":
        keep, val = _latest(times, validation_fraction, rng)
    else:
        keep, val = _random(len(train_rows), validation_fraction, rng)
    return Split(kind, seed, _rows(frame, train_rows[keep]), _rows(frame, train_rows[val]),
                 _rows(frame, test_rows), cold)


def _rows(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    return frame.iloc[np.sort(rows)].reset_index(drop=True)


def _random(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) positions; round(fraction * n) held out at random."""
    perm = rng.permutation(n)
    n_out = int(round(fraction * n))
    return np.sort(perm[n_out:]), np.sort(perm[:n_out])


def _latest(times: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(earlier, latest) positions; the latest round(fraction * n) by time held out."""
    n = len(times)
    tie_break = rng.permutation(n)
    order = np.lexsort((tie_break, times))  # by time, ties in seeded random order
    n_out = int(round(fraction * n))
    return np.sort(order[:n - n_out]), np.sort(order[n - n_out:])


def _cold_items(frame: pd.DataFrame, fraction: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    items = np.sort(pd.unique(frame["item_id"].to_numpy(dtype=object)).astype(str))
    n_cold = int(round(fraction * len(items)))
    cold = np.sort(rng.choice(items, size=n_cold, replace=False)) if n_cold else items[:0]
    is_cold = frame["item_id"].isin(set(cold.tolist())).to_numpy()
    return np.flatnonzero(~is_cold), np.flatnonzero(is_cold), tuple(str(c) for c in cold)
