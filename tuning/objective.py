"""One trial: fit a Config on the training part, score it on the validation split.

The test split is never read here. A trial trains what its objective is
judged by, no more (the best configuration keeps every stage):

- never the NewItemGAN (``gan.enabled`` off for the trial): it trains after
  the towers, against them frozen, and embeds only items without training
  interactions, so it changes neither the towers nor the warm items' scores;
- for the ``ndcg`` objective, not the ranker's later stages either (the
  ranking stage on the frozen towers, the users' taste and the rating blend: ``TRIAL_SKIPS``),
  which change ratings only, and no protocol R (the joint stage trains the
  ranking head with the towers as always).

What that saves: docs/decisions.md, 2026-11-29 ("... trials train what they
are judged by").

A trial trains on ``split.train`` minus a 10% inner validation carve-out
(early stopping and the protocol R
calibration), and is scored on ``split.validation``, which plays the role of
the test set of :func:`afetler_tf.evaluation.evaluate` (protocol T excludes each
user's ``split.train`` items from the candidates, as it should).

Objectives (k = 10):
    ndcg:      validation NDCG@10 of protocol T, maximised.
    rmse:      validation RMSE of protocol R, minimised.
    combined:  NDCG@10 - w * RMSE, maximised (``w`` = ``rmse_weight``).
"""

from __future__ import annotations

import time
from typing import Optional

import keras_tuner as kt
import tensorflow as tf

from afetler_tf.config import Config
from afetler_tf.data import Dataset, Split, make_split
from afetler_tf.evaluation import evaluate
from afetler_tf.models import build_model

OBJECTIVES = {
    "ndcg": kt.Objective("val_ndcg@10", direction="max"),
    "rmse": kt.Objective("val_rmse", direction="min"),
    "combined": kt.Objective("val_combined", direction="max"),
}
INNER_VALIDATION = 0.1
# Stages a trial skips, by objective: the ranker's stages after the joint one
# leave protocol T as it is (module docstring).
TRIAL_SKIPS = {"ndcg": ("ranking", "taste", "rating_blend"), "rmse": (), "combined": ()}


def objective(name: str) -> kt.Objective:
    """The ``kt.Objective`` for ``name``; ValueError listing the valid names."""
    if name not in OBJECTIVES:
        raise ValueError(f"Unknown objective {name!r}; valid: {', '.join(OBJECTIVES)}.")
    return OBJECTIVES[name]


def check_objective(name: str, data: Dataset) -> None:
    """Raises before any training when ``data`` cannot give the objective."""
    objective(name)
    if name in ("rmse", "combined") and not data.has_ratings:
        raise ValueError(f"Objective {name!r} needs ratings, but {data.name} is implicit; use 'ndcg'.")


def tuning_split(data: Dataset, split: Split, fraction: float = INNER_VALIDATION) -> Split:
    """The split trials use: ``split.train`` re-split, ``split.validation`` as the scored set.

    Args:
        data: The data set (only its users, items and rating range are used).
        split: The full split; only ``train`` and ``validation`` are read.
        fraction: Share of ``split.train`` carved out for early stopping and
            calibration (the latest part for a temporal split, else random).

    Returns:
        A Split whose ``test`` is ``split.validation``. Its kind is "temporal"
        for a temporal split (histories then respect time), else "random".
    """
    temporal = split.kind == "temporal"
    train_only = Dataset(data.name, split.train, data.users, data.items, data.rating_range)
    inner = make_split(train_only, kind="temporal" if temporal else "none", seed=split.seed,
                       test_fraction=0.0, validation_fraction=fraction)
    return Split("temporal" if temporal else "random", split.seed, inner.train, inner.validation,
                 split.validation.reset_index(drop=True))


def run_config(config: Config, data: Dataset, trial_split: Split, rmse_weight: float = 1.0,
               relevant: str = "all", verbose: int = 0, objective_name: str = "combined") -> dict:
    """Trains ``config`` on ``trial_split`` and returns its validation metrics.

    Args:
        config: The configuration to train.
        data: The data set.
        trial_split: From :func:`tuning_split`.
        rmse_weight: w of the combined objective NDCG@10 - w * RMSE.
        relevant: Protocol T relevance ("all" validation items or "liked").
        verbose: Passed to the model's fit (0 silent).
        objective_name: The objective the trial is judged by (what it trains
            and scores: module docstring).

    Returns:
        ``val_ndcg@10``, ``val_recall@10``, ``val_precision@10``,
        ``val_rmse`` and ``val_combined`` (the last two with ratings, for the
        ``rmse`` and ``combined`` objectives),
        plus ``epochs`` (joint-stage epochs trained) and ``seconds``.
    """
    start = time.perf_counter()
    tf.keras.backend.clear_session()  # trials in one process would otherwise pile up graphs
    objective(objective_name)
    model = build_model(trial_config(config))
    history = model.fit(data, trial_split, verbose=verbose, skip_stages=TRIAL_SKIPS[objective_name])
    protocols = ("R", "T") if data.has_ratings and objective_name != "ndcg" else ("T",)
    results = evaluate(model, data, trial_split, protocols=protocols, relevant=relevant, k=10,
                       like_threshold=config.data.like_threshold)
    top_n = results["T"]
    metrics = {f"val_{name}": float(top_n[name]) for name in ("ndcg@10", "recall@10", "precision@10")}
    if "R" in results:
        metrics["val_rmse"] = float(results["R"]["rmse"])
        metrics["val_combined"] = combined(metrics["val_ndcg@10"], metrics["val_rmse"], rmse_weight)
    metrics["epochs"] = float(len(history.get("loss", [])))
    metrics["seconds"] = time.perf_counter() - start
    return metrics


def trial_config(config: Config) -> Config:
    """The configuration a trial trains: ``config`` without the NewItemGAN (module docstring)."""
    return config.replace(gan={"enabled": False})


def combined(ndcg: float, rmse: Optional[float], rmse_weight: float) -> float:
    """The combined objective NDCG@10 - w * RMSE."""
    return ndcg - rmse_weight * rmse
