"""``python -m tuning.search``: a resumable KerasTuner search over AFETLER.

Examples::

    python -m tuning.search --tuner bayesian --max-trials 8 --objective ndcg --out runs/tune
    python -m tuning.search --tuner hyperband --max-trials 12 --epochs 9 --out runs/hb
    python -m tuning.search --config my.json --only learning_rate,temperature --out runs/lr
    python -m afetler_tf.fit --config runs/tune/best_config.json

Trials train on the training part and are scored on the validation split;
the test split is never read. Running the same command again continues the
search in ``--out`` (finished trials are kept; an interrupted one is rerun);
a larger ``--max-trials`` extends it. At the end (and after every trial) the
folder holds ``best_config.json``, ``trials.csv`` and ``trials.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Any, Mapping, Optional, Sequence

from afetler_tf.config import SPLITS, Config
from afetler_tf.data import Dataset, Split, load_dataset, make_split
from afetler_tf.files import jsonable, read_json, write_json
from tuning import report
from tuning.objective import OBJECTIVES, check_objective, tuning_split
from tuning.space import NAMES, SearchSpace, parse_fixed
from tuning.tuners import TUNERS, AfetlerTrials, make_tuner


@dataclasses.dataclass
class SearchResult:
    """What :func:`search` produced (also written to ``out_dir``)."""

    tuner: AfetlerTrials
    best_config: Config
    trials_run: list[str]
    out_dir: str
    wall_seconds: float


def search(base: Config, out_dir: str, tuner: str = "bayesian", objective: str = "ndcg",
           max_trials: int = 8, *, only: Optional[Sequence[str]] = None,
           fixed: Optional[Mapping[str, Any]] = None, epochs_cap: Optional[int] = None,
           rmse_weight: float = 1.0, relevant: str = "all", seed: int = 42,
           num_initial_points: Optional[int] = None, overwrite: bool = False,
           data: Optional[Dataset] = None, split: Optional[Split] = None, verbose: int = 1) -> SearchResult:
    """Runs (or resumes) a search and writes its results to ``out_dir``.

    Args:
        base: Starting configuration (data source, split and anything not tuned).
        out_dir: Search folder (KerasTuner state, best_config.json, trials.*).
        tuner: One of TUNERS.
        objective: One of OBJECTIVES.
        max_trials: Total trials, those of earlier runs in ``out_dir`` included.
        only: Tune only these hyperparameters (see ``tuning.space.NAMES``).
        fixed: ``{name: value}`` set on the base and not tuned.
        epochs_cap: Upper end of the epochs range (Hyperband: its max_epochs).
        rmse_weight: w of the combined objective NDCG@10 - w * RMSE.
        relevant: Protocol T relevance ("all" or "liked").
        seed: Seed of the tuner's draws.
        num_initial_points: Bayesian: random trials before the Gaussian process.
        overwrite: Discard a previous search in ``out_dir``.
        data: The data set (default: loaded from ``base.data.source``).
        split: Its split (default: made as ``base.data`` says); only ``train``
            and ``validation`` are read.
        verbose: 1 prints progress; 0 is silent.

    Returns:
        A SearchResult.

    Raises:
        ValueError: A bad name or value, or ``out_dir`` holding a different
            search; raised before any training.
        RuntimeError: No trial completed.
    """
    start = time.perf_counter()
    if tuner not in TUNERS:
        raise ValueError(f"Unknown tuner {tuner!r}; valid: {', '.join(TUNERS)}.")
    if objective not in OBJECTIVES:
        raise ValueError(f"Unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}.")
    if int(max_trials) < 1:
        raise ValueError(f"max_trials must be >= 1, got {max_trials}.")
    space = SearchSpace(base, only, fixed, epochs_cap, tune_epochs=tuner != "hyperband")
    settings = {"tuner": tuner, "objective": objective, "rmse_weight": rmse_weight,
                "relevant": relevant, "seed": seed, "num_initial_points": num_initial_points,
                "space": space.describe(), "base": base.to_dict()}
    _check_same_search(out_dir, settings, overwrite)
    data, split = _data_and_split(space.base, data, split, verbose)
    check_objective(objective, data)
    trial_split = tuning_split(data, split)
    write_json(os.path.join(out_dir, "search.json"), settings)
    kt_tuner = make_tuner(tuner, space, objective, max_trials, out_dir, seed=seed, overwrite=overwrite,
                          num_initial_points=num_initial_points, rmse_weight=rmse_weight,
                          relevant=relevant, verbose=verbose,
                          on_trial_done=lambda t: report.write_trials(t, out_dir))
    if verbose:
        print(f"{tuner} search, objective {OBJECTIVES[objective].name}: {len(kt_tuner.oracle.trials)} "
              f"trial(s) already in {out_dir}, up to {max_trials} in all; tuning {space.names}", flush=True)
    kt_tuner.search(data, trial_split)
    report.write_trials(kt_tuner, out_dir)
    best = report.best_config(kt_tuner)
    best.to_json(os.path.join(out_dir, "best_config.json"))
    wall = time.perf_counter() - start
    report.write_summary(kt_tuner, out_dir, wall, list(kt_tuner.trials_run))
    return SearchResult(kt_tuner, best, list(kt_tuner.trials_run), out_dir, wall)


def _check_same_search(out_dir: str, settings: dict, overwrite: bool) -> None:
    """Refuses to resume a search in ``out_dir`` started with other settings (``overwrite``: clears it)."""
    path = os.path.join(out_dir, "search.json")
    if overwrite:  # KerasTuner clears its own state; clear what this module wrote
        for name in ("search.json", "summary.json", "best_config.json", "trials.csv", "trials.md"):
            if os.path.exists(os.path.join(out_dir, name)):
                os.remove(os.path.join(out_dir, name))
    if overwrite or not os.path.exists(path):
        return
    previous = read_json(path)
    comparable = json.loads(json.dumps(jsonable(settings)))  # as it reads back (tuples -> lists)
    differ = sorted(key for key in set(previous) | set(comparable) if previous.get(key) != comparable.get(key))
    if differ:
        raise ValueError(f"{out_dir} holds a different search (differs in {differ}); resume it with "
                         f"the same options, pass --overwrite to start afresh, or use another --out.")


def _data_and_split(config: Config, data: Optional[Dataset], split: Optional[Split],
                    verbose: int) -> tuple[Dataset, Split]:
    """The data and split trials use; of the split only train and validation are read."""
    if split is not None and data is None:
        raise ValueError("A split was given without its data set; pass data= too.")
    if data is None:
        data = load_dataset(config.data.source)
    if split is None:
        dc = config.data
        split = make_split(data, kind=dc.split, seed=dc.seed, test_fraction=dc.test_fraction,
                           validation_fraction=dc.validation_fraction)
    if verbose:
        print(f"{data.summary()}; split {split.kind} (seed {split.seed}): trials train on "
              f"{len(split.train)} training interactions (10% of them for early stopping) "
              f"and are scored on {len(split.validation)} validation interactions", flush=True)
    return data, split


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tuning.search", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tuner", choices=tuple(TUNERS), default="bayesian")
    p.add_argument("--objective", choices=tuple(OBJECTIVES), default="ndcg",
                   help="validation NDCG@10 (max), RMSE (min) or NDCG@10 - w*RMSE (max)")
    p.add_argument("--max-trials", type=int, default=8, help="total trials, earlier runs included")
    p.add_argument("--out", required=True, help="search folder (resumed when it holds this search)")
    p.add_argument("--config", help="base config JSON (data, split and everything not tuned)")
    p.add_argument("--data", help="'movielens-100k' or a folder of your own logs")
    p.add_argument("--split", choices=SPLITS)
    p.add_argument("--epochs", type=int, help="most epochs a trial may train (Hyperband: max_epochs)")
    p.add_argument("--only", help=f"comma-separated names to tune; valid: {','.join(NAMES)}")
    p.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                   help="set a hyperparameter and do not tune it (repeatable)")
    p.add_argument("--rmse-weight", type=float, default=1.0, help="w of the combined objective")
    p.add_argument("--relevant", choices=("all", "liked"), default="all")
    p.add_argument("--seed", type=int, default=42, help="seed of the tuner's draws")
    p.add_argument("--initial-points", type=int, help="bayesian: random trials before the GP")
    p.add_argument("--overwrite", action="store_true", help="discard a previous search in --out")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def base_config(args: argparse.Namespace) -> Config:
    """The base config: --config file (or defaults), then --data/--split."""
    config = Config.from_json(args.config) if args.config else Config()
    data = {k: v for k, v in (("source", args.data), ("split", args.split)) if v is not None}
    return config.replace(data=data) if data else config


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        result = search(base_config(args), args.out, args.tuner, args.objective, args.max_trials,
                        only=args.only.split(",") if args.only else None, fixed=parse_fixed(args.fix),
                        epochs_cap=args.epochs, rmse_weight=args.rmse_weight, relevant=args.relevant,
                        seed=args.seed, num_initial_points=args.initial_points,
                        overwrite=args.overwrite, verbose=0 if args.quiet else 1)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: run the same command again to resume the search in {args.out}",
              file=sys.stderr)
        return 130
    best = report.best_trial(result.tuner)
    print(f"\nsearch done in {result.wall_seconds / 60:.1f} min ({len(result.trials_run)} trial(s) this run); "
          f"best trial {best.trial_id}: {result.tuner.oracle.objective.name} {best.score:.4f}")
    print(f"wrote {args.out}/best_config.json, trials.csv, trials.md\n"
          f"train it: python -m afetler_tf.fit --config {args.out}/best_config.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
