"""``python -m experiments SUITE [options]``: run one suite of the registry.

    python -m experiments list                         # the suites
    python -m experiments main seeds ablation cold     # benchmark suites, then BENCHMARKS.md
    python -m experiments gan_select                   # any other suite, with its own options
    python -m experiments SUITE --help                 # a suite's options
    python -m experiments render                       # only rewrite BENCHMARKS.md

Benchmark suites (main, seeds, ablation, cold) may be named together; each
other suite takes the options of its module (``experiments.<module>``).
"""

from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

from experiments.registry import BENCHMARK_SUITES, SUITES, listing


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "list"):
        print(__doc__ if not argv or argv[0] != "list" else listing())
        return 0
    name, rest = argv[0], argv[1:]
    if name == "render":
        from experiments import render
        return render.main(rest)
    if name not in SUITES:
        print(f"error: unknown suite {name!r}\n\n{listing()}", file=sys.stderr)
        return 2
    if name in BENCHMARK_SUITES:  # several benchmark suites in one call
        names = [name]
        while rest and rest[0] in BENCHMARK_SUITES:
            names.append(rest.pop(0))
        from experiments import benchmark
        return benchmark.main(["--suite", *names, *rest])
    suite = SUITES[name]
    module = importlib.import_module(f"experiments.{suite.module}")
    return module.main([*suite.args, *rest])


if __name__ == "__main__":
    sys.exit(main())
