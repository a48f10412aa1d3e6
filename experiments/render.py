"""``python -m experiments render``: BENCHMARKS.md from the result store.

The four benchmark suites' files (``benchmarks/{main,seeds,ablation,cold}.json``)
become tables and charts (:mod:`experiments.benchmark_report`), ``peers.json`` a table
right after the seeds suite's, beside its AFETLER rows (:mod:`experiments.peers_report`); the sections
the other suites wrote (``benchmarks/<name>.md``: ``datasets``, ``tuning``,
``gan_select``, ``export``, then any other alphabetically) are appended as
they are, their relative image links rebased onto the store's folder. Nothing else is
written: no README block.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Optional, Sequence

from experiments import peers_report, store
from experiments.benchmark_report import (COLD_MODELS, C_COLUMNS, COLD_TEXT, PROTOCOLS, R_COLUMNS,
                                          T_COLUMNS, ablation_table, afetler_targets, chart,
                                          cold_targets, grouped, item_item_line, load_suites,
                                          machine_line, metric_table, rating_blend_line, speed_line,
                                          stale_defaults, user_taste_line)

# The sections other suites write as ``benchmarks/<name>.md``, appended in
# this order, then any other ``*.md`` there alphabetically.
SECTION_ORDER = ("datasets", "tuning", "gan_select", "export")

TITLES = {"main": "All models, seed 42", "seeds": "All models, seeds 1-3 (mean ± std)",
          "ablation": "AFETLER ablations, seeds 1-3 (mean ± std; change vs full)",
          "cold": "New items: cold-items split, protocol C, seeds 1-3 (mean ± std)"}


def section_files(directory: str) -> list:
    """Paths of the ``*.md`` sections in ``directory``, in SECTION_ORDER first."""
    names = sorted(f[:-3] for f in os.listdir(directory) if f.endswith(".md")) \
        if os.path.isdir(directory) else []
    ordered = [n for n in SECTION_ORDER if n in names] + [n for n in names if n not in SECTION_ORDER]
    return [os.path.join(directory, f"{n}.md") for n in ordered]


def rebase_images(text: str, directory: str) -> str:
    """Relative image links of a section stored in ``directory`` (``![x](x.png)``),
    as BENCHMARKS.md beside that folder sees them (``![x](benchmarks/x.png)``)."""
    def rebase(match):
        target = match.group(2)
        if re.match(r"^([a-z]+:|/|#)", target):
            return match.group(0)
        return f"{match.group(1)}({os.path.join(directory, target)})"
    return re.sub(r"(!\[[^\]]*\])\(([^)\s]+)\)", rebase, text)


def suite_section(directory: str, name: str, suite: dict) -> list:
    """The lines of one benchmark suite's section."""
    groups = grouped(suite["runs"])
    out = [f"## {TITLES[name]}", "", machine_line(suite), ""]
    if name == "ablation":
        out += [ablation_table(groups), ""]
        if any(r.get("from_suite") for r in suite["runs"]):
            out += ["The full model's rows are the seeds suite's AFETLER runs (the same "
                    "configuration and seeds), not run twice.", ""]
        stale = stale_defaults(suite["runs"])
        return out + ([stale, ""] if stale else [])
    if name == "cold":
        order = [label for label in COLD_MODELS if label in groups]
        groups = {label: groups[label] for label in order + [g for g in groups if g not in order]}
        return out + [COLD_TEXT, "", metric_table(groups, "C", C_COLUMNS), "", cold_targets(groups), ""]
    out += ["### Protocol R (the paper's table)", "", metric_table(groups, "R", R_COLUMNS), "",
            "### Protocol T (full catalogue)", "", metric_table(groups, "T", T_COLUMNS), ""]
    if name == "seeds":
        out += [afetler_targets(groups), ""]
        for line in (item_item_line(groups.get("afetler", [])),
                     user_taste_line(groups.get("afetler", [])),
                     rating_blend_line(groups.get("afetler", []))):
            out += [line, ""] if line else []
    if name == "main" and speed_line(groups):
        out += [speed_line(groups), ""]
    path = chart(directory, groups, name)
    return out + [f"![{name}]({path})", ""]


def render(directory: str = store.DIR) -> str:
    """The text of BENCHMARKS.md (writes the suites' charts into ``directory``)."""
    out = ["# Benchmarks", "",
           "Regenerate with `python -m experiments main seeds ablation cold` "
           "(or one suite at a time; `python -m experiments render` rewrites this file from "
           "`benchmarks/*.json`).",
           "Data: MovieLens-100k, random 80/20 split of interactions, 10% of the training part "
           "held out for validation (early stopping, calibration); test never used for "
           "selection.", "", PROTOCOLS, ""]
    peers = peers_report.section(directory)  # right after the seeds suite, whose rows it reads
    for name, suite in load_suites(directory).items():
        out += suite_section(directory, name, suite)
        if name == "seeds" and peers:
            out, peers = out + [peers, ""], None
    if peers:
        out += [peers, ""]
    for path in section_files(directory):
        with open(path, encoding="utf-8") as f:
            out += [rebase_images(f.read().strip(), directory), ""]
    return "\n".join(out)


def write(directory: str = store.DIR, output: str = "BENCHMARKS.md") -> str:
    """Renders and writes ``output`` (atomically); returns its path."""
    from afetler_tf.files import atomic_write_text
    atomic_write_text(output, render(directory))
    return output


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments render", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default=store.DIR, help="the result store (suite files and sections)")
    p.add_argument("--output", default="BENCHMARKS.md")
    args = p.parse_args(argv)
    print(f"wrote {write(args.dir, args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
