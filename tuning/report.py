"""What a search leaves behind: the best config and the trials table (CSV, markdown).

Everything is read back from KerasTuner's oracle, so the table of a resumed
search lists the trials of every run, not just the last one.
"""

from __future__ import annotations

import csv
import io
import os

from afetler_tf.config import Config
from afetler_tf.files import atomic_write_text, read_json, write_json

METRICS = ("val_ndcg@10", "val_recall@10", "val_precision@10", "val_rmse", "val_combined",
           "epochs", "seconds")


def trial_rows(tuner) -> list[dict]:
    """One dict per trial, in trial order: id, status, objective, metrics, hyperparameters."""
    objective = tuner.oracle.objective.name
    names = [hp.name for hp in tuner.oracle.get_space().space]
    rows = []
    for trial_id in sorted(tuner.oracle.trials, key=int):
        trial = tuner.oracle.trials[trial_id]
        values = trial.hyperparameters.values
        row = {"trial": trial_id, "status": trial.status, "objective": objective,
               "value": _last(trial, objective)}
        row.update({name: _last(trial, name) for name in METRICS if name != objective})
        row.update({name: values.get(name) for name in names})
        row.update({k: v for k, v in values.items() if k.startswith("tuner/") and k != "tuner/trial_id"})
        rows.append(row)
    return rows


def _last(trial, name):
    return trial.metrics.get_last_value(name) if trial.metrics.exists(name) else None


def best_trial(tuner):
    """The best completed trial; RuntimeError when none completed."""
    completed = [t for t in tuner.oracle.get_best_trials(1) if t.status == "COMPLETED"]
    if not completed:
        raise RuntimeError("No trial completed, so there is no best configuration; the trials "
                           "table (trials.md) shows each trial's error.")
    return completed[0]


def best_config(tuner) -> Config:
    """The Config of the best completed trial (what ``fit --config`` should train)."""
    return tuner.trial_config(best_trial(tuner).hyperparameters.values)


def write_summary(tuner, out_dir: str, wall_seconds: float, trials_run: list[str]) -> dict:
    """Appends this run to ``out_dir/summary.json`` (runs, their wall time, the best trial)."""
    path = os.path.join(out_dir, "summary.json")
    summary = read_json(path) if os.path.exists(path) else {"runs": []}
    summary["runs"].append({"wall_seconds": wall_seconds, "trials_run": trials_run})
    best = best_trial(tuner)
    rows = trial_rows(tuner)
    summary.update(objective=tuner.oracle.objective.name, best_trial=best.trial_id, best_value=best.score,
                   trials=len(rows), completed=sum(r["status"] == "COMPLETED" for r in rows),
                   wall_seconds=sum(run["wall_seconds"] for run in summary["runs"]),
                   trial_seconds=sum(r.get("seconds") or 0.0 for r in rows))
    write_json(path, summary)
    return summary


def write_trials(tuner, out_dir: str) -> None:
    """Writes ``out_dir/trials.csv`` and ``out_dir/trials.md``."""
    rows = trial_rows(tuner)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(os.path.join(out_dir, "trials.csv"), buffer.getvalue())
    atomic_write_text(os.path.join(out_dir, "trials.md"), trials_markdown(tuner, rows, columns))


def trials_markdown(tuner, rows: list[dict], columns: list[str]) -> str:
    """The trials table as markdown, headed by a one-paragraph summary."""
    oracle = tuner.oracle
    objective = oracle.objective
    done = sum(row["status"] == "COMPLETED" for row in rows)
    lines = [f"# Search trials ({type(tuner).__name__})", "",
             f"Objective: `{objective.name}` ({objective.direction}imise), validation split only. "
             f"Trials: {len(rows)} of at most {oracle.max_trials or '?'}, {done} completed."]
    if done:
        best = best_trial(tuner)
        lines.append(f"Best: trial {best.trial_id}, {objective.name} = {best.score:.4f}.")
    if getattr(tuner, "starts_from_base", False) and rows:
        lines.append("Trial 0 is the base configuration (the defaults of the space).")
    header = [c for c in columns if c != "objective"]
    header[header.index("value")] = objective.name
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [_cell(row.get("value" if c == objective.name else c)) for c in header]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)
