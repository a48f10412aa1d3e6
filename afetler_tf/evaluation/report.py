"""Writing results: metrics.json, Markdown tables, report.md and PNG plots.

Every figure and table names its evaluation protocol (docs/design.md §4). Plots use
matplotlib's Agg canvas directly (no pyplot, no global backend switch), so
they work headless and in notebooks alike.
"""

from __future__ import annotations

import json
import math
import os
from typing import Mapping, Optional, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from afetler_tf import files

LOWER_IS_BETTER = ("mse", "mae", "rmse", "popularity_percentile")
PROTOCOL_TITLES = {
    "R": "Protocol R: rating prediction; each user's test items ranked (calibration fitted on validation)",
    "T": "Protocol T: top-N over the full catalogue (training items excluded)",
    "C": "Protocol C: top-N among cold items, plus rating error on their interactions",
    "F": "Protocol F: feedback replay",
    "R_validation": "Protocol R on the validation carve-out (split 'none': no test set)",
    "T_validation": "Protocol T on the validation carve-out (split 'none': no test set)",
}


def higher_is_better(metric: str) -> bool:
    """False for error-like metrics (mse, mae, rmse, popularity, losses).

    ``metric`` may carry a protocol prefix ("T/ndcg@10") or a cut-off ("@10").
    """
    name = metric.rsplit("/", 1)[-1].split("@")[0].lower()
    return name not in LOWER_IS_BETTER and "loss" not in name


def write_metrics_json(path: str, metrics: Mapping) -> str:
    """Writes ``metrics`` as strict JSON atomically (NaN/inf -> null). Returns ``path``."""
    return files.write_json(path, metrics)


def _number(value) -> Optional[float]:
    """``value`` as a finite float, or None (missing, NaN, not a number)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        return None
    return float(value) if math.isfinite(value) else None


def _best(rows: Mapping[str, Mapping], column: str, digits: int) -> Optional[float]:
    """Best displayed value of ``column`` when at least two rows have one."""
    values = [round(v, digits) for v in (_number(r.get(column)) for r in rows.values()) if v is not None]
    if len(values) < 2:
        return None
    return max(values) if higher_is_better(column) else min(values)


def markdown_table(rows: Mapping[str, Mapping[str, float]], columns: Sequence[str],
                   digits: int = 4, label: str = "model") -> str:
    """A Markdown table, one row per entry, best value per column in bold.

    Args:
        rows: Row name (e.g. model) -> {column: value}.
        columns: Columns to show, in order.
        digits: Decimals shown; ties after rounding are all bold.
        label: Header of the row-name column.

    Returns:
        The table, "n/a" where a value is missing or NaN.
    """
    best = {column: _best(rows, column, digits) for column in columns}
    lines = ["| " + " | ".join([label, *columns]) + " |", "|" + "---|" * (len(columns) + 1)]
    for name, row in rows.items():
        cells = [name]
        for column in columns:
            value = _number(row.get(column))
            text = "n/a" if value is None else f"{value:.{digits}f}"
            bold = value is not None and round(value, digits) == best[column]
            cells.append(f"**{text}**" if bold else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _metric_columns(protocol_metrics: Mapping) -> list[str]:
    """Numeric entries (NaN included, shown as n/a), in their order."""
    return [key for key, value in protocol_metrics.items()
            if isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))]


def new_figure(width: float = 7.0, height: float = 4.0) -> Figure:
    """A headless matplotlib Figure (Agg canvas, constrained layout)."""
    # Constrained layout fits titles, labels and long legends without the
    # "tight_layout not applied" warnings tight_layout gave.
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)  # Agg canvas: headless, no pyplot state
    return figure


def bar_chart(path: str, rows: Mapping[str, Mapping[str, float]], columns: Sequence[str], title: str) -> str:
    """Grouped bar chart (one group per column, one bar per row) saved as PNG."""
    figure = new_figure(max(6.0, 1.2 * len(columns) + 2), 4.0)
    axes = figure.add_subplot()
    width = 0.8 / max(len(rows), 1)
    x = np.arange(len(columns))
    for n, (name, row) in enumerate(rows.items()):
        heights = [_number(row.get(column)) for column in columns]
        bars = axes.bar(x + n * width - 0.4 + width / 2, [np.nan if h is None else h for h in heights],
                        width, label=name)
        axes.bar_label(bars, fmt="%.3f", fontsize=7)
    axes.set_xticks(x, list(columns), rotation=30, ha="right")
    axes.set_title(title)
    axes.legend(fontsize=7)
    figure.savefig(path, format="png")
    return path


def _series(history: Mapping, prefix: str = "") -> dict[str, list[float]]:
    """Per-epoch numeric series of a (possibly nested) Keras-style history."""
    series = {}
    for key, value in history.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            series.update(_series(value, f"{name}/"))
        elif isinstance(value, (list, tuple, np.ndarray)) and len(value):
            numbers = [_number(v) for v in value]
            if all(v is not None for v in numbers):
                series[name] = numbers
    return series


# Per stage, the series a training curve shows: the training loss and the
# validation figures early stopping reads (the loss terms stay in history.json).
CURVE_SERIES = ("loss", "val_loss", "val_rating_loss", "val_rmse", "d_loss", "g_loss",
                "val_retrieval_loss", "val_similarity_loss")
CURVE_RIGHT_AXIS = ("val_ndcg@10",)  # ranking quality, on its own scale


def curve_panels(history: Mapping) -> dict[str, dict[str, list]]:
    """The series of a training curve, one panel per training stage: {stage:
    {name: values}}, stages by their history prefix ("ranking/loss" is the
    ranking stage's; unprefixed keys the first stage's: the first of the
    history's ``stage_seconds``, else "training"), in the fit's order. A stage
    shows its :data:`CURVE_SERIES` and :data:`CURVE_RIGHT_AXIS`, or every
    series where it has none of them; a series that is 0 at every epoch (a
    loss term the stage does not train) is left out."""
    stages: dict[str, dict[str, list]] = {}
    for name, values in _series(history).items():
        stage, _, key = name.rpartition("/")
        if any(values):
            stages.setdefault(stage or "training", {})[key] = values
    shown = set(CURVE_SERIES) | set(CURVE_RIGHT_AXIS)
    panels = {stage: ({k: v for k, v in keys.items() if k in shown} or keys)
              for stage, keys in stages.items()}
    order = list(history.get("stage_seconds") or {})
    if order and "training" in panels and order[0] not in panels:
        panels = {order[0] if k == "training" else k: v for k, v in panels.items()}
    return dict(sorted(panels.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order
                       else len(order)))


def training_curve(path: str, history: Mapping) -> str:
    """Plots the per-epoch series of ``history`` against the epoch (PNG), one
    panel per training stage (:func:`curve_panels`).

    Raises:
        ValueError: if ``history`` holds no per-epoch numeric series.
    """
    series = _series(history)
    if not series:
        raise ValueError(f"history has no per-epoch numeric series (keys: {sorted(history)}).")
    panels = curve_panels(history)
    figure = new_figure(7.0, 2.6 * len(panels) + 0.6)
    for row, (stage, shown) in enumerate(panels.items()):
        axes = figure.add_subplot(len(panels), 1, row + 1)
        right = None
        for name, values in shown.items():
            target = axes
            if name in CURVE_RIGHT_AXIS:
                right = right or axes.twinx()
                target = right
            target.plot(np.arange(1, len(values) + 1), values, marker="o", label=name,
                        color=f"C{list(shown).index(name)}")
        handles = [h for a in (axes, right) if a is not None for h in a.get_legend_handles_labels()[0]]
        axes.legend(handles, [h.get_label() for h in handles], fontsize=7)
        axes.set_title(stage)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.savefig(path, format="png")
    return path


def _protocol_section(run_dir: str, name: str, protocol: str, protocol_metrics: Mapping) -> list[str]:
    title = PROTOCOL_TITLES.get(protocol, f"Protocol {protocol}")
    columns = _metric_columns(protocol_metrics)
    lines = [f"## {title}", "", markdown_table({name: protocol_metrics}, columns)]
    counts = protocol_metrics.get("counts")
    if counts:
        lines.append("Counts: " + ", ".join(f"{key} {value}" for key, value in counts.items()) + "\n")
    plotted = [column for column in columns if higher_is_better(column)]
    if plotted:
        image = bar_chart(os.path.join(run_dir, f"metrics_{protocol}.png"), {name: protocol_metrics},
                          plotted, f"Protocol {protocol} ({name})")
        lines.append(f"![Protocol {protocol}]({os.path.basename(image)})\n")
    return lines


def _training_section(run_dir: str, history: Optional[Mapping]) -> list[str]:
    series = _series(history or {})
    if not series:
        return []
    image = training_curve(os.path.join(run_dir, "training_curve.png"), history)
    final = ", ".join(f"{name} {values[-1]:.4f}" for name, values in series.items())
    epochs = max(len(values) for values in series.values())
    stages = (history or {}).get("stage_seconds") or {}
    timed = ["Stage wall times: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds
                                              in stages.items()) + ".", ""] if stages else []
    return ["## Training", "", f"{epochs} epoch(s); final: {final}.", "", *timed,
            f"![Training history]({os.path.basename(image)})", ""]


def write_report(run_dir: str, config_dict: Mapping, metrics: Mapping, history: Optional[Mapping],
                 wall_time_s: float) -> str:
    """Writes ``run_dir/report.md`` (plus its PNG plots); returns its path.

    Args:
        run_dir: Output folder (created if needed).
        config_dict: The resolved configuration (``Config.to_dict()``).
        metrics: ``evaluate`` output: {protocol: {metric: value, "counts": ...}}.
        history: Training history ({name: per-epoch values}, may be nested).
        wall_time_s: Wall-clock seconds of the run.
    """
    os.makedirs(run_dir, exist_ok=True)
    name = str(config_dict.get("model", "model"))
    data = config_dict.get("data", {}) if isinstance(config_dict.get("data"), Mapping) else {}
    lines = [f"# afetler_tf run: {name}", "",
             f"Data: {data.get('source', '?')}, split {data.get('split', '?')} (seed {data.get('seed', '?')}). "
             f"Wall time: {wall_time_s:.1f} s.", ""]
    protocols = [key for key, value in metrics.items() if isinstance(value, Mapping)]
    for protocol in protocols:
        lines += _protocol_section(run_dir, name, protocol, metrics[protocol])
    if not protocols:
        lines += ["No evaluation metrics (e.g. split 'none' has no test set).", ""]
    lines += _training_section(run_dir, history)
    lines += ["## Configuration", "", "```json",
              json.dumps(files.jsonable(config_dict), indent=2, sort_keys=True), "```", ""]
    return files.atomic_write_text(os.path.join(run_dir, "report.md"), "\n".join(lines))
