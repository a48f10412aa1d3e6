"""The result store: ``benchmarks/``, one file per suite.

``<name>.json`` holds a suite's figures (``variants.jsonl``: one run a line),
``<name>.md`` the ``## `` section a command renders from them, ``<name>.png``
its chart. BENCHMARKS.md is rendered from these files alone
(:mod:`experiments.render`).
"""

from __future__ import annotations

import json
import os
from typing import Optional

DIR = "benchmarks"


def path(name: str, directory: str = DIR) -> str:
    """``directory/name`` (``name`` with its extension)."""
    return os.path.join(directory, name)


def read(name: str, directory: str = DIR) -> Optional[dict]:
    """The JSON file ``directory/name``, or None when there is none."""
    from afetler_tf.files import read_json
    file = path(name, directory)
    return read_json(file) if os.path.exists(file) else None


def write(name: str, payload: dict, directory: str = DIR) -> str:
    """Writes ``payload`` as JSON to ``directory/name`` (atomically); returns the path."""
    from afetler_tf.files import write_json
    os.makedirs(directory, exist_ok=True)
    file = path(name, directory)
    write_json(file, payload)
    return file


def write_text(name: str, text: str, directory: str = DIR) -> str:
    """Writes a section (markdown) to ``directory/name`` (atomically); returns the path."""
    from afetler_tf.files import atomic_write_text
    os.makedirs(directory, exist_ok=True)
    file = path(name, directory)
    atomic_write_text(file, text)
    return file


def append_line(file: str, record: dict) -> None:
    """Appends ``record`` as one JSON line (a kill loses at most that line)."""
    os.makedirs(os.path.dirname(os.path.abspath(file)), exist_ok=True)
    with open(file, "a") as f:
        f.write(json.dumps(record) + "\n")


def read_lines(file: str) -> list:
    """The records of a JSON-lines file ([] when there is none)."""
    if not os.path.exists(file):
        return []
    with open(file) as f:
        return [json.loads(line) for line in f if line.strip()]
