"""Renders benchmarks/speed.md from the figures :mod:`experiments.speed` measured.

Only formatting and ratios: every number comes from the payload.
"""

from __future__ import annotations

# Targets of issue 20, quoted beside the figures they judge.
EPOCH_TARGET, FIT_TARGET_S, STREAM_TARGET = 2.0, 45.0, 40_000
STAGE_ORDER = ("joint", "item_item", "ranking", "gan", "taste", "rating_blend")  # Afetler.stages' order


def _in_fit_order(stages: dict) -> list:
    rank = {name: i for i, name in enumerate(STAGE_ORDER)}
    return sorted(stages.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


def rows(payload: dict) -> list:
    """Table rows: (what, epochs, seconds, s per epoch, examples/s, x reference)."""
    ref = payload["reference"]
    n = ref["train_interactions"]
    ref_epoch, ref_fit = ref["epoch_seconds"], ref["fit_seconds"]
    out = [("reference: plain TFRS two-tower, second epoch of a fit", 1, ref_epoch,
            ref_epoch, n / ref_epoch, 1.0)]
    steady = ref.get("afetler_steady_epoch_seconds")
    if steady:
        out.append(("afetler: joint epoch, the same way (no validation)", 1,
                    steady, steady, n / steady, steady / ref_epoch))
    out.append((f"reference: whole fit ({ref['fit_epochs']} epochs, tracing included)",
                ref["fit_epochs"], ref_fit, ref_fit / ref["fit_epochs"],
                n * ref["fit_epochs"] / ref_fit, 1.0))
    for model in payload["models"]:
        name = model["model"]
        out.append((f"{name}: whole fit (`python -m afetler_tf.fit`, process wall time)", None,
                    model["wall_seconds"], None, None, model["wall_seconds"] / ref_fit))
        for stage, figures in _in_fit_order(model["stages"]):
            epochs, seconds = figures.get("epochs"), figures["seconds"]
            per_epoch = seconds / epochs if epochs else None
            interactions = stage in ("joint", "ranking")  # the stages that pass over the log
            out.append((f"{name}: stage {stage}", epochs, seconds, per_epoch,
                        n * epochs / seconds if epochs and interactions else None,
                        per_epoch / ref_epoch if per_epoch and interactions else None))
    stream = payload.get("streamed")
    if stream:
        out.append((f"streamed: {stream['interactions']:,} interactions, "
                    f"{stream['catalogue_items']:,}-item catalogue (batches "
                    f"{stream['warmup'] + 1}-{stream['steps']} of {stream['batch']})", None, None,
                    None, stream["examples_per_second"],
                    (n / ref_epoch) / stream["examples_per_second"]))
    return out


def _cell(value, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def targets(payload: dict) -> list:
    """Issue 20's targets against this run's figures (lines)."""
    ref = payload["reference"]
    ref_epoch, lines = ref["epoch_seconds"], []
    steady = ref.get("afetler_steady_epoch_seconds")
    if steady:
        ratio = steady / ref_epoch
        lines.append(f"- AFETLER joint epoch {ratio:.1f}x the reference epoch, both after a "
                     f"warm-up epoch and without validation (target <= {EPOCH_TARGET:.0f}x: "
                     f"{'met' if ratio <= EPOCH_TARGET else 'missed'}); where it goes: `python -m "
                     f"experiments profile`.")
    for model in payload["models"]:
        if model["model"] == "afetler":
            lines.append(f"- AFETLER default fit {model['wall_seconds']:.1f} s wall (target <= "
                         f"{FIT_TARGET_S:.0f} s: {'met' if model['wall_seconds'] <= FIT_TARGET_S else 'missed'}).")
        elif model["model"] == "afetler_fast":
            lines.append(f"- AFETLER `--preset fast` fit {model['wall_seconds']:.1f} s wall (an "
                         f"option, not the default the target names).")
    stream = payload.get("streamed")
    if stream:
        rate = stream["examples_per_second"]
        lines.append(f"- Streamed {stream['size']}: {rate:,.0f} examples/s (target >= "
                     f"{STREAM_TARGET:,}: {'met' if rate >= STREAM_TARGET else 'missed'}).")
    return lines


def section(payload: dict) -> str:
    m = payload["machine"]
    ref = payload["reference"]
    text = ["## Training speed against a plain TFRS two-tower (same run)", "",
            f"`python -m experiments speed` on {m['platform']}, {m['cpus']} CPUs, TF "
            f"{m['tensorflow']}; 1-minute load average {m.get('load_average_at_start', float('nan')):.1f} "
            f"at the start. MovieLens-100k, random split, seed {payload['seed']} "
            f"({ref['train_interactions']:,} training interactions); every model with its "
            f"defaults (afetler_fast: AFETLER with `--preset fast`). A stage's seconds include its tracing and per-epoch validation; "
            f"\"x reference\" is seconds per epoch (stages), fit seconds (whole fits) or "
            f"seconds per example (streamed) over the reference's: > 1 is slower. Seconds "
            f"and examples/s depend on the machine: compare runs on different machines "
            f"by that column.", "",
            "| what | epochs | seconds | s / epoch | examples/s | x reference |",
            "|---|---|---|---|---|---|"]
    for what, epochs, seconds, per_epoch, rate, ratio in rows(payload):
        text.append(f"| {what} | {_cell(epochs, 'd')} | {_cell(seconds, '.1f')} | "
                    f"{_cell(per_epoch, '.2f')} | {_cell(rate, ',.0f')} | {_cell(ratio, '.2f')} |")
    quality = [f"{model['model']} NDCG@10 {model['ndcg@10']:.4f}, RMSE {model['rmse']:.4f}"
               for model in payload["models"]
               if model.get("ndcg@10") is not None and model.get("rmse") is not None]
    if quality:
        text += ["", "The fits' test figures (protocol T, R): " + "; ".join(quality) + "."]
    text += ["", *targets(payload), ""]
    return "\n".join(text)
