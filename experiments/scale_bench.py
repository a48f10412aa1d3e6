"""How cost grows: streamed training throughput and peak memory vs log size.

    python -m experiments scale                   # 100k, 1M, 10M (+ 1M at 10M's catalogue)
    python -m experiments scale --sizes 100k 1M   # a subset

For every size a synthetic log (:mod:`afetler_tf.data.synthetic`) is written
once under ``--work`` and trained on in a fresh subprocess (so its peak RSS is
its own) by the streamed path (:mod:`afetler_tf.runs.streamed_run`): one full scan pass,
then ``--steps`` training batches of ``--batch``; throughput is measured over
the batches after the first ``--warmup`` (graph tracing, buffers filling).
Then the 100k log is fitted for one full epoch by 1 worker and by 2 local
workers (MultiWorkerMirroredStrategy on 127.0.0.1). Writes
``benchmarks/scale.json``, ``benchmarks/scale.md`` (a ``## `` section that
BENCHMARKS.md appends) and ``benchmarks/scale.png`` (log-log).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
from typing import Optional, Sequence

from afetler_tf import files
from afetler_tf.config import OPTIMIZERS
from experiments import child_env, scale_report, store
from experiments.machine import machine
from experiments.scale_report import SIZES

MODEL = {"tower.embedding_dim": 32, "tower.tower_units": [64, 32], "tower.ranking_units": [64, 32]}
# A size's measurement: batches, the first ones untimed, batch size, optimizer
# (the command's defaults; experiments.speed measures its streamed row with them).
MEASURE = {"steps": 200, "warmup": 20, "batch": 1024, "optimizer": "lazy_adam"}


def child(data: str, steps: int, warmup: int, batch: int, optimizer: str, out: str) -> None:
    """One size, in this (fresh) process: streamed fit, throughput, peak RSS."""
    import tensorflow as tf

    from afetler_tf.config import Config
    from afetler_tf.runs.streamed_run import fit_stream

    class Probe(tf.keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.begin = time.perf_counter()

        def on_train_batch_end(self, step, logs=None):
            if step + 1 == warmup:
                self.start = time.perf_counter()
            self.end, self.steps = time.perf_counter(), step + 1

    config = Config().replace(train={"epochs": 1, "batch_size": batch, "optimizer": optimizer},
                              tower={"embedding_dim": 32, "tower_units": (64, 32),
                                     "ranking_units": (64, 32)})
    t0, probe = time.perf_counter(), Probe()
    result = fit_stream(config, data, verbose=0, steps_per_epoch=steps, callbacks=[probe])
    measured = (probe.steps - warmup) * batch
    files.write_json(out, {
        "records": result.scan.records, "users": len(result.scan.user_ids),
        "items": len(result.scan.item_counts), "setup_seconds": probe.begin - t0,
        "train_steps": probe.steps, "measured_examples": measured,
        "examples_per_second": measured / (probe.end - probe.start),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def run_size(name: str, work: str, args) -> dict:
    n, items, users = SIZES[name]
    data = os.path.join(work, name)
    if not os.path.exists(os.path.join(data, "interactions")):
        from afetler_tf.data.synthetic import generate
        t = time.perf_counter()
        generate(data + ".tmp", n, items, users, shards=8)
        os.replace(data + ".tmp", data)
        print(f"  generated {name} in {time.perf_counter() - t:.0f}s", flush=True)
    out = os.path.join(work, f"{name}.json")
    cmd = [sys.executable, "-m", "experiments.scale_bench", "--child", data, "--steps",
           str(args.steps), "--warmup", str(args.warmup), "--batch", str(args.batch),
           "--optimizer", args.optimizer, "--json", out]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=child_env())
    figures = dict(json.load(open(out)), size=name, interactions=n, catalogue_items=items,
                   catalogue_users=users, wall_seconds=time.perf_counter() - t)
    print(f"  {name}: {figures['examples_per_second']:.0f} examples/s, peak RSS "
          f"{figures['peak_rss_mib']:.0f} MiB, setup {figures['setup_seconds']:.0f}s", flush=True)
    return figures


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workers_fit(data: str, work: str, n_workers: int, batch: int, optimizer: str) -> dict:
    """Wall time of ``fit --stream`` for one epoch on ``n_workers`` local workers."""
    out = os.path.join(work, f"workers-{n_workers}")
    base = [sys.executable, "-m", "afetler_tf.fit", "--stream", "--data", data, "--out", out,
            "--overwrite", "--quiet", "--epochs", "1", "--set", f"train.batch_size={batch}",
            "--set", f"train.optimizer={json.dumps(optimizer)}"]
    for key, value in MODEL.items():
        base += ["--set", f"{key}={json.dumps(value)}"]
    addresses = [f"127.0.0.1:{_free_port()}" for _ in range(n_workers)]
    t, procs = time.perf_counter(), []
    for index in range(n_workers):
        env = dict(os.environ)
        if n_workers > 1:
            env["TF_CONFIG"] = json.dumps({"cluster": {"worker": addresses},
                                           "task": {"type": "worker", "index": index}})
        cmd = base + (["--strategy", "multiworker"] if n_workers > 1 else [])
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL))
    if any(p.wait() for p in procs):
        raise RuntimeError(f"a worker of the {n_workers}-worker fit failed")
    history = json.load(open(os.path.join(out, "history.json")))
    return {"workers": n_workers, "wall_seconds": time.perf_counter() - t,
            "fit_seconds": history["fit_seconds"]}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments scale", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["100k", "1M", "10M", "1M@1Mitems"],
                   choices=list(SIZES))
    p.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "afetler_scale"))
    p.add_argument("--out", default=store.DIR, help="the result store")
    p.add_argument("--steps", type=int, default=MEASURE["steps"])
    p.add_argument("--warmup", type=int, default=MEASURE["warmup"])
    p.add_argument("--batch", type=int, default=MEASURE["batch"])
    p.add_argument("--optimizer", default=MEASURE["optimizer"], choices=OPTIMIZERS,
                   help="train.optimizer (default lazy_adam: per-step cost independent of the "
                        "vocabulary sizes; adam updates every embedding row each step)")
    p.add_argument("--no-workers", action="store_true", help="skip the 1 vs 2 workers fit")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--json", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.steps, args.warmup, args.batch, args.optimizer, args.json)
        return 0
    os.makedirs(args.work, exist_ok=True)
    described = machine(load_average_at_start=os.getloadavg()[0])
    start, sizes = time.perf_counter(), []
    for name in args.sizes:
        print(f"size {name} ...", flush=True)
        sizes.append(run_size(name, args.work, args))
    workers = [] if args.no_workers or "100k" not in args.sizes else [
        workers_fit(os.path.join(args.work, "100k"), args.work, n, args.batch, args.optimizer)
        for n in (1, 2)]
    payload = {"machine": described, "settings": {"steps": args.steps, "warmup": args.warmup,
                                                 "batch": args.batch, "model": MODEL,
                                                 "optimizer": args.optimizer},
               "sizes": sizes, "workers": workers, "wall_seconds": time.perf_counter() - start}
    store.write("scale.json", payload, args.out)
    scale_report.write(payload, args.out)
    print(f"wrote {args.out}/scale.json, scale.md, scale.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
