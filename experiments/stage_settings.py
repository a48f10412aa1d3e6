"""``python -m experiments stage_settings``: the ranking stage's learning rate, chosen on
validation data over the datasets suite's rated data sets.

    python -m experiments stage_settings                       # rated data sets, seeds 1 2
    python -m experiments stage_settings --datasets taste --seeds 1 --rates 0.001 0.004

For each (data set, seed), AFETLER with its defaults is fitted through its
joint and item-item stages once; then the ranking stage (towers frozen, the
ranker trained on, early-stopped on the validation rating loss: docs/design.md
§3.7) is trained from that same state once per candidate
``train.ranking_learning_rate`` (the same batches, a fresh optimizer each).
Recorded per candidate: the stage's best validation rating RMSE, the epochs it
ran, its best epoch and its wall seconds. The epochs are what a default's
speed is judged by (seconds depend on the machine's load); the test split is
never read.

Data sets and seeds are those of :mod:`experiments.datasets` (its loaders and
configs); a data set without ratings has no ranking stage and is skipped.
Results: ``OUT/stage_settings.json`` (rewritten after every (data set, seed);
one already there is not run again) and ``OUT/stage_settings.md``, the
table of means (``--render``: only the table).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Optional, Sequence

import numpy as np

from experiments import store

NAME, SECTION = "stage_settings.json", "stage_settings.md"
DATASETS = ("ml100k-random", "ml100k-temporal", "taste", "popularity", "longtail", "attributes")
RATES = (0.001, 0.002, 0.003, 0.005)


def parse_args(argv):
    from experiments import datasets
    p = argparse.ArgumentParser(prog="python -m experiments stage_settings", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(datasets.DATASETS))
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    p.add_argument("--rates", nargs="+", type=float, default=list(RATES),
                   help="candidate train.ranking_learning_rate values")
    p.add_argument("--out", default=store.DIR, help="where stage_settings.json and .md go")
    p.add_argument("--quick", action="store_true", help="the datasets suite's tiny data (tests)")
    p.add_argument("--render", action="store_true", help="only write the table of --out")
    return p.parse_args(argv)


def run_pair(dataset: str, seed: int, rates: Sequence[float], data, quick: bool) -> dict:
    """One (data set, seed): the joint and item-item stages once, then the ranking
    stage from their state at each rate. Returns the record."""
    from afetler_tf import training
    from afetler_tf.models import build_model
    from afetler_tf.runs.training_run import prepare
    from afetler_tf.training.stages import FitContext
    from experiments import datasets

    config = datasets.model_config("afetler", dataset, seed, quick)
    data, split = prepare(config, verbose=0, data=data)
    model = build_model(config)
    start = time.perf_counter()
    history = model.fit(data, split, verbose=0, skip_stages=("ranking", "gan", "taste"))
    record = {"joint_seconds": time.perf_counter() - start,
              "joint_val_ndcg@10": history.get("best_val_ndcg@10"), "candidates": {}}
    context = FitContext(model, data, split, model.examples(split.train, model.sampling_probabilities),
                         model.examples(split.validation, model.sampling_probabilities), verbose=0)
    stage = next(s for s in model.stages() if s.name == "ranking")
    if not stage.when(context):
        return dict(record, skipped="no ratings: no ranking stage")
    after_joint, defaults = model.network.get_weights(), model.config
    try:
        for rate in rates:
            model.network.set_weights(after_joint)
            model.config = defaults.replace(train={"ranking_learning_rate": rate})
            training.set_seed(seed)
            start = time.perf_counter()
            with training.collector_skips_what_exists():
                result = stage.fit(context)
            losses = result["val_rating_loss"]
            record["candidates"][str(rate)] = {
                "val_rmse": float(np.sqrt(result["best_val_rating_loss"])),
                "val_rmse_epoch_1": float(np.sqrt(losses[0])), "epochs": len(losses),
                "best_epoch": result["best_epoch"], "seconds": time.perf_counter() - start}
    finally:
        model.config = defaults
    return record


def run(datasets_: Sequence[str], seeds: Sequence[int], rates: Sequence[float], directory: str,
        quick: bool = False) -> dict:
    """Runs every (data set, seed) not yet in ``directory``'s file; returns the payload."""
    from experiments import datasets
    from experiments.machine import machine
    payload = store.read(NAME, directory) or {"suite": "stage_settings", "runs": {},
                                              "wall_seconds": 0.0}
    if payload.get("quick", quick) != quick:
        raise ValueError(f"{store.path(NAME, directory)} holds quick={payload['quick']} runs; "
                         f"use another --out.")
    payload.update(quick=quick, machine=machine(load_average_at_start=os.getloadavg()[0]))
    start, before = time.time(), payload["wall_seconds"]
    for name in datasets_:
        todo = [s for s in seeds if _missing(payload, name, s, rates)]
        if not todo:
            continue
        data = datasets.DATASETS[name].load(0, quick)
        for seed in todo:
            print(f"[{time.strftime('%H:%M:%S')}] {name} / seed {seed} ...", flush=True)
            record = run_pair(name, seed, rates, data, quick)
            payload["runs"].setdefault(name, {})[str(seed)] = record
            payload["wall_seconds"] = before + time.time() - start
            for rate, c in record["candidates"].items():
                print(f"    rate {rate}: validation RMSE {c['val_rmse']:.4f}, {c['epochs']} epochs "
                      f"(best {c['best_epoch']}), {c['seconds']:.1f}s", flush=True)
            store.write(NAME, payload, directory)
    write_section(payload, directory)
    return payload


def _missing(payload: dict, dataset: str, seed: int, rates: Sequence[float]) -> bool:
    record = payload["runs"].get(dataset, {}).get(str(seed))
    if record is None:
        return True
    return "skipped" not in record and any(str(r) not in record["candidates"] for r in rates)


def table(payload: dict) -> str:
    """Per data set and rate: mean best validation RMSE and mean epochs over the seeds;
    last row: epochs summed over the data sets."""
    runs = {d: s for d, s in payload["runs"].items()
            if not any("skipped" in r for r in s.values())}
    rates = sorted({float(r) for seeds in runs.values() for rec in seeds.values()
                    for r in rec["candidates"]})
    lines = ["| data set (seeds) | " + " | ".join(f"rate {r:g}" for r in rates) + " |",
             "|---|" + "---|" * len(rates)]
    total = {r: 0.0 for r in rates}
    for dataset, seeds in runs.items():
        cells = []
        for r in rates:
            found = [rec["candidates"][str(r)] for rec in seeds.values() if str(r) in rec["candidates"]]
            if not found:
                cells.append("")
                continue
            epochs = float(np.mean([c["epochs"] for c in found]))
            total[r] += epochs
            cells.append(f"{np.mean([c['val_rmse'] for c in found]):.4f} ({epochs:.1f} ep)")
        lines.append(f"| {dataset} ({', '.join(seeds)}) | " + " | ".join(cells) + " |")
    lines.append("| epochs, summed | " + " | ".join(f"{total[r]:.1f}" for r in rates) + " |")
    return "\n".join(lines)


def write_section(payload: dict, directory: str) -> str:
    from experiments.benchmark_report import machine_line
    text = ("## The ranking stage's learning rate, on validation data (`experiments.stage_settings`)\n\n"
            f"{machine_line(payload)}\n\n"
            "Each cell: the ranking stage trained from the same joint and item-item stages at that "
            "`train.ranking_learning_rate`, mean over the seeds of its best validation rating RMSE "
            "(early stopping's figure) and of the epochs it ran (patience included). The test split "
            "is never read. Regenerate: `python -m experiments stage_settings`.\n\n"
            f"{table(payload)}\n")
    return store.write_text(SECTION, text, directory)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.render:
        payload = store.read(NAME, args.out)
        if payload is None:
            print(f"error: no {store.path(NAME, args.out)} to render", file=sys.stderr)
            return 2
        print(f"wrote {write_section(payload, args.out)}")
        return 0
    run(args.datasets, args.seeds, args.rates, args.out, args.quick)
    print(f"wrote {store.path(NAME, args.out)} and {store.path(SECTION, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
