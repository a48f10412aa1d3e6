"""``python -m experiments speed``: training speed side by side, against a plain TFRS two-tower
measured in the same run (issue 20, deliverable 3).

    python -m experiments speed                      # MovieLens-100k seed 1, streamed 1M@1Mitems
    python -m experiments speed --no-stream          # in-memory rows only

One after the other, on this machine (run it on a quiet one and read the load it records):

- reference: a tutorial-style ``tfrs.Model`` (user and item id embeddings of width 32,
  a ``Retrieval`` task with the in-batch softmax, batch 1024, Adagrad 0.1;
  :func:`experiments.profile_epoch.reference_model`) on MovieLens-100k's
  random split's training part: the second epoch of a two-epoch fit, from its start to
  its end (the "epoch"; :func:`experiments.profile_epoch.second_epoch_seconds`), and a
  fresh model's 10 epochs with its tracing and input set-up (the "fit"); beside
  it AFETLER's joint-stage epoch timed the same way (after a warm-up epoch, no validation);
- the base two-tower and AFETLER with their defaults, and AFETLER with
  ``--preset fast`` (``afetler_fast``): ``python -m afetler_tf.fit --model M
  --seed S`` in a fresh process; the fit is the
  process's wall time (start-up, data, training, evaluation, writing), and
  the run's history gives each stage's wall time and epochs, so a stage's
  seconds per epoch include its tracing and per-epoch validation;
- streamed: the scale benchmark's measurement (:mod:`experiments.scale_bench`)
  of ``--stream-size`` (default 1M interactions over a 1M-item catalogue):
  examples/s over its batches after the warm-up ones (``scale_bench.MEASURE``),
  in a fresh process.

Every row is also given as a ratio to the reference: seconds (epoch or fit)
over the reference's, and for throughput the reference's examples/s over the
row's (so > 1 is slower everywhere). Writes ``speed.json`` and ``speed.md``
(a section ``python -m experiments render`` appends to BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Optional, Sequence

from experiments import child_env, scale_bench, speed_report, store
from experiments.machine import machine
from experiments.scale_report import SIZES

MODELS = ("two_tower", "afetler", "afetler_fast")
# fit flags of a row that is not a model's defaults
FLAGS = {"afetler_fast": ["--model", "afetler", "--preset", "fast"]}
REFERENCE_FIT_EPOCHS = 10


def reference(seed: int) -> dict:
    """The plain TFRS model's epoch and fit (module docstring), on ML-100k's
    training part, and AFETLER's steady joint epoch on the same data
    (:func:`experiments.profile_epoch.steady_epoch`: no validation, after a warm-up epoch)."""
    from experiments.profile_epoch import (prepared_joint_stage, reference_epoch, reference_fit,
                                           steady_epoch)

    _, split, _, _, network, dataset = prepared_joint_stage(seed)
    return {"train_interactions": len(split.train),
            "epoch_seconds": reference_epoch(split.train, seed=seed),
            "fit_seconds": reference_fit(split.train, REFERENCE_FIT_EPOCHS, seed=seed),
            "fit_epochs": REFERENCE_FIT_EPOCHS,
            "afetler_steady_epoch_seconds": steady_epoch(network, dataset)}


def model_fit(model: str, seed: int, work: str) -> dict:
    """``python -m afetler_tf.fit`` of ``model`` in a fresh process: wall time and stages."""
    from experiments.datasets import stage_epochs

    out = os.path.join(work, model)
    cmd = [sys.executable, "-m", "afetler_tf.fit", *FLAGS.get(model, ["--model", model]),
           "--seed", str(seed), "--out", out, "--overwrite", "--quiet"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=child_env(), stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    with open(os.path.join(out, "history.json"), encoding="utf-8") as f:
        history = json.load(f)
    with open(os.path.join(out, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    epochs = stage_epochs(history)
    return {"model": model, "wall_seconds": wall,
            "stages": {name: {"seconds": seconds,
                              "epochs": epochs.get(name, {}).get("epochs")}
                       for name, seconds in history.get("stage_seconds", {}).items()},
            "ndcg@10": metrics.get("T", {}).get("ndcg@10"), "rmse": metrics.get("R", {}).get("rmse")}


def streamed(size: str, work: str) -> dict:
    """The scale benchmark's streamed measurement of ``size``, in a fresh process."""
    figures = scale_bench.run_size(size, work, argparse.Namespace(**scale_bench.MEASURE))
    return {"size": size, **scale_bench.MEASURE, "interactions": figures["interactions"],
            "catalogue_items": figures["catalogue_items"],
            "examples_per_second": figures["examples_per_second"],
            "peak_rss_mib": figures["peak_rss_mib"]}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=1, help="split and training seed")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--stream-size", default="1M@1Mitems", choices=list(SIZES))
    p.add_argument("--no-stream", action="store_true", help="skip the streamed row")
    p.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "afetler_scale"),
                   help="where the streamed logs are generated (shared with the scale suite)")
    p.add_argument("--out", default=store.DIR, help="the result store")
    args = p.parse_args(argv)
    described = machine(load_average_at_start=os.getloadavg()[0])
    start = time.perf_counter()
    print("reference (plain TFRS two-tower) ...", flush=True)
    payload = {"machine": described, "seed": args.seed, "reference": reference(args.seed),
               "models": [], "streamed": None}
    with tempfile.TemporaryDirectory() as work:
        for model in args.models:
            print(f"{model}: python -m afetler_tf.fit --seed {args.seed} ...", flush=True)
            payload["models"].append(model_fit(model, args.seed, work))
    if not args.no_stream:
        print(f"streamed {args.stream_size} ...", flush=True)
        os.makedirs(args.work, exist_ok=True)
        payload["streamed"] = streamed(args.stream_size, args.work)
    payload["wall_seconds"] = time.perf_counter() - start
    store.write("speed.json", payload, args.out)
    text = speed_report.section(payload)
    store.write_text("speed.md", text, args.out)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
