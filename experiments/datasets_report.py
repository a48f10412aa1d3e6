"""The markdown section of ``python -m experiments datasets`` (``benchmarks/datasets.md``).

Formatting only: every figure comes from the suite's JSON (``datasets.json``,
keyed dataset -> model -> seed). One table per data set (mean ± std over the
seeds) and a summary of AFETLER's ratio to the best other model per metric:
the rating metrics against the best of :data:`RATING_RIVALS`, the top-N ones
against the best of :data:`TOPN_RIVALS`. Ablation rows (models named
``afetler[LABEL]``, ``--ablation``) are left out of those tables and get their
own: each variant's change against the full model per data set, over the seeds
both have.
"""

from __future__ import annotations

import json

import numpy as np

from experiments import store

# (protocol, metric key, column title, lower is better)
METRICS = (("R", "rmse", "RMSE", True), ("R", "mae", "MAE", True),
           ("T", "ndcg@10", "NDCG@10", False), ("T", "precision@10", "P@10", False),
           ("T", "recall@10", "R@10", False))
RATING_RIVALS = ("mf", "deepfm", "two_tower")
TOPN_RIVALS = ("ease", "ials", "two_tower", "popularity")
MODEL_ORDER = ("popularity", "mf", "deepfm", "ease", "ials", "two_tower", "afetler")

PROTOCOL_TEXT = (
    "Protocols (docs/design.md §4), from `afetler_tf.evaluation`: **R** (where the data has "
    "ratings): RMSE and MAE over the test ratings (models without a rating output map score -> "
    "rating with a linear fit on the validation set); **T**: per user, rank every catalogue item "
    "not in the user's training part (train + validation), relevant = all of the user's test "
    "items; NDCG@10, P@10, R@10. Split: 20% test, 10% of the rest validation (early stopping, "
    "calibration, iALS's grid); the test set is never used for selection. A seed is the split's "
    "and the training's; each synthetic log is one fixed world (data seed below). Models: "
    "`afetler_tf` defaults (`Config(model=...)`); iALS = `implicit` 0.7 ALS on the binary "
    "train matrix, factors / regularization / alpha / iterations picked on validation NDCG@10 "
    "from the grid below (fit s includes the grid search). Ratios: AFETLER's mean over seeds / "
    "the best rival's mean (the rival named); RMSE/MAE < 1 and NDCG/P/R > 1 favour AFETLER.")


def _values(runs: dict, protocol: str, metric: str) -> list:
    return [r["metrics"][protocol][metric] for r in runs.values()
            if "metrics" in r and metric in r["metrics"].get(protocol, {})]


def _cell(values: list, digits: int = 4) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def _ordered(models: dict) -> list:
    return ([m for m in MODEL_ORDER if m in models]
            + sorted(m for m in models if m not in MODEL_ORDER))


def _is_ablation(model: str) -> bool:
    return model.startswith("afetler[")


def _without_ablations(runs: dict) -> dict:
    return {name: {m: r for m, r in models.items() if not _is_ablation(m)}
            for name, models in runs.items()}


ABLATION_METRICS = (("T", "ndcg@10", "NDCG@10"), ("R", "rmse", "RMSE"))


def ablation_change(models: dict, variant: str, protocol: str, metric: str) -> tuple:
    """(variant's mean - full model's mean over the seeds both finished, the full model's std
    over all its seeds (the spread of one run), how many seeds compared) or (None, None, 0)."""
    full, other = models.get("afetler", {}), models.get(variant, {})
    seeds = sorted(s for s in full if s in other and "metrics" in full[s] and "metrics" in other[s]
                   and metric in full[s]["metrics"].get(protocol, {})
                   and metric in other[s]["metrics"].get(protocol, {}))
    if not seeds:
        return None, None, 0
    a = np.array([full[s]["metrics"][protocol][metric] for s in seeds])
    b = np.array([other[s]["metrics"][protocol][metric] for s in seeds])
    spread = np.std(_values(full, protocol, metric))
    return float(b.mean() - a.mean()), float(spread), len(seeds)


def ablation_tables(runs: dict) -> list:
    """Per metric, one table: a row per ablation variant, a column per data set; a cell is the
    change against the full model (seeds both have; ``*``: larger than the full model's std
    over its seeds, in the harmful direction when the component is removed)."""
    from afetler_tf.presets import ABLATIONS
    found = {m for models in runs.values() for m in models if _is_ablation(m)}
    variants = ([f"afetler[{a}]" for a in ABLATIONS if f"afetler[{a}]" in found]
                + sorted(found - {f"afetler[{a}]" for a in ABLATIONS}))
    if not variants:
        return []
    names = [n for n, models in runs.items() if any(v in models for v in variants)]
    out = []
    for protocol, metric, title in ABLATION_METRICS:
        lower = next(low for p, m, _, low in METRICS if (p, m) == (protocol, metric))
        lines = [f"{title}, change against the full model (variant - full):", "",
                 "| variant | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
        full_cells = []
        for n in names:
            v = _values(runs[n].get("afetler", {}), protocol, metric)
            full_cells.append(_cell(v))
        lines.append("| full (value) | " + " | ".join(full_cells) + " |")
        for variant in variants:
            cells = []
            for n in names:
                change, std, k = ablation_change(runs[n], variant, protocol, metric)
                if change is None:
                    cells.append("–")
                    continue
                worse = change > std if lower else change < -std
                cells.append(f"{change:+.4f}{'*' if worse else ''} ({k})")
            lines.append(f"| {variant[len('afetler['):-1]} | " + " | ".join(cells) + " |")
        out += lines + [""]
    return out


def dataset_table(models: dict) -> list:
    """Lines of one data set's table; ``models``: model -> seed -> record."""
    head = "| model | " + " | ".join(title for _, _, title, _ in METRICS) + " | fit s | seeds |"
    lines = [head, "|" + "---|" * (len(METRICS) + 3)]
    best = {}
    for protocol, metric, _, lower in METRICS:
        means = {m: np.mean(v) for m in models if (v := _values(models[m], protocol, metric))}
        if means:
            best[metric] = (min if lower else max)(means, key=means.get)
    for model in _ordered(models):
        runs = models[model]
        finished = {s: r for s, r in runs.items() if "metrics" in r}
        if not finished:
            notes = sorted({r.get("skipped") or r.get("error", "") for r in runs.values()})
            what = "skipped" if all("skipped" in r for r in runs.values()) else "failed"
            lines.append(f"| {model} | {what}: {'; '.join(notes)} |" + " |" * (len(METRICS) + 1))
            continue
        cells = []
        for protocol, metric, _, _ in METRICS:
            text = _cell(_values(finished, protocol, metric))
            cells.append(f"**{text}**" if best.get(metric) == model else text)
        fit = np.mean([r["fit_seconds"] for r in finished.values()])
        seeds = ", ".join(sorted(finished, key=int))
        failed = len(runs) - len(finished)
        seeds += f" ({failed} failed)" if failed else ""
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {fit:.1f} | {seeds} |")
    return lines


def ratio(models: dict, protocol: str, metric: str, rivals) -> tuple:
    """(AFETLER's mean / the best rival's mean, that rival) or (None, None)."""
    own = _values(models.get("afetler", {}), protocol, metric)
    lower = next(low for p, m, _, low in METRICS if (p, m) == (protocol, metric))
    means = {r: np.mean(v) for r in rivals if (v := _values(models.get(r, {}), protocol, metric))}
    if not own or not means:
        return None, None
    best = (min if lower else max)(means, key=means.get)
    return float(np.mean(own) / means[best]), best


def summary_table(runs: dict) -> list:
    """AFETLER / best rival per metric, one row per data set."""
    columns = [(p, m, f"{title} vs best of {'/'.join(RATING_RIVALS if p == 'R' else TOPN_RIVALS)}")
               for p, m, title, _ in METRICS]
    lines = ["| data set | " + " | ".join(c for _, _, c in columns) + " |",
             "|" + "---|" * (len(columns) + 1)]
    for name, models in runs.items():
        cells = []
        for protocol, metric, _ in columns:
            value, rival = ratio(models, protocol, metric, RATING_RIVALS if protocol == "R"
                                 else TOPN_RIVALS)
            cells.append("–" if value is None else f"{value:.3f} ({rival})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _machine(payload: dict) -> str:
    m = payload.get("machine", {})
    n_runs = sum(1 for models in payload["runs"].values() for runs in models.values()
                 for r in runs.values() if "error" not in r)
    planned = payload.get("planned", n_runs)
    partial = f" **Partial: {n_runs} of {planned} runs recorded.**" if n_runs < planned else ""
    return (f"Machine: {m.get('platform')}, {m.get('cpus')} CPUs, GPU: "
            f"{'yes' if m.get('gpu') else 'no'}; Python {m.get('python')}, TensorFlow "
            f"{m.get('tensorflow')}, TFRS {m.get('tfrs')}, pandas {m.get('pandas')}; 1-minute load "
            f"average {m.get('load_average_at_start', float('nan')):.1f} at the last start. Wall "
            f"time of the invocations that wrote this file {payload.get('wall_seconds', 0.0) / 60:.1f} "
            f"min{_run_minutes(payload)}." + partial)


def _run_minutes(payload: dict) -> str:
    """What the runs themselves took (fit and scoring, data loading aside),
    the models' rows apart from the ablation's: the wall time above adds up
    every invocation, a resumed or partial re-run included."""
    seconds = {"models": 0.0, "ablation": 0.0}
    for runs in payload["runs"].values():
        for model, seeds in runs.items():
            kind = "ablation" if _is_ablation(model) else "models"
            seconds[kind] += sum(r.get("wall_seconds", 0.0) for r in seeds.values() if "error" not in r)
    parts = [f"the models' {seconds['models'] / 60:.1f} min" if seconds["models"] else "",
             f"the ablation's {seconds['ablation'] / 60:.1f} min" if seconds["ablation"] else ""]
    parts = [p for p in parts if p]
    return f"; the runs themselves: {' and '.join(parts)}" if parts else ""


def _data_line(stats: dict, models: dict) -> str:
    ratings = (f", mean rating {stats['mean_rating']:.2f}" if stats.get("has_ratings")
               else ", no ratings")
    line = (f"*{stats['mechanism']}.* {stats['interactions']:,} interactions, {stats['users']:,} "
            f"users, {stats['items']:,} items with interactions of {stats['catalogue_items']:,} "
            f"in the catalogue{ratings}; {stats['split']} split.")
    splits = [r["split"] for runs in models.values() for r in runs.values() if "split" in r]
    if splits:
        s = splits[0]
        line += (f" Test: {s['test']:,} interactions of {s['test_users']:,} users; "
                 f"{s['test_users_unseen']:,} of those users ({s['test_rows_unseen_user']:,} test "
                 f"interactions) and {s['test_rows_unseen_item']:,} test interactions' items are "
                 f"not in the training part (first recorded seed).")
    return line


def _ials_line(payload: dict) -> str:
    picked = [(name, seed, r["params"]) for name, models in payload["runs"].items()
              for seed, r in models.get("ials", {}).items() if "params" in r]
    grid = next((r["config"]["grid"] for models in payload["runs"].values()
                 for r in models.get("ials", {}).values() if "config" in r), None)
    if not grid:
        return ""
    chosen = "; ".join(f"{n} s{s}: {p['factors']}/{p['regularization']:g}/{p['alpha']:g}/"
                       f"{p['iterations']}" for n, s, p in picked)
    then = (f", then iterations {list(grid['iterations'][1:])} for the best"
            if len(grid["iterations"]) > 1 else "")
    return (f"iALS grid (validation NDCG@10): factors {list(grid['factors'])} x regularization "
            f"{list(grid['regularization'])} x alpha {list(grid['alpha'])} at "
            f"{grid['iterations'][0]} iterations{then}. Chosen "
            f"(factors/regularization/alpha/iterations): {chosen}.")


def _in_order(runs: dict) -> dict:
    """``runs`` with the suite's data sets first, in its order (experiments.datasets.DATASETS)."""
    from experiments.datasets import DATASETS
    names = [n for n in DATASETS if n in runs] + [n for n in runs if n not in DATASETS]
    return {n: runs[n] for n in names}


def _flat(tree: dict, prefix: str = "") -> dict:
    """{"section.field": value} of a nested config dict."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# The config sections each suite model reads (and "model"); AFETLER and its
# ablations: every section. iALS records no afetler_tf config.
SECTIONS_READ = {"popularity": ("data",), "mf": ("data", "mf"), "deepfm": ("data", "deepfm"),
                 "ease": ("data", "ease"), "two_tower": ("data", "train", "tower", "afetler", "gan")}


# Config fields added after runs were recorded, each with the value that does
# what those runs did: a record without the field ran that way.
ADDED_FIELDS = {"afetler.target_attention_stage": "joint", "afetler.item_item_model": "ease",
                "afetler.rating_blend": False,
                **{f"ials.{name}": value for name, value in
                   (("factors", 16), ("regularization", 10.0), ("alpha", 10.0), ("iterations", 15),
                    ("fold_in_ridge", 100.0),
                    ("cg_steps", None))}}  # cg_steps: before 2026-12-02 each step solved exactly


def forced_fields(model: str) -> dict:
    """Settings ``model``'s builder forces whatever its config says (the two-tower
    is AFETLER built with the base preset and no GAN, models/two_tower.py), as JSON
    stores them: the recorded and today's config both read them as forced."""
    if model != "two_tower":
        return {}
    from afetler_tf import presets
    return json.loads(json.dumps({**{f"afetler.{k}": v for k, v in presets.BASE.items()}, "gan.enabled": False}))


def changed_defaults(payload: dict) -> list:
    """Where recorded runs' configs differ from what the suite would run
    today (``experiments.datasets.model_config``: a default changed since):
    [(field, recorded value, today's value, models, data sets)], each a JSON
    value and sorted names. iALS records no ``afetler_tf`` config and is not
    checked; a section a model does not read (:data:`SECTIONS_READ`: AFETLER's
    switches for MF) is not compared. A field of a section it reads is
    listed whether or not the model reads that field (the history cap for
    MF): the record says what was set, not what mattered. A field added
    since (:data:`ADDED_FIELDS`) reads, where a record lacks it, as the
    value that did what the run did."""
    from experiments.datasets import DATASETS, model_config
    found, quick = {}, bool(payload.get("quick"))
    for dataset, models in payload.get("runs", {}).items():
        if dataset not in DATASETS:
            continue
        for model, seeds in models.items():
            for seed, record in seeds.items():
                if model == "ials" or not isinstance(record.get("config"), dict):
                    continue
                was = _flat(json.loads(json.dumps(record["config"])))  # as stored (a fresh run holds tuples)
                forced = forced_fields(model)
                was = {**ADDED_FIELDS, **was, **forced}
                now = {**_flat(json.loads(model_config(model, dataset, int(seed), quick).to_json())), **forced}
                read = SECTIONS_READ.get(model)
                for field in set(was) | set(now):
                    if read is not None and field.split(".")[0] not in (*read, "model"):
                        continue
                    if was.get(field) != now.get(field):
                        key = (field, json.dumps(was.get(field)), json.dumps(now.get(field)))
                        models_, datasets_ = found.setdefault(key, (set(), set()))
                        models_.add(model)
                        datasets_.add(dataset)
    order = list(DATASETS)
    return [(*key, sorted(models_), sorted(datasets_, key=order.index))
            for key, (models_, datasets_) in sorted(found.items())]


def _changed_line(payload: dict) -> str:
    """A warning naming the rows run with an earlier default ("" when none)."""
    parts = []
    for field, was, now, models, names in changed_defaults(payload):
        ablations = [m for m in models if _is_ablation(m)]
        shown = [m for m in models if not _is_ablation(m)] + (
            [f"{len(ablations)} AFETLER ablation(s)"] if ablations else [])
        where = "every data set" if len(names) == len(payload.get("runs", {})) else ", ".join(names)
        parts.append(f"`{field}` {was} (today {now}) in the rows of {', '.join(shown)} ({where})")
    if not parts:
        return ""
    return ("**Runs made with earlier defaults** (each run's recorded config against what the "
            "suite runs today; a field a model does not read leaves its rows as they are): "
            + "; ".join(parts) + ". Re-run them to compare today's models.")


def markdown(payload: dict) -> str:
    """The whole section."""
    runs = _in_order(_without_ablations(payload["runs"]))
    quick = (" (**--quick: tiny data and epochs, not figures to quote**)"
             if payload.get("quick") else "")
    out = ["## Data sets: MovieLens-100k and planted synthetic logs" + quick, "",
           "`python -m experiments datasets` (mean ± std over the seeds; best of a column in "
           f"bold). Synthetic data seed {payload.get('data_seed', 0)} "
           "(`experiments/synthetic_logs.py` states each mechanism).", "",
           _machine(payload), "", PROTOCOL_TEXT, ""]
    changed = _changed_line(payload)
    out += [changed, ""] if changed else []
    ials_line = _ials_line(payload)
    out += [ials_line, ""] if ials_line else []
    out += ["### AFETLER / best other model", "", *summary_table(runs), ""]
    for name, models in runs.items():
        out += [f"### {name}", ""]
        if name in payload.get("datasets", {}):
            out += [_data_line(payload["datasets"][name], models), ""]
        out += [*dataset_table(models), ""]
    ablations = ablation_tables(_in_order(payload["runs"]))
    if ablations:
        out += ["### AFETLER without each component", "",
                "`python -m experiments datasets --ablation` (switches: "
                "`afetler_tf.presets.ABLATIONS`). A cell: the variant's mean minus the full "
                "model's over the seeds both finished (how many in brackets); `*`: removing the "
                "component made the metric worse by more than the full model's std over its "
                "seeds (the spread of one run: the component helped there).", "", *ablations]
    else:
        out += ["No ablation rows in this file: `python -m experiments datasets --ablation --out DIR` "
                "adds them (each component switched off in turn, on every data set).", ""]
    return "\n".join(out)


def write(payload: dict, directory: str) -> str:
    """Writes ``directory/datasets.md``; returns its path."""
    return store.write_text("datasets.md", markdown(payload), directory)
