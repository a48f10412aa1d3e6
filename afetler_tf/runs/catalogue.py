"""A run's catalogue: items added after training, and the run's item index.

Files in a run directory ``DIR`` (both written atomically: temp file, then
rename, so a reader never sees half a file):

``DIR/added_items.csv``
    Items added with ``python -m afetler_tf.add_items`` (content only, no
    interactions), in the generic items format: ``item_id``, ``title``,
    ``year``, ``categories`` (``|``-joined) and numeric attribute columns.
    :func:`afetler_tf.load_run` appends them to the data set's item table,
    so they are part of the catalogue everywhere (recommend, evaluate, export).
``DIR/index/item_vectors.npz``
    The run's retrieval index: ``item_ids`` (n,) str, ``vectors`` (n, d)
    float32 (p_v of every catalogue item through the serving candidate
    tower: trained tower for warm items, NewItemGAN generator for new ones)
    and ``generated`` (n,) bool. Top-k for a user = argmax over
    ``vectors @ p_u``. Written by every tower run and rebuilt by add_items.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
import pandas as pd

from afetler_tf.data import columns, folder
from afetler_tf.data.errors import DataError
from afetler_tf.data.readers import Table, drop_blank_rows, read_parquet, read_text, require_columns
from afetler_tf.files import atomic_write, atomic_write_text
from afetler_tf.runs.folder import RunFolder

ADDED_FILE = RunFolder.ADDED_ITEMS
INDEX_FILE = RunFolder.INDEX


def read_items_file(path: str, numeric: tuple = (),
                    report: Optional[list] = None) -> tuple[Table, pd.DataFrame]:
    """Reads and validates an items file (.csv or .parquet) into the canonical table.

    Args:
        path: The file.
        numeric: Attribute columns that must be numbers when present (the
            model's numeric item features, e.g. ``year``).
        report: Gets a line per skipped blank line.

    Returns:
        (the Table read, for locating rows; the canonical item table).

    Raises:
        DataError: Missing file or ``item_id`` column, empty or repeated id,
            a non-numeric value in a numeric column (file, line and column named).
    """
    table = read_parquet(path) if path.endswith(".parquet") else read_text(path)
    table = drop_blank_rows(table, report if report is not None else [])
    require_columns(table, ("item_id",), known=folder.ITEM_KNOWN)
    items = folder.items_table(table)  # the generic folder's items parser: same rules, same errors
    for col in numeric:
        if col in table.frame and col != "year":
            items[col] = columns.numbers(table, col)
    return table, items


def read_added(run_dir: str, numeric: tuple = ()) -> Optional[pd.DataFrame]:
    """The items added to a run, or None."""
    path = os.path.join(run_dir, ADDED_FILE)
    return read_items_file(path, numeric)[1] if os.path.exists(path) else None


def write_added(run_dir: str, items: pd.DataFrame) -> str:
    """Writes the run's added items (all of them) as ``DIR/added_items.csv``."""
    out = items.copy()
    out["categories"] = out["categories"].map(lambda c: "|".join(c) if isinstance(c, list) else "")
    out = out.drop(columns=["category"], errors="ignore")
    return atomic_write_text(os.path.join(run_dir, ADDED_FILE), out.to_csv(index=False))


def apply_added(run_dir: str, data, model) -> int:
    """Adds the run's added items to ``data.items`` and to ``model``; returns how many."""
    numeric = tuple(getattr(getattr(model, "space", None), "item_numeric", {}) or ())
    added = read_added(run_dir, numeric)
    if added is None:
        return 0
    if not hasattr(model, "add_items"):
        raise ValueError(f"{run_dir} has added items but model {model.name!r} cannot embed new items.")
    data.items = pd.concat([data.items, added], ignore_index=True)
    model.add_items(added)
    return len(added)


def write_index(run_dir: str, model, item_ids) -> str:
    """Writes ``DIR/index/item_vectors.npz`` for ``item_ids`` (module docstring)."""
    ids = np.asarray([str(i) for i in item_ids], dtype=str)
    vectors = np.asarray(model.item_vectors(list(ids)), np.float32)  # (n, d)
    encoder = model.candidate_encoder
    generated = (encoder.uses_generator(ids).numpy() if hasattr(encoder, "uses_generator")
                 else np.zeros(len(ids), bool))
    return atomic_write(os.path.join(run_dir, INDEX_FILE),
                        lambda f: np.savez(f, item_ids=ids, vectors=vectors, generated=generated))


def read_index(run_dir: str) -> dict:
    """``{"item_ids", "vectors", "generated"}`` of the run's index."""
    path = os.path.join(run_dir, INDEX_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist: the run has no index (fit an afetler run, "
                                f"or run python -m afetler_tf.add_items).")
    with np.load(path) as f:
        return {key: f[key] for key in ("item_ids", "vectors", "generated")}


def check_new_items(table: Table, items: pd.DataFrame, catalogue: pd.DataFrame, has_content) -> None:
    """Raises DataError for an id already in the catalogue or an item without content.

    Args:
        table: The Table the items were read from (row locations).
        items: Its canonical item table.
        catalogue: The run's current item table.
        has_content: (n,) bool per item: a known category, title word or number.
    """
    known = set(catalogue["item_id"].astype(str))
    taken = items["item_id"].isin(known).to_numpy()
    if taken.any():
        row = int(np.flatnonzero(taken)[0])
        raise DataError(f"{table.where(row, 'item_id')}: item {items['item_id'].iat[row]!r} is already "
                        f"in the run's catalogue ({int(taken.sum())} such item(s)). New items need new "
                        f"ids.", path=table.path, line=table.line(row), column="item_id")
    empty = ~np.asarray(has_content, bool)
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        raise DataError(f"{table.where(row, 'categories')}: item {items['item_id'].iat[row]!r} has no "
                        f"content the model knows (categories {items['categories'].iat[row]!r}, title "
                        f"{items['title'].iat[row]!r}; {int(empty.sum())} such item(s)). Give it at least "
                        f"one category of the training data, a title or a year; without content its "
                        f"vector would say nothing about it.",
                        path=table.path, line=table.line(row), column="categories")
