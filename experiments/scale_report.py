"""Renders benchmarks/scale.md and scale.png from the figures of scale_bench.

Only formatting: every number comes from the payload ``scale_bench`` measured.
The sizes and the growth exponent live here, and :mod:`experiments.scale_bench`
imports them (this module imports nothing from it).
"""

from __future__ import annotations

import os

import numpy as np

from experiments import store

# name -> (interactions, catalogue items, catalogue users) of a synthetic log.
SIZES = {"100k": (100_000, 10_000, 10_000), "1M": (1_000_000, 100_000, 100_000),
         "10M": (10_000_000, 1_000_000, 1_000_000),
         "1M@1Mitems": (1_000_000, 1_000_000, 1_000_000)}  # 10M's catalogue, 1M interactions


def exponent(xs, ys) -> float:
    """Slope of log(y) against log(x) (least squares): y ~ x^slope."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0]) if len(xs) > 1 else float("nan")


def _growing(sizes: list) -> list:
    """The sizes whose catalogue grows with the log (100k, 1M, 10M), in order."""
    return sorted((s for s in sizes if "@" not in s["size"]), key=lambda s: s["interactions"])


def _same_vocab_pairs(sizes: list) -> list:
    """(smaller, larger) runs that share a catalogue, e.g. 1M@1Mitems vs 10M."""
    by_catalogue = {}
    for s in sizes:
        by_catalogue.setdefault((s["catalogue_items"], s["catalogue_users"]), []).append(s)
    return [sorted(group, key=lambda s: s["interactions"]) for group in by_catalogue.values()
            if len(group) > 1]


def table(sizes: list) -> list:
    lines = ["| run | interactions | catalogue items | items seen (vocab) | users seen | "
             "examples/s | peak RSS (MiB) | scan + build (s) |", "|---" * 8 + "|"]
    for s in sorted(sizes, key=lambda s: (s["interactions"], s["catalogue_items"])):
        lines.append(f"| {s['size']} | {s['interactions']:,} | {s['catalogue_items']:,} | "
                     f"{s['items']:,} | {s['users']:,} | {s['examples_per_second']:,.0f} | "
                     f"{s['peak_rss_mib']:,.0f} | {s['setup_seconds']:.0f} |")
    return lines


def growth(sizes: list) -> list:
    lines, grow = [], _growing(sizes)
    if len(grow) > 1:
        x = [s["interactions"] for s in grow]
        lines.append(f"- Growing catalogue ({', '.join(s['size'] for s in grow)}): peak RSS ~ "
                     f"n^{exponent(x, [s['peak_rss_mib'] for s in grow]):.2f}, scan + build time ~ "
                     f"n^{exponent(x, [s['setup_seconds'] for s in grow]):.2f}, throughput ~ "
                     f"n^{exponent(x, [s['examples_per_second'] for s in grow]):.2f} "
                     f"(n = interactions; the catalogue grows 10x with n here).")
    for small, large in _same_vocab_pairs(sizes):
        rss = large["peak_rss_mib"] / small["peak_rss_mib"]
        speed = large["examples_per_second"] / small["examples_per_second"]
        x = [small["interactions"], large["interactions"]]
        lines.append(f"- Same catalogue ({small['catalogue_items']:,} items), {small['size']} -> "
                     f"{large['size']}: peak RSS x{rss:.2f} (target <= 2; exponent "
                     f"{exponent(x, [small['peak_rss_mib'], large['peak_rss_mib']]):.3f}), "
                     f"throughput x{speed:.2f} (target within 20%: "
                     f"{'met' if abs(speed - 1) <= 0.2 else 'NOT met'}). The model's vocabularies are "
                     f"the ids seen in training, so {large['size']} holds "
                     f"{large['items'] / small['items']:.1f}x the item rows and "
                     f"{large['users'] / small['users']:.1f}x the user rows of {small['size']}.")
    return lines


def workers(rows: list) -> list:
    if not rows:
        return ["Fit time on 1 vs 2 workers: not run (--no-workers)."]
    lines = ["| workers | fit (s) | wall incl. start-up (s) |", "|---|---|---|"]
    lines += [f"| {r['workers']} | {r['fit_seconds']:.1f} | {r['wall_seconds']:.1f} |" for r in rows]
    return lines


def write(payload: dict, directory: str) -> None:
    """Writes scale.md (a ``## `` section) and scale.png into ``directory``."""
    sizes, settings, m = payload["sizes"], payload["settings"], payload["machine"]
    missing = [name for name in SIZES if name not in {s["size"] for s in sizes}]
    text = ["## Scale: streamed training cost vs log size", "",
            f"`python -m experiments scale` on {m['platform']}, {m['cpus']} CPUs, TF "
            f"{m['tensorflow']}; 1-minute load average {m.get('load_average_at_start', float('nan')):.1f} "
            f"at the start (other jobs on the same cores inflate the timings). Each size "
            f"runs in a fresh process (peak RSS = that process's `ru_maxrss`): one streaming scan "
            f"of every record (vocabularies, counts), model build, then {settings['steps']} "
            f"batches of {settings['batch']}; examples/s is measured over batches "
            f"{settings['warmup'] + 1}-{settings['steps']} (not a full epoch). Model: AFETLER "
            f"streamed network (no MCAU), embedding 32, towers [64, 32]; optimizer "
            f"`{settings.get('optimizer', 'adam')}`.", "", *table(sizes), "",
            *growth(sizes), ""]
    if missing:
        text += [f"Not run: {', '.join(missing)} (run `python -m experiments scale --sizes "
                 f"{' '.join(missing)}`).", ""]
    text += ["Fit time, one full epoch of the 100k log (`fit --stream`, 1 worker vs 2 local "
             "workers with MultiWorkerMirroredStrategy on 127.0.0.1; both share the same 2 cores):",
             "", *workers(payload["workers"]), "", "![scale](scale.png)", ""]
    store.write_text("scale.md", "\n".join(text), directory)
    _plot(sizes, store.path("scale.png", directory))


def _plot(sizes: list, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    grow = _growing(sizes)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key, label in ((axes[0], "examples_per_second", "examples/s"),
                           (axes[1], "peak_rss_mib", "peak RSS (MiB)")):
        ax.loglog([s["interactions"] for s in grow], [s[key] for s in grow], "o-",
                  label="catalogue grows with n")
        for pair in _same_vocab_pairs(sizes):
            ax.loglog([s["interactions"] for s in pair], [s[key] for s in pair], "s--",
                      label=f"same catalogue ({pair[0]['catalogue_items']:,} items)")
        ax.set_xlabel("interactions")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
