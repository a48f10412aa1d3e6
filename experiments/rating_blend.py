"""AFETLER's predicted rating blended with MF's and DeepFM's after the fit: the diagnostic behind
``afetler.rating_blend``.

    python -m experiments rating_blend [--datasets ml100k-random] [--seeds 1 2 3] [--json FILE]

For each data set and seed (the datasets suite's data and split,
:mod:`experiments.datasets`), AFETLER, MF and DeepFM are fitted with their
defaults on the same split. The blend's weights (an intercept and one weight
per model) are the least-squares fit of the validation ratings on the
models' validation predictions (:func:`fit_blend`); the test split is scored
once, with those weights, beside each model alone. Prints RMSE and MAE of
protocol R (predictions clipped to the rating range, as the evaluation
does); writes nothing to ``benchmarks/`` (``--json`` writes the figures).
Data without ratings is refused.

This measured the lead that became AFETLER's own rating blend
(``afetler_tf.models.rating_blend``, on by default): AFETLER here is fitted
with its defaults, that blend included, so the table now shows what a
second blend with MF or DeepFM would still add on top.
"""

from __future__ import annotations

import argparse
import time
from typing import Optional, Sequence

import numpy as np

BLENDS = (("afetler", "mf"), ("afetler", "deepfm"), ("afetler", "mf", "deepfm"))


def fit_blend(predictions: dict, ratings: np.ndarray, models: Sequence[str]) -> np.ndarray:
    """Least-squares weights [intercept, one per model] of ``ratings`` on the models'
    predictions (the fit AFETLER's own blend uses, ``models.rating_blend``)."""
    from afetler_tf.models.rating_blend import least_squares_blend
    return least_squares_blend(ratings, *(predictions[m] for m in models))


def blended(predictions: dict, weights: np.ndarray, models: Sequence[str]) -> np.ndarray:
    """weights[0] + sum_m weights[m] * prediction_m."""
    from afetler_tf.models.rating_blend import blend
    return blend(weights, *(predictions[m] for m in models))


def errors(prediction: np.ndarray, ratings: np.ndarray, rating_range=(1.0, 5.0)) -> dict:
    """RMSE and MAE of the clipped prediction."""
    residual = np.clip(prediction, *rating_range) - np.asarray(ratings, np.float64)
    return {"rmse": float(np.sqrt(np.mean(residual ** 2))), "mae": float(np.mean(np.abs(residual)))}


def run_one(dataset: str, seed: int, verbose: int = 0) -> dict:
    """Every model and blend on one data set and seed: {name: {"val": .., "test": .., "weights"}}."""
    from afetler_tf.models import build_model
    from afetler_tf.runs.training_run import prepare
    from experiments.datasets import DATASETS, model_config
    data = DATASETS[dataset].load(0, False)
    if not data.has_ratings:
        raise ValueError(f"{dataset} has no ratings: there is nothing to blend.")
    predictions = {"val": {}, "test": {}}
    for name in ("afetler", "mf", "deepfm"):
        config = model_config(name, dataset, seed)
        data, split = prepare(config, 0, data)
        model = build_model(config)
        model.fit(data, split, verbose=verbose)
        for part, frame in (("val", split.validation), ("test", split.test)):
            predictions[part][name] = model.score(frame.user_id.astype(str).tolist(),
                                                  frame.item_id.astype(str).tolist())
    ratings = {"val": split.validation.rating.to_numpy(np.float64), "test": split.test.rating.to_numpy(np.float64)}
    bounds = data.rating_range or (1.0, 5.0)
    result = {m: {p: errors(predictions[p][m], ratings[p], bounds) for p in ratings}
              for m in ("afetler", "mf", "deepfm")}
    for models in BLENDS:
        weights = fit_blend(predictions["val"], ratings["val"], models)
        result[" + ".join(models)] = {p: errors(blended(predictions[p], weights, models), ratings[p], bounds)
                                      for p in ratings} | {"weights": weights.round(4).tolist()}
    return result


def table(results: dict) -> str:
    """One row per data set and model or blend: test RMSE and MAE, mean over the seeds."""
    lines = ["| data set | model or blend (weights on validation) | seeds | test RMSE | test MAE |",
             "|---|---|---|---|---|"]
    for dataset, by_seed in results.items():
        names = next(iter(by_seed.values())).keys()
        for name in names:
            rows = [by_seed[s][name]["test"] for s in by_seed]
            lines.append(f"| {dataset} | {name} | {', '.join(by_seed)} | "
                         f"{np.mean([r['rmse'] for r in rows]):.4f} | {np.mean([r['mae'] for r in rows]):.4f} |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments rating_blend", description=__doc__.splitlines()[0])
    from experiments.datasets import DATASETS
    p.add_argument("--datasets", nargs="+", default=["ml100k-random"], choices=sorted(DATASETS),
                   help="rated data sets of the datasets suite (implicit is refused)")
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--verbose", type=int, default=0)
    args = p.parse_args(argv)
    results, start = {}, time.perf_counter()
    for dataset in args.datasets:
        results[dataset] = {}
        for seed in args.seeds:
            print(f"{dataset} / seed {seed} ...", flush=True)
            results[dataset][str(seed)] = run_one(dataset, seed, args.verbose)
    print(table(results))
    print(f"({time.perf_counter() - start:.0f} s)")
    if args.json:
        from afetler_tf import files
        files.write_json(args.json, results)  # atomic: a reader sees the old file or the whole new one
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
