"""The markdown table of ``python -m experiments export`` (benchmarks/export.md)."""

from __future__ import annotations

TARGETS = ("Targets (issue 5, 2 cores): ML-100k catalogue, BruteForce index: one request p50 <= 1 ms, "
           "batch of 256 p50 <= 5 ms; 1M-item catalogue: ScaNN one request p50 <= 5 ms with "
           "recall@10 >= 0.95 against BruteForce.")


def _ms(value) -> str:
    return "" if value is None else f"{value:.2f}"


def _load(report: dict) -> str:
    load = report.get("load_average")
    return "unknown" if not load else f"{load[0]:.1f} before, {load[1]:.1f} after"


def _variant(row: dict) -> str:
    """The row's serving set-up as a label suffix ("" = TensorFlow's defaults)."""
    return (" + XLA" if row.get("xla") else "") + (f" + inter-op {row['inter_op']}" if row.get("inter_op") else "")


def _row(row: dict) -> str:
    if row.get("status"):
        cells = [row["catalogue"], f"{row['items']:,}", row["index"], row["status"], "", "", "", "", ""]
    else:
        index = row["index"] + _variant(row)
        cells = [row["catalogue"], f"{row['items']:,}", index, f"{row['build_s']:.1f}",
                 _ms(row["p50_ms_1"]), _ms(row["p99_ms_1"]), _ms(row["p50_ms_256"]),
                 _ms(row["p99_ms_256"]), f"{row['recall@10']:.3f}"]
    return "| " + " | ".join(cells) + " |"


def targets(report: dict) -> list[str]:
    """One line per issue-5 target: met or missed, with the figure."""
    lines = []
    for bf in (r for r in report["rows"] if r["catalogue"] == "ml-100k" and r["index"] == "brute_force"
               and not r.get("status")):
        one, batch = bf["p50_ms_1"], bf["p50_ms_256"]
        lines.append(f"- ML-100k BruteForce{_variant(bf)}, 1 request p50 {one:.2f} ms "
                     f"(<= 1 ms: {'met' if one <= 1 else 'missed'}); batch 256 p50 {batch:.2f} ms "
                     f"(<= 5 ms: {'met' if batch <= 5 else 'missed'})")
    rows = {(r["catalogue"], r["index"], bool(r.get("xla")), r.get("inter_op", 0)): r for r in report["rows"]}
    sc = rows.get(("synthetic-1m", "scann", False, 0))
    if sc and not sc.get("status"):
        ok = sc["p50_ms_1"] <= 5 and sc["recall@10"] >= 0.95
        lines.append(f"- 1M ScaNN, 1 request p50 {sc['p50_ms_1']:.2f} ms, recall@10 {sc['recall@10']:.3f} "
                     f"({'met' if ok else 'missed'})")
    elif sc:
        lines.append("- 1M ScaNN: not measured (scann not installed)")
    return lines


def markdown(report: dict) -> str:
    """The report as a markdown section."""
    head = ["## Export: retrieval index latency", "",
            f"Exported index SavedModel reloaded with `tf.saved_model.load`, `serving_default` called with "
            f"raw features of real ML-100k users (profile + history), k = {report['k']}; model "
            f"`{report['model']}`, d = {report['dimension']}, {report['cpus']} CPUs, TensorFlow "
            f"{report['tensorflow']}, ScaNN {report['scann'] or 'not installed'}. Latency = the signature "
            f"call (query tower + index), no JSON or network. Recall@10 of ScaNN against BruteForce on "
            f"{report['batch']} users. \"+ XLA\": the same export served with XLA auto-clustering "
            f"(`TF_XLA_FLAGS=\"{report.get('xla_flags', '')}\"`; `tensorflow_model_server "
            f"--xla_cpu_compilation_enabled=true`); \"+ inter-op 1\": TensorFlow's inter-op thread pool "
            f"set to one thread (`tensorflow_model_server --tensorflow_inter_op_parallelism=1`). "
            f"`python -m experiments export` "
            f"({report.get('bench_seconds', '?')} s; 1-minute load average {_load(report)}).", "",
            "| catalogue | items | index | build+save (s) | p50 1 req (ms) | p99 1 req (ms) | "
            "p50 256 (ms) | p99 256 (ms) | recall@10 |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    body = [_row(row) for row in report["rows"]]
    return "\n".join(head + body + ["", TARGETS, ""] + targets(report)) + "\n"
