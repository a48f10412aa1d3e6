"""Shared, built-once fixtures of the export tests (no tests here).

A tiny AFETLER run is trained on the synthetic data of conftest.py, written
as a generic data folder so that ``load_run`` (which reloads the data from
``config.data.source``) rebuilds exactly the same model, and exported once;
the export test modules reuse both through this process-wide cache.
"""

import os
import subprocess
import sys

from afetler_tf.config import Config
from afetler_tf.runs.training_run import load_run, run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_BUILT = {}


def write_data_folder(data, folder: str) -> str:
    """``data`` as interactions.csv, users.csv, items.csv (categories "|"-joined)."""
    os.makedirs(folder, exist_ok=True)
    data.interactions.to_csv(os.path.join(folder, "interactions.csv"), index=False)
    data.users.to_csv(os.path.join(folder, "users.csv"), index=False)
    items = data.items.drop(columns=["category"])
    items["categories"] = items["categories"].map("|".join)
    items.to_csv(os.path.join(folder, "items.csv"), index=False)
    return folder


def tiny_config(source: str, model: str = "afetler") -> Config:
    """Small towers, 1 epoch (the checks need weights, not quality), histories of at most 8."""
    return Config(model=model).replace(
        data={"source": source, "history_length": 8},
        train={"epochs": 1, "batch_size": 64, "learning_rate": 0.01, "patience": 1},
        tower={"embedding_dim": 8, "tower_units": [16, 8], "ranking_units": [16]})


def tiny_run(tmp_path_factory, data) -> str:
    """A trained tiny run directory (built once per session)."""
    if "run" not in _BUILT:
        root = str(tmp_path_factory.mktemp("export_tiny"))
        source = write_data_folder(data, os.path.join(root, "data"))
        out = os.path.join(root, "run")
        run(tiny_config(source), out_dir=out, verbose=0)
        _BUILT["run"] = out
    return _BUILT["run"]


def tiny_result(tmp_path_factory, data):
    """The tiny run rebuilt by ``load_run`` (the in-memory model of the checks)."""
    if "result" not in _BUILT:
        _BUILT["result"] = load_run(tiny_run(tmp_path_factory, data))
    return _BUILT["result"]


def python_env() -> dict:
    """The environment of a fresh ``python`` that finds this checkout's packages."""
    path = os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path)


def python(args, timeout=180) -> subprocess.CompletedProcess:
    """Runs ``python ARGS`` in a fresh process at the repository root."""
    return subprocess.run([sys.executable, *args], cwd=REPO, env=python_env(), capture_output=True,
                          text=True, timeout=timeout)
