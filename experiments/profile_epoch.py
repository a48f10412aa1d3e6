"""Where an AFETLER joint epoch's time goes, against a plain TFRS two-tower.

    python -m experiments profile [--seed 1] [--repeats 20] [--json FILE]

MovieLens-100k, random split; AFETLER with the default config, prepared as
``Afetler.fit`` prepares it (feature space, examples, network, optimizer).
Each part is a compiled ``tf.function`` timed on the epoch's first training
batch (median of ``--repeats`` calls after two warm-up calls), then scaled by
the number of batches per epoch:

- input: one pass over the epoch's ``tf.data`` pipeline, no model;
- query tower (MCAU, fusion, MLP) and its MCAU part alone, on a batch;
- candidate tower over the training catalogue (what the catalogue softmax
  runs every step);
- loss: the whole forward pass of the joint stage (``compute_loss``);
- train step: forward, backward and the optimizer (``train_step``);
- validation ranking: protocol T on the validation carve-out, which early
  stopping runs after every epoch (one call, timed as after the first
  epoch: the split's part computed and the encoders traced before).

Then one real epoch (the second of a two-epoch ``fit``, from its start to its
end, no validation; the first traces the step for the full and the last,
partial batch) of
AFETLER and of the reference: a tutorial-style ``tfrs.Model`` (user and item
id embeddings of width 32, a ``Retrieval`` task with the in-batch softmax, batch 1024,
Adagrad 0.1), on the same training interactions; each reported with its
ratio to the reference epoch. Run it on a quiet machine (no other job) and
state the load. Nothing is written to ``benchmarks/`` unless ``--json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from typing import Optional

import numpy as np


def median_ms(fn, repeats: int, warm_ups: int = 2) -> float:
    """Median milliseconds of ``repeats`` calls of ``fn`` after ``warm_ups`` untimed calls."""
    for _ in range(warm_ups):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


def reference_model(train, batch_size: int = 1024, seed: int = 1) -> tuple:
    """A tutorial-style TFRS retrieval model (docstring), compiled, and its
    shuffled training batches: (model, dataset)."""
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    tf.random.set_seed(seed)
    users = np.unique(train["user_id"].astype(str))
    items = np.unique(train["item_id"].astype(str))

    def tower(vocabulary):
        return tf.keras.Sequential([tf.keras.layers.StringLookup(vocabulary=vocabulary),
                                    tf.keras.layers.Embedding(len(vocabulary) + 1, 32)])

    class Reference(tfrs.Model):
        def __init__(self):
            super().__init__()
            self.user, self.item = tower(users), tower(items)
            self.task = tfrs.tasks.Retrieval()

        def compute_loss(self, features, training=False):
            return self.task(self.user(features["user_id"]), self.item(features["item_id"]))

    model = Reference()
    model.compile(optimizer=tf.keras.optimizers.Adagrad(0.1))
    data = tf.data.Dataset.from_tensor_slices(
        {"user_id": train["user_id"].astype(str).to_numpy(),
         "item_id": train["item_id"].astype(str).to_numpy()}).shuffle(100_000, seed=seed).batch(
        batch_size)
    return model, data


def second_epoch_seconds(model, dataset) -> float:
    """Seconds of the second epoch of a two-epoch ``model.fit`` (the first one
    traces the step for the full and the last, partial batch), from the
    epoch's start to its end: the input iterator's set-up and teardown
    between epochs are not in it (an autotuned pipeline's teardown waits for
    its tuning thread, a wait of no fixed length: docs/decisions.md,
    2026-11-30, "In-memory input pipelines are not autotuned")."""
    import tensorflow as tf

    class EpochTimes(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self._start = [], 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)
    times = EpochTimes()
    model.fit(dataset, epochs=2, verbose=0, callbacks=[times])
    return times.seconds[1]


def reference_epoch(train, batch_size: int = 1024, seed: int = 1) -> float:
    """Seconds of one epoch of the reference model after a warm-up epoch (its
    tracing; :func:`second_epoch_seconds`)."""
    model, data = reference_model(train, batch_size, seed)
    return second_epoch_seconds(model, data.cache())


def reference_fit(train, epochs: int, batch_size: int = 1024, seed: int = 1) -> float:
    """Seconds of a fresh reference model's ``epochs``-epoch fit, building,
    tracing and input set-up included (the tutorial's whole fit)."""
    start = time.perf_counter()
    model, data = reference_model(train, batch_size, seed)
    model.fit(data.cache(), epochs=epochs, verbose=0)
    return time.perf_counter() - start


def prepared_joint_stage(seed: int = 1) -> tuple:
    """AFETLER (default config) on MovieLens-100k's random split, prepared as
    ``Afetler.fit`` prepares its joint stage: (data, split, config, model, the
    compiled network, the shuffled training dataset)."""
    import afetler_tf as af
    from afetler_tf import training
    from afetler_tf.training.optimizers import make_optimizer

    data = af.load_dataset("movielens-100k")
    split = af.make_split(data, kind="random", seed=seed)
    config = af.Config(model="afetler").replace(data={"seed": seed}, train={"seed": seed})
    model = af.build_model(config)
    training.set_seed(seed)
    model._prepare(data, split)  # noqa: SLF001 (an experiment looks inside the fit)
    network, cfg = model.network, config.train
    examples = model.examples(split.train, model.sampling_probabilities)
    dataset = training.make_dataset(examples, None, cfg.batch_size, shuffle=True, seed=seed)
    network.compile(optimizer=make_optimizer(cfg.optimizer, cfg.learning_rate))
    return data, split, config, model, network, dataset


def steady_epoch(network, dataset) -> float:
    """Seconds of one joint-stage epoch of a prepared network (:func:`prepared_joint_stage`),
    without validation, after a warm-up epoch (its tracing), as the reference's
    (:func:`second_epoch_seconds`)."""
    from afetler_tf import training

    # As Afetler.fit runs its stages (the garbage collector skips the examples).
    quiet_collector = getattr(training, "collector_skips_what_exists", contextlib.nullcontext)
    with quiet_collector():
        return second_epoch_seconds(network, dataset)


def profile(seed: int = 1, repeats: int = 20) -> dict:
    import tensorflow as tf

    from afetler_tf import training

    data, split, config, model, network, dataset = prepared_joint_stage(seed)
    cfg = config.train
    batches = int(np.ceil(len(split.train) / cfg.batch_size))
    batch = next(iter(dataset))
    catalogue = getattr(network.retrieval, "catalogue", None)  # the exact softmax's item features
    query = network.query_tower.features(batch)  # MCAU's query: the user's feature vector

    start = time.perf_counter()
    for _ in dataset:
        pass
    input_s = time.perf_counter() - start
    parts = {
        "query tower (MCAU, fusion, MLP)": tf.function(lambda: network.query_tower(batch, training=True)),
        "MCAU alone": tf.function(lambda: network.query_tower.history(batch, query=query))
        if network.query_tower.history is not None else None,
        "candidate tower over the catalogue": tf.function(
            lambda: network.candidate_tower(catalogue, training=True)) if catalogue else None,
        "forward pass (compute_loss)": tf.function(lambda: network.compute_loss(batch, training=True)),
        "train step (forward, backward, optimizer)": tf.function(lambda: network.train_step(batch)),
    }
    rows = {"input pipeline (one pass)": {"ms_per_batch": input_s * 1000.0 / batches,
                                          "s_per_epoch": input_s}}
    for name, fn in parts.items():
        if fn is not None:
            ms = median_ms(fn, repeats)
            rows[name] = {"ms_per_batch": ms, "s_per_epoch": ms * batches / 1000.0}
    validation_ndcg = training.ValidationNdcg(data, split)  # as the fit's check: the split's part once
    validation_ndcg(model)  # its encoders traced, as after the first epoch
    start = time.perf_counter()
    validation_ndcg(model)
    rows["validation ranking (per epoch)"] = {"ms_per_batch": None,
                                              "s_per_epoch": time.perf_counter() - start}
    afetler_epoch = steady_epoch(network, dataset)
    reference = reference_epoch(split.train, seed=seed)
    return {"seed": seed, "train_interactions": len(split.train), "batch_size": cfg.batch_size,
            "batches_per_epoch": batches, "parts": rows,
            "afetler_epoch_s": afetler_epoch, "reference_epoch_s": reference,
            "afetler_epoch_ratio": afetler_epoch / reference,
            "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()[0]}


def table(result: dict) -> str:
    ref = result["reference_epoch_s"]
    lines = [f"AFETLER joint epoch parts, MovieLens-100k random split (seed {result['seed']}), "
             f"{result['train_interactions']} training interactions, batch {result['batch_size']} "
             f"({result['batches_per_epoch']} batches); {result['cpus']} CPUs, load "
             f"{result['load_average_at_start']:.2f} at start", "",
             "| part | ms per batch | s per epoch | x reference epoch |", "|---|---|---|---|"]
    for name, row in result["parts"].items():
        per_batch = "–" if row["ms_per_batch"] is None else f"{row['ms_per_batch']:.1f}"
        lines.append(f"| {name} | {per_batch} | {row['s_per_epoch']:.2f} | {row['s_per_epoch'] / ref:.2f} |")
    lines += [f"| AFETLER epoch (second of a fit, no validation) | | {result['afetler_epoch_s']:.2f} | "
              f"{result['afetler_epoch_ratio']:.2f} |",
              f"| reference: plain TFRS two-tower epoch | | {ref:.2f} | 1.00 |"]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments profile", description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    report(profile(args.seed, args.repeats), table, args.json)
    return 0


def report(result: dict, table, path: Optional[str]) -> None:
    """Prints ``table(result)``; with ``path``, also writes ``result`` there as JSON."""
    print(table(result))
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
