"""``python -m experiments peers``: the public models a user would pick instead of AFETLER,
fitted and scored in this run beside AFETLER's seeds-suite rows.

    python -m experiments peers                       # every peer, seeds 1-3
    python -m experiments peers --models cornac_ease ials --seeds 1
    python -m experiments peers --quick --out /tmp/bench   # tiny, for tests

Data: MovieLens-100k (``afetler_tf.load_dataset("movielens-100k")``), the
random 80/20 split of each seed (``make_split(kind="random", seed=s)`` with the
package's defaults, 10% of the training part held out for validation): the very
split of the ``seeds`` suite's rows. Every peer is scored by the package's own
:func:`afetler_tf.evaluation.evaluate`, protocol T (full catalogue, each user's
training and validation items excluded, relevant = all the user's test items),
so its row reads like AFETLER's. AFETLER is not refitted here: its rows are
read from ``seeds.json`` in the same store when the section is rendered
(:mod:`experiments.peers_report`, by ``python -m experiments render``).

Peers (``MODELS``): Cornac's BiVAE with Microsoft Recommenders' settings (the
BiVAE deep dive's and the movielens benchmark's), Cornac's EASE and WMF with
their settings chosen on validation (:mod:`experiments.cornac_peers`), and
implicit's iALS with its grid (``IALS_GRID``) on validation (:mod:`experiments.ials`). Needs
``pip install cornac torch implicit`` (the ``bench`` extra); a peer whose
package does not import is recorded as skipped, with the reason. The test split
is read once per peer and seed, after the settings are chosen.

Each seed also refits ``afetler_tf``'s own EASE through the pipeline, as the
seeds suite does (about a second): its NDCG@10 must equal the seeds suite's EASE
row, which checks that the split (and the metric code) is the same.

Results: ``OUT/peers.json``, keyed model -> seed, rewritten (atomically) after
every run; a (model, seed) already there is not run again (a failed run is
retried). ``--quick``: the first 300 users of MovieLens, tiny grids and epochs;
for tests, never for figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from typing import Optional, Sequence

from experiments import store

NAME = "peers.json"
SOURCE = "movielens-100k"
MODELS = ("cornac_bivae", "cornac_bivae_benchmark", "cornac_ease", "cornac_wmf", "ials")
CHECK = "afetler_ease"  # afetler_tf's EASE through the pipeline: the split check
SEEDS = (1, 2, 3)
# iALS's grid here: wider than the datasets suite's (experiments.ials.GRID), whose edges
# (16 factors, alpha 1, 5 or 30 iterations) it chose on MovieLens-100k. 125 combinations at
# 15 iterations, then 4 more iteration counts for the best.
IALS_GRID = {"factors": (8, 16, 32, 64, 128), "regularization": (1.0, 3.0, 10.0, 30.0, 100.0),
             "alpha": (0.1, 0.3, 1.0, 3.0, 10.0), "iterations": (15, 5, 10, 30, 50)}
QUICK_USERS = 300


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m experiments peers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--seeds", nargs="+", type=int, default=None,
                   help=f"default: {' '.join(map(str, SEEDS))} (with --quick: 1)")
    p.add_argument("--out", default=store.DIR, help="the result store (peers.json)")
    p.add_argument("--quick", action="store_true", help="tiny data, grids and epochs (tests)")
    p.add_argument("--verbose", type=int, default=0, help="print each candidate's validation score")
    return p.parse_args(argv)


def config_of(model: str, seed: int):
    """The run's Config: the seeds suite's data and seeds (its model field names an
    afetler_tf model; a peer reads only ``train.seed``)."""
    from afetler_tf.config import Config
    config = Config(model="ease" if model == CHECK else "popularity")
    return config.replace(data={"seed": seed, "source": SOURCE, "split": "random"},
                          train={"seed": seed})


def build(model: str, config, quick: bool = False):
    """The peer ``model`` (a Recommender), with the quick grid under ``quick``."""
    if model == "ials":
        from experiments import ials
        return ials.IALS(config, grid=ials.QUICK_GRID if quick else IALS_GRID)
    from experiments import cornac_peers
    cls = cornac_peers.PEERS[model]
    return cls(config, cornac_peers.QUICK[model] if quick else None)


def skip_reason(model: str) -> Optional[str]:
    """Why ``model`` cannot run here (None: it can)."""
    if model == "ials":
        from experiments import ials
        return None if ials.available() else "the implicit package is not installed (pip install implicit)"
    from experiments import cornac_peers
    return cornac_peers.available()


def label_of(model: str) -> str:
    if model == "ials":
        return "iALS (implicit; on validation)"
    from experiments import cornac_peers
    return cornac_peers.PEERS[model].label


def run_one(model: str, seed: int, data, quick: bool = False, verbose: int = 0) -> dict:
    """Chooses the settings on validation, refits, scores protocol T on test; the record."""
    from afetler_tf.evaluation import evaluate
    from afetler_tf.runs.training_run import prepare
    from experiments.datasets import split_stats
    start = time.time()
    config = config_of(model, seed)
    data, split = prepare(config, verbose=0, data=data)
    recommender = build(model, config, quick)
    t0 = time.time()
    history = recommender.fit(data, split, verbose=verbose)
    fit_seconds = time.time() - t0
    metrics = evaluate(recommender, data, split, protocols=("T",),
                       like_threshold=config.data.like_threshold)
    trials = history["trials"]
    return {"model": model, "label": label_of(model), "seed": seed, "metrics": metrics,
            "fit_seconds": fit_seconds, "final_fit_seconds": history["final_fit_seconds"],
            "params": history["params"], "val_ndcg@10": history["val_ndcg@10"],
            "candidates": len(trials), "trials": trials, "wall_seconds": time.time() - start,
            "split": split_stats(split)}


def run_check(seed: int, data) -> dict:
    """afetler_tf's EASE through the pipeline, as the seeds suite ran it."""
    from afetler_tf.runs.training_run import run
    result = run(config_of(CHECK, seed), verbose=0, data=data)
    return {"model": CHECK, "seed": seed, "metrics": {"T": result.metrics["T"]},
            "fit_seconds": result.fit_seconds}


def load(directory: str, quick: bool) -> dict:
    """The results file (a fresh one when there is none); refuses another set-up's file."""
    payload = store.read(NAME, directory)
    if payload is None:
        return {"suite": "peers", "source": SOURCE, "split": "random", "quick": quick,
                "runs": {}, "wall_seconds": 0.0}
    if payload.get("quick") != quick:
        raise ValueError(f"{store.path(NAME, directory)} holds runs with quick="
                         f"{payload.get('quick')}; this call has quick={quick}: use another --out.")
    return payload


def done(payload: dict, model: str, seed: int) -> bool:
    record = payload["runs"].get(model, {}).get(str(seed))
    return record is not None and "error" not in record


def _movielens(quick: bool):
    from afetler_tf import load_dataset
    data = load_dataset(SOURCE)
    if quick:
        from experiments.datasets import _first_users
        data = _first_users(data, QUICK_USERS)
    return data


def run_suite(models: Sequence[str], seeds: Sequence[int], directory: str, quick: bool = False,
              verbose: int = 0, data=None) -> dict:
    """Runs every missing (model, seed) and each seed's split check, writing the file after
    each; returns the payload, with ``ran``: how many runs this call made."""
    from experiments.machine import machine
    payload = load(directory, quick)
    todo = [(m, s) for s in seeds for m in (CHECK, *models) if not done(payload, m, s)]
    if todo:
        payload.update(machine=machine(load_average_at_start=os.getloadavg()[0]))
        planned = {(m, str(s)) for s in seeds for m in models}
        planned |= {(m, s) for m, runs in payload["runs"].items() if m != CHECK for s in runs}
        payload["planned"] = len(planned)
    data = data if data is not None or not todo else _movielens(quick)
    start, before, ran = time.time(), payload["wall_seconds"], 0
    for model, seed in todo:
        label = f"{model} / seed {seed}"
        reason = None if model == CHECK else skip_reason(model)
        if reason:
            record = {"model": model, "seed": seed, "skipped": reason}
            print(f"[{time.strftime('%H:%M:%S')}] {label}: skipped ({reason})", flush=True)
        else:
            print(f"[{time.strftime('%H:%M:%S')}] {label} ...", flush=True)
            try:
                record = (run_check(seed, data) if model == CHECK
                          else run_one(model, seed, data, quick, verbose))
            except Exception as e:  # recorded, retried by the next call
                traceback.print_exc()
                record = {"model": model, "seed": seed, "error": f"{type(e).__name__}: {e}"[:500]}
            ran += 1
            print(f"    {_summary(record)}", flush=True)
        payload["runs"].setdefault(model, {})[str(seed)] = record
        payload["wall_seconds"] = before + time.time() - start
        store.write(NAME, payload, directory)
    payload["ran"] = ran
    return payload


def _summary(record: dict) -> str:
    if "error" in record:
        return f"failed: {record['error']}"
    extra = (f", settings {record['params']} (validation NDCG@10 {record['val_ndcg@10']:.4f})"
             if "params" in record else "")
    return (f"fit {record['fit_seconds']:.1f}s, T ndcg@10 {record['metrics']['T']['ndcg@10']:.4f}"
            + extra)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    seeds = args.seeds or ([1] if args.quick else list(SEEDS))
    payload = run_suite(args.models, seeds, args.out, args.quick, args.verbose)
    print(f"{payload['ran']} run(s); wrote {store.path(NAME, args.out)} "
          f"(python -m experiments render: BENCHMARKS.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
