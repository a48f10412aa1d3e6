"""The data a run was trained on, stored inside the run folder.

A run folder is a self-contained artefact: ``load_run`` restores a model from
it without the data folder it was trained on, from any working directory, and
after that folder moved, changed or was deleted. What the model reads besides
its weights (the vocabularies, the users' histories, the content tables, the
training counts) is rebuilt from these tables exactly as in the fit, so
nothing is remapped:

``DIR/data/interactions.parquet``
    Every interaction of the split (train, validation and test rows) with a
    ``part`` column ("train", "validation", "test").
``DIR/data/users.parquet``, ``DIR/data/items.parquet``
    The data set's user and item tables as loaded (items' ``categories``
    lists included).
``DIR/data/dataset.json``
    Name, rating range, load report, split kind/seed/cold items, the column
    dtypes (restored on read: Parquet has no "object" dtype) and a
    fingerprint of the tables (:func:`fingerprint`), which :func:`read`
    checks, so a damaged copy is named instead of silently used.
"""

from __future__ import annotations

import hashlib
import os
from typing import Optional

import numpy as np
import pandas as pd

from afetler_tf.data.schema import Dataset, Split
from afetler_tf.files import atomic_write, read_json, write_json
from afetler_tf.runs.folder import RunFolder

FOLDER = RunFolder.DATA
PARTS = ("train", "validation", "test")
_LIST_COLUMNS = ("categories",)


def fingerprint(frame: pd.DataFrame) -> str:
    """A short content hash of ``frame`` (values and column names, not dtypes)."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode("utf-8"))
    cells = frame.copy()
    for col in _LIST_COLUMNS:
        if col in cells:
            cells[col] = cells[col].map(lambda c: "|".join(map(str, c)) if _is_list(c) else str(c))
    digest.update(pd.util.hash_pandas_object(cells.astype(str), index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _is_list(value) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def write(run_dir: str, data: Dataset, split: Split) -> str:
    """Writes ``run_dir/data/`` (module docstring); returns the folder."""
    folder = os.path.join(run_dir, FOLDER)
    parts = [getattr(split, part).assign(part=part) for part in PARTS]
    interactions = pd.concat(parts, ignore_index=True)
    tables = {"interactions": interactions, "users": data.users, "items": data.items}
    for name, frame in tables.items():
        atomic_write(os.path.join(folder, f"{name}.parquet"),
                     lambda f, frame=frame: frame.to_parquet(f, index=False))
    write_json(os.path.join(folder, "dataset.json"), {
        "name": data.name, "rating_range": list(data.rating_range) if data.rating_range else None,
        "report": list(data.report), "split": {"kind": split.kind, "seed": split.seed,
                                               "cold_items": list(split.cold_items)},
        "dtypes": {name: {col: str(dtype) for col, dtype in frame.dtypes.items()}
                   for name, frame in tables.items()},
        "fingerprints": {name: fingerprint(frame) for name, frame in tables.items()}})
    return folder


def exists(run_dir: str) -> bool:
    return os.path.exists(os.path.join(run_dir, FOLDER, "dataset.json"))


def read(run_dir: str) -> Optional[tuple[Dataset, Split]]:
    """The (Dataset, Split) stored in ``run_dir``, or None for a run written
    before runs stored their data.

    Raises:
        ValueError: A table is missing or does not match its fingerprint.
    """
    folder = os.path.join(run_dir, FOLDER)
    if not exists(run_dir):
        return None
    about = read_json(os.path.join(folder, "dataset.json"))
    tables = {}
    for name, dtypes in about["dtypes"].items():
        path = os.path.join(folder, f"{name}.parquet")
        if not os.path.exists(path):
            raise ValueError(f"{path} is missing: the run folder is incomplete. Copy the whole run "
                             f"folder, or fit the run again.")
        try:
            frame = pd.read_parquet(path)
        except Exception as e:  # pyarrow's errors for a truncated or foreign file
            raise ValueError(f"{path} cannot be read ({e}): the run folder is damaged. Copy the "
                             f"whole run folder again, or fit the run again.") from e
        frame = _restore(frame, dtypes)
        if fingerprint(frame) != about["fingerprints"][name]:
            raise ValueError(f"{path} does not match the fingerprint written with the run: it was "
                             f"changed after training. Restore the run folder, or fit again.")
        tables[name] = frame
    inter = tables["interactions"]
    frames = {part: inter[inter["part"] == part].drop(columns="part").reset_index(drop=True)
              for part in PARTS}
    s = about["split"]
    split = Split(s["kind"], int(s["seed"]), frames["train"], frames["validation"], frames["test"],
                  tuple(s["cold_items"]))
    rating_range = tuple(about["rating_range"]) if about["rating_range"] else None
    data = Dataset(about["name"], inter.drop(columns="part").reset_index(drop=True),
                   tables["users"], tables["items"], rating_range, list(about["report"]))
    return data, split


def _restore(frame: pd.DataFrame, dtypes: dict) -> pd.DataFrame:
    """The dtypes the tables had when written; list columns back to lists."""
    for col, dtype in dtypes.items():
        if col not in frame:
            continue
        if col in _LIST_COLUMNS and frame[col].map(_is_list).any():
            frame[col] = frame[col].map(lambda c: list(c) if _is_list(c) else c).astype(object)
        elif str(frame[col].dtype) != dtype:
            frame[col] = frame[col].astype(dtype)
    return frame
