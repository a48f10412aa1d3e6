"""``python -m experiments index_ab``: interleaved latency of exported indexes, side by side.

Issue 17's bound is a ratio to an earlier commit measured in the same run:
export the same run with each commit (``PYTHONPATH=WORKTREE python -m export
--run RUN --base DIR``), then::

    python -m experiments index_ab --run RUN --rounds 5 before=DIR_A/afetler_index/1 now=DIR_B/afetler_index/1

Every model gets the same requests (``export_bench.request_features``: 256 real
users with their whole training histories, k = 10): one request and a batch
of 256, in turn, the order reversed every other round; printed: each
model's median over rounds of its p50, and each one's ratio to the first.
Nothing is written to the result store (a comparison of builds, not a row).
"""

from __future__ import annotations

import argparse
import os
from typing import Callable, Optional, Sequence

import numpy as np


def interleaved(calls: dict, rounds: int, measure: Callable) -> dict:
    """name -> (median over rounds of measure(calls[name]) per round), the
    models measured in turn, the order reversed every other round."""
    names, seen = list(calls), {name: [] for name in calls}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            seen[name].append(measure(calls[name]))
    return {name: np.median(np.asarray(values), axis=0) for name, values in seen.items()}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments index_ab", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="the run whose users make the requests")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("models", nargs="+", help="NAME=PATH of an exported afetler_index version")
    args = p.parse_args(argv)
    import tensorflow as tf

    from afetler_tf.runs.training_run import load_run
    from experiments.export_bench import _latencies, request_features
    pairs = [m.split("=", 1) for m in args.models]
    if any(len(pair) != 2 for pair in pairs):
        p.error("models are NAME=PATH")
    features = request_features(load_run(args.run), 256)
    signatures = {name: tf.saved_model.load(path).signatures["serving_default"] for name, path in pairs}

    def feed(rows):
        out = {k: tf.constant(np.asarray(v)[rows]) for k, v in features.items()}
        out["k"] = tf.constant(10, tf.int32)
        return out
    one, batch = feed(slice(0, 1)), feed(slice(0, 256))
    print(f"load before {os.getloadavg()}", flush=True)
    result = interleaved(signatures, args.rounds, lambda sig: (np.percentile(_latencies(sig, one, 2.0), 50),
                                                               np.percentile(_latencies(sig, batch, 4.0), 50)))
    print(f"load after {os.getloadavg()}")
    first = result[pairs[0][0]]
    for name, (single, batched) in result.items():
        print(f"{name:10s} p50 one request {single:.3f} ms ({single / first[0]:.3f}x)   "
              f"batch of 256 {batched:.2f} ms ({batched / first[1]:.3f}x)")
    return 0
