"""Files of a feedback run (``python -m experiments feedback``): JSON, CSVs, plots and the BENCHMARKS.md section.

    results.json    everything run_feedback returned
    rounds.csv      one row per arm and round (reward, hit rate, coverage,
                    new-item exposure, update cost, source weights w)
    tradeoff.csv    one row per beta (precision, coverage, new-item exposure)
    rounds.png      cumulative reward, new-item exposure and w per round
    tradeoff.png    precision@k against item coverage as beta grows
Every file is written atomically.
"""

from __future__ import annotations

import io as _io
import os

import pandas as pd

from afetler_tf import files
from afetler_tf.evaluation.report import new_figure


def rounds_frame(result: dict) -> pd.DataFrame:
    """Per-arm, per-round metrics with one ``w_<source>`` column per source."""
    rows = []
    for arm, log in result["rounds"].items():
        for r in log:
            row = {"arm": arm, **{k: v for k, v in r.items() if k != "weights"}}
            row["round"] = r["round"] + 1
            row.update({f"w_{s}": w for s, w in r.get("weights", {}).items()})
            rows.append(row)
    return pd.DataFrame(rows)


def write_outputs(out_dir: str, result: dict) -> None:
    """Writes results.json, rounds.csv, tradeoff.csv and the two plots."""
    os.makedirs(out_dir, exist_ok=True)
    files.write_json(os.path.join(out_dir, "results.json"), result)
    frame = rounds_frame(result)
    _write_csv(os.path.join(out_dir, "rounds.csv"), frame)
    _write_csv(os.path.join(out_dir, "tradeoff.csv"), pd.DataFrame(result["tradeoff"]))
    _rounds_plot(os.path.join(out_dir, "rounds.png"), frame)
    _tradeoff_plot(os.path.join(out_dir, "tradeoff.png"), result["tradeoff"], result)


def _write_csv(path: str, frame: pd.DataFrame) -> None:
    buffer = _io.StringIO()
    frame.to_csv(buffer, index=False)
    files.atomic_write_text(path, buffer.getvalue())


def _save(figure, path: str) -> None:
    buffer = _io.BytesIO()
    figure.savefig(buffer, format="png")
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(buffer.getvalue())
    os.replace(tmp, path)


def _rounds_plot(path: str, frame: pd.DataFrame) -> None:
    figure = new_figure(13.0, 3.8)
    played = frame[~frame.get("skipped", pd.Series(False, index=frame.index)).fillna(False).astype(bool)]
    axes = figure.subplots(1, 3)
    for arm, part in played.groupby("arm"):
        axes[0].plot(part["round"], part["cumulative_reward"], marker="o", label=arm)
        axes[1].plot(part["round"], part["new_item_exposure"], marker="o", label=arm)
    for column in [c for c in played.columns if c.startswith("w_")]:
        loop = played[played["arm"] == "loop"]
        axes[2].plot(loop["round"], loop[column], marker=".", label=column[2:])
    titles = ("cumulative reward", "new-item exposure (share of slots)", "source weights w (loop)")
    for ax, title in zip(axes, titles):
        ax.set_title(title)
        ax.set_xlabel("round")
        ax.legend(fontsize=7)
    figure.tight_layout()
    _save(figure, path)


def _tradeoff_plot(path: str, rows: list, result: dict) -> None:
    figure = new_figure(6.0, 4.2)
    ax = figure.add_subplot()
    coverage, precision = [r["coverage"] for r in rows], [r["precision"] for r in rows]
    ax.plot(coverage, precision, marker="o")
    for r in rows:
        ax.annotate(f"β={r['beta']:.2g}", (r["coverage"], r["precision"]), fontsize=7)
    k = result["feedback_config"]["k"]
    ax.set_xlabel("item coverage")
    ax.set_ylabel(f"precision@{k} (later period)")
    ax.set_title("Exposure-constrained matching: relevance vs diversity")
    figure.tight_layout()
    _save(figure, path)


def benchmark_section(result: dict, command: str) -> str:
    """Markdown section for BENCHMARKS.md from a run's results (no figure typed by hand)."""
    fc, mc = result["feedback_config"], result["model_config"]
    s = result["summary"]
    lines = ["## Feedback loop (protocol F) and marketing", "",
             f"`{command}` — data {result['data']}; model `{mc['model']}` (epochs <= "
             f"{mc['train']['epochs']}, NewItemGAN {'on' if mc.get('gan', {}).get('enabled') else 'off'}, "
             f"warm-up fit {result['warmup']['fit_seconds']:.0f} s); "
             f"warm-up = first {fc['warmup_fraction']:.0%} of interactions by time "
             f"({result['warmup']['interactions']}), then {fc['rounds']} rounds of equal duration, "
             f"k = {fc['k']}; reward +1 per recommended item rated >= {fc['like_threshold']:g} "
             f"in the round, -1 per item rated <= {fc['dislike_threshold']:g}; "
             f"{result['warmup']['new_items']} new items (first interaction after the warm-up). "
             f"Wall time {result['wall_seconds'] / 60:.1f} min.", "",
             "| arm | cumulative reward | likes | penalties | hit rate | coverage | new-item exposure "
             "| update s/round |", "|---|---|---|---|---|---|---|---|"]
    for arm in ("loop", "frozen"):
        a = s[arm]
        update = f"{a['update_seconds_mean']:.1f}" if "update_seconds_mean" in a else "–"
        lines.append(f"| {arm} | {a['cumulative_reward']:+.0f} | {a['likes']} | {a['penalties']} | "
                     f"{a['hit_rate']:.4f} | {a['coverage']:.4f} | {a['new_item_exposure']:.4f} | {update} |")
    if result["skipped_rounds"]:
        lines += ["", f"Rounds without interactions (skipped): {[i + 1 for i in result['skipped_rounds']]}."]
    w = result["weights_trajectory"]
    if w:
        lines += ["", "DBGD source weights w (loop), start -> after the last round: " + " -> ".join(
            "(" + ", ".join(f"{k} {float(v):.2f}" for k, v in row.items()) + ")" for row in (w[0], w[-1]))
            + "."]
    lines += ["", "Exposure-constrained matching (warm-up model, every user, later period as "
              "relevance; duals from the matching LP, seconds = LP time):", "", "| beta | m (lists per item) | precision@k | item coverage | "
              "new-item exposure | min exposure | met | equals unconstrained | seconds |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in result["tradeoff"]:
        lines.append(f"| {r['beta']:.6f} | {r['m']} | {r['precision']:.4f} | {r['coverage']:.4f} | "
                     f"{r['new_item_exposure']:.4f} | {r['min_exposure']} | {r['met']} | "
                     f"{r['matches_unconstrained']} | {r.get('seconds', 0.0):.1f} |")
    u = result["userrec"]
    lines += ["", "UserRec (warm-up model; per item with later interactions, its top users vs the "
              "users who interacted with it later): " + ", ".join(
                  f"{k} {v:.4f}" for k, v in u.items() if k != "items") + f" over {u['items']} items.", ""]
    return "\n".join(lines)
