"""The ``peers`` section of BENCHMARKS.md: the public peers' rows (``peers.json``, written by
``python -m experiments peers``) beside AFETLER's and afetler_tf's EASE rows of the seeds
suite (``seeds.json``, the same split and seeds; read, not refitted).

Only formatting lives here; :mod:`experiments.render` calls :func:`section` when
``peers.json`` is in the store.
"""

from __future__ import annotations

import json
from typing import Optional

import numpy as np

from experiments import store
from experiments.benchmark_report import T_COLUMNS, metric_table

NAME = "peers.json"
# The seeds suite's rows shown beside the peers: seeds.json label -> row label.
SEEDS_ROWS = {"afetler": "AFETLER (seeds suite)", "ease": "EASE, afetler_tf (seeds suite)"}
SEEDS = ("1", "2", "3")

TEXT = """\
The models a user would pick instead of AFETLER, fitted by their own packages
in this suite's run (`python -m experiments peers`; `pip install cornac torch
implicit`, or the `bench` extra) on the seeds suite's split (MovieLens-100k,
random 80/20, seeds 1-3, 10% of the training part held out for validation) and
scored by the package's own protocol-T code (`afetler_tf.evaluation`: full
catalogue, each user's training and validation items excluded, relevant = all
of the user's test items). Every peer trains on the binary training matrix.
Settings are chosen on validation NDCG@10 only (the test split is scored once,
after the choice): Cornac's EASE over its penalty and posB, Cornac's WMF over k,
lambda and the unobserved-cell weight b, implicit's iALS over factors,
regularization, alpha and iterations (a wider grid than the datasets suite's). Cornac's BiVAE
runs with Microsoft Recommenders' published settings, not tuned: those of its
BiVAE deep dive on MovieLens-100k (k 50, encoder [100], tanh, Poisson, 500
epochs, batch 128, lr 0.001) and of its movielens benchmark notebook (k 100,
encoder [200], batch 1024). The AFETLER and afetler_tf EASE rows are the seeds
suite's runs, read from `seeds.json`, not refitted. "fit s" is the whole fit:
for a tuned peer every candidate's fit and validation scoring plus the refit;
the final fit alone is in the settings table. Seconds are the machine's above
(compare them with the seeds suite's only where both name the same machine).

Grids: WMF's and iALS's were widened after earlier runs chose grid edges on
validation (the history is in `experiments/cornac_peers.py` and
`experiments/peers.py`). On these grids WMF still chose its largest k (400) on
seeds 2-3 and iALS its largest factors (128) on seed 1 and 50 iterations on
seeds 2-3; the step to that edge from the value before it gains at most 0.004
validation NDCG@10 (WMF, k 200 -> 400) and 0.0012 (iALS)."""


def _seed_runs(directory: str) -> dict:
    """seeds.json label -> its runs on seeds 1-3 ({} without the file)."""
    payload = store.read("seeds.json", directory) or {"runs": []}
    out = {}
    for run in payload["runs"]:
        if run["label"] in SEEDS_ROWS and str(run["seed"]) in SEEDS:
            out.setdefault(run["label"], []).append(run)
    return out


def _finished(runs: dict) -> list:
    return [r for _, r in sorted(runs.items()) if "metrics" in r]


def _split_check(payload: dict, seeds: dict) -> str:
    """The seeds suite's EASE vs afetler_tf's EASE refitted in this run, per seed."""
    checks = payload["runs"].get("afetler_ease", {})
    ease = {str(r["seed"]): r["metrics"]["T"]["ndcg@10"] for r in seeds.get("ease", [])}
    pairs = [(s, checks[s]["metrics"]["T"]["ndcg@10"], ease[s]) for s in sorted(checks)
             if "metrics" in checks[s] and s in ease]
    if not pairs:
        return ""
    same = all(abs(a - b) < 1e-9 for _, a, b in pairs)
    verdict = ("equal on every seed: the same split and metric code" if same else
               "**not equal**: " + ", ".join(f"seed {s}: {a:.6f} vs {b:.6f}" for s, a, b in pairs))
    return (f"Split check: afetler_tf's EASE refitted in this run reaches the seeds suite's "
            f"EASE NDCG@10 on seeds {', '.join(s for s, _, _ in pairs)} ({verdict}).")


def _settings(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_settings(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value) if isinstance(value, (list, tuple)) else str(value)


def settings_table(payload: dict, models: list) -> str:
    lines = ["| model | seed | settings (chosen on validation) | candidates | validation NDCG@10 | "
             "final fit s |", "|---|---|---|---|---|---|"]
    for model in models:
        for run in _finished(payload["runs"].get(model, {})):
            lines.append(f"| {run['label']} | {run['seed']} | {_settings(run['params'])} | "
                         f"{run['candidates']} | {run['val_ndcg@10']:.4f} | "
                         f"{run['final_fit_seconds']:.1f} |")
    return "\n".join(lines)


def comparison(groups: dict) -> str:
    """AFETLER's NDCG@10 and P@10 against the best peer's (means over seeds)."""
    afetler = groups.get(SEEDS_ROWS["afetler"])
    peers = {label: runs for label, runs in groups.items() if label not in SEEDS_ROWS.values()}
    if not afetler or not peers:
        return ""

    def mean(runs, column):
        return float(np.mean([r["metrics"]["T"][column] for r in runs]))
    out = []
    for column, name in (("ndcg@10", "NDCG@10"), ("precision@10", "P@10"), ("recall@10", "R@10")):
        best = max(peers, key=lambda label: mean(peers[label], column))
        a, b = mean(afetler, column), mean(peers[best], column)
        out.append(f"{name} {a:.4f} vs {b:.4f} for {best} ({a / b - 1:+.1%})")
    spread = float(np.std([r["metrics"]["T"]["ndcg@10"] for r in afetler]))
    return ("AFETLER against the best peer of each column (means over seeds 1-3): " + "; ".join(out)
            + f". AFETLER's own seed spread (std) on NDCG@10: {spread:.4f}.")


def section(directory: str = store.DIR) -> Optional[str]:
    """The section's markdown, or None when ``peers.json`` is not in ``directory``."""
    from experiments.benchmark_report import machine_line
    payload = store.read(NAME, directory)
    if payload is None:
        return None
    seeds = _seed_runs(directory)
    groups = {SEEDS_ROWS[label]: runs for label, runs in seeds.items()}
    groups = {label: groups[label] for label in SEEDS_ROWS.values() if label in groups}
    models = [m for m in payload["runs"] if m != "afetler_ease"]
    notes = []
    for model in models:
        runs = payload["runs"][model]
        finished = _finished(runs)
        if finished:
            groups[finished[0]["label"]] = finished
        for seed, run in sorted(runs.items()):
            if "skipped" in run or "error" in run:
                notes.append(f"- {model}, seed {seed}: "
                             f"{run.get('skipped') or 'failed: ' + run['error']}")
    runs = [r for m in models for r in _finished(payload["runs"][m])]
    suite = {"machine": payload["machine"], "wall_seconds": payload["wall_seconds"],
             "runs": runs, "planned": payload.get("planned", len(runs))}
    out = ["## Public peers beside AFETLER, seeds 1-3 (protocol T, mean ± std)", "",
           machine_line(suite), "", TEXT, "", metric_table(groups, "T", T_COLUMNS), ""]
    for line in (comparison(groups), _split_check(payload, seeds)):
        out += [line, ""] if line else []
    if notes:
        out += ["Not run:", "", *notes, ""]
    out += ["Settings of each peer and seed (validation only):", "", settings_table(payload, models)]
    return "\n".join(out)
