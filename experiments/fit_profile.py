"""Where a whole default fit's time goes, stage by stage: epochs, validation, checkpoints, tracing.

    python -m experiments fit_profile [--seed 1] [--json FILE]

Runs what ``python -m afetler_tf.fit --seed SEED --out DIR`` runs (AFETLER,
default config, MovieLens-100k random split, resumable stages, the run folder
written), in this process, and splits each training stage's wall time into:

- epochs: Keras' epochs from their start to the end of their last step (and
  the validation loss pass where the stage has one), before any epoch-end
  callback; the first epoch also traces the stage's steps, so its excess
  over the median of the later epochs is reported apart;
- validation ranking: ``ValidationRanking`` at each epoch's end (the joint
  stage's early-stopping metric);
- checkpoints: ``StageCheckpoint.end_epoch`` (the per-epoch resumable state);
- other: the rest of the stage (its set-up: examples, frozen tower outputs,
  the GAN's inputs, fitted parts such as EASE, the cold-item path, the
  users' taste).

Beside, in the same windows, the seconds spent tracing ``tf.function`` s
(Python tracing only; the first call's graph optimisation is not in it):
they overlap the columns above. Outside the stages: loading and splitting
the data (before), evaluating the test split and writing the run folder
(after); Python's and TensorFlow's imports are not in the figures. The
reference (a tutorial-style TFRS retrieval model's whole 10-epoch fit,
``experiments.profile_epoch.reference_fit``) runs first in the same process, so
every figure can be read as a ratio to it.

The instrumentation wraps TensorFlow's tracing entry point
(``func_graph.func_graph_from_py_func``), ``tf.keras.Model.fit`` (a timing
callback put first) and the two epoch-end hooks above; it changes no
computation. Run it on a quiet machine and state the load; nothing is
written to ``benchmarks/`` unless ``--json``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import tempfile
import time
from typing import Optional, Sequence

import numpy as np


class Events:
    """(kind, label, start, end) intervals, perf_counter seconds."""

    def __init__(self):
        self.items: list = []
        self._trace_depth = 0

    def add(self, kind: str, label: str, start: float, end: float) -> None:
        self.items.append((kind, label, start, end))

    def timed(self, kind: str, fn, label: str = ""):
        def wrapped(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(kind, label, start, time.perf_counter())
        return wrapped

    def tracing(self, fn):
        """``fn`` (the tracing entry point) recording only outermost traces."""
        def wrapped(name, *args, **kwargs):
            self._trace_depth += 1
            start = time.perf_counter()
            try:
                return fn(name, *args, **kwargs)
            finally:
                self._trace_depth -= 1
                if self._trace_depth == 0:
                    self.add("trace", str(name), start, time.perf_counter())
        return wrapped


@contextlib.contextmanager
def instrumented(events: Events):
    """Within: traces, Keras epochs, validation rankings, checkpoints and the
    AFETLER stages are recorded in ``events``; everything restored on leaving."""
    import tensorflow as tf
    from tensorflow.python.eager.polymorphic_function import tracing_compilation
    from tensorflow.python.framework import func_graph

    from afetler_tf.models.afetler import Afetler
    from afetler_tf.training import checkpoints, validation

    class EpochTimes(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):  # first in the list: before the others' ends
            events.add("epoch", str(epoch + 1), self._start, time.perf_counter())

    original_fit, original_stages = tf.keras.Model.fit, Afetler.stages

    def fit(self, *args, callbacks=None, **kwargs):
        return original_fit(self, *args, callbacks=[EpochTimes(), *(callbacks or [])], **kwargs)

    def stages(self):
        return [dataclasses.replace(s, fit=events.timed("stage", s.fit, s.name))
                for s in original_stages(self)]

    patches = [(func_graph, "func_graph_from_py_func", events.tracing(func_graph.func_graph_from_py_func)),
               (tf.keras.Model, "fit", fit), (Afetler, "stages", stages),
               (validation.ValidationRanking, "on_epoch_end",
                events.timed("validation", validation.ValidationRanking.on_epoch_end)),
               (checkpoints.StageCheckpoint, "end_epoch",
                events.timed("checkpoint", checkpoints.StageCheckpoint.end_epoch))]
    module = getattr(tracing_compilation, "func_graph_module", None)
    if module is not func_graph and module is not None:
        patches.append((module, "func_graph_from_py_func", patches[0][2]))
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, value in patches:
        setattr(owner, name, value)
    try:
        yield events
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def breakdown(events: Events, start: float, end: float) -> dict:
    """Per stage: seconds, epochs, first epoch's excess, validation, checkpoints,
    other, tracing; plus what ran before and after the stages."""
    stages = [(label, s, e) for kind, label, s, e in events.items if kind == "stage"]
    if not stages:
        raise RuntimeError("no AFETLER stage was recorded: did the fit run Afetler.stages()?")

    def inside(kind, s0, e0):
        return [(label, s, e) for k, label, s, e in events.items if k == kind and s0 <= s < e0]
    rows = {}
    for name, s0, e0 in stages:
        epochs = [e - s for _, s, e in inside("epoch", s0, e0)]
        steady = float(np.median(epochs[1:])) if len(epochs) > 1 else None
        row = {"seconds": e0 - s0, "epochs": len(epochs), "epoch_seconds": float(sum(epochs)),
               "steady_epoch": steady,
               "first_epoch_excess": epochs[0] - steady if steady is not None else None,
               "validation": float(sum(e - s for _, s, e in inside("validation", s0, e0))),
               "checkpoints": float(sum(e - s for _, s, e in inside("checkpoint", s0, e0))),
               "tracing": float(sum(e - s for _, s, e in inside("trace", s0, e0))),
               "traces": len(inside("trace", s0, e0))}
        row["other"] = row["seconds"] - row["epoch_seconds"] - row["validation"] - row["checkpoints"]
        rows[name] = row
    first, last = stages[0][1], stages[-1][2]
    return {"stages": rows, "before_stages": first - start, "after_stages": end - last,
            "tracing_before": float(sum(e - s for _, s, e in inside("trace", start, first))),
            "tracing_after": float(sum(e - s for _, s, e in inside("trace", last, end + 1.0))),
            "total": end - start}


def profile(seed: int = 1) -> dict:
    from afetler_tf.config import Config
    from afetler_tf.data import load_dataset, make_split
    from afetler_tf.runs.training_run import run
    from experiments.profile_epoch import reference_fit

    reference = reference_fit(make_split(load_dataset("movielens-100k"), kind="random",
                                         seed=seed).train, epochs=10, seed=seed)
    config = Config(model="afetler").replace(data={"seed": seed}, train={"seed": seed})
    events = Events()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="fit_profile_") as out, instrumented(events):
        start = time.perf_counter()
        result = run(config, out_dir=out, verbose=0, checkpoint_dir=os.path.join(out, "checkpoints"))
        end = time.perf_counter()
    return dict(breakdown(events, start, end), seed=seed, reference_fit=reference,
                metrics={"ndcg@10": result.metrics["T"]["ndcg@10"], "rmse": result.metrics["R"]["rmse"]},
                cpus=os.cpu_count(), load_average_at_start=load)


def table(result: dict) -> str:
    ref = result["reference_fit"]

    def cell(value):
        return "–" if value is None else f"{value:.1f}"
    lines = [f"AFETLER's default fit, MovieLens-100k random split (seed {result['seed']}), "
             f"{result['total']:.1f} s from data loading to the written run folder "
             f"({result['total'] / ref:.1f}x the reference's whole fit, {ref:.1f} s); "
             f"{result['cpus']} CPUs, load {result['load_average_at_start']:.2f} at start; "
             f"test NDCG@10 {result['metrics']['ndcg@10']:.4f}, RMSE {result['metrics']['rmse']:.4f}",
             "", "| part | seconds | epochs | s in epochs | steady epoch | first epoch's excess "
             "| validation ranking | checkpoints | other | of all: tracing (traces) |",
             "|---|---|---|---|---|---|---|---|---|---|",
             f"| loading and splitting the data | {result['before_stages']:.1f} | | | | | | | | "
             f"{result['tracing_before']:.1f} |"]
    for name, row in result["stages"].items():
        lines.append(f"| stage {name} | {row['seconds']:.1f} | {row['epochs'] or ''} | "
                     f"{row['epoch_seconds']:.1f} | {cell(row['steady_epoch'])} | "
                     f"{cell(row['first_epoch_excess'])} | {row['validation']:.1f} | "
                     f"{row['checkpoints']:.1f} | {row['other']:.1f} | {row['tracing']:.1f} "
                     f"({row['traces']}) |")
    lines.append(f"| evaluating the test split, writing the run | {result['after_stages']:.1f} | | | | "
                 f"| | | | {result['tracing_after']:.1f} |")
    stages = result["stages"].values()
    steady = sum((r["steady_epoch"] or 0.0) * r["epochs"] for r in stages)
    lines += ["", f"Epochs at their steady cost: {steady:.1f} s of {result['total']:.1f} s "
              f"({100 * steady / result['total']:.0f}%); the rest is fixed cost (tracing, set-up, "
              "validation, checkpoints, fitted parts, evaluation)."]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments fit_profile",
                                description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    from experiments.profile_epoch import report
    report(profile(args.seed), table, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
