"""``python -m experiments datasets``: every model on MovieLens-100k and on planted synthetic logs.

    python -m experiments datasets                                  # the whole suite
    python -m experiments datasets --datasets taste popularity --models ease ials afetler
    python -m experiments datasets --seeds 1 --quick --out /tmp/bench   # tiny, for tests
    python -m experiments datasets --ablation --seeds 1 2 --datasets taste popularity

Datasets (:data:`DATASETS`; the synthetic ones are :mod:`experiments.synthetic_logs`):

  ml100k-random    MovieLens-100k, random 80/20 split of interactions
  ml100k-temporal  MovieLens-100k, global time cut (``make_split(kind="temporal")``):
                   the latest 20% of interactions by timestamp are the test set,
                   the latest 10% of the rest validate
  taste            picks and ratings follow a latent taste
  popularity       picks follow popularity and promotions, ratings follow taste
  implicit         taste-driven picks, no ratings
  longtail         20,000-item catalogue, Zipf popularity
  attributes       user age group / region and item category / price drive the preference

Models: popularity, mf, deepfm, ease, two_tower, afetler (``afetler_tf`` defaults,
through :func:`afetler_tf.runs.training_run.run`, as :mod:`experiments.benchmark` runs
them) and iALS (:mod:`experiments.ials`, its hyperparameters chosen on the
validation carve-out; needs ``pip install implicit``). Rating models (mf,
deepfm) are skipped on implicit data, with the reason recorded.

Seeds: a seed is the split's and the model's (``data.seed``, ``train.seed``);
the synthetic logs are one fixed world each (``--data-seed``, default 0), so
the spread over seeds is that of the split and the training, as for
MovieLens. Results: ``OUT/datasets.json``, keyed dataset -> model -> seed,
rewritten (atomically) after every run; a (dataset, model, seed) already there
is not run again (a failed run is retried). ``OUT/datasets.md`` is the
rendered section (:mod:`experiments.datasets_report`); ``python -m experiments
render`` puts it into BENCHMARKS.md.

``--ablation [LABEL ...]``: also AFETLER without each component
(:data:`afetler_tf.presets.ABLATIONS`, by label; default: every one but "full"
and "no ranking head", whose loss of the rating output is not in doubt), as
models named ``afetler[LABEL]`` beside the full model's ``afetler`` rows; the
report's ablation table gives each variant's change against the full model on
every data set (issue 19, item 3: a component that helps nowhere is off by
default).

``--quick``: synthetic logs of 300 users and 5,000 interactions (MovieLens:
its first 300 users), 2 epochs (GAN: 1), iALS on a 2-point grid, seed 1 by
default; for tests, never for figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import traceback
from typing import Callable, Optional, Sequence

from experiments import store

NAME = "datasets.json"
SECTION = "datasets.md"
MODELS = ("popularity", "mf", "deepfm", "ease", "ials", "two_tower", "afetler")
RATING_MODELS = ("mf", "deepfm")  # need a rating on every interaction
SEEDS = (1, 2, 3)
SUITE_ABLATIONS_SKIPPED = ("full", "no ranking head")  # --ablation's default leaves these out
QUICK_USERS = 300  # MovieLens under --quick: the interactions of its first 300 users
QUICK_OVERRIDES = {"train": {"epochs": 2}, "mf": {"epochs": 2}, "deepfm": {"epochs": 2},
                   "gan": {"epochs": 1}}


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    name: str
    split: str  # make_split kind
    mechanism: str
    load: Callable  # (data_seed, quick) -> Dataset


def _movielens(data_seed: int, quick: bool):
    from afetler_tf.data import load_dataset
    data = load_dataset("movielens-100k")
    return _first_users(data, QUICK_USERS) if quick else data


def _first_users(data, n: int):
    """``data`` restricted to the interactions of its first ``n`` user ids (numeric order)."""
    keep = sorted(data.interactions["user_id"].astype(str).unique(), key=lambda u: (len(u), u))[:n]
    inter = data.interactions[data.interactions["user_id"].isin(keep)].reset_index(drop=True)
    users = data.users[data.users["user_id"].isin(keep)].reset_index(drop=True)
    return dataclasses.replace(data, name=f"{data.name} (first {n} users)", interactions=inter,
                               users=users, report=list(data.report))


def _synthetic(name: str):
    def load(data_seed: int, quick: bool):
        from experiments import synthetic_logs
        return synthetic_logs.GENERATORS[name](data_seed, synthetic_logs.size_of(name, quick))
    return load


def _specs() -> dict:
    from experiments.synthetic_logs import MECHANISMS
    specs = [DatasetSpec("ml100k-random", "random",
                         "MovieLens-100k (943 users, 1,682 items, 100,000 ratings), 20% of the "
                         "interactions at random are the test set", _movielens),
             DatasetSpec("ml100k-temporal", "temporal",
                         "MovieLens-100k, global time cut: the latest 20% of the interactions by "
                         "timestamp are the test set and the latest 10% of the rest validate "
                         "(most test users have little or no earlier history)", _movielens)]
    specs += [DatasetSpec(name, "random", mechanism, _synthetic(name))
              for name, mechanism in MECHANISMS.items()]
    return {s.name: s for s in specs}


DATASETS = _specs()


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m experiments datasets", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=None, choices=list(DATASETS),
                   help="default: all (with --quick: the synthetic ones)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--ablation", nargs="*", default=None, metavar="LABEL",
                   help="also AFETLER without each component (labels of "
                        "afetler_tf.presets.ABLATIONS; none given: all but "
                        f"{' and '.join(map(repr, SUITE_ABLATIONS_SKIPPED))})")
    p.add_argument("--seeds", nargs="+", type=int, default=None,
                   help=f"default: {' '.join(map(str, SEEDS))} (with --quick: 1)")
    p.add_argument("--out", default=store.DIR, help="where datasets.json and datasets.md go")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic worlds")
    p.add_argument("--quick", action="store_true", help="tiny data and epochs (tests)")
    p.add_argument("--verbose", type=int, default=0, help="the models' verbosity")
    return p.parse_args(argv)


def ablation_model(label: str) -> str:
    """The suite's model name of AFETLER without one component (``afetler[LABEL]``)."""
    from afetler_tf.presets import ABLATIONS
    if label not in ABLATIONS:
        raise ValueError(f"unknown ablation {label!r}; known: {', '.join(ABLATIONS)}")
    return f"afetler[{label}]"


def ablation_label(model: str) -> Optional[str]:
    """The ablation label of a suite model name (None: not an ablation)."""
    if model.startswith("afetler[") and model.endswith("]"):
        return model[len("afetler["):-1]
    return None


def model_config(model: str, dataset: str, seed: int, quick: bool = False):
    """The ``afetler_tf`` Config of a run (iALS: only its seeds are read; its model field
    says popularity, as Config cannot name a model outside the registry; ``afetler[LABEL]``:
    AFETLER with the ablation's switches)."""
    from afetler_tf.config import Config
    from afetler_tf.presets import ABLATIONS
    spec = DATASETS[dataset]
    label = ablation_label(model)
    config = Config(model="afetler" if label else "popularity" if model == "ials" else model)
    if label:
        config = config.replace(afetler=ABLATIONS[label])
    config = config.replace(data={"seed": seed, "source": spec.name, "split": spec.split},
                            train={"seed": seed})
    return config.replace(**QUICK_OVERRIDES) if quick else config


def skip_reason(model: str, data) -> Optional[str]:
    """Why ``model`` cannot run on ``data`` (None: it can)."""
    if model in RATING_MODELS and not data.has_ratings:
        return f"{model} trains on ratings; this data set has none (implicit-only)"
    if model == "ials":
        from experiments import ials
        if not ials.available():
            return "the implicit package is not installed (pip install implicit)"
    return None


def run_one(model: str, dataset: str, seed: int, data, quick: bool, verbose: int = 0) -> dict:
    """Fits and evaluates one (dataset, model, seed); returns its record."""
    config = model_config(model, dataset, seed, quick)
    if model == "ials":
        return _run_ials(config, data, quick, verbose)
    from afetler_tf.runs.training_run import run
    from experiments.benchmark import _epochs
    result = run(config, verbose=verbose, data=data)
    return {"model": model, "config": config.to_dict(), "metrics": result.metrics,
            "fit_seconds": result.fit_seconds, "wall_seconds": result.wall_seconds,
            "epochs": _epochs(result.history), "stages": stage_epochs(result.history),
            "split": split_stats(result.split)}


STAGE_LOSSES = (("joint", "", "loss"), ("ranking", "ranking/", "ranking/loss"),
                ("gan", "gan/", "gan/d_loss"))


def stage_epochs(history: dict) -> dict:
    """Per early-stopped training stage of a fit's history: epochs run, the best epoch and,
    where the stage stopped on a validation figure, its per-epoch curve, ``monitor`` and
    ``curve`` (evidence for the stages' patience: a smaller patience stops at the same
    epoch when no run of that many epochs without improvement precedes the best; a
    model without stages: {})."""
    out = {}
    for stage, prefix, key in STAGE_LOSSES:
        if not isinstance(history.get(key), list):
            continue
        out[stage] = {"epochs": len(history[key]), "best_epoch": history.get(prefix + "best_epoch")}
        best = [k for k in history if k.startswith(prefix + "best_val_")]
        monitor = best[0][len(prefix + "best_"):] if best else None
        if monitor and isinstance(history.get(prefix + monitor), list):
            out[stage].update(monitor=monitor, curve=[float(v) for v in history[prefix + monitor]])
    return out


def _run_ials(config, data, quick: bool, verbose: int) -> dict:
    from afetler_tf.evaluation import evaluate
    from afetler_tf.runs.training_run import prepare
    from experiments import ials
    start = time.time()
    data, split = prepare(config, verbose=0, data=data)
    model = ials.IALS(config, grid=ials.QUICK_GRID if quick else ials.GRID)
    t0 = time.time()
    history = model.fit(data, split, verbose=verbose)
    fit_seconds = time.time() - t0
    metrics = evaluate(model, data, split, protocols=("R", "T"),
                       like_threshold=config.data.like_threshold)
    return {"model": "ials", "config": {"data": dataclasses.asdict(config.data),
                                        "seed": config.train.seed, "grid": model.grid},
            "metrics": metrics, "fit_seconds": fit_seconds, "wall_seconds": time.time() - start,
            "params": history["params"], "final_fit_seconds": history["final_fit_seconds"],
            "val_ndcg@10": history["val_ndcg@10"], "trials": len(history["trials"]),
            "split": split_stats(split)}


def split_stats(split) -> dict:
    """Sizes of a split and how many test users / items the model never saw in training."""
    seen_users = set(split.train["user_id"]) | set(split.validation["user_id"])
    seen_items = set(split.train["item_id"]) | set(split.validation["item_id"])
    test = split.test
    return {"train": len(split.train), "validation": len(split.validation), "test": len(test),
            "test_users": int(test["user_id"].nunique()),
            "test_users_unseen": int(len(set(test["user_id"]) - seen_users)),
            "test_rows_unseen_user": int((~test["user_id"].isin(seen_users)).sum()),
            "test_rows_unseen_item": int((~test["item_id"].isin(seen_items)).sum())}


def data_stats(spec: DatasetSpec, data) -> dict:
    inter = data.interactions
    return {"mechanism": spec.mechanism, "split": spec.split, "source": data.name,
            "interactions": len(inter), "users": int(inter["user_id"].nunique()),
            "items": int(inter["item_id"].nunique()), "catalogue_items": len(data.items),
            "has_ratings": data.has_ratings,
            "mean_rating": float(inter["rating"].mean()) if data.has_ratings else None}


def load(directory: str, quick: bool, data_seed: int) -> dict:
    """The results file (a fresh one when there is none); refuses another set-up's file."""
    payload = store.read(NAME, directory)
    if payload is None:
        return {"suite": "datasets", "quick": quick, "data_seed": data_seed, "datasets": {},
                "runs": {}, "wall_seconds": 0.0}
    if payload.get("quick") != quick or payload.get("data_seed") != data_seed:
        raise ValueError(f"{store.path(NAME, directory)} holds runs with quick="
                         f"{payload.get('quick')}, data seed {payload.get('data_seed')}; this "
                         f"call has quick={quick}, data seed {data_seed}: use another --out.")
    return payload


def done(payload: dict, dataset: str, model: str, seed: int) -> bool:
    """Whether the run is recorded (finished or skipped; a failed run is not done)."""
    record = payload["runs"].get(dataset, {}).get(model, {}).get(str(seed))
    return record is not None and "error" not in record


def run_suite(datasets: Sequence[str], models: Sequence[str], seeds: Sequence[int], directory: str,
              quick: bool = False, data_seed: int = 0, verbose: int = 0) -> dict:
    """Runs every missing (dataset, model, seed), writing the file after each; returns the
    payload, with ``ran``: how many runs this call made (fitted or failed)."""
    from experiments import datasets_report
    from experiments.machine import machine
    payload = load(directory, quick, data_seed)
    planned = {(d, m, str(s)) for d in datasets for m in models for s in seeds}
    if any(not done(payload, d, m, int(s)) for d, m, s in planned):  # else the file stays as is
        planned |= {(d, m, s) for d, runs in payload["runs"].items() for m in runs for s in runs[m]}
        payload.update(machine=machine(load_average_at_start=os.getloadavg()[0]),
                       planned=len(planned))
    start, before, ran = time.time(), payload["wall_seconds"], 0
    for name in datasets:
        todo = [(m, s) for m in models for s in seeds if not done(payload, name, m, s)]
        if not todo:
            print(f"{name}: every run already in {store.path(NAME, directory)}", flush=True)
            continue
        spec = DATASETS[name]
        data = spec.load(data_seed, quick)
        payload["datasets"][name] = data_stats(spec, data)
        for model, seed in todo:
            label = f"{name} / {model} / seed {seed}"
            reason = skip_reason(model, data)
            if reason:
                record = {"model": model, "skipped": reason}
                print(f"[{time.strftime('%H:%M:%S')}] {label}: skipped ({reason})", flush=True)
            else:
                print(f"[{time.strftime('%H:%M:%S')}] {label} ...", flush=True)
                try:
                    record = run_one(model, name, seed, data, quick, verbose)
                except Exception as e:  # recorded, retried by the next call
                    traceback.print_exc()
                    record = {"model": model, "error": f"{type(e).__name__}: {e}"[:500]}
                ran += 1
                print(f"    {_summary(record)}", flush=True)
            payload["runs"].setdefault(name, {}).setdefault(model, {})[str(seed)] = record
            payload["wall_seconds"] = before + time.time() - start
            store.write(NAME, payload, directory)
            datasets_report.write(payload, directory)
    datasets_report.write(payload, directory)
    payload["ran"] = ran
    return payload


def _summary(record: dict) -> str:
    if "error" in record:
        return f"failed: {record['error']}"
    m = record["metrics"]
    rmse = m.get("R", {}).get("rmse")
    return (f"fit {record['fit_seconds']:.1f}s, T ndcg@10 {m['T']['ndcg@10']:.4f}"
            + (f", R rmse {rmse:.4f}" if rmse is not None else ""))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    datasets = args.datasets or [n for n in DATASETS
                                 if not (args.quick and n.startswith("ml100k"))]
    seeds = args.seeds or ([1] if args.quick else list(SEEDS))
    models = list(args.models)
    if args.ablation is not None:
        from afetler_tf.presets import ABLATIONS
        labels = args.ablation or [a for a in ABLATIONS if a not in SUITE_ABLATIONS_SKIPPED]
        try:
            models += [ablation_model(label) for label in labels]
        except ValueError as e:  # a mistyped label: said before any data loads
            print(f"python -m experiments datasets --ablation: {e}", file=sys.stderr)
            return 2
    payload = run_suite(datasets, models, seeds, args.out, args.quick, args.data_seed,
                        args.verbose)
    print(f"{payload['ran']} run(s); wrote {store.path(NAME, args.out)} and "
          f"{store.path(SECTION, args.out)} (python -m experiments render: BENCHMARKS.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
