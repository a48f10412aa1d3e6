"""The markdown section of ``python -m experiments tuning_compare`` (formatting only; figures come from its JSON)."""

from __future__ import annotations

from tuning.space import PARAMS

ROWS = [("validation", "val_ndcg@10", "NDCG@10"), ("validation", "val_rmse", "RMSE"),
        ("T", "precision@10", "P@10"), ("T", "recall@10", "R@10"), ("T", "ndcg@10", "NDCG@10"),
        ("T", "map@10", "MAP@10"), ("T", "hit_rate@10", "HitRate@10"), ("T", "coverage@10", "coverage@10"),
        ("R", "rmse", "RMSE"), ("R", "mae", "MAE"), ("R", "precision@10", "P@10"),
        ("R", "accuracy@10", "Accuracy@10"), ("R", "roc_auc@10", "ROC-AUC@10")]
LOWER_IS_BETTER = ("val_rmse", "rmse", "mae")


def markdown(payload: dict, trials_md: str = "") -> str:
    """The whole section: set-up, default vs tuned table, hyperparameters, trials."""
    lines = _setup(payload) + [""] + _table(payload) + [""] + _outcome(payload)
    lines += ["", "Tuned hyperparameters that differ from the default:", ""] + _changes(payload)
    if trials_md:
        body = trials_md.split("\n", 2)[2] if trials_md.startswith("# ") else trials_md
        lines += ["", "### Search trials (validation split only)", "", body.strip()]
    return "\n".join(lines) + "\n"


def _setup(payload: dict) -> list[str]:
    s, m, res = payload["search"], payload["machine"], payload["results"]
    cap = f", each trial at most {s['epochs_cap']} epochs" if s["epochs_cap"] else ""
    formula = {"ndcg": "NDCG@10 (protocol T)", "rmse": "RMSE (protocol R)",
               "combined": f"NDCG@10 − {s['rmse_weight']:g} · RMSE"}[s["objective"]]
    load = ", ".join(f"{a:.1f}" for a in m["load_average_before"])
    return [
        "## Hyperparameter search (KerasTuner, `tuning/`)", "",
        f"**Search.** {s['trials']} trials ({s['completed']} completed) of a {s['tuner']} search over "
        f"{len(s['tuned'])} AFETLER hyperparameters ({', '.join(s['tuned'])}){cap}. Objective "
        f"`{s['objective_metric']}` = {formula}, {s['direction']}imised, on the **validation split**: "
        f"a trial trains on 90% of the training part (the other 10% stops it early and calibrates "
        f"protocol R) and is scored on the validation interactions; the test split is never read. "
        f"Trial 0 is the default configuration (with the epochs cap). Search wall time "
        f"{s['wall_seconds'] / 60:.1f} min.", "",
        f"**Comparison.** *default* = the package defaults (`Config()`, at most "
        f"{res['default']['config']['train']['epochs']} epochs with early stopping); *tuned* = best trial "
        f"{s['best_trial']} (`best_config.json`). Both were measured in one process after the search: "
        f"the validation objective again by the trial procedure, then an ordinary fit (training part, "
        f"early stopping on validation) and the **test metrics, measured once** (MovieLens-100k, random "
        f"split, seed {res['default']['config']['data']['seed']}; protocol T relevance: every test item).", "",
        f"**Machine.** {m['cpus']} CPU cores, {m['memory_gib'] or 0:.0f} GiB, {m['gpus']} GPU, TensorFlow "
        f"{m['tensorflow']}, shared with other engineers' trainings (load average {load} when the "
        f"comparison started), so the times are upper bounds.",
    ]


def _value(result: dict, section: str, name: str):
    source = result["validation"] if section == "validation" else result["test"].get(section, {})
    return source.get(name)


def _table(payload: dict) -> list[str]:
    res, objective = payload["results"], payload["search"]["objective_metric"]
    default, tuned = res["default"], res["tuned"]
    lines = ["| | default | tuned | tuned − default |", "|---|---|---|---|"]
    rows = [("validation", objective, f"validation objective `{objective}`")] + [
        (section, name, f"{'validation' if section == 'validation' else 'test ' + section} {label}")
        for section, name, label in ROWS if name != objective]
    for section, name, label in rows:
        a, b = _value(default, section, name), _value(tuned, section, name)
        if a is None or b is None:
            continue
        lines.append(f"| {label} | {a:.4f} | {b:.4f} | {b - a:+.4f} |")
    lines.append(f"| fit time on the training part (s) | {default['fit_seconds']:.0f} | "
                 f"{tuned['fit_seconds']:.0f} | |")
    return lines


def _outcome(payload: dict) -> list[str]:
    """A factual sentence: which way the objective and the test metrics went."""
    res, objective = payload["results"], payload["search"]["objective_metric"]
    direction = payload["search"]["direction"]
    a, b = _value(res["default"], "validation", objective), _value(res["tuned"], "validation", objective)
    better = (b > a) if direction == "max" else (b < a)
    wins, losses = [], []
    for section, name, label in ROWS:
        if section == "validation":
            continue
        x, y = _value(res["default"], section, name), _value(res["tuned"], section, name)
        if x is None or y is None or x == y:
            continue
        improved = (y < x) if name in LOWER_IS_BETTER else (y > x)
        (wins if improved else losses).append(f"{section} {label}")
    return [f"**Outcome.** On the validation objective the tuned configuration is "
            f"{'better' if better else 'not better'} than the default ({b:.4f} vs {a:.4f}). "
            f"On the test set it is better on {len(wins)} of {len(wins) + len(losses)} metrics"
            f"{' (' + ', '.join(wins) + ')' if wins else ''} and worse on "
            f"{', '.join(losses) if losses else 'none'}."]


def _changes(payload: dict) -> list[str]:
    default, tuned = payload["results"]["default"]["config"], payload["results"]["tuned"]["config"]
    lines = ["| hyperparameter | default | tuned |", "|---|---|---|"]
    for name, param in PARAMS.items():
        a, b = default[param.section][param.field], tuned[param.section][param.field]
        if a != b:
            lines.append(f"| {name} | {_fmt(a)} | {_fmt(b)} |")
    return lines if len(lines) > 2 else ["(none)"]


def _fmt(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)
