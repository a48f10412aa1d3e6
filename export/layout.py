"""The TF Serving folder layout, with versions that appear all at once.

    BASE/<model_name>/<version>/saved_model.pb, variables/, assets/, export.json

TF Serving loads only sub-folders whose names are integers. A version is
staged in ``BASE/<model_name>/.tmp-<version>-<pid>`` (a name the server
ignores) and published by ``os.rename``, which is atomic on one file
system: a server polling the folder sees either no version or a complete
one. An export stages all its models before publishing any, so a failed
export publishes nothing. Temporary folders left by a killed export (their process is
gone) are removed by the next export.

Test hook: with ``AFETLER_EXPORT_TEST_PAUSE_S`` set, the export prints
``paused <temp folder>`` and sleeps that many seconds after writing its
first temporary folder, so a test can kill it mid-export.
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Callable, Iterable, Optional

TMP_PREFIX = ".tmp-"
PAUSE_ENV = "AFETLER_EXPORT_TEST_PAUSE_S"


def versions(model_dir: str) -> list[int]:
    """Integer-named version folders of ``model_dir``, ascending ([] if absent)."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(name) for name in os.listdir(model_dir)
                  if name.isdigit() and os.path.isdir(os.path.join(model_dir, name)))


def next_version(model_dirs: Iterable[str]) -> int:
    """One more than the largest version in any of ``model_dirs`` (1 if none)."""
    return max((v for d in model_dirs for v in versions(d)), default=0) + 1


def check_free(model_dirs: Iterable[str], version: int, overwrite: bool) -> None:
    """Refuses a version that already exists somewhere, unless ``overwrite``.

    Raises:
        ValueError: ``version`` < 1.
        FileExistsError: The version exists and ``overwrite`` is False.
    """
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    taken = [os.path.join(d, str(version)) for d in model_dirs if version in versions(d)]
    if taken and not overwrite:
        raise FileExistsError(f"Version {version} already exists ({', '.join(taken)}); pass "
                              f"--overwrite to replace it, or leave --version out to write version "
                              f"{next_version(model_dirs)}.")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(model_dir: str) -> list[str]:
    """Removes temporary folders of exports whose process is gone; returns them."""
    if not os.path.isdir(model_dir):
        return []
    removed = []
    for name in os.listdir(model_dir):
        if not name.startswith(TMP_PREFIX):
            continue
        pid = name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and _pid_alive(int(pid)):
            continue  # another export is writing it right now
        shutil.rmtree(os.path.join(model_dir, name), ignore_errors=True)
        removed.append(name)
    return removed


def stage(model_dir: str, version: int, write: Callable[[str], None]) -> str:
    """Writes one version into a temporary folder beside its final place.

    Args:
        model_dir: ``BASE/<model_name>`` (created if absent).
        version: The version number (names the temporary folder).
        write: Writes the complete model into the folder it is given.

    Returns:
        The temporary folder, for :func:`publish` (or :func:`discard`).
    """
    os.makedirs(model_dir, exist_ok=True)
    tmp = os.path.join(model_dir, f"{TMP_PREFIX}{version}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write(tmp)
    except BaseException:
        discard([tmp])
        raise
    _maybe_pause(tmp)
    return tmp


def publish(tmp: str, model_dir: str, version: int, overwrite: bool = False) -> str:
    """Renames a staged folder into place as ``model_dir/<version>``; returns that path.

    Raises:
        FileExistsError: The version exists and ``overwrite`` is False (with
            ``overwrite`` the old one is renamed away first, so the version
            is briefly absent, never half-written).
    """
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final) and not overwrite:
        raise FileExistsError(f"{final} already exists; pass --overwrite to replace it.")
    _swap_in(tmp, final)
    return final


def discard(tmps: Iterable[str]) -> None:
    """Removes staged folders that were not published."""
    for tmp in tmps:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: str, final: str) -> None:
    old: Optional[str] = None
    if os.path.exists(final):
        head, pid = tmp.rsplit("-", 1)
        old = f"{head}-old-{pid}"
        os.rename(final, old)
    os.rename(tmp, final)
    if old:
        shutil.rmtree(old, ignore_errors=True)


_paused = []


def _maybe_pause(tmp: str) -> None:
    seconds = os.environ.get(PAUSE_ENV)
    if seconds and not _paused:
        _paused.append(tmp)
        print(f"paused {tmp}", flush=True)
        time.sleep(float(seconds))
