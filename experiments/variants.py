"""``python -m experiments variants``: named configurations compared on the validation split only.

For choosing defaults by hand (a KerasTuner search explores; this checks a
few named candidates over several seeds). Each run is an ordinary fit on the
training part, early-stopped on the validation split; what is recorded is
the validation figures early stopping saw (best ``val_ndcg@10``, protocol T
on the validation interactions, and the ranking stage's best validation
rating MSE). The test split is never scored.

Runs are appended to ``--out`` (JSON lines: label, model, seed, overrides,
figures, seconds); ``--render`` writes the table of means beside it
(``.md``).

Example (how the AFETLER retrieval defaults were chosen, docs/decisions.md)::

    python -m experiments variants --label "AFETLER, catalogue softmax, T=0.1" --seeds 1 2
    python -m experiments variants --label "AFETLER, in-batch softmax, T=0.05" --seeds 1 2 \\
        --set afetler.negatives=batch --set afetler.temperature=0.05
    python -m experiments variants --label "two-tower base, T=0.05" --model two_tower --seeds 1 2
    python -m experiments variants --render

``--dataset NAME`` fits on one of the datasets suite's data sets instead
(:data:`experiments.datasets.DATASETS`: its loader and split; default
MovieLens-100k random), so a default can be checked on more than one kind of
data, still on validation only::

    python -m experiments variants --label "history 30" --dataset taste --set data.history_length=30

Besides the validation figures each run records the validation rating RMSE
of the whole fitted ranker (after the users' taste, ``taste/val_rmse``) and
each early-stopped stage's epochs and seconds (what a default's speed is
judged by).

``--popularity-prior 0 0.1 0.2 0.3`` also scores, after each fit, the
validation NDCG@10 of the model's catalogue scores plus a popularity prior
``beta * T * log(1 + n_i)`` (n_i: the item's training interactions, T the
retrieval temperature, so beta is in logit units): a diagnostic of how much
popularity the retrieval scores miss, shown in a second table.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Optional, Sequence

import numpy as np

DEFAULT_OUT = "benchmarks/variants.jsonl"
HEADER = """\
## Configurations compared on the validation split (`experiments.variants`)

Each row: an ordinary fit (MovieLens-100k, random split, the seeds listed as
split and training seed), early-stopped on the validation split (10% of the
training part); the figures are what early stopping saw: the best validation
NDCG@10 (protocol T over the validation interactions) and the ranking
stage's best validation rating MSE; "fitted" is the validation NDCG@10 of
the whole fitted model (for AFETLER after its item-item channel, for a
model without early stopping such as EASE its only figure), "fitted RMSE"
the validation rating RMSE of the whole fitted ranker (after the users'
taste), "served val RMSE" that of the rating the model serves on the
validation pairs the rating blend applies to (user and item with training
ratings; with the blend kept, cross-fitted: weights fitted on one half of
those pairs, scored on the other), "epochs" the joint / ranking stages'
epochs (mean). Rows on another data set than MovieLens-100k random
(`--dataset`, the datasets suite's data sets) name it. The test split is never scored here.
Regenerate a row with `python -m experiments variants --label ... --seeds 1 2
--set ...` (each run's overrides are in `benchmarks/variants.jsonl`), then
`--render`. The runs shared 2 CPUs two to four at a time.
"""


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m experiments variants", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--label", help="name of the configuration in the table")
    p.add_argument("--model", default="afetler")
    p.add_argument("--dataset", default=None, metavar="NAME",
                   help="a datasets suite data set (experiments.datasets.DATASETS; default "
                        "MovieLens-100k random)")
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2],
                   help="split and training seeds (one run each)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="config override, as in python -m afetler_tf.fit")
    p.add_argument("--out", default=DEFAULT_OUT, help="JSON lines file the runs are appended to")
    p.add_argument("--render", action="store_true", help="only write the table of --out")
    p.add_argument("--popularity-prior", nargs="+", type=float, default=[], metavar="BETA",
                   help="also score the validation NDCG@10 with a post-hoc popularity prior of "
                        "each weight (diagnostic; module docstring)")
    args = p.parse_args(argv)
    if not args.render and not args.label:
        p.error("--label is required (unless --render)")
    if args.dataset is not None:
        from experiments.datasets import DATASETS
        if args.dataset not in DATASETS:
            p.error(f"--dataset: unknown data set {args.dataset!r}; the suite's are {', '.join(DATASETS)}")
    return args


def config_for(model: str, seed: int, overrides: Sequence[str], dataset: Optional[str] = None):
    """The default Config of ``model`` with the split and training seed
    ``seed`` and the ``--set`` overrides applied; with ``dataset`` (a
    datasets suite name) that data set's source and split."""
    from afetler_tf.config import Config
    from afetler_tf.fit import apply_override
    raw = Config(model=model).to_dict()
    raw["data"]["seed"], raw["train"]["seed"] = seed, seed
    if dataset is not None:
        from experiments.datasets import DATASETS
        raw["data"]["source"], raw["data"]["split"] = DATASETS[dataset].name, DATASETS[dataset].split
    for item in overrides:
        apply_override(raw, item)
    return Config.from_dict(raw, where="--set")


class PopularityPrior:
    """A trained recommender's catalogue scores plus ``beta * temperature *
    log(1 + n_i)``, n_i the item's interactions in ``train`` (diagnostic)."""

    def __init__(self, model, train, beta: float, temperature: float):
        self.name = f"{model.name}+popularity prior"
        self._model, self._weight = model, float(beta) * float(temperature)
        self._counts = train["item_id"].astype(str).value_counts()

    def score_all(self, user_ids, item_ids) -> np.ndarray:
        n = self._counts.reindex(np.asarray(item_ids).astype(str)).fillna(0.0).to_numpy(np.float64)
        return np.asarray(self._model.score_all(user_ids, item_ids)) + self._weight * np.log1p(n)[None, :]


def prior_ndcg(model, data, split, betas: Sequence[float], temperature: float, k: int = 10) -> dict:
    """{beta: NDCG@k of protocol T on the validation interactions} with the
    popularity prior of each beta (0 = the model's own scores); test unused."""
    from afetler_tf import training
    from afetler_tf.evaluation import evaluate
    validation = training.validation_split(split)
    return {str(beta): evaluate(PopularityPrior(model, split.train, beta, temperature), data, validation,
                                protocols=("T",), k=k)["T"][f"ndcg@{k}"] for beta in betas}


def run_variant(label: str, model: str, seed: int, overrides: Sequence[str],
                priors: Sequence[float] = (), dataset: Optional[str] = None) -> dict:
    """Fits one configuration; returns its validation figures (no test scoring)."""
    from afetler_tf.models import build_model
    from afetler_tf.runs.training_run import prepare
    from experiments.datasets import stage_epochs
    config = config_for(model, seed, overrides, dataset)
    data = None
    if dataset is not None:
        from experiments.datasets import DATASETS
        data = DATASETS[dataset].load(0, False)  # the suite's data seed 0, full size
    data, split = prepare(config, verbose=0, data=data)
    start = time.time()
    recommender = build_model(config)
    history = recommender.fit(data, split, verbose=0)
    seconds = round(time.time() - start, 1)
    prior = prior_ndcg(recommender, data, split, priors, config.retrieval_temperature) if priors else {}
    from afetler_tf import training
    fitted = training.validation_ndcg(recommender, data, split)
    return {"label": label, "model": model, "seed": seed, "overrides": list(overrides),
            **({"dataset": dataset} if dataset is not None else {}),
            "fitted_val_rmse": history.get("taste/val_rmse"),
            "served_val_rmse": served_rmse(history),
            "stages": stage_epochs(history),
            "stage_seconds": history.get("stage_seconds", {}),
            "retrieval_temperature": config.retrieval_temperature,
            "negatives": config.afetler.negatives if model == "afetler" else "batch",
            "best_val_ndcg@10": history.get("best_val_ndcg@10"),
            "val_ndcg@10": history.get("val_ndcg@10", []),
            "best_val_rating_mse": rating_mse(history, config.tower.rating_weight),
            "fitted_val_ndcg@10": fitted,
            "item_item": history.get("item_item"),  # its shares and their validation figures
            "seconds": seconds, **({"prior_val_ndcg@10": prior} if prior else {})}


def served_rmse(history: dict) -> Optional[float]:
    """The validation RMSE of the rating the model serves, over the pairs the
    rating blend applies to (user and item with training ratings, so a fit
    that keeps the blend and one that does not are scored on the same
    pairs): with the blend kept its cross-fitted figure (weights fitted on
    one half of those pairs, scored on the other), otherwise the ranker's
    own on them. Without weights fitted (no blend stage, or too few such
    pairs) the ranker's over every validation rating (``taste/val_rmse``);
    None where the fit recorded none of these."""
    if history.get("blend/blend_used"):
        return history.get("blend/val_rmse_crossfit")
    if "blend/val_rmse_without" in history:
        return history["blend/val_rmse_without"]
    return history.get("taste/val_rmse")


def rating_mse(history: dict, rating_weight: float) -> Optional[float]:
    """The ranking stage's best validation rating MSE: its loss is the MSE
    times ``tower.rating_weight`` (None without a ranking stage)."""
    loss = history.get("ranking/best_val_rating_loss")
    return None if loss is None or not rating_weight else float(loss) / rating_weight


def read_runs(path: str) -> list:
    from experiments import store
    return store.read_lines(path)


def markdown(runs: Sequence[dict]) -> str:
    """Mean (and per-seed values) of each configuration's validation figures,
    in first-seen order: MovieLens-100k random first, then one table for the
    runs on the datasets suite's other data sets (``--dataset``), by data set."""
    default = [r for r in runs if r.get("dataset") in (None, "ml100k-random")]
    suite = [r for r in runs if r.get("dataset") not in (None, "ml100k-random")]
    columns = ("| seeds | val NDCG@10 (mean) | per seed | val rating MSE (mean) "
               "| fitted val NDCG@10 (mean) | fitted val RMSE (mean) | served val RMSE (mean) "
               "| epochs joint / ranking (mean) |")
    lines = [HEADER, "| configuration " + columns, "|---" * 9 + "|"]
    lines += [_row([label], rows) for label, rows in _groups(default, lambda r: r["label"])]
    if suite:
        lines += [SUITE_HEADER, "| data set | configuration " + columns, "|---" * 10 + "|"]
        order = {name: i for i, name in enumerate(_suite_names())}
        groups = _groups(suite, lambda r: (r["dataset"], r["label"]))
        groups.sort(key=lambda g: order.get(g[0][0], len(order)))  # stable: labels keep their order
        lines += [_row(list(key), rows) for key, rows in groups]
    return "\n".join(lines + prior_table(runs)) + "\n"


SUITE_HEADER = """
On the datasets suite's other data sets (`--dataset NAME`; the suite's
loaders, data seed 0, and splits; `python -m experiments datasets` describes
each), the same figures:
"""


def _suite_names() -> list:
    from experiments.datasets import DATASETS
    return list(DATASETS)


def _groups(runs: Sequence[dict], key) -> list:
    """[(key, runs sorted by seed)] in first-seen order of the keys."""
    keys = list(dict.fromkeys(key(r) for r in runs))
    return [(k, sorted((r for r in runs if key(r) == k), key=lambda r: r["seed"])) for k in keys]


def _row(names: list, rows: Sequence[dict]) -> str:
    ndcg = [r["best_val_ndcg@10"] for r in rows]
    seeds = ", ".join(str(r["seed"]) for r in rows)
    cells = [_mean(ndcg), " / ".join("–" if v is None else f"{v:.4f}" for v in ndcg),
             _mean([r["best_val_rating_mse"] for r in rows]),
             _mean([r.get("fitted_val_ndcg@10") for r in rows]),
             _mean([r.get("fitted_val_rmse") for r in rows]),
             _mean([r.get("served_val_rmse") for r in rows]), _epochs(rows)]
    return "| " + " | ".join(names) + f" | {seeds} | " + " | ".join(cells) + " |"


def _epochs(rows: Sequence[dict]) -> str:
    """Mean epochs of the joint and ranking stages ("–" where a run did not record them)."""
    parts = []
    for stage in ("joint", "ranking"):
        values = [r.get("stages", {}).get(stage, {}).get("epochs") for r in rows]
        parts.append("–" if not values or None in values else f"{np.mean(values):.1f}")
    return " / ".join(parts)


def _mean(values: Sequence[Optional[float]]) -> str:
    """Mean of the values, or "–" unless every run recorded one."""
    return "–" if not values or None in values else f"{np.mean(values):.4f}"


PRIOR_HEADER = """
Diagnostic, `--popularity-prior`: validation NDCG@10 of the trained model's
catalogue scores plus beta * T * log(1 + n_i) (n_i: the item's training
interactions; beta = 0: the model's own scores, at the early-stopped
weights). Not a model setting: it measures how much popularity the
retrieval scores miss.
"""


def prior_table(runs: Sequence[dict]) -> list:
    """Lines of the popularity-prior table (mean over each label's seeds); [] without such runs."""
    runs = [r for r in runs if r.get("prior_val_ndcg@10")]
    if not runs:
        return []
    betas = sorted({b for r in runs for b in r["prior_val_ndcg@10"]}, key=float)
    lines = [PRIOR_HEADER, "| configuration | seeds | " + " | ".join(f"beta {b}" for b in betas) + " |",
             "|---|---|" + "---|" * len(betas)]
    for label in dict.fromkeys(r["label"] for r in runs):
        rows = sorted((r for r in runs if r["label"] == label), key=lambda r: r["seed"])
        cells = []
        for b in betas:
            values = [r["prior_val_ndcg@10"][b] for r in rows if b in r["prior_val_ndcg@10"]]
            cells.append(f"{np.mean(values):.4f}" if len(values) == len(rows) else "–")
        lines.append(f"| {label} | {', '.join(str(r['seed']) for r in rows)} | " + " | ".join(cells) + " |")
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if not args.render:
        for seed in args.seeds:
            result = run_variant(args.label, args.model, seed, args.set, args.popularity_prior,
                                 args.dataset)
            best = result["best_val_ndcg@10"]
            print(f"{args.label}{f' [{args.dataset}]' if args.dataset else ''} (seed {seed}): best val NDCG@10 "
                  f"{'–' if best is None else f'{best:.4f}'}, fitted model "
                  f"{result['fitted_val_ndcg@10']:.4f}, {result['seconds']:.0f} s", flush=True)
            from experiments import store
            store.append_line(args.out, result)  # one line per finished run: a kill loses at most one
    table = os.path.splitext(args.out)[0] + ".md"
    from afetler_tf.files import atomic_write_text
    atomic_write_text(table, markdown(read_runs(args.out)))
    print(f"wrote {table}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
