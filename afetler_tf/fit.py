"""``python -m afetler_tf.fit``: train, evaluate and write a run directory.

Examples::

    python -m afetler_tf.fit                                  # AFETLER on MovieLens-100k
    python -m afetler_tf.fit --model mf --split temporal --out runs/mf
    python -m afetler_tf.fit --data path/to/shop_logs --split none --out runs/shop
    python -m afetler_tf.fit --config tuned/best_config.json --set train.epochs=5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Optional, Sequence

from afetler_tf.config import MODELS, SPLITS, Config

PRIMARY = {"R": ["rmse", "mae", "accuracy@10", "precision@10", "roc_auc@10"],
           "T": ["precision@10", "recall@10", "ndcg@10", "map@10", "hit_rate@10", "coverage@10"],
           "C": ["precision@10", "recall@10", "ndcg@10", "rmse", "mae"]}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m afetler_tf.fit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="JSON config (e.g. written by a previous run or by tuning)")
    p.add_argument("--model", choices=MODELS)
    p.add_argument("--data", help="'movielens-100k' (default) or a folder of your own logs")
    p.add_argument("--split", choices=SPLITS)
    p.add_argument("--seed", type=int, help="seed of the split and of training")
    p.add_argument("--epochs", type=int)
    p.add_argument("--out", help="run directory (default: runs/<model>-<split>-<seed>)")
    p.add_argument("--relevant", choices=("all", "liked"), default="all",
                   help="protocol T relevance: every test item, or those rated >= 4")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override any config field, e.g. --set tower.temperature=0.05 (JSON values)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p.parse_args(argv)


def resolve_config(args: argparse.Namespace) -> Config:
    """Config file, then flags, then --set overrides (later wins)."""
    config = Config.from_json(args.config) if args.config else Config()
    raw = config.to_dict()
    if args.model:
        raw["model"] = args.model
    for key, value in (("source", args.data), ("split", args.split), ("seed", args.seed)):
        if value is not None:
            raw["data"][key] = value
    if args.seed is not None:
        raw["train"]["seed"] = args.seed
    if args.epochs is not None:
        raw["train"]["epochs"] = args.epochs
    for item in args.set:
        _apply_override(raw, item)
    return Config.from_dict(raw, where="command line")


def _apply_override(raw: dict, item: str) -> None:
    key, sep, value = item.partition("=")
    path = key.split(".")
    if not sep or len(path) != 2 or path[0] not in raw or not isinstance(raw[path[0]], dict):
        sections = sorted(k for k, v in raw.items() if isinstance(v, dict))
        raise ValueError(f"--set {item!r}: expected SECTION.FIELD=VALUE with SECTION in {sections}")
    if path[1] not in raw[path[0]]:
        raise ValueError(f"--set {item!r}: unknown field {path[1]!r}; valid: {sorted(raw[path[0]])}")
    try:
        raw[path[0]][path[1]] = json.loads(value)
    except json.JSONDecodeError:
        raw[path[0]][path[1]] = value  # a bare string


def results_table(metrics: dict) -> str:
    lines = []
    for protocol, names in PRIMARY.items():
        values = metrics.get(protocol)
        if not values:
            continue
        cells = [f"{n} {values[n]:.4f}" for n in names if n in values]
        lines.append(f"  {protocol}: " + "  ".join(cells))
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        config = resolve_config(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from afetler_tf.pipeline import run  # imports TensorFlow: after argument checks

    out = args.out or f"runs/{config.model}-{config.data.split}-{config.data.seed}"
    verbose = 0 if args.quiet else 1
    start = time.time()
    try:
        result = run(config, out_dir=out, verbose=verbose, relevant=args.relevant)
    except (ValueError, FileNotFoundError) as e:  # bad data or paths: the message says what to do
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"\n{config.model} on {config.data.source} ({config.data.split} split, seed "
          f"{config.data.seed}), {time.time() - start:.0f}s\n{results_table(result.metrics)}")
    print(f"run written to {out}/ (metrics.json, report.md, config.json, weights/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
