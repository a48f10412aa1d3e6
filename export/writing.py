"""Writes a server reads: atomic, durable, and readable by another user.

Folders get ``0o777 & ~umask`` and files ``0o666 & ~umask`` (0755 / 0644
under umask 022), the modes any newly created file or folder gets.
"""

from __future__ import annotations

import json
import os
from typing import Mapping

from afetler_tf.files import umask


def make_readable(path: str) -> None:
    """Gives ``path`` (a file, or a folder and all it holds) the modes a new file
    or folder gets from the umask: 0o666 / 0o777 & ~umask (0644 / 0755 under 022)."""
    mask = umask()
    file_mode, dir_mode = 0o666 & ~mask, 0o777 & ~mask
    if not os.path.isdir(path):
        os.chmod(path, file_mode)
        return
    for root, dirs, files in os.walk(path):
        os.chmod(root, dir_mode)
        for name in files:
            full = os.path.join(root, name)
            if not os.path.islink(full):
                os.chmod(full, file_mode)


def write_text(path: str, text: str) -> str:
    """Writes ``text`` atomically (a temp file beside ``path``, fsync, ``os.replace``),
    mode 0o666 & ~umask (0644 under umask 022) as any newly created file; returns ``path``.

    A temp file left by a killed writer is named ``.<name>.tmp-<pid>``; :func:`export.layout.recover`
    removes those of dead processes in the base folder.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(directory)
    return path


def write_json(path: str, payload: Mapping) -> str:
    """``payload`` as strict JSON (NumPy values converted, NaN/inf -> null), via :func:`write_text`."""
    from afetler_tf.files import jsonable  # plain Python, no TensorFlow

    return write_text(path, json.dumps(jsonable(payload), indent=2, sort_keys=True, allow_nan=False) + "\n")


def fsync_dir(directory: str) -> None:
    """Makes renames in ``directory`` durable (a power cut, not a kill, could lose them)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
