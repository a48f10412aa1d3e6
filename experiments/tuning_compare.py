"""``python -m experiments tuning_compare``: the default and the tuned config, measured once, after a search.

For the default configuration (the search's base config, before its epochs
cap) and the tuned one (``best_config.json``), in one process and with the
same code:

1. the validation objective, by the search's own trial procedure (fit on
   90% of the training part, score on the validation split);
2. the test metrics of protocols R and T after an ordinary fit (train on the
   training part, early stopping on the validation split). This is the only
   place the test split is used, once per configuration, after the search.

Writes ``OUT/tuning.json`` (every figure) and ``OUT/tuning.md`` (a section
BENCHMARKS.md can link to).

Example::

    python -m experiments tuning_compare --search runs/tuning/ml100k --out benchmarks
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Optional, Sequence

import tensorflow as tf

import afetler_tf  # noqa: F401  (Keras-2 set-up before TensorFlow)
from afetler_tf.config import Config
from afetler_tf.data import load_dataset
from afetler_tf.files import read_json
from afetler_tf.runs.training_run import prepare, run
from experiments import store
from experiments.machine import machine
from experiments.tuning_compare_report import markdown
from tuning import objective as objectives

SPLIT_FIELDS = ("source", "split", "seed", "test_fraction", "validation_fraction")


def compare(search_dir: str, out_dir: str = "benchmarks", verbose: int = 1) -> dict:
    """Measures default vs tuned (module docstring) and writes the two files.

    Raises:
        ValueError: The two configs do not share the data and split.
        FileNotFoundError: ``search_dir`` lacks search.json, summary.json or best_config.json.
    """
    settings = read_json(os.path.join(search_dir, "search.json"))
    summary = read_json(os.path.join(search_dir, "summary.json"))
    configs = {"default": Config.from_dict(settings["base"], where="search.json base"),
               "tuned": Config.from_json(os.path.join(search_dir, "best_config.json"))}
    differ = [f for f in SPLIT_FIELDS if getattr(configs["default"].data, f) != getattr(configs["tuned"].data, f)]
    if differ:
        raise ValueError(f"default and tuned configs use different data/split fields {differ}.")
    start, load_before = time.time(), os.getloadavg()
    data, split = prepare(configs["default"], verbose=0, data=load_dataset(configs["default"].data.source))
    trial_split = objectives.tuning_split(data, split)
    results = {name: _measure(name, config, data, trial_split, settings, verbose)
               for name, config in configs.items()}
    payload = {"search": _search_facts(search_dir, settings, summary), "results": results,
               "machine": machine(load_average_before=load_before, load_average_after=os.getloadavg()),
               "compare_wall_seconds": time.time() - start, "code": _git_state()}
    store.write("tuning.json", payload, out_dir)
    trials_md = os.path.join(search_dir, "trials.md")
    trials = open(trials_md, encoding="utf-8").read() if os.path.exists(trials_md) else ""
    store.write_text("tuning.md", markdown(payload, trials), out_dir)
    return payload


def _measure(name: str, config: Config, data, trial_split, settings: dict, verbose: int) -> dict:
    """Validation objective (trial procedure), then test metrics (ordinary fit)."""
    if verbose:
        print(f"[{time.strftime('%H:%M:%S')}] {name}: validation objective ...", flush=True)
    validation = objectives.run_config(config, data, trial_split, settings["rmse_weight"], settings["relevant"])
    if verbose:
        print(f"    {name}: {_short(validation)}\n[{time.strftime('%H:%M:%S')}] {name}: "
              f"fit on the training part, test metrics ...", flush=True)
    tf.keras.backend.clear_session()
    result = run(config, verbose=0, data=data, relevant=settings["relevant"])
    if verbose:
        print(f"    {name}: test T ndcg@10 {result.metrics['T']['ndcg@10']:.4f}, "
              f"R rmse {result.metrics['R']['rmse']:.4f} (fit {result.fit_seconds:.0f}s)", flush=True)
    return {"config": config.to_dict(), "validation": validation, "test": result.metrics,
            "fit_seconds": result.fit_seconds, "epochs_trained": len(result.history.get("loss", []))}


def _short(metrics: dict) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k.startswith("val_"))


def _search_facts(search_dir: str, settings: dict, summary: dict) -> dict:
    objective = objectives.objective(settings["objective"])
    return {"dir": search_dir, "tuner": settings["tuner"], "objective": settings["objective"],
            "objective_metric": objective.name, "direction": objective.direction,
            "rmse_weight": settings["rmse_weight"], "epochs_cap": settings["space"]["epochs_cap"],
            "tuned": settings["space"]["tuned"], "fixed": settings["space"]["fixed"],
            "trials": summary["trials"], "completed": summary["completed"],
            "best_trial": summary["best_trial"], "best_value": summary["best_value"],
            "wall_seconds": summary["wall_seconds"], "trial_seconds": summary["trial_seconds"]}


def _git_state() -> Optional[dict]:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": head.stdout.strip(), "uncommitted_changes": bool(dirty.stdout.strip())}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments tuning_compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--search", required=True, help="folder of a finished tuning.search")
    p.add_argument("--out", default="benchmarks", help="where tuning.json and tuning.md go")
    args = p.parse_args(argv)
    try:
        compare(args.search, args.out)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}/tuning.json and {args.out}/tuning.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
