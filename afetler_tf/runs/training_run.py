"""One training run, end to end: data -> split -> fit -> evaluate -> write.

This is the Python API behind ``python -m afetler_tf.fit``::

    from afetler_tf import Config, run
    result = run(Config(model="afetler"), out_dir="runs/afetler")
    result.metrics["T"]["ndcg@10"]

A run directory holds ``config.json`` (the resolved config), ``metrics.json``
(keyed by protocol, then metric), ``history.json``, ``report.md``, plots and
``weights/``, and ``data/``, the tables the model was trained on
(:mod:`afetler_tf.runs.stored_data`), so the folder is self-contained: it is
restored without the data folder, from any directory. Tower models also
write the item index ``index/item_vectors.npz`` and a run may hold items
added later (``added_items.csv``; see :mod:`afetler_tf.runs.catalogue`). Every
file a later step reads is written atomically.

A "none" split has no test set: its ``metrics.json`` holds protocols R and T
scored on the validation carve-out, under ``R_validation`` / ``T_validation``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import os
import time
import warnings
from typing import Optional

import tensorflow as tf

from afetler_tf.config import Config
from afetler_tf.data import Dataset, Split, load_dataset, make_split
from afetler_tf.evaluation import evaluate, report
from afetler_tf.models import Recommender, build_model
from afetler_tf.runs import catalogue, stored_data
from afetler_tf.runs.folder import RunFolder


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
    (see :mod:`afetler_tf.training.distribute`) the model is built and trained under.
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
        stages = ", ".join(f"{name} {seconds:.1f}s"
                           for name, seconds in history.get("stage_seconds", {}).items())
        print(f"trained in {fit_seconds:.1f}s{f' ({stages})' if stages else ''}; evaluating ...",
              flush=True)
    metrics = _evaluate(model, data, split, relevant, config.data.like_threshold)
    result = RunResult(config, data, split, model, metrics, history, fit_seconds, time.time() - start)
    if out_dir:
        write_run(result, out_dir)
    return result


def _evaluate(model: Recommender, data: Dataset, split: Split, relevant: str,
              like_threshold: float) -> dict:
    """The test protocols; for a "none" split, R and T on the validation carve-out."""
    if split.kind == "none":
        if split.validation.empty:
            return {}
        from afetler_tf.training import validation_split
        scored = evaluate(model, data, validation_split(split), protocols=("R", "T"),
                          relevant=relevant, like_threshold=like_threshold)
        return {f"{protocol}_validation": values for protocol, values in scored.items()}
    protocols = ("R", "T", "C") if split.kind == "cold-items" else ("R", "T")
    return evaluate(model, data, split, protocols=protocols, relevant=relevant,
                    like_threshold=like_threshold)


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
    stored_data.write(out_dir, result.data, result.split)
    folder = RunFolder(out_dir)
    result.config.to_json(folder.config)
    report.write_metrics_json(folder.metrics, result.metrics)
    report.write_metrics_json(folder.history, result.history)
    result.model.save(folder.weights)
    if hasattr(result.model, "candidate_encoder"):
        catalogue.write_index(out_dir, result.model, result.data.items["item_id"])
    report.write_report(out_dir, result.config.to_dict(), result.metrics, result.history,
                        result.wall_seconds)


def load_run(run_dir: str, verbose: int = 0) -> RunResult:
    """Rebuilds a trained run from its directory alone (:mod:`afetler_tf.runs.stored_data`).

    A run written before runs stored their data is rebuilt from
    ``config.data.source`` (reloaded and re-split), with a warning: that is
    only right while the data there is unchanged.

    Raises:
        FileNotFoundError: ``run_dir`` is not a finished run.
        ValueError: A damaged run folder (named file, what to do).
    """
    folder = RunFolder(run_dir)
    config = Config.from_json(folder.config)
    stored = stored_data.read(run_dir)
    if stored is None:
        warnings.warn(f"{run_dir} predates self-contained runs (no {stored_data.FOLDER}/ folder): its "
                      f"data is reloaded from {config.data.source!r}, which must be unchanged since "
                      f"training (ids are matched by position). Fit the run again to store it.")
        data, split = prepare(config, verbose)
    else:
        data, split = stored
    model = build_model(config)
    weights = folder.weights
    if not os.path.isdir(weights):
        raise FileNotFoundError(f"{weights} is missing: {run_dir} holds no trained model (did the "
                                f"fit finish?). Fit again with python -m afetler_tf.fit --out "
                                f"{run_dir} --overwrite.")
    try:
        model.load(weights, data, split)
    except (tf.errors.NotFoundError, tf.errors.DataLossError, IndexError, OSError) as e:
        raise ValueError(f"{weights}: the saved weights cannot be read ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}): the run folder is damaged "
                         f"or incomplete. Copy it again, or fit again with --overwrite.") from e
    catalogue.apply_added(run_dir, data, model)  # items added after training (add_items)
    with open(folder.metrics) as f:
        metrics = json.load(f)
    return RunResult(config, data, split, model, metrics, {}, 0.0, 0.0)
