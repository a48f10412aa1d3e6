"""Top-k recommendations for a user, with explanations.

CLI::

    python -m afetler_tf.recommend --run runs/afetler-random-42 --user 42 --k 10 --explain
    python -m afetler_tf.recommend --run runs/afetler-random-42 --item 50 --users 100   # UserRec

Python::

    from afetler_tf.runs.training_run import load_run
    from afetler_tf.recommend import recommend
    result = load_run("runs/afetler-random-42")
    recommend(result.model, result.data, result.split, "42", k=10, explain=True)
    recommend_users(result.model, result.data, result.split, "50", n=100)  # whom to market to
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from afetler_tf.data.schema import Dataset, Split
from afetler_tf.models.base import Recommender


def seen_items(split: Split, user_id: str) -> set:
    """Items in the user's training part (train + validation): never recommended."""
    part = pd.concat([split.train, split.validation])
    return set(part.loc[part["user_id"] == user_id, "item_id"])


def recommend(model: Recommender, data: Dataset, split: Split, user_id: str, k: int = 10,
              explain: bool = False) -> pd.DataFrame:
    """The user's top-k catalogue items by retrieval score (seen items excluded).

    Unknown users are answered through the OOV path (profile-free vector).
    Only items the user has not seen (with a finite score) are ranked, so the
    table has ``min(k, unseen items)`` rows (``out.attrs``: "k" asked,
    "unseen" the number of candidates, "capped" whether k exceeded it).

    Returns:
        DataFrame with rank, item_id, title, categories, score, and (with
        ``explain``) predicted_rating and because (history items the
        target-aware attention leaned on, with their channel and weight).

    Raises:
        ValueError: ``k`` < 1, or ``explain`` with a model without attention.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    catalogue = data.items["item_id"].to_numpy(object)
    scores = np.asarray(model.score_all([user_id], catalogue)[0], np.float64)
    # Candidates: the items the user has not seen (and the model can score).
    unseen = np.flatnonzero(~np.isin(catalogue, list(seen_items(split, user_id))) & np.isfinite(scores))
    order = np.argsort(-scores[unseen], kind="stable")
    top = unseen[order[:k]]
    items = data.items.set_index("item_id")
    out = pd.DataFrame({"rank": np.arange(1, len(top) + 1), "item_id": catalogue[top],
                        "score": scores[top]})
    out.attrs.update(k=int(k), unseen=int(len(unseen)), capped=bool(k > len(unseen)))
    out["title"] = items["title"].reindex(out["item_id"]).to_numpy() if "title" in items else ""
    out["categories"] = items["categories"].reindex(out["item_id"]).map("|".join).to_numpy()
    if explain:
        if not hasattr(model, "explain"):
            raise ValueError(f"Model {model.name!r} has no attention to explain; use afetler.")
        explained = model.explain(user_id, list(out["item_id"])) if len(out) else []
        titles = items["title"] if "title" in items else pd.Series(dtype=object)
        out["predicted_rating"] = [e["rating"] for e in explained]
        out["because"] = ["; ".join(f"{titles.get(h, h)} ({c}, {w:.2f})" for h, c, w in e["history"])
                          for e in explained]
    return out


def recommend_users(model: Recommender, data: Dataset, split: Split, item_id: str,
                    n: int = 100) -> pd.DataFrame:
    """UserRec: the ``n`` users to market ``item_id`` to (docs/design.md §5).

    The item's vector is scored against every user of ``data.users``; users
    who already interacted with it in the training part are skipped.

    Returns:
        DataFrame with rank, user_id and score.
    """
    from afetler_tf.feedback.userrec import users_for_item
    known = pd.concat([split.train, split.validation])
    return users_for_item(model, str(item_id), data.users["user_id"].astype(str).to_numpy(object), n,
                          known)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m afetler_tf.recommend", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="a run directory written by afetler_tf.fit")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="user id: recommend items to this user")
    who.add_argument("--item", help="item id: recommend users to market it to (UserRec)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--users", type=int, default=100, help="audience size with --item")
    p.add_argument("--explain", action="store_true",
                   help="show the history items the attention leaned on")
    args = p.parse_args(argv)
    if args.k < 1 or args.users < 1:  # before the run (model and data) is loaded
        flag, value = ("--k", args.k) if args.k < 1 else ("--users", args.users)
        print(f"error: {flag} must be >= 1, got {value}", file=sys.stderr)
        return 2
    from afetler_tf.runs.training_run import load_run
    try:
        result = load_run(args.run)
        if args.item is not None:
            table = recommend_users(result.model, result.data, result.split, args.item, args.users)
        else:
            table = recommend(result.model, result.data, result.split, args.user, args.k, args.explain)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.item is not None:
        known = args.item in set(result.split.train["item_id"])
        print(f"top {len(table)} users to market item {args.item} to"
              + ("" if known else " (unknown item: OOV id, content features)"))
        print(table.to_string(index=False))
        return 0
    known = args.user in set(result.split.train["user_id"])
    print(f"top {len(table)} for user {args.user}" + ("" if known else " (unknown user: OOV profile)")
          + (f" (--k {args.k} capped at the {table.attrs['unseen']} of the {len(result.data.items)} "
             f"catalogue items the user has not seen)" if table.attrs.get("capped") else ""))
    with pd.option_context("display.max_colwidth", 120, "display.width", 200):
        print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
