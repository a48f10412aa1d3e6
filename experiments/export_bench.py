"""``python -m experiments export``: latency of the exported retrieval index.

    python -m experiments export --run runs/afetler-random-42 [--out benchmarks] [--no-xla]

For the ML-100k catalogue (the run's item vectors) and synthetic catalogues
of 100k and 1M random unit vectors of the model's dimension d, each index
kind (BruteForce; ScaNN where installed) is exported as the index
SavedModel, reloaded with ``tf.saved_model.load``, and its
``serving_default`` signature is called with raw features of real ML-100k
users (profile + history) and k = 10: p50/p99 latency of one request and of
a batch of 256, and ScaNN's recall@10 against BruteForce on those 256 users.
Latency is the signature call (query tower + index), without JSON or
network. The ML-100k rows are measured once more with XLA auto-clustering
(``TF_XLA_FLAGS``), with one inter-op thread, and with both (each in a
child process). Writes ``OUT/export.json`` and
``OUT/export.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Optional

import numpy as np
import tensorflow as tf

import afetler_tf  # noqa: F401  (Keras-2 set-up before TensorFlow)
from afetler_tf.data import user_histories
from afetler_tf.files import write_json
from afetler_tf.runs.training_run import load_run
from experiments import child_env, store
from experiments.export_bench_report import markdown
from export import exporter
from export.modules import index_module, scann_options
from export.specs import InputSpecs

CATALOGUES = (("ml-100k", None), ("synthetic-100k", 100_000), ("synthetic-1m", 1_000_000))
XLA_FLAGS = "--tf_xla_auto_jit=2 --tf_xla_cpu_global_jit"
BUDGET_S = {"1": 3.0, "batch": 8.0}  # timing budget per (index, request size)
K = 10
BATCH = 256


def scann_version() -> Optional[str]:
    """The installed scann version, or None."""
    try:
        import scann  # noqa: F401
    except ImportError:
        return None
    from importlib.metadata import version
    return version("scann")


def request_features(result, n: int, seed: int = 0) -> dict:
    """Raw index inputs of ``n`` real users (profile + training history) as tensors.

    The history is the user's whole training history (what a client sends:
    MCAU reads its latest ``data.history_length``, the item-item channel and
    the index's exclusion all of it)."""
    users = result.data.users["user_id"].to_numpy(object).astype(str)
    ids = np.random.default_rng(seed).choice(users, size=min(n, len(users)), replace=False)
    model = result.model
    features = model.space.user_features(ids)
    if model.uses_history:
        longest = int(result.split.train.groupby("user_id").size().max())
        hist = user_histories(result.split.train, ids, max_len=longest)
        features.update(history_item_ids=hist["history_item_ids"], history_ratings=hist["history_ratings"])
    return features


def synthetic_catalogue(size: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``size`` random unit vectors (size, dim) with ids "s0", "s1", ..."""
    vectors = np.random.default_rng(seed).standard_normal((size, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.char.add("s", np.arange(size).astype(str)).astype(object), vectors


def _feed(features: dict, rows: slice, specs: dict) -> dict:
    feed = {name: tf.constant(values[rows], dtype=specs[name].dtype) for name, values in features.items()}
    feed["k"] = tf.constant(K, tf.int32)
    return feed


def _latencies(signature, feed: dict, budget_s: float, most: int = 300) -> np.ndarray:
    """Milliseconds per call: 3 warm-up calls, then as many as ``budget_s`` allows (10..most)."""
    for _ in range(3):
        signature(**feed)
    start = time.perf_counter()
    signature(**feed)
    reps = int(np.clip(budget_s / max(time.perf_counter() - start, 1e-6), 10, most))
    times = np.empty(reps)
    for i in range(reps):
        t0 = time.perf_counter()
        signature(**feed)
        times[i] = (time.perf_counter() - t0) * 1000.0
    return times


def measure(result, inputs: InputSpecs, kind: str, ids, vectors, features: dict) -> tuple[dict, np.ndarray]:
    """Exports, reloads and times one index; returns (row, top-K ids of the batch)."""
    t0 = time.perf_counter()
    options = scann_options(len(ids)) if kind == "scann" else None
    module = index_module(result.model.query_encoder, inputs, kind, ids, vectors, options)
    with tempfile.TemporaryDirectory() as folder:
        exporter.save_module(module, folder)
        build_s = time.perf_counter() - t0
        signature = tf.saved_model.load(folder).signatures["serving_default"]
        one = _latencies(signature, _feed(features, slice(0, 1), inputs.index), BUDGET_S["1"])
        batch = _latencies(signature, _feed(features, slice(0, BATCH), inputs.index), BUDGET_S["batch"])
        top = signature(**_feed(features, slice(0, BATCH), inputs.index))["item_ids"].numpy()
    row = {"index": kind, "items": len(ids), "build_s": round(build_s, 2),
           "p50_ms_1": np.percentile(one, 50), "p99_ms_1": np.percentile(one, 99),
           "p50_ms_256": np.percentile(batch, 50), "p99_ms_256": np.percentile(batch, 99),
           "calls_1": len(one), "calls_256": len(batch), "options": options}
    return row, top


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each row's exact top-K that ``found`` retrieved."""
    return float(np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact)]))


def bench_catalogue(result, inputs, name, ids, vectors, features, scann: Optional[str]) -> list:
    """BruteForce and ScaNN rows for one catalogue."""
    print(f"{name}: {len(ids)} items ...", flush=True)
    exact_row, exact = measure(result, inputs, "brute_force", ids, vectors, features)
    rows = [dict(exact_row, catalogue=name, **{"recall@10": 1.0})]
    if scann is None:
        rows.append({"catalogue": name, "index": "scann", "items": len(ids), "status": "not installed"})
        return rows
    row, found = measure(result, inputs, "scann", ids, vectors, features)
    rows.append(dict(row, catalogue=name, **{"recall@10": recall(found, exact)}))
    return rows


def run_bench(run_dir: str, catalogues=tuple(name for name, _ in CATALOGUES)) -> dict:
    """All rows of ``catalogues`` plus the set-up they were measured on."""
    result = load_run(run_dir)
    exporter.warm_up(result)
    inputs = InputSpecs.from_model(result.model)
    features = request_features(result, BATCH)
    ids, vectors = exporter.catalogue(result)
    scann, rows = scann_version(), []
    for name, size in CATALOGUES:
        if name in catalogues:
            items = (ids, vectors) if size is None else synthetic_catalogue(size, vectors.shape[1])
            rows += bench_catalogue(result, inputs, name, *items, features, scann)
    return {"run": os.path.abspath(run_dir), "model": result.config.model, "dimension": int(vectors.shape[1]),
            "k": K, "batch": BATCH, "cpus": os.cpu_count(), "tensorflow": tf.__version__,
            "scann": scann, "rows": rows}


SERVING_VARIANTS = ((True, 0), (False, 1), (True, 1))  # (XLA, inter-op threads; 0 = TF's default)


def variant_rows(run_dir: str, xla: bool, inter_op: int) -> list:
    """The ML-100k rows again, in a child process with another serving set-up.

    ``xla``: XLA auto-clustering, through ``TF_XLA_FLAGS``, which must be set
    before TensorFlow starts (hence the child); the same variable plus
    ``--xla_cpu_compilation_enabled=true`` is the knob of
    ``tensorflow_model_server``. ``inter_op``: the size of TensorFlow's
    inter-op thread pool (``tensorflow_model_server
    --tensorflow_inter_op_parallelism``); 1 runs a request's independent ops
    on one thread, which saves thread hand-offs in a small graph.
    """
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "rows.json")
        env = child_env(TF_XLA_FLAGS=XLA_FLAGS) if xla else child_env()
        subprocess.run([sys.executable, "-m", "experiments.export_bench", "--run", run_dir, "--catalogues", "ml-100k",
                        "--inter-op", str(inter_op), "--rows-only", out], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        with open(out, encoding="utf-8") as f:
            return [dict(row, xla=xla, inter_op=inter_op) for row in json.load(f)["rows"]]


def parse_args(argv: Optional[list]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m experiments export", description=__doc__.splitlines()[0])
    p.add_argument("--run", default="runs/afetler-random-42", help="trained afetler/two_tower run")
    p.add_argument("--out", default="benchmarks", help="folder of export.json and export.md")
    p.add_argument("--catalogues", default=",".join(name for name, _ in CATALOGUES),
                   help="comma-separated subset of " + ", ".join(name for name, _ in CATALOGUES))
    p.add_argument("--no-xla", action="store_true", help="skip the ML-100k rows with XLA auto-clustering")
    p.add_argument("--inter-op", type=int, default=0,
                   help="inter-op threads of this process (0: TensorFlow's default)")
    p.add_argument("--rows-only", help=argparse.SUPPRESS)  # the XLA child's output file
    return p.parse_args(argv)


def main(argv: Optional[list] = None) -> int:
    args = parse_args(argv)
    if not os.path.exists(os.path.join(args.run, "config.json")):
        print(f"error: {args.run} is not a run directory; train one first: python -m afetler_tf.fit "
              f"--model afetler --out {args.run}", file=sys.stderr)
        return 2
    if args.inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    start, load_before = time.perf_counter(), os.getloadavg()[0]
    report = run_bench(args.run, args.catalogues.split(","))
    if args.rows_only:
        write_json(args.rows_only, report)
        return 0
    for xla, inter_op in SERVING_VARIANTS:
        if not (xla and args.no_xla):
            report["rows"] += variant_rows(args.run, xla, inter_op)
    report.update(bench_seconds=round(time.perf_counter() - start, 1), xla_flags=XLA_FLAGS,
                  load_average=[round(load_before, 2), round(os.getloadavg()[0], 2)])
    store.write("export.json", report, args.out)
    text = markdown(report)
    store.write_text("export.md", text, args.out)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
