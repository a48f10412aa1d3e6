"""Training on streamed logs (``fit --stream``): tf.data all the way, no pandas log.

    result = fit_stream(Config(), "shop_logs/", out_dir="runs/stream")

What the streamed path supports (and what it does not):
- The AFETLER network without history attention (``afetler.mcau`` and
  ``afetler.target_attention`` off: a user's history is not available record
  by record), with adaptive fusion, the mimic and category alignment losses,
  the log-Q corrected in-batch retrieval loss and the ranking head trained
  jointly (one stage). The NewItemGAN stage and the item-item channel
  (an in-memory closed-form fit) are not run.
- Vocabularies and item frequencies (log-Q) come from one streaming pass
  (:func:`afetler_tf.data.streaming.scan`) over the training part; the split
  is a seeded hash, validation = ``data.validation_fraction`` of records.
- Early stopping on the validation loss, checkpoints and resume as ``fit``.
- Evaluation protocols R/T/C need the in-memory path: the run reports the
  validation losses only.
Memory grows with the vocabularies and the model, not with the log: records
pass through bounded buffers (chunks, a shuffle window of SHUFFLE_CHUNKS chunks).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from typing import Optional

import numpy as np
import pandas as pd
import tensorflow as tf

from afetler_tf import files, presets, training
from afetler_tf.config import Config
from afetler_tf.data import folder as folder_source
from afetler_tf.data import streaming, tables
from afetler_tf.data.schema import Dataset
from afetler_tf.features import MISSING, FeatureSpace
from afetler_tf.runs.folder import RunFolder
from afetler_tf.training.checkpoints import is_chief
from afetler_tf.training.optimizers import make_optimizer

SHUFFLE_CHUNKS = 16


@dataclasses.dataclass
class StreamResult:
    """A streamed fit: its scan, history, validation losses and timings."""

    scan: streaming.Scan
    history: dict
    metrics: dict
    fit_seconds: float
    examples: int


def catalogue(folder: str, scan: streaming.Scan) -> Dataset:
    """Users and items tables (pandas: catalogue-sized), built from ids when absent."""
    report: list = []
    users = folder_source.optional_table(os.path.join(folder, "users"), "user_id", report)
    items = folder_source.optional_table(os.path.join(folder, "items"), "item_id", report,
                                    known=folder_source.ITEM_KNOWN)
    users = folder_source.users_table(users) if users is not None else tables.users(scan.user_ids)
    items = folder_source.items_table(items) if items is not None else tables.items(
        list(scan.item_counts), None, None, [[] for _ in scan.item_counts])
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in ("user_id", "item_id")})
    return Dataset(folder, empty.assign(rating=np.nan, timestamp=0), users, items, None, report)


def feature_space(data: Dataset, scan: streaming.Scan) -> FeatureSpace:
    space = FeatureSpace.from_data(data, data.interactions)
    return dataclasses.replace(space, user_ids=scan.user_ids, item_ids=list(scan.item_counts))


class Joiner:
    """Adds user and item attributes and log-Q probabilities to record batches (hash tables)."""

    def __init__(self, space: FeatureSpace, scan: streaming.Scan):
        self._tables = {}
        items = space.item_features(space.items.index.to_numpy(object))
        users = space.user_features(space.users.index.to_numpy(object))
        for source, key in ((items, "item_id"), (users, "user_id")):
            for col, values in source.items():
                if col != key:
                    self._tables[col] = (key, _table(source[key], values))
        counts = np.array(list(scan.item_counts.values()), np.float32)
        prob = counts / max(scan.train, 1)
        self._prob = _table(np.array(list(scan.item_counts), object), prob,
                            float(prob.min()) if len(prob) else 1.0)

    def __call__(self, batch: dict) -> dict:
        out = {"user_id": batch["user_id"], "item_id": batch["item_id"],
               "rating": tf.where(tf.math.is_nan(batch["rating"]), 0.0, batch["rating"]),
               "sampling_probability": self._prob.lookup(batch["item_id"])}
        for col, (key, table) in self._tables.items():
            out[col] = table.lookup(batch[key])
        return out


def _table(keys, values, default=None) -> tf.lookup.StaticHashTable:
    values = np.asarray(values)
    if default is None:
        default = "" if values.dtype == object else MISSING
    values = values.astype(str).astype(object) if values.dtype == object else values.astype(np.float32)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(np.asarray(keys, object).astype(str)), tf.constant(values)), default)


def dataset(files, fmt, joiner: Joiner, part: str, validation_buckets: int, batch_size: int,
            skip_bad: bool, rating_range=None, seed: int = 42) -> tf.data.Dataset:
    """Endless (repeated) batches of one part ("train"/"validation") as model features."""
    def select(r):
        if not skip_bad:  # the scan found none: a bad record now means the files changed
            tf.debugging.assert_equal(tf.reduce_max(r["reason"]), 0, message=(
                "a bad record appeared in the shards after the vocabulary scan; run again"))
        keep = tf.equal(r["reason"], 0) & ((r["bucket"] >= validation_buckets) == (part == "train"))
        picked = {k: tf.boolean_mask(r[k], keep) for k in ("user_id", "item_id", "rating")}
        if part == "train":  # shuffle within the chunk, then across a window of chunks
            order = tf.random.shuffle(tf.range(tf.shape(picked["rating"])[0]), seed=seed)
            picked = {k: tf.gather(v, order) for k, v in picked.items()}
        return picked
    ds = streaming.records(files, fmt, rating_range).map(select)
    if part == "train":
        ds = ds.shuffle(SHUFFLE_CHUNKS, seed=seed)
    return ds.repeat().rebatch(batch_size, drop_remainder=True).map(
        joiner, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def fit_stream(config: Config, folder: str, out_dir: Optional[str] = None,
               checkpoint_dir: Optional[str] = None, skip_bad: bool = False, verbose: int = 1,
               steps_per_epoch: Optional[int] = None, callbacks=()) -> StreamResult:
    """Scans, builds and trains the streamed network (module docstring).

    Args:
        steps_per_epoch: Batches per epoch (default: one pass over the training part).
        callbacks: Extra Keras callbacks (e.g. a throughput probe).

    Raises:
        DataError: Bad shards or records (file and line named), unless ``skip_bad``.
    """
    files, fmt = streaming.shard_files(folder)
    rating_range = folder_source.declared_rating_range(folder)
    buckets = int(round(config.data.validation_fraction * 1000))
    start = time.perf_counter()
    scan = streaming.scan(files, fmt, buckets, skip_bad, rating_range)
    if verbose:
        print(f"scanned {len(files)} {fmt} shard(s): {scan.records} records ({scan.bad} bad, "
              f"skipped), train {scan.train}, validation {scan.validation}, "
              f"{len(scan.user_ids)} users, {len(scan.item_counts)} items "
              f"({time.perf_counter() - start:.1f}s)", flush=True)
        for line in scan.bad_examples:
            print(f"  skipped: {line}")
    space = feature_space(catalogue(folder, scan), scan)
    cfg = config.replace(afetler=presets.STREAMED)
    batch = cfg.train.batch_size
    if scan.train < batch or scan.validation < 1:
        raise ValueError(f"{folder}: {scan.train} training and {scan.validation} validation "
                         f"records; streaming needs at least one batch ({batch}) of each.")
    from afetler_tf.models.network import build_network
    mean = scan.rating_sum / scan.rated if scan.rated else 1.0
    if not scan.rated:
        cfg = cfg.replace(afetler={**presets.STREAMED, "ranking_head": False})
    training.set_seed(cfg.train.seed)
    network = build_network(space, cfg, mean)
    network.compile(optimizer=make_optimizer(cfg.train.optimizer, cfg.train.learning_rate))
    joiner = Joiner(space, scan)
    make = lambda part, size: dataset(files, fmt, joiner, part, buckets, size, skip_bad,  # noqa: E731
                                      rating_range, cfg.train.seed)
    val_batch = min(batch, scan.validation)  # in-batch softmax memory ~ batch^2: keep it small
    steps = steps_per_epoch or scan.train // batch
    history = training.fit_with_early_stopping(
        network, make("train", batch), make("validation", val_batch).take(
            max(1, scan.validation // val_batch)),
        cfg.train.epochs, cfg.train.patience, "val_total_loss", verbose=verbose,
        checkpoint_dir=checkpoint_dir, prefix="stream ", callbacks=callbacks,
        steps_per_epoch=steps)
    metrics = {"stream": {k[4:]: v[-1] for k, v in history.items()
                          if k.startswith("val_") and isinstance(v, list) and v}}
    result = StreamResult(scan, history, metrics, history["fit_seconds"],
                          steps * batch * len(history.get("loss", [])))
    if out_dir:
        write_stream_run(out_dir, cfg, network, result)
    elif not is_chief():  # saving is collective: a non-chief worker saves to scratch
        with tempfile.TemporaryDirectory() as scratch:
            network.save_weights(os.path.join(scratch, "weights"))
    return result


def write_stream_run(out_dir: str, config: Config, network, result: StreamResult) -> None:
    """config.json, metrics.json, history.json, scan.json, vocabularies and weights."""
    folder = RunFolder(out_dir)
    config.to_json(folder.config)
    files.write_json(folder.metrics, result.metrics)
    files.write_json(folder.history, result.history)
    scan = dataclasses.asdict(result.scan)
    users, items = scan.pop("user_ids"), scan.pop("item_counts")
    files.write_json(folder.path(folder.SCAN), scan)
    files.atomic_write_text(folder.path(folder.VOCAB, "users.txt"), "\n".join(users) + "\n")
    files.atomic_write_text(folder.path(folder.VOCAB, "items.tsv"),
                         "".join(f"{i}\t{c}\n" for i, c in items.items()))
    network.save_weights(os.path.join(folder.weights, "weights"))
