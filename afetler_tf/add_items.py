"""``python -m afetler_tf.add_items``: add new items to a trained run, no retraining.

The items file has the generic items format (``item_id`` required; ``title``,
``year``, ``categories`` as one ``A|B`` field, numeric attribute columns);
CSV or Parquet. Each item needs some content the model knows (a training
category, a title word or a number), since the NewItemGAN generator embeds
it from content alone. The items are stored in ``RUN/added_items.csv`` (so
``afetler_tf.load_run(RUN)`` has them in its catalogue) and the run's index
``RUN/index/item_vectors.npz`` is rebuilt (see :mod:`afetler_tf.runs.catalogue`).

Example::

    python -m afetler_tf.add_items --run runs/afetler-random-42 --items new_items.csv
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m afetler_tf.add_items", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="a run directory written by afetler_tf.fit")
    p.add_argument("--items", required=True, help="items file (.csv or .parquet), content only")
    return p.parse_args(argv)


def add_items(run_dir: str, items_path: str) -> dict:
    """Validates ``items_path``, stores its items in the run, rebuilds the index.

    Returns:
        ``{"added", "catalogue", "index", "notes"}``.

    Raises:
        DataError: Bad items file (file, line and column named).
        ValueError: The run cannot embed new items (no trained NewItemGAN).
    """
    import pandas as pd

    from afetler_tf.runs import RunFolder, catalogue
    from afetler_tf.runs.training_run import load_run
    if not RunFolder(run_dir).is_run():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.json); pass the folder "
                                f"written by python -m afetler_tf.fit.")
    result = load_run(run_dir)
    model, notes = result.model, []
    if getattr(model, "gan", None) is None:
        raise ValueError(f"The {model.name} model of {run_dir} has no trained NewItemGAN, so it cannot "
                         f"embed items without interactions; refit with model afetler and gan.enabled.")
    table, items = catalogue.read_items_file(items_path, tuple(model.space.item_numeric), notes)
    features = model.space.item_features(items["item_id"], items=items)
    catalogue.check_new_items(table, items, result.data.items,
                              model.gan.generator.has_content(features).numpy())
    notes += _unused_content(items, table, model.space)
    previous = catalogue.read_added(run_dir, tuple(model.space.item_numeric))
    catalogue.write_added(run_dir, items if previous is None else pd.concat([previous, items],
                                                                          ignore_index=True))
    model.add_items(items)
    result.data.items = pd.concat([result.data.items, items], ignore_index=True)
    index = catalogue.write_index(run_dir, model, result.data.items["item_id"])
    return {"added": len(items), "catalogue": len(result.data.items), "index": index, "notes": notes}


def _unused_content(items, table, space) -> list[str]:
    """Notes on categories and columns the model does not know (they add nothing)."""
    known = set(space.categories)
    unknown = sorted({c for cats in items["categories"] for c in cats} - known)
    notes = [f"{table.path}: categories not in the training vocabulary are ignored: {unknown}"] \
        if unknown else []
    used = {"item_id", "title", "year", "categories", "category", *space.item_numeric}
    extra = [c for c in table.frame.columns if c not in used]
    if extra:
        notes.append(f"{table.path}: columns the model has no feature for are stored but ignored: {extra}")
    return notes


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        summary = add_items(args.run, args.items)
    except (ValueError, FileNotFoundError) as e:  # DataError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 2
    for note in summary["notes"]:
        print(f"  note: {note}")
    print(f"added {summary['added']} item(s) to {args.run}; catalogue {summary['catalogue']} items; "
          f"index rebuilt at {summary['index']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
