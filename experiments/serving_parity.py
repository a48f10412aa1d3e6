"""Served vs Python API: the exported index's top-k and the ranker's rating.

    python -m experiments serving_parity --run runs/afetler-random-42 --users 200

Exports the run (brute-force index) into a scratch folder, loads the four
SavedModels with plain ``tf.saved_model.load`` and, for ``--users`` users
drawn at random (seed 0) from the training part:

- index, signature ``exclude``: history = the user's history as the API reads
  it (every training interaction, most recent first), ``exclude_item_ids`` =
  the items ``recommend`` excludes (train + validation): the top-k must equal
  ``afetler_tf.recommend.recommend``'s;
- index, ``serving_default`` (excludes the request's history): no history
  item is returned;
- ranker: one test item per user: ``rating`` vs ``model.score`` and ``score``
  vs the API's retrieval score (``score_all``), largest absolute difference.

Prints the counts and writes them as JSON (``--json``). Not installed with the
package: an experiment of the issue-17 kind, run by hand (``python
experiments/serving_parity.py ...`` runs it too).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np
import pandas as pd


def user_inputs(result, manifest: dict, users: list, history: pd.DataFrame) -> dict:
    """The index/ranker inputs for ``users``: profile columns + whole histories."""
    from afetler_tf.data import user_histories
    table = result.data.users.set_index("user_id")
    out = {}
    for name, (dtype, shape) in manifest.items():
        if name == "user_id":
            out[name] = np.asarray(users, object)
        elif name in table.columns and len(shape) == 1:
            column = table[name].reindex(users)
            out[name] = (column.astype(float).to_numpy(np.float32) if dtype == "float32"
                         else column.fillna("").astype(str).to_numpy(object))
    longest = int(history.groupby("user_id").size().reindex(users).fillna(1).max())
    hist = user_histories(history, users, max_len=max(longest, 1))
    out["history_item_ids"] = hist["history_item_ids"].astype(object)
    out["history_ratings"] = hist["history_ratings"].astype(np.float32)
    return out


def item_inputs(result, manifest: dict, items: list) -> dict:
    table = result.data.items.set_index("item_id")
    out = {"item_id": np.asarray(items, object)}
    for name, (dtype, shape) in manifest.items():
        if name in out or name not in table.columns or len(shape) != 1:
            continue
        column = table[name].reindex(items)
        if name == "categories":
            out[name] = column.map(lambda c: "|".join(c) if isinstance(c, list) else "").to_numpy(object)
        elif dtype == "float32":
            out[name] = column.astype(float).to_numpy(np.float32)
        else:
            out[name] = column.fillna("").astype(str).to_numpy(object)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments serving_parity",
                                description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True)
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)

    import tensorflow as tf

    import afetler_tf as af
    from afetler_tf.recommend import recommend, seen_items
    from export.exporter import export_run, read_manifest

    result = af.load_run(args.run)
    model = result.model
    base = tempfile.mkdtemp(prefix="parity-")
    export = export_run(result, base, verbose=0)
    index = tf.saved_model.load(export.paths["index"])
    manifest = read_manifest(export.paths["index"])["inputs"]
    train_users = pd.unique(result.split.train["user_id"])
    users = list(np.random.default_rng(0).choice(train_users, min(args.users, len(train_users)),
                                                 replace=False))
    history = model.history_log  # what the API scores from
    equal, seen_returned = 0, 0
    for user in users:
        inputs = user_inputs(result, manifest, [user], history)
        seen = sorted(seen_items(result.split, user))
        tensors = {k: tf.constant(v) for k, v in inputs.items()}
        tensors["k"] = tf.constant(args.k, tf.int32)
        tensors["exclude_item_ids"] = tf.constant(np.asarray([seen], object), tf.string)
        served = [b.decode() for b in index.signatures["exclude"](**tensors)["item_ids"].numpy()[0]]
        api = recommend(model, result.data, result.split, user, k=args.k)["item_id"].tolist()
        equal += served == api
        tensors.pop("exclude_item_ids")
        default = index.signatures["serving_default"](**tensors)["item_ids"].numpy()[0]
        seen_returned += len(set(b.decode() for b in default) & set(history.loc[
            history.user_id == user, "item_id"]))
    figures = {"run": args.run, "users": len(users), "k": args.k, "top_k_equal": int(equal),
               "seen_items_returned_by_serving_default": int(seen_returned)}
    if "ranker" in export.paths:
        ranker = tf.saved_model.load(export.paths["ranker"])
        rmanifest = read_manifest(export.paths["ranker"])["inputs"]
        test = result.split.test if len(result.split.test) else result.split.validation
        pairs = test.groupby("user_id").head(1)
        pairs = pairs[pairs.user_id.isin(users)]
        inputs = {**user_inputs(result, rmanifest, list(pairs.user_id), history),
                  **item_inputs(result, rmanifest, list(pairs.item_id))}
        answer = ranker.signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
        rating = model.score(list(pairs.user_id), list(pairs.item_id))
        retrieval = np.sum(model.user_vectors(list(pairs.user_id)) * model.item_vectors(list(pairs.item_id)), 1)
        figures.update(ranker_pairs=len(pairs),
                       max_rating_difference=float(np.max(np.abs(answer["rating"].numpy() - rating))),
                       max_score_difference=float(np.max(np.abs(answer["score"].numpy() - retrieval))))
    print(json.dumps(figures, indent=2))
    if args.json:
        from afetler_tf.files import write_json
        write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
