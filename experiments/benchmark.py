"""``python -m experiments main|seeds|ablation|cold``: every model on MovieLens-100k, one table.

Suites (each writes ``benchmarks/<suite>.json``; BENCHMARKS.md and the charts
are then rendered from every suite file present, so one suite can be re-run
without the others):

  main      every model, random split, seed 42 (protocols R and T)
  seeds     every model, random split, seeds 1-3 (mean ± std)
  ablation  AFETLER and AFETLER without each component, seeds 1-3
  cold      new items (cold-items split, protocol C), seeds 1-3: random,
            category popularity, content-only tower, AFETLER + NewItemGAN

Examples::

    python -m experiments main                          # suite main
    python -m experiments seeds ablation
    python -m experiments.benchmark --suite seeds ablation   # the same
    python -m experiments render                        # only rewrite BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Optional, Sequence

from afetler_tf.config import MODELS, Config
from afetler_tf.presets import ABLATIONS  # the ablation suite's rows, by label
from experiments import store
from experiments.benchmark_report import COLD_MODELS, SUITES
from experiments.machine import machine

BASELINE_ORDER = ("popularity", "mf", "deepfm", "two_tower", "ease", "afetler")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m experiments.benchmark", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", nargs="+", default=["main"], choices=SUITES)
    p.add_argument("--models", nargs="+", default=list(BASELINE_ORDER), choices=MODELS)
    p.add_argument("--data", default="movielens-100k")
    p.add_argument("--dir", default=store.DIR, help="where suite results and charts go")
    p.add_argument("--output", default="BENCHMARKS.md")
    p.add_argument("--render", action="store_true",
                   help="only re-render BENCHMARKS.md (= python -m experiments render)")
    p.add_argument("--resume", action="store_true",
                   help="keep the finished runs of an interrupted suite file and run only the rest")
    return p.parse_args(argv)


def run_one(config: Config, data, label: str) -> dict:
    from afetler_tf.runs.training_run import run
    print(f"[{time.strftime('%H:%M:%S')}] {label} ...", flush=True)
    result = run(config, verbose=0, data=data)
    cold = result.metrics.get("C")
    extra = f", C ndcg@10 {cold['ndcg@10']:.4f}, C rmse {cold.get('rmse', float('nan')):.4f}" if cold else ""
    print(f"    {label}: fit {result.fit_seconds:.0f}s, T ndcg@10 "
          f"{result.metrics['T']['ndcg@10']:.4f}, R rmse {result.metrics['R']['rmse']:.4f}{extra}",
          flush=True)
    return {"label": label, "model": config.model, "seed": config.data.seed,
            "config": config.to_dict(), "metrics": result.metrics, "fit_seconds": result.fit_seconds,
            "wall_seconds": result.wall_seconds, "epochs": _epochs(result.history),
            "epoch_seconds": _epoch_seconds(result.history), "cpus": os.cpu_count(),
            "cold_path": {k: result.history[f"gan/{k}"] for k in COLD_PATH
                          if f"gan/{k}" in result.history},
            "user_taste": {k: result.history[f"taste/{k}"] for k in USER_TASTE
                           if f"taste/{k}" in result.history},
            "rating_blend": {k: result.history[f"blend/{k}"] for k in RATING_BLEND
                             if f"blend/{k}" in result.history},
            "item_item": result.history.get("item_item", {})}


# What the user-taste step records (models.taste.fit_user_taste).
USER_TASTE = ("taste_scale", "taste_interactions", "val_rmse_without", "val_rmse")

# What the rating blend records (models.rating_blend.fit_rating_blend).
RATING_BLEND = ("blend_used", "blend_intercept", "blend_ranker", "blend_factor", "blend_interactions",
                "val_rmse_without", "val_rmse_crossfit", "val_rmse", "factor_epochs")

# What the NewItemGAN stage records about the ranker's cold path (new_items.fit_interaction_scale).
COLD_PATH = ("interaction_scale", "affinity_scale", "interaction_scale_interactions",
             "cold_rmse_unscaled", "cold_rmse_bias_only", "cold_rmse_no_affinity", "cold_rmse")


def _epoch_seconds(history: dict) -> Optional[float]:
    """Seconds per epoch of the first training stage (tower models: joint), or None."""
    seconds, epochs = history.get("fit_seconds"), len(history.get("loss", []))
    return float(seconds) / epochs if seconds is not None and epochs else None


def _epochs(history: dict) -> int:
    lengths = [len(v) for v in history.values() if isinstance(v, list)]
    return max(lengths) if lengths else 0


def model_config(model: str, seed: int, source: str, split: str = "random", **afetler) -> Config:
    config = Config(model=model)
    config = config.replace(data={"seed": seed, "source": source, "split": split},
                            train={"seed": seed})
    if split == "cold-items" and model == "afetler":  # AFETLER + NewItemGAN
        config = config.replace(gan={"enabled": True})
    return config.replace(afetler=afetler) if afetler else config


def suite_runs(suite: str, models: Sequence[str], source: str):
    """Yields (label, config) pairs of a suite."""
    if suite == "main":
        for m in models:
            yield m, model_config(m, 42, source)
    elif suite == "seeds":
        for m in models:
            for seed in (1, 2, 3):
                yield m, model_config(m, seed, source)
    elif suite == "ablation":
        for label, overrides in ABLATIONS.items():
            for seed in (1, 2, 3):
                yield label, model_config("afetler", seed, source, **overrides)
    elif suite == "cold":
        for label, model in COLD_MODELS.items():
            for seed in (1, 2, 3):
                yield label, model_config(model, seed, source, split="cold-items")


def run_suite(suite: str, models: Sequence[str], source: str, directory: str,
              resume: bool = False) -> None:
    """Runs a suite, rewriting its file after every run (a partial suite is
    marked as such, so an interrupted benchmark still reports what it did).

    With ``resume``, the runs already in the suite file (same label and seed)
    are kept and only the missing ones run; the wall time adds up.
    """
    from afetler_tf.data import load_dataset
    data = load_dataset(source)
    planned = list(suite_runs(suite, models, source))
    path = store.path(f"{suite}.json", directory)
    payload = _resumed(path, source) if resume else None
    split = "cold-items" if suite == "cold" else "random"
    payload = payload or {"suite": suite, "source": source, "split": split, "runs": [],
                          "wall_seconds": 0.0}
    payload.update(machine=machine(), planned=len(planned))
    done = {(r["label"], r["seed"]) for r in payload["runs"]}
    start, before = time.time(), payload["wall_seconds"]
    shared = _seeds_runs(directory, source) if suite == "ablation" else {}
    for label, config in planned:
        if (label, config.data.seed) in done:
            print(f"    {label} (seed {config.data.seed}): kept from {path}", flush=True)
            continue
        if label == "full" and config.data.seed in shared:
            # The same configuration and seed as the seeds suite's AFETLER run.
            print(f"    full (seed {config.data.seed}): AFETLER run of the seeds suite", flush=True)
            payload["runs"].append(dict(shared[config.data.seed], label="full", from_suite="seeds"))
            store.write(f"{suite}.json", payload, directory)
            continue
        payload["runs"].append(run_one(config, data, label))
        payload["wall_seconds"] = before + time.time() - start
        store.write(f"{suite}.json", payload, directory)


def _seeds_runs(directory: str, source: str) -> dict:
    """seed -> AFETLER run of ``directory/seeds.json`` made with the current
    default configuration (the ablation's "full" rows), if there is one."""
    payload = _resumed(store.path("seeds.json", directory), source) or {"runs": []}
    return {r["seed"]: r for r in payload["runs"]
            if r["model"] == "afetler" and r.get("config") == _config_of("afetler", r["seed"], source)}


def _config_of(model: str, seed: int, source: str) -> dict:
    """The suite configuration as a run records it (through JSON: lists, not tuples)."""
    return json.loads(model_config(model, seed, source).to_json())


def _resumed(path: str, source: str) -> Optional[dict]:
    """The suite file at ``path`` when it holds runs on ``source``, else None."""
    from afetler_tf.files import read_json
    if not os.path.exists(path):
        return None
    payload = read_json(path)
    if payload.get("source") != source:
        raise ValueError(f"{path} holds runs on {payload.get('source')!r}, not {source!r}: "
                         "drop --resume or use another --dir.")
    return payload


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if not args.render:
        for suite in args.suite:
            run_suite(suite, args.models, args.data, args.dir, resume=args.resume)
    from experiments import render
    print(f"wrote {render.write(args.dir, args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
