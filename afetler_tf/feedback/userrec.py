"""UserRec: the users to market an item to (docs/design.md §5).

The item's vector is scored against every user's vector (``score_all`` with
one item column: <p_u, p_v> for the tower models) and the top users, minus
those who already interacted with the item, are the audience. Evaluated on a
later period: for each item with later interactions, precision and recall of
its top-n audience against the users who interacted with it later, and the
user coverage (share of users targeted by at least one item).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

from afetler_tf.evaluation import metrics
from afetler_tf.models.base import Recommender


def users_for_item(model: Recommender, item_id: str, user_ids: Sequence[str], n: int = 100,
                   known: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """The ``n`` users most likely to want ``item_id``.

    Args:
        model: A trained recommender (unknown items answered through OOV).
        item_id: The item to market.
        user_ids: The user base to choose from.
        n: Audience size.
        known: Interactions already seen; their users of the item are skipped.

    Returns:
        DataFrame with rank, user_id and score (at most ``n`` rows).

    Raises:
        ValueError: ``n`` < 1 or an empty user base.
    """
    if n < 1 or len(user_ids) == 0:
        raise ValueError(f"Need n >= 1 and at least one user; got n={n!r}, {len(user_ids)} users.")
    users = np.asarray(user_ids, object)
    scores = np.asarray(model.score_all(users, [str(item_id)]), np.float64)[:, 0]  # (users,)
    skip = np.zeros(len(users), bool)
    if known is not None:
        had = known.loc[known["item_id"].astype(str) == str(item_id), "user_id"].astype(str)
        skip = np.isin(users, had.to_numpy(object))
    top = metrics.top_k(scores[None, :], n, skip[None, :])[0]
    top = top[top >= 0]
    return pd.DataFrame({"rank": np.arange(1, len(top) + 1), "user_id": users[top],
                         "score": scores[top]})


def evaluate_userrec(model: Recommender, user_ids: Sequence[str], known: pd.DataFrame,
                     later: pd.DataFrame, n: int = 10, batch_items: int = 256) -> dict:
    """Precision@n, recall@n and user coverage of UserRec on a later period.

    Args:
        model: Trained on ``known`` only.
        user_ids: The user base (columns of the user-by-item score matrix).
        known: Interactions the model saw (their pairs are never targeted).
        later: The later period; an item's relevant users are those who
            interacted with it there (and not in ``known``).
        n: Audience size per item.

    Returns:
        ``precision@n``, ``recall@n`` (means over items with >= 1 relevant
        user), ``user_coverage`` and ``items``.
    """
    users = pd.Index(np.asarray(user_ids, object))
    new_pairs = later.merge(known[["user_id", "item_id"]].drop_duplicates(), how="left",
                            on=["user_id", "item_id"], indicator=True)
    new_pairs = new_pairs[new_pairs["_merge"] == "left_only"]
    items = np.asarray(sorted(pd.unique(new_pairs["item_id"].astype(str))), object)
    relevant = new_pairs.groupby(new_pairs["item_id"].astype(str))["user_id"].agg(
        lambda s: users.get_indexer(s.astype(str).to_numpy(object)))
    targeted = np.zeros(len(users), bool)
    precision, recall = [], []
    for start in range(0, len(items), batch_items):
        batch = items[start:start + batch_items]
        scores = np.asarray(model.score_all(users.to_numpy(object), batch), np.float64).T  # (items, users)
        top = metrics.top_k(scores, n, _seen(known, batch, users))
        for item, row in zip(batch, top):
            rel = relevant[item][relevant[item] >= 0]
            hits = np.isin(row[row >= 0], rel).sum()
            precision.append(hits / n)
            recall.append(hits / max(len(rel), 1))
            targeted[row[row >= 0]] = True
    return {f"precision@{n}": float(np.mean(precision)), f"recall@{n}": float(np.mean(recall)),
            "user_coverage": float(targeted.mean()), "items": int(len(items))}


def _seen(known: pd.DataFrame, items: np.ndarray, users: pd.Index) -> np.ndarray:
    """(items, users) True where the user interacted with the item in ``known``."""
    part = known[known["item_id"].astype(str).isin(set(items))]
    rows = pd.Index(items).get_indexer(part["item_id"].astype(str).to_numpy(object))
    cols = users.get_indexer(part["user_id"].astype(str).to_numpy(object))
    mask = np.zeros((len(items), len(users)), bool)
    mask[rows[cols >= 0], cols[cols >= 0]] = True
    return mask
