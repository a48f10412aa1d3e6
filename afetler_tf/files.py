"""Small I/O helpers: atomic writes of anything a later step or a server reads."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from typing import Mapping

import numpy as np


def jsonable(value):
    """Plain-JSON copy: numpy scalars/arrays converted, NaN and inf -> None."""
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def atomic_write_text(path: str, text: str) -> str:
    """Writes ``text`` to a temp file beside ``path``, then renames it into place."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write(path: str, write) -> str:
    """Calls ``write(binary_file)`` on a temp file beside ``path``, then renames
    it into place: a reader sees the old file or the whole new one, never a part."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp makes 0600; a server or another user reads these
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    return path


def umask() -> int:
    """The process umask, read from /proc where possible (setting it to read
    it is not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path: str, payload: Mapping) -> str:
    """Writes ``payload`` as JSON atomically (temp file + ``os.replace``).

    NumPy values become plain numbers and NaN/inf become null, so the file is
    strict JSON. Returns ``path``.
    """
    text = json.dumps(jsonable(payload), indent=2, sort_keys=True, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def read_json(path: str) -> dict:
    """Reads a JSON file, naming it when it is absent or malformed."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist: was it written there?")
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e}).") from e
