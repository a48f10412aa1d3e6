"""``python -m experiments stage_settings``: a later stage's setting chosen on validation
data over the datasets suite's data sets, each candidate trained from one shared state.

    python -m experiments stage_settings --stage ranking     # train.ranking_learning_rate
    python -m experiments stage_settings --stage item_item   # ease.penalty of the item-item channel
    python -m experiments stage_settings --stage ials_alpha ials_factors ials_regularization ials_fold_in_ridge
    python -m experiments stage_settings --stage ranking --datasets taste --seeds 1 --values 0.001 0.004

For each (data set, seed), AFETLER with its defaults is fitted through the
stages before the compared one once; then the compared stage is fitted from
that same state once per candidate value (the same examples; the
network's weights restored before each):

- ``ranking`` (towers frozen, the ranker trained on, early-stopped on the
  validation rating loss; docs/design.md §3.7), after the joint and item-item
  stages, per ``train.ranking_learning_rate``: recorded are the stage's best
  validation rating RMSE, the epochs it ran, its best epoch and its seconds
  (the epochs are what a default's speed is judged by; seconds depend on the
  machine's load). A data set without ratings has no ranking stage (skipped);
- ``item_item`` (EASE fitted in closed form, factored, its share picked on
  validation NDCG@10: ``models.item_item_fitting``), after the joint stage,
  per ``ease.penalty``: recorded are the validation NDCG@10 at the picked
  share, the share, the towers' own validation NDCG@10 and the seconds;
- ``ials_alpha``, ``ials_factors``, ``ials_regularization``,
  ``ials_fold_in_ridge``: the same stage fitted by iALS
  (``afetler.item_item_model=ials``), per value of that ``ials`` setting.

Each knob pins the channel's fit it is judged on (``Knob.fixed``), so a
penalty is compared on EASE's channel and an iALS setting on iALS's, not on
the better of the two that the default (``auto``) keeps.

The test split is never read. Data sets and seeds are those of
:mod:`experiments.datasets` (its loaders and configs). Results:
``OUT/stage_settings.json`` (per stage; rewritten after every (data set,
seed); one already there is not run again) and ``OUT/stage_settings.md``,
a table of means per stage (``--render``: only the tables).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from typing import Optional, Sequence

import numpy as np

from experiments import store

NAME, SECTION = "stage_settings.json", "stage_settings.md"
DATASETS = ("ml100k-random", "ml100k-temporal", "taste", "popularity", "implicit", "longtail", "attributes")


@dataclasses.dataclass(frozen=True)
class Knob:
    """A compared setting: the stage it belongs to, its config field, the
    stages fitted once before it, the default candidates, and settings
    pinned for every candidate (``fixed``, e.g. which fit of the item-item
    channel a penalty or an iALS setting is judged on)."""

    stage: str
    section: str
    field: str
    before: tuple
    values: tuple
    fixed: tuple = ()  # ((section, ((field, value), ...)), ...): hashable

    @property
    def setting(self) -> str:
        return f"{self.section}.{self.field}"

    def cast(self, value):
        """``value`` as the field's type (an integer field's 16.0 is 16)."""
        from afetler_tf.config import Config
        default = getattr(getattr(Config(), self.section), self.field)
        return int(value) if isinstance(default, int) and float(value).is_integer() else float(value)

    def config(self, defaults, value):
        """``defaults`` with the pinned settings and this knob at ``value``."""
        pinned = {section: dict(fields) for section, fields in self.fixed}
        pinned.setdefault(self.section, {})[self.field] = value
        return defaults.replace(**pinned)


def _ials_knob(field: str, values: tuple) -> Knob:
    return Knob("item_item", "ials", field, ("joint",), values,
                fixed=(("afetler", (("item_item_model", "ials"),)),))


# --stage NAME: the knob's name (its stage's name where the stage has one knob).
KNOBS = {"ranking": Knob("ranking", "train", "ranking_learning_rate", ("joint", "item_item"),
                         (0.001, 0.002, 0.003, 0.005)),
         "item_item": Knob("item_item", "ease", "penalty", ("joint",), (100.0, 250.0, 500.0, 1000.0, 2000.0),
                           fixed=(("afetler", (("item_item_model", "ease"),)),)),
         "ials_alpha": _ials_knob("alpha", (1.0, 10.0, 40.0)),
         "ials_factors": _ials_knob("factors", (16, 32, 64)),
         "ials_regularization": _ials_knob("regularization", (1.0, 10.0, 100.0)),
         "ials_fold_in_ridge": _ials_knob("fold_in_ridge", (10.0, 100.0, 1000.0))}


def parse_args(argv):
    from experiments import datasets
    p = argparse.ArgumentParser(prog="python -m experiments stage_settings", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", nargs="+", choices=list(KNOBS), default=["ranking"],
                   help="knobs (several: of one stage, fitted from one shared state)")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(datasets.DATASETS))
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    p.add_argument("--values", nargs="+", type=float, default=None,
                   help="candidate values of the stage's setting (default: the Knob's)")
    p.add_argument("--out", default=store.DIR, help="where stage_settings.json and .md go")
    p.add_argument("--quick", action="store_true", help="the datasets suite's tiny data (tests)")
    p.add_argument("--render", action="store_true", help="only write the tables of --out")
    return p.parse_args(argv)


def run_pair(knobs: dict, dataset: str, seed: int, data, quick: bool) -> dict:
    """One (data set, seed): the stages before the knobs' stage once, then that
    stage from their state at each value of each knob (``knobs``: {name:
    (Knob, values)}, one stage). Returns {name: record}."""
    from afetler_tf import training
    from afetler_tf.models import build_model
    from afetler_tf.runs.training_run import prepare
    from afetler_tf.training.stages import FitContext
    from experiments import datasets

    first = next(iter(knobs.values()))[0]
    config = datasets.model_config("afetler", dataset, seed, quick)
    data, split = prepare(config, verbose=0, data=data)
    model = build_model(config)
    names = [s.name for s in model.stages()]
    start = time.perf_counter()
    history = model.fit(data, split, verbose=0, skip_stages=[n for n in names if n not in first.before])
    shared_part = {"before_seconds": time.perf_counter() - start,
                   "joint_val_ndcg@10": history.get("best_val_ndcg@10")}
    records = {name: dict(shared_part, candidates={}) for name in knobs}
    context = FitContext(model, data, split, model.examples(split.train, model.sampling_probabilities),
                         model.examples(split.validation, model.sampling_probabilities), verbose=0)
    stage = next(s for s in model.stages() if s.name == first.stage)
    if not stage.when(context):
        return {name: dict(record, skipped=f"the {first.stage} stage does not run on this data")
                for name, record in records.items()}
    shared, defaults = model.network.get_weights(), model.config
    try:
        for name, (knob, values) in knobs.items():
            for value in values:
                model.network.set_weights(shared)
                model.config = knob.config(defaults, value)
                training.set_seed(seed)
                start = time.perf_counter()
                with training.collector_skips_what_exists():
                    result = stage.fit(context)
                records[name]["candidates"][str(value)] = dict(_figures(knob, result),
                                                               seconds=time.perf_counter() - start)
    finally:
        model.config = defaults
    return records


def _figures(knob: Knob, result: dict) -> dict:
    if knob.stage == "ranking":
        losses = result["val_rating_loss"]
        return {"val_rmse": float(np.sqrt(result["best_val_rating_loss"])),
                "val_rmse_epoch_1": float(np.sqrt(losses[0])), "epochs": len(losses),
                "best_epoch": result["best_epoch"]}
    scores = result["val_ndcg@10"]
    return {"val_ndcg@10": scores[str(result["share"])], "share": result["share"],
            "towers_val_ndcg@10": scores[str(0.0)]}


def run(names: Sequence[str], datasets_: Sequence[str], seeds: Sequence[int],
        values: Optional[dict] = None, directory: str = store.DIR, quick: bool = False) -> dict:
    """Runs every (data set, seed) of the knobs ``names`` (:data:`KNOBS`, one
    stage: the stages before it are fitted once for all of them) not yet in
    ``directory``'s file; ``values``: {name: candidates} (default: the
    knobs'). Returns the payload."""
    from experiments import datasets
    from experiments.machine import machine
    knobs = {name: (KNOBS[name], list((values or {}).get(name) or KNOBS[name].values))
             for name in names}
    if len({(k.stage, k.before) for k, _ in knobs.values()}) > 1:
        raise ValueError(f"knobs of different stages cannot share a fit: {', '.join(names)}; "
                         f"run them one stage at a time.")
    payload = store.read(NAME, directory) or {"suite": "stage_settings", "stages": {}}
    if payload.get("quick", quick) != quick:
        raise ValueError(f"{store.path(NAME, directory)} holds quick={payload['quick']} runs; "
                         f"use another --out.")
    parts = {name: payload["stages"].setdefault(name, {"setting": knob.setting, "runs": {},
                                                       "wall_seconds": 0.0})
             for name, (knob, _) in knobs.items()}
    for part in parts.values():
        part["machine"] = machine(load_average_at_start=os.getloadavg()[0])
    payload["quick"] = quick
    start, before = time.time(), {name: part["wall_seconds"] for name, part in parts.items()}
    for dataset in datasets_:
        todo = [s for s in seeds if any(_missing(parts[n], dataset, s, v) for n, (_, v) in knobs.items())]
        if not todo:
            continue
        data = datasets.DATASETS[dataset].load(0, quick)
        for seed in todo:
            print(f"[{time.strftime('%H:%M:%S')}] {', '.join(k.setting for k, _ in knobs.values())}: "
                  f"{dataset} / seed {seed} ...", flush=True)
            records = run_pair(knobs, dataset, seed, data, quick)
            for name, record in records.items():
                knob = knobs[name][0]
                parts[name]["runs"].setdefault(dataset, {})[str(seed)] = record
                parts[name]["wall_seconds"] = before[name] + time.time() - start
                for value, c in record["candidates"].items():
                    print(f"    {knob.setting} {value}: {_cell(knob, [c])}, {c['seconds']:.1f}s",
                          flush=True)
            store.write(NAME, payload, directory)
    write_section(payload, directory)
    return payload


def _missing(part: dict, dataset: str, seed: int, values: Sequence[float]) -> bool:
    record = part["runs"].get(dataset, {}).get(str(seed))
    if record is None:
        return True
    return "skipped" not in record and any(str(v) not in record["candidates"] for v in values)


def _cell(knob: Knob, found: list) -> str:
    if knob.stage == "ranking":
        return (f"{np.mean([c['val_rmse'] for c in found]):.4f} "
                f"({np.mean([c['epochs'] for c in found]):.1f} ep)")
    return (f"{np.mean([c['val_ndcg@10'] for c in found]):.4f} "
            f"(share {np.mean([c['share'] for c in found]):.2f})")


def table(knob: Knob, part: dict) -> str:
    """Per data set and value: the mean over the seeds of the compared figure
    (ranking: best validation rating RMSE and epochs, with the epochs summed over
    the data sets in a last row; item_item: validation NDCG@10 and the share)."""
    runs = {d: s for d, s in part["runs"].items() if not any("skipped" in r for r in s.values())}
    values = sorted({v for seeds in runs.values() for rec in seeds.values()
                     for v in rec["candidates"]}, key=float)  # as recorded: "16" or "0.001"
    lines = [f"| data set (seeds) | " + " | ".join(f"{float(v):g}" for v in values) + " |",
             "|---|" + "---|" * len(values)]
    epochs = {v: 0.0 for v in values}
    for dataset, seeds in runs.items():
        cells = []
        for v in values:
            found = [rec["candidates"][v] for rec in seeds.values() if v in rec["candidates"]]
            cells.append(_cell(knob, found) if found else "")
            if found and knob.stage == "ranking":
                epochs[v] += float(np.mean([c["epochs"] for c in found]))
        lines.append(f"| {dataset} ({', '.join(seeds)}) | " + " | ".join(cells) + " |")
    if knob.stage == "ranking":
        lines.append("| epochs, summed | " + " | ".join(f"{epochs[v]:.1f}" for v in values) + " |")
    return "\n".join(lines)


TEXT = {"ranking": "Each cell: the ranking stage trained from the same joint and item-item stages "
                   "at that `train.ranking_learning_rate`, mean over the seeds of its best validation "
                   "rating RMSE (early stopping's figure) and of the epochs it ran (patience included).",
        "item_item": "Each cell: the item-item channel fitted by {fit} after the same joint stage "
                     "with that `{setting}`, mean over the seeds of the validation NDCG@10 at the "
                     "share it picked, and of that share (0: the channel off)."}


def write_section(payload: dict, directory: str) -> str:
    from experiments.benchmark_report import machine_line
    out = ["## Later stages' settings, on validation data (`experiments.stage_settings`)", "",
           "Each compared stage is fitted once per value from the same state (the earlier stages "
           "fitted once, AFETLER's defaults otherwise); the test split is never read. Regenerate: "
           "`python -m experiments stage_settings --stage STAGE`.", ""]
    for name, part in payload["stages"].items():
        knob = KNOBS[name]
        fit = dict(dict(knob.fixed).get("afetler", ())).get("item_item_model", "ease")
        text = TEXT[knob.stage].format(fit={"ease": "EASE", "ials": "iALS"}[fit], setting=knob.setting)
        out += [f"### `{knob.setting}` ({knob.stage} stage)", "", machine_line(part), "", text, "",
                table(knob, part), ""]
    return store.write_text(SECTION, "\n".join(out), directory)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.render:
        payload = store.read(NAME, args.out)
        if payload is None:
            print(f"error: no {store.path(NAME, args.out)} to render", file=sys.stderr)
            return 2
        print(f"wrote {write_section(payload, args.out)}")
        return 0
    values = ({name: [KNOBS[name].cast(v) for v in args.values] for name in args.stage}
              if args.values else None)
    run(args.stage, args.datasets, args.seeds, values, args.out, args.quick)
    print(f"wrote {store.path(NAME, args.out)} and {store.path(SECTION, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
