"""Shared, built-once fixtures of the export tests (no tests here).

A tiny AFETLER run is trained on the synthetic data of conftest.py, written
as a generic data folder so that ``load_run`` (which reloads the data from
``config.data.source``) rebuilds exactly the same model, and exported once;
every export test reuses them.
"""

import functools
import os
import subprocess
import sys

import pandas as pd

from afetler_tf.config import Config
from afetler_tf.pipeline import load_run, run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_BUILT = {}


def write_data_folder(data, folder: str) -> str:
    """``data`` as interactions.csv, users.csv, items.csv (categories "|"-joined)."""
    os.makedirs(folder, exist_ok=True)
    data.interactions.to_csv(os.path.join(folder, "interactions.csv"), index=False)
    data.users.to_csv(os.path.join(folder, "users.csv"), index=False)
    items = data.items.drop(columns=["category"]).copy()
    items["categories"] = items["categories"].map("|".join)
    items.to_csv(os.path.join(folder, "items.csv"), index=False)
    return folder


def tiny_config(source: str, model: str = "afetler") -> Config:
    return Config(model=model).replace(
        data={"source": source, "history_length": 8},
        train={"epochs": 2, "batch_size": 64, "learning_rate": 0.01, "patience": 2},
        tower={"embedding_dim": 8, "tower_units": [16, 8], "ranking_units": [16]})


def tiny_run(root: str, data) -> str:
    """A trained tiny run directory (built once per session)."""
    if "run" not in _BUILT:
        source = write_data_folder(data, os.path.join(root, "data"))
        out = os.path.join(root, "run")
        run(tiny_config(source), out_dir=out, verbose=0)
        _BUILT["run"] = out
    return _BUILT["run"]


def tiny_export(root: str, data):
    """(RunResult, ExportResult) of the tiny run exported to ``root/models``."""
    if "export" not in _BUILT:
        from export.exporter import export_run

        result = load_run(tiny_run(root, data))
        _BUILT["export"] = (result, export_run(result, os.path.join(root, "models"), verbose=0))
    return _BUILT["export"]


@functools.lru_cache(maxsize=None)
def _env() -> tuple:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    return tuple(sorted(env.items()))


def python(args, timeout=120, **kwargs) -> subprocess.CompletedProcess:
    """Runs ``python ARGS`` in a fresh process at the repository root."""
    return subprocess.run([sys.executable, *args], cwd=REPO, env=dict(_env()), capture_output=True,
                          text=True, timeout=timeout, **kwargs)


def frame_rows(features: dict, rows) -> dict:
    """The given rows of a feature dict of arrays."""
    return {name: values[rows] for name, values in features.items()}


__all__ = ["REPO", "frame_rows", "pd", "python", "tiny_config", "tiny_export", "tiny_run",
           "write_data_folder"]
