"""The TF Serving folder layout, with versions that appear all at once.

    BASE/<model_name>/<version>/saved_model.pb, variables/, assets/, export.json
    BASE/models.config
    BASE/publish.json          (only while a set of versions is being published)

TF Serving loads only sub-folders whose names are integers. Each version is
staged in ``BASE/<model_name>/.tmp-<version>-<pid>`` (a name the server
ignores); when every model is staged, :func:`publish_set` publishes them as
one set:

1. ``BASE/publish.json`` (the journal) is created, exclusively: the version,
   the pid, and per model its staged folder, its backup name and whether the
   version existed before;
2. per model: with ``--overwrite`` the existing version is renamed aside to
   ``.old-<version>-<pid>`` (never deleted yet), then the staged folder is
   renamed to ``<version>`` (``os.rename``: atomic on one file system);
3. the journal is rewritten as ``committed`` with the new models.config text;
4. models.config is replaced (atomically), the backups are deleted, and the
   journal is removed.

A publish that dies anywhere (SIGKILL included) is repaired by
:func:`recover`, which the next export, ``--promote`` and :func:`clean_stale`
run first: before step 3 it rolls the set back (the new folders are removed,
the backups renamed back), after it, it finishes steps 4. So every model
always has a complete version: the old one or the new one, the same for all
of them. Temporary folders of dead exports are removed; a backup whose
version folder is missing and that no journal covers is renamed back.

Files and folders are made readable for the server (:mod:`export.writing`).

Test hook: with ``AFETLER_EXPORT_TEST_PAUSE_S`` set, the export prints
``paused <temp folder>`` and sleeps that many seconds after writing its
first temporary folder, so a test can kill it mid-export.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import time
from typing import Callable, Iterable, Mapping, Optional

from export.writing import fsync_dir, make_readable, write_text

TMP_PREFIX = ".tmp-"
OLD_PREFIX = ".old-"
JOURNAL = "publish.json"
PAUSE_ENV = "AFETLER_EXPORT_TEST_PAUSE_S"

_OLD_NAME = re.compile(r"^(?:\.old-(\d+)-(\d+)|\.tmp-(\d+)-old-(\d+))$")  # a backup (+ the old naming)
# write_text's temp files of models.config and the journal (nothing else in BASE is touched)
_TEMP_FILE = re.compile(r"^\.{1,2}(?:models\.config|publish\.json)(?:\.tmp-\d+)?\.tmp-(\d+)$")


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
    model_dirs = list(model_dirs)
    taken = [os.path.join(d, str(version)) for d in model_dirs if version in versions(d)]
    if taken and not overwrite:
        raise FileExistsError(f"Version {version} already exists ({', '.join(taken)}); pass "
                              f"--overwrite to replace it, or leave --version out to write version "
                              f"{next_version(model_dirs)}.")


# -- stale folders ------------------------------------------------------------------------------

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):
        return False
    return True


def _stale(pid: int) -> bool:
    """Whether a folder or journal of process ``pid`` is left over: that process is
    gone, or it is this one (which starts its export with no publish in flight)."""
    return pid == os.getpid() or not _pid_alive(pid)


def _delete(path: str) -> None:
    """Removes a folder: first renamed to a ``.tmp-`` name (atomic), so a kill
    during the removal never leaves a half-deleted version or backup under a
    name that could be restored."""
    if not os.path.lexists(path):
        return
    head, name = os.path.split(path)
    doomed = os.path.join(head, f"{TMP_PREFIX}del{name}-{os.getpid()}")
    if os.path.lexists(doomed):
        shutil.rmtree(doomed, ignore_errors=True)
    os.rename(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def clean_stale(model_dir: str) -> list[str]:
    """Tidies ``model_dir`` after killed exports; returns the names removed.

    First :func:`recover` repairs a half-published set in the base folder
    (``model_dir``'s parent). Then, for folders of processes that are gone:
    ``.tmp-*`` (staged versions) are removed, and a backup ``.old-<v>-<pid>``
    is renamed back to ``<v>`` when that version is missing (else removed:
    the new version is in place). Folders of live exports are left alone.
    """
    recover(os.path.dirname(os.path.abspath(model_dir)))
    if not os.path.isdir(model_dir):
        return []
    removed = []
    for name in sorted(os.listdir(model_dir)):
        if not name.startswith((TMP_PREFIX, OLD_PREFIX)):
            continue
        pid = name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _stale(int(pid)):
            continue  # another export is writing it right now
        path = os.path.join(model_dir, name)
        old = _OLD_NAME.match(name)
        if old:
            final = os.path.join(model_dir, old.group(1) or old.group(3))
            if not os.path.lexists(final):
                os.rename(path, final)  # the version's only copy: put it back
                fsync_dir(model_dir)
                continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(name)
    return removed


def stage(model_dir: str, version: int, write: Callable[[str], None]) -> str:
    """Writes one version into a temporary folder beside its final place.

    Args:
        model_dir: ``BASE/<model_name>`` (created if absent).
        version: The version number (names the temporary folder).
        write: Writes the complete model into the folder it is given.

    Returns:
        The temporary folder, for :func:`publish_set` (or :func:`discard`);
        its folders and files readable (0755 / 0644 under umask 022).
    """
    os.makedirs(model_dir, exist_ok=True)
    tmp = os.path.join(model_dir, f"{TMP_PREFIX}{version}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write(tmp)
        make_readable(tmp)
    except BaseException:
        discard([tmp])
        raise
    _maybe_pause(tmp)
    return tmp


def discard(tmps: Iterable[str]) -> None:
    """Removes staged folders that were not published."""
    for tmp in tmps:
        shutil.rmtree(tmp, ignore_errors=True)


# -- publishing ---------------------------------------------------------------------------------

def publish(tmp: str, model_dir: str, version: int, overwrite: bool = False) -> str:
    """Publishes one staged folder as ``model_dir/<version>`` (:func:`publish_set`
    with one model, journal in ``model_dir``'s parent); returns that path.

    Raises:
        FileExistsError: The version exists and ``overwrite`` is False.
    """
    base = os.path.dirname(os.path.abspath(model_dir))
    return publish_set(base, {model_dir: tmp}, version, overwrite)[model_dir]


def publish_set(base: str, staged: Mapping[str, str], version: int, overwrite: bool = False,
                config: Optional[Callable[[], tuple]] = None) -> dict:
    """Publishes staged versions of several models as one set (module docstring).

    Args:
        base: The folder that holds the model folders (and the journal).
        staged: model folder (a child of ``base``) -> its staged folder.
        version: The version being published.
        overwrite: Replace existing ``<version>`` folders (kept as backups
            until the whole set is in place).
        config: Called once every folder is in place; returns ``(path, text)``
            of a file (models.config) to write as the commit's last step.

    Returns:
        model folder -> its ``<version>`` folder.

    Raises:
        FileExistsError: A version exists and ``overwrite`` is False, or
            another export (a live process) is publishing into ``base``.
        OSError: A rename failed; the set was rolled back before raising.
    """
    base = os.path.abspath(base)
    recover(base)  # a dead export's half-published set: repaired before looking at the folders
    models = []
    for model_dir, tmp in staged.items():
        model_dir = os.path.abspath(model_dir)
        if os.path.dirname(model_dir) != base or os.path.dirname(os.path.abspath(tmp)) != model_dir:
            raise ValueError(f"{model_dir} must be a folder of {base} holding {tmp}")
        had_old = os.path.lexists(os.path.join(model_dir, str(version)))
        if had_old and not overwrite:
            raise FileExistsError(f"{os.path.join(model_dir, str(version))} already exists; "
                                  f"pass --overwrite to replace it.")
        models.append({"dir": os.path.basename(model_dir), "staged": os.path.basename(tmp),
                       "backup": f"{OLD_PREFIX}{version}-{os.getpid()}", "had_old": had_old})
    journal = {"pid": os.getpid(), "version": int(version), "state": "publishing", "models": models,
               "config": None, "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
                   timespec="seconds")}
    _create_journal(base, journal)
    try:
        for m in models:
            folder = os.path.join(base, m["dir"])
            final = os.path.join(folder, str(version))
            if m["had_old"]:
                os.rename(final, os.path.join(folder, m["backup"]))  # kept until the set is in place
            os.rename(os.path.join(folder, m["staged"]), final)
            fsync_dir(folder)
        if config is not None:
            path, text = config()
            journal["config"] = {"name": os.path.relpath(os.path.abspath(path), base), "text": text}
        journal["state"] = "committed"
        write_text(os.path.join(base, JOURNAL), json.dumps(journal, indent=1) + "\n")
    except Exception:
        _roll_back(base, journal)  # a failed rename (disk, permissions): nothing published
        raise
    _finish(base, journal)
    return {os.path.join(base, m["dir"]): os.path.join(base, m["dir"], str(version)) for m in models}


def _create_journal(base: str, journal: dict) -> None:
    """Writes the journal, refusing when one exists (os.link: atomic, exclusive)."""
    os.makedirs(base, exist_ok=True)
    path = os.path.join(base, JOURNAL)
    tmp = os.path.join(base, f".{JOURNAL}.tmp-{os.getpid()}")
    write_text(tmp, json.dumps(journal, indent=1) + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        other = _read_journal(base) or {}
        raise FileExistsError(f"Another export (pid {other.get('pid')}) is publishing version "
                              f"{other.get('version')} into {base} ({path}); wait for it to end.") from None
    finally:
        os.unlink(tmp)
    fsync_dir(base)


def _read_journal(base: str) -> Optional[dict]:
    path = os.path.join(base, JOURNAL)
    try:
        with open(path, encoding="utf-8") as f:
            journal = json.load(f)
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise ValueError(f"{path} is not valid JSON ({e}): it is the journal of an interrupted "
                         f"publish; check the model folders against it and remove it.") from e
    if not isinstance(journal, dict) or not {"pid", "version", "state", "models"} <= set(journal):
        raise ValueError(f"{path} is not a publish journal; check the model folders and remove it.")
    return journal


def recover(base: str) -> Optional[str]:
    """Repairs a set that a dead export left half-published in ``base``.

    Returns:
        "rolled back" (killed before its commit: every model back on its old
        version, or without the new one), "finished" (killed after: the new
        set stays, models.config is written, the backups go), or None (no
        journal, or its export is still running).
    """
    base = os.path.abspath(base)
    if not os.path.isdir(base):
        return None
    for name in os.listdir(base):  # temp files of write_text, by dead processes
        match = _TEMP_FILE.match(name)
        if match and _stale(int(match.group(1))) and os.path.isfile(os.path.join(base, name)):
            os.unlink(os.path.join(base, name))
    journal = _read_journal(base)
    if journal is None or not _stale(int(journal["pid"])):
        return None
    if journal["state"] == "committed":
        _finish(base, journal)
        return "finished"
    _roll_back(base, journal)
    return "rolled back"


def _finish(base: str, journal: dict) -> None:
    config = journal.get("config")
    if config:
        write_text(os.path.join(base, config["name"]), config["text"])
    for m in journal["models"]:
        _delete(os.path.join(base, m["dir"], m["backup"]))
    os.unlink(os.path.join(base, JOURNAL))
    fsync_dir(base)


def _roll_back(base: str, journal: dict) -> None:
    """Every model back to its state before the publish (each step safe to redo)."""
    version = str(journal["version"])
    for m in journal["models"]:
        folder = os.path.join(base, m["dir"])
        final, staged = os.path.join(folder, version), os.path.join(folder, m["staged"])
        backup = os.path.join(folder, m["backup"])
        if os.path.lexists(backup):
            _delete(final)  # the new copy, if it got in
            os.rename(backup, final)
        elif not m["had_old"] and not os.path.lexists(staged):
            _delete(final)  # published by this export (absent if never staged)
        shutil.rmtree(staged, ignore_errors=True)
        fsync_dir(folder)
    os.unlink(os.path.join(base, JOURNAL))
    fsync_dir(base)


_paused = []


def _maybe_pause(tmp: str) -> None:
    seconds = os.environ.get(PAUSE_ENV)
    if seconds and not _paused:
        _paused.append(tmp)
        print(f"paused {tmp}", flush=True)
        time.sleep(float(seconds))
