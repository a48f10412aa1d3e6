"""One training run, end to end: data -> split -> fit -> evaluate -> write.

This is the Python API behind ``python -m afetler_tf.fit``::

    from afetler_tf import Config, run
    result = run(Config(model="afetler"), out_dir="runs/afetler")
    result.metrics["T"]["ndcg@10"]

A run directory holds ``config.json`` (the resolved config), ``metrics.json``
(keyed by protocol, then metric), ``history.json``, ``report.md``, plots and
``weights/``. Every file a later step reads is written atomically.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Optional

from afetler_tf import report
from afetler_tf.config import Config
from afetler_tf.data import Dataset, Split, load_dataset, make_split
from afetler_tf.evaluate import evaluate
from afetler_tf.models import Recommender, build_model


@dataclasses.dataclass
class RunResult:
    """What a run produced (also written to its directory)."""

    config: Config
    data: Dataset
    split: Split
    model: Recommender
    metrics: dict
    history: dict
    fit_seconds: float
    wall_seconds: float


def prepare(config: Config, verbose: int = 1, data: Optional[Dataset] = None) -> tuple[Dataset, Split]:
    """Loads (unless given) and splits the data as ``config.data`` says."""
    dc = config.data
    if data is None:
        data = load_dataset(dc.source)
    split = make_split(data, kind=dc.split, seed=dc.seed, test_fraction=dc.test_fraction,
                       validation_fraction=dc.validation_fraction)
    if verbose:
        print(data.summary())
        for line in data.report:
            print(f"  note: {line}")
        print(f"split {split.kind} (seed {split.seed}): train {len(split.train)}, "
              f"validation {len(split.validation)}, test {len(split.test)}")
    return data, split


def run(config: Config, out_dir: Optional[str] = None, verbose: int = 1,
        data: Optional[Dataset] = None, relevant: str = "all") -> RunResult:
    """Trains and evaluates ``config.model``; writes the run directory if given."""
    start = time.time()
    data, split = prepare(config, verbose, data)
    model = build_model(config)
    if verbose:
        print(f"training {model.name} ...", flush=True)
    t0 = time.time()
    history = model.fit(data, split, verbose=2 if verbose else 0)
    fit_seconds = time.time() - t0
    if verbose:
        print(f"trained in {fit_seconds:.1f}s; evaluating ...", flush=True)
    protocols = ("R", "T", "C") if split.kind == "cold-items" else ("R", "T")
    metrics = evaluate(model, data, split, protocols=protocols, relevant=relevant,
                       like_threshold=config.data.like_threshold)
    result = RunResult(config, data, split, model, metrics, history, fit_seconds, time.time() - start)
    if out_dir:
        write_run(result, out_dir)
    return result


def write_run(result: RunResult, out_dir: str) -> None:
    """Writes config, metrics, history, weights, report and plots."""
    os.makedirs(out_dir, exist_ok=True)
    result.config.to_json(os.path.join(out_dir, "config.json"))
    report.write_metrics_json(os.path.join(out_dir, "metrics.json"), result.metrics)
    report.write_metrics_json(os.path.join(out_dir, "history.json"), result.history)
    result.model.save(os.path.join(out_dir, "weights"))
    report.write_report(out_dir, result.config.to_dict(), result.metrics, result.history,
                        result.wall_seconds)


def load_run(run_dir: str, verbose: int = 0) -> RunResult:
    """Rebuilds a trained run from its directory (data reloaded and re-split)."""
    config = Config.from_json(os.path.join(run_dir, "config.json"))
    data, split = prepare(config, verbose)
    model = build_model(config)
    model.load(os.path.join(run_dir, "weights"), data, split)
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    return RunResult(config, data, split, model, metrics, {}, 0.0, 0.0)
