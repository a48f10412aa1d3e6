"""Protocol F end to end: warm-up fit, frozen replay, marketing, feedback loop.

Python API behind ``python -m afetler_tf.feedback``::

    from afetler_tf import Config
    from afetler_tf.feedback import FeedbackConfig, run_feedback
    result = run_feedback(Config(model="two_tower"), FeedbackConfig(rounds=10), out_dir="runs/fb")
    result["summary"]["loop"]["cumulative_reward"]

Order of work: the model is trained on the warm-up part (its latest 10% held
out for early stopping); the frozen arm is replayed, and the exposure
trade-off and UserRec are measured with that warm-up model against the later
period; then the same model object is fine-tuned round by round in the
feedback-loop arm.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Optional

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
        from afetler_tf.feedback.report import write_outputs
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
