"""``python -m afetler_tf.fit``: train, evaluate and write a run directory.

Examples::

    python -m afetler_tf.fit                                  # AFETLER on MovieLens-100k
    python -m afetler_tf.fit --model mf --split temporal --out runs/mf
    python -m afetler_tf.fit --data path/to/shop_logs --split none --out runs/shop
    python -m afetler_tf.fit --config tuned/best_config.json --set train.epochs=5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from typing import Optional, Sequence

from afetler_tf.config import MODELS, SPLITS, Config, parse_setting
from afetler_tf.presets import USER_PRESETS
from afetler_tf.runs.folder import RunDirError, RunFolder, RunLockedError
from afetler_tf.training.distribute import STRATEGIES

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
    p.add_argument("--epochs", type=int,
                   help="maximum epochs of the chosen model (train.epochs; mf: mf.epochs; deepfm: "
                        "deepfm.epochs); refused for models fitted in one pass")
    p.add_argument("--out", help="run directory (default: runs/<model>-<split>-<seed>)")
    p.add_argument("--preset", choices=sorted(USER_PRESETS),
                   help="a named set of AFETLER's switches, applied before --set: 'fast' (a shorter "
                        "fit: the in-batch softmax, the target attention trained in the ranking "
                        "stage; docs/model.md, 'Faster fits')")
    p.add_argument("--relevant", choices=("all", "liked"), default="all",
                   help="protocol T relevance: every test item, or those rated >= 4")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override any config field, e.g. --set afetler.temperature=0.2; values are typed "
                        "by the field: true/false/1/0, numbers, null, [64,32] or 64,32, strings")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--strategy", choices=STRATEGIES, default="default",
                   help="tf.distribute strategy; multiworker and parameter_server read TF_CONFIG")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a finished run (or another config's run) in --out; without it "
                        "an unfinished run of the same config is resumed")
    p.add_argument("--stream", action="store_true",
                   help="--data is a folder of sharded logs (interactions/*.csv|parquet|tfrecord) "
                        "read with tf.data, never whole in memory (see afetler_tf.runs.streamed_run)")
    p.add_argument("--skip-bad-records", action="store_true",
                   help="with --stream: skip and count malformed records instead of stopping")
    return p.parse_args(argv)


# The config section whose ``epochs`` --epochs sets, per model; the other
# models (popularity, random, category_popularity, content_bias, ease) are
# fitted in one pass, without epochs.
EPOCHS_SECTION = {"afetler": "train", "two_tower": "train", "content_tower": "train",
                  "mf": "mf", "deepfm": "deepfm"}


def resolve_config(args: argparse.Namespace) -> Config:
    """Config file, then flags (--preset among them), then --set overrides (later wins).

    Raises:
        ValueError: a flag or value is invalid (checked here, before any data is read).
    """
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
        if args.epochs < 1:
            raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
        section = EPOCHS_SECTION.get(raw["model"])
        if section is None:
            raise ValueError(f"--epochs: model {raw['model']!r} is fitted in one pass, not by "
                             f"epochs; drop --epochs (models trained by epochs: "
                             f"{', '.join(EPOCHS_SECTION)}).")
        raw[section]["epochs"] = args.epochs
    if args.preset:
        if raw["model"] != "afetler":
            raise ValueError(f"--preset {args.preset} sets AFETLER's switches; model {raw['model']!r} "
                             f"has none of them: drop --preset, or use --model afetler.")
        raw["afetler"].update(USER_PRESETS[args.preset])
    for item in args.set:
        apply_override(raw, item)
    return Config.from_dict(raw, where="command line")


def apply_override(raw: dict, item: str) -> None:
    """Applies ``--set SECTION.FIELD=VALUE`` to ``raw`` (Config.to_dict), the
    value typed by the field (``config.parse_setting``: booleans true/false/1/0,
    numbers, null, lists of integers, strings)."""
    key, sep, value = item.partition("=")
    path = key.split(".")
    if not sep or len(path) != 2 or path[0] not in raw or not isinstance(raw[path[0]], dict):
        sections = sorted(k for k, v in raw.items() if isinstance(v, dict))
        raise ValueError(f"--set {item!r}: expected SECTION.FIELD=VALUE with SECTION in {sections}")
    if path[1] not in raw[path[0]]:
        raise ValueError(f"--set {item!r}: unknown field {path[1]!r}; valid: {sorted(raw[path[0]])}")
    try:
        raw[path[0]][path[1]] = parse_setting(path[0], path[1], value)
    except ValueError as e:
        raise ValueError(f"--set {item!r}: {e}") from None


def results_table(metrics: dict) -> str:
    """One line per protocol; a "none" split's validation scores are labelled so."""
    lines = []
    for protocol, names in PRIMARY.items():
        for key, label in ((protocol, protocol), (f"{protocol}_validation", f"{protocol} (validation)")):
            values = metrics.get(key)
            if values:
                cells = [f"{n} {values[n]:.4f}" for n in names if n in values]
                lines.append(f"  {label}: " + "  ".join(cells))
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        config = resolve_config(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from afetler_tf.training import distribute  # imports TensorFlow: after the argument checks

    try:
        tf_config = (distribute.read_tf_config(args.strategy)
                     if args.strategy in ("multiworker", "parameter_server") else None)
        if tf_config and args.strategy == "parameter_server" and \
                tf_config["task"]["type"] in ("worker", "ps"):
            distribute.serve(tf_config)  # blocks: the chief drives training
            return 0
        strategy = distribute.make_strategy(args.strategy, tf_config)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.out or f"runs/{config.model}-{config.data.split}-{config.data.seed}"
    chief = distribute.is_chief(tf_config)
    folder = RunFolder(out)
    config_dict = json.loads(config.to_json())
    with contextlib.ExitStack() as stack:
        if chief:
            try:  # one fit per run directory: held until this process ends
                stack.enter_context(folder.lock())
            except (RunLockedError, OSError) as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            try:
                status = folder.check(config_dict, args.overwrite)
            except RunDirError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            if status == "resume":
                print(f"resuming the unfinished run in {out}/ (same config); finished stages and "
                      f"epochs are kept", flush=True)
            folder.mark(config_dict, "running", strategy=args.strategy)
        code = _train(args, config, config_dict, out, chief, tf_config,
                      strategy if args.strategy != "default" else None)
        if code and chief and status != "resume":  # failed before training (e.g. bad data): no run
            folder.forget()
    return code


def _train(args, config: Config, config_dict: dict, out: str, chief: bool, tf_config, strategy) -> int:
    from afetler_tf import files
    from afetler_tf.runs.training_run import run
    from afetler_tf.training import distribute

    start = time.time()
    if args.stream:
        return _train_stream(args, config, config_dict, out, chief, strategy)
    try:
        result = run(config, out_dir=out if chief else None, verbose=0 if args.quiet else 1,
                     relevant=args.relevant, checkpoint_dir=RunFolder(out).checkpoints,
                     strategy=strategy)
    except (ValueError, FileNotFoundError) as e:  # bad data or paths: the message says what to do
        print(f"error: {e}", file=sys.stderr)
        return 2
    task = distribute.task_name(tf_config)
    if chief:
        RunFolder(out).mark(config_dict, "finished", strategy=args.strategy, task=task)
    else:  # the chief writes the run; a worker leaves its own metrics beside it
        with tempfile.TemporaryDirectory() as scratch:  # saving is collective: every worker saves
            result.model.save(scratch)
        files.write_json(RunFolder(out).worker_metrics(task), {"metrics": result.metrics})
    print(f"\n{config.model} on {config.data.source} ({config.data.split} split, seed "
          f"{config.data.seed}), {time.time() - start:.0f}s\n{results_table(result.metrics)}")
    if chief:
        print(f"run written to {out}/ (metrics.json, report.md, config.json, weights/)")
    return 0


def _train_stream(args, config: Config, config_dict: dict, out: str, chief: bool, strategy) -> int:
    from afetler_tf.runs.streamed_run import fit_stream

    if config.model != "afetler":
        print(f"error: --stream trains the AFETLER network (without MCAU; see afetler_tf.runs.streamed_run), "
              f"not {config.model!r}: drop --model or --stream.", file=sys.stderr)
        return 2
    try:
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            result = fit_stream(config, config.data.source, out_dir=out if chief else None,
                                checkpoint_dir=RunFolder(out).checkpoints,
                                skip_bad=args.skip_bad_records, verbose=0 if args.quiet else 1)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if chief:
        RunFolder(out).mark(config_dict, "finished", strategy=args.strategy)
    losses = "  ".join(f"{k} {v:.4f}" for k, v in result.metrics["stream"].items() if v)
    print(f"\nstreamed fit of {result.scan.train} training records ({result.scan.bad} bad "
          f"skipped), {result.fit_seconds:.0f}s\n  validation: {losses}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
