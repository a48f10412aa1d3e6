"""One training run, end to end: data -> split -> fit -> evaluate -> write.

This is the Python API behind ``python -m afetler_tf.fit``::

    from afetler_tf import Config, run
    result = run(Config(model="afetler"), out_dir="runs/afetler")
    result.metrics["T"]["ndcg@10"]

A run directory holds ``config.json`` (the resolved config), ``metrics.json``
(keyed by protocol, then metric), ``history.json``, ``report.md``, plots and
``weights/``; tower models also write the item index ``index/item_vectors.npz``
and a run may hold items added later (``added_items.csv``; see
:mod:`afetler_tf.catalogue`). Every file a later step reads is written atomically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import os
import time
from typing import Optional

from afetler_tf import catalogue, report
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
        data: Optional[Dataset] = None, relevant: str = "all",
        checkpoint_dir: Optional[str] = None, strategy=None) -> RunResult:
    """Trains and evaluates ``config.model``; writes the run directory if given.

    ``checkpoint_dir`` makes the fit resumable (models whose ``fit`` takes
    one: afetler, two_tower); ``strategy`` is a ``tf.distribute.Strategy``
    (see :mod:`afetler_tf.distribute`) the model is built and trained under.
    """
    start = time.time()
    data, split = prepare(config, verbose, data)
    model = build_model(config)
    if verbose:
        print(f"training {model.name} ...", flush=True)
    t0 = time.time()
    history = _fit(model, data, split, 2 if verbose else 0, checkpoint_dir, strategy)
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


def _fit(model: Recommender, data: Dataset, split: Split, verbose: int,
         checkpoint_dir: Optional[str], strategy) -> dict:
    kwargs = {}
    if checkpoint_dir and "checkpoint_dir" in inspect.signature(model.fit).parameters:
        kwargs["checkpoint_dir"] = checkpoint_dir
    elif checkpoint_dir and verbose:
        print(f"note: {model.name} does not checkpoint; a killed fit starts over", flush=True)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        return model.fit(data, split, verbose=verbose, **kwargs)


def write_run(result: RunResult, out_dir: str) -> None:
    """Writes config, metrics, history, weights, report and plots."""
    os.makedirs(out_dir, exist_ok=True)
    result.config.to_json(os.path.join(out_dir, "config.json"))
    report.write_metrics_json(os.path.join(out_dir, "metrics.json"), result.metrics)
    report.write_metrics_json(os.path.join(out_dir, "history.json"), result.history)
    result.model.save(os.path.join(out_dir, "weights"))
    if hasattr(result.model, "candidate_encoder"):
        catalogue.write_index(out_dir, result.model, result.data.items["item_id"])
    report.write_report(out_dir, result.config.to_dict(), result.metrics, result.history,
                        result.wall_seconds)


def load_run(run_dir: str, verbose: int = 0) -> RunResult:
    """Rebuilds a trained run from its directory (data reloaded and re-split)."""
    config = Config.from_json(os.path.join(run_dir, "config.json"))
    data, split = prepare(config, verbose)
    model = build_model(config)
    model.load(os.path.join(run_dir, "weights"), data, split)
    catalogue.apply_added(run_dir, data, model)  # items added after training (add_items)
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    return RunResult(config, data, split, model, metrics, {}, 0.0, 0.0)
