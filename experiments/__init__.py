"""Experiments: benchmarks, selections and stress runs (not installed with the package).

One harness, ``python -m experiments SUITE [options]`` (``python -m experiments
list`` names the suites; :mod:`experiments.registry`). Every suite writes its
results into one store, ``benchmarks/`` (:mod:`experiments.store`: a suite's
JSON and, where it has one, its ``## `` section as markdown), describes the
machine with :func:`experiments.machine.machine`, and ``python -m experiments
render`` (:mod:`experiments.render`) turns the store into BENCHMARKS.md.
Nothing here is imported by ``afetler_tf``, ``export`` or ``tuning``.

Run from the repository root (``experiments`` is importable from there).
"""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child_env(**extra) -> dict:
    """This process's environment for a child ``python -m experiments....``:
    the repository root first on PYTHONPATH (the package is not installed),
    plus ``extra``."""
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=ROOT + (os.pathsep + path if path else ""), **extra)
