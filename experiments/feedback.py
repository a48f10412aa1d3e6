"""``python -m experiments feedback``: protocol F end to end (docs/design.md §4 F, §5).

Warm-up fit, frozen replay, marketing, feedback loop; the replay of a feedback
loop against the same model frozen after warm-up::

    python -m experiments feedback --rounds 10 --model two_tower --epochs 8 --out runs/feedback

writes results.json, rounds.csv, tradeoff.csv, rounds.png and tradeoff.png
under --out (:mod:`experiments.feedback_report`; with --benchmark DIR also
DIR/feedback.json and DIR/feedback.md, the section BENCHMARKS.md renders).
From Python::

    from afetler_tf import Config
    from afetler_tf.feedback import FeedbackConfig
    from experiments.feedback import run_feedback
    result = run_feedback(Config(model="two_tower"), FeedbackConfig(rounds=10), out_dir="runs/fb")
    result["summary"]["loop"]["cumulative_reward"]

Order of work: the model is trained on the warm-up part (its latest 10% held
out for early stopping); the frozen arm is replayed, and the exposure
trade-off and UserRec are measured with that warm-up model against the later
period; then the same model object is fine-tuned round by round in the
feedback-loop arm.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from afetler_tf.config import Config
from afetler_tf.data import Dataset, load_dataset, make_split
from afetler_tf.feedback.config import FeedbackConfig
from afetler_tf.feedback.dbgd import project_simplex
from afetler_tf.feedback.exposure import beta_grid, check_exposure_feasible, tradeoff_curve
from afetler_tf.feedback.learner import FusionLearner
from afetler_tf.feedback.replay import Replay, make_replay, simulate
from afetler_tf.feedback.userrec import evaluate_userrec
from afetler_tf.models import build_model

ARMS = ("loop", "frozen")


def warmup_split(data: Dataset, warmup: pd.DataFrame, validation_fraction: float, seed: int):
    """Temporal split of the warm-up part: its latest share validates, no test."""
    part = Dataset(data.name, warmup, data.users, data.items, data.rating_range)
    return make_split(part, kind="temporal", seed=seed, test_fraction=0.0,
                      validation_fraction=validation_fraction)


def run_feedback(model_config: Config, config: FeedbackConfig, data: Optional[Dataset] = None,
                 out_dir: Optional[str] = None, verbose: int = 1) -> dict:
    """Runs protocol F for the feedback loop and the frozen model, plus marketing.

    Returns:
        dict with ``rounds`` (per arm, per round), ``summary`` (per arm),
        ``skipped_rounds``, ``tradeoff`` (one row per beta), ``userrec``,
        ``weights_trajectory``, ``warmup`` (sizes, fit seconds) and the configs.

    Raises:
        ValueError: An impossible exposure share (checked before any training).
    """
    start = time.perf_counter()
    data = data if data is not None else load_dataset(model_config.data.source)
    replay = make_replay(data.interactions, config.rounds, config.warmup_fraction, config.seed)
    catalogue = data.items["item_id"].astype(str).to_numpy(object)
    users = data.users["user_id"].astype(str).to_numpy(object)
    betas = list(config.betas) or beta_grid(len(users), len(catalogue), config.k, config.tradeoff_points)
    for beta in betas:  # before any work
        check_exposure_feasible(beta, len(users), len(catalogue), config.k)
    skipped = [r.index for r in replay.rounds if r.interactions.empty]
    if verbose:
        _describe(replay, skipped)
    split = warmup_split(data, replay.warmup, model_config.data.validation_fraction, config.seed)
    model = build_model(model_config)
    t0 = time.perf_counter()
    model.fit(data, split, verbose=2 if verbose else 0)
    fit_seconds = time.perf_counter() - t0
    logs = {"frozen": _replay(model, catalogue, replay, config, False, verbose)}
    later = pd.concat([r.interactions for r in replay.rounds], ignore_index=True)
    tradeoff = _tradeoff(model, users, catalogue, replay, later, config, betas, verbose)
    userrec = evaluate_userrec(model, users, replay.warmup, later, config.userrec_k)
    if verbose:
        print("userrec: " + ", ".join(f"{k} {v:.4f}" for k, v in userrec.items() if k != "items"), flush=True)
    logs["loop"] = _replay(model, catalogue, replay, config, True, verbose)
    result = _result(model_config, config, data, replay, fit_seconds, logs, skipped, tradeoff, userrec)
    result["wall_seconds"] = time.perf_counter() - start
    if out_dir:
        from experiments.feedback_report import write_outputs
        write_outputs(out_dir, result)
    return result


def _result(model_config, config, data, replay, fit_seconds, logs, skipped, tradeoff, userrec) -> dict:
    """The JSON-serialisable result of :func:`run_feedback` (wall time added there)."""
    trajectory = [dict(zip(config.sources, project_simplex(config.initial_weights).tolist()))]
    return {"model_config": model_config.to_dict(), "feedback_config": dataclasses.asdict(config),
            "data": data.name, "warmup": {"interactions": len(replay.warmup),
                                          "new_items": len(replay.new_items), "fit_seconds": fit_seconds},
            "rounds": {arm: logs[arm] for arm in ARMS}, "skipped_rounds": skipped,
            "summary": {arm: summarise(logs[arm]) for arm in ARMS},
            "weights_trajectory": trajectory + [r["weights"] for r in logs["loop"] if "weights" in r],
            "tradeoff": tradeoff, "userrec": userrec}


def _describe(replay: Replay, skipped: list) -> None:
    sizes = ", ".join(str(len(r.interactions)) for r in replay.rounds)
    print(f"protocol F: warm-up {len(replay.warmup)} interactions, {len(replay.rounds)} rounds "
          f"({sizes}), {len(replay.new_items)} new items", flush=True)
    if skipped:
        print(f"rounds without interactions (reported, skipped): {[i + 1 for i in skipped]}", flush=True)


def _replay(model, catalogue, replay: Replay, config: FeedbackConfig, learn: bool, verbose: int) -> list:
    learner = FusionLearner(model, catalogue, replay.warmup, config, learn=learn)
    return simulate(learner, replay, catalogue, config.k, config.like_threshold,
                    config.dislike_threshold, label="loop" if learn else "frozen", verbose=verbose)


def _tradeoff(model, users, catalogue, replay, later, config, betas, verbose) -> list:
    """Exposure trade-off of the warm-up model over every user, judged on the later period."""
    user_index, item_index = pd.Index(users), pd.Index(catalogue)
    scores = np.asarray(model.score_all(users, catalogue), np.float64)  # (users, items)
    exclude = np.zeros(scores.shape, bool)
    rows = user_index.get_indexer(replay.warmup["user_id"].astype(str).to_numpy(object))
    cols = item_index.get_indexer(replay.warmup["item_id"].astype(str).to_numpy(object))
    exclude[rows[(rows >= 0) & (cols >= 0)], cols[(rows >= 0) & (cols >= 0)]] = True
    later_rows = user_index.get_indexer(later["user_id"].astype(str).to_numpy(object))
    later_cols = item_index.get_indexer(later["item_id"].astype(str).to_numpy(object))
    relevant = [later_cols[later_rows == u] for u in range(len(users))]
    new_columns = np.isin(catalogue, list(replay.new_items))
    return tradeoff_curve(scores, config.k, betas, relevant, new_columns, exclude, verbose)


def summarise(log: list) -> dict:
    """Totals and means over the rounds that were played."""
    played = [r for r in log if not r.get("skipped")]
    slots = sum(r["users"] for r in played) or 1
    out = {"rounds_played": len(played), "cumulative_reward": float(sum(r["reward"] for r in played)),
           "likes": int(sum(r["likes"] for r in played)),
           "penalties": int(sum(r["penalties"] for r in played)),
           "hit_rate": float(np.mean([r["hit_rate"] for r in played])) if played else 0.0,
           "coverage": float(np.mean([r["coverage"] for r in played])) if played else 0.0,
           "new_item_exposure": float(sum(r["new_item_exposure"] * r["users"] for r in played) / slots)}
    updates = [r["update_seconds"] for r in played if "update_seconds" in r]
    if updates:
        out.update(update_seconds_total=float(sum(updates)), update_seconds_mean=float(np.mean(updates)))
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments feedback", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--config", help="model config JSON (as written by afetler_tf.fit)")
    p.add_argument("--feedback-config", help="FeedbackConfig JSON (keys of the dataclass)")
    p.add_argument("--model", choices=("afetler", "two_tower"), help="model (default: config's)")
    p.add_argument("--data", help="movielens-100k or a data folder (default: config's)")
    p.add_argument("--epochs", type=int, help="maximum warm-up epochs")
    p.add_argument("--k", type=int, help="list length")
    p.add_argument("--betas", type=float, nargs="+", help="exposure shares of the trade-off curve")
    p.add_argument("--no-dbgd", action="store_true", help="keep the source weights fixed")
    p.add_argument("--seed", type=int)
    p.add_argument("--benchmark", metavar="DIR", help="also write DIR/feedback.{json,md}")
    return p


def _configs(args):
    from afetler_tf.files import read_json
    model = Config.from_json(args.config) if args.config else Config()
    sections = {}
    if args.model:
        model = model.replace(model=args.model)
    if args.data:
        sections["data"] = {"source": args.data}
    if args.epochs:
        sections["train"] = {"epochs": args.epochs}
    model = model.replace(**sections)
    raw = read_json(args.feedback_config) if args.feedback_config else {}
    raw["rounds"] = args.rounds
    for key, value in (("k", args.k), ("seed", args.seed),
                       ("betas", tuple(args.betas) if args.betas else None)):
        if value is not None:
            raw[key] = value
    if args.no_dbgd:
        raw["dbgd"] = False
    return model, FeedbackConfig.from_dict(raw)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        model_config, config = _configs(args)
        if model_config.model not in ("afetler", "two_tower"):
            raise ValueError(f"The feedback loop fine-tunes towers: use afetler or two_tower, "
                             f"not {model_config.model!r}.")
        result = run_feedback(model_config, config, out_dir=args.out)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.benchmark:
        from experiments import store
        from experiments.feedback_report import benchmark_section
        store.write("feedback.json", result, args.benchmark)
        command = "python -m experiments feedback " + " ".join(argv if argv is not None else sys.argv[1:])
        store.write_text("feedback.md", benchmark_section(result, command), args.benchmark)
    for arm, summary in result["summary"].items():
        print(f"{arm}: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                     for k, v in summary.items()))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
