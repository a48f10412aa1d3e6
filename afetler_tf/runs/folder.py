"""The run folder: its layout, its state, and the lock a fit holds on it.

:class:`RunFolder` is the one place that names the files of a run directory
(``python -m afetler_tf.fit --out DIR``)::

    config.json       the resolved config            metrics.json   scores, by protocol
    history.json      per-stage training logs        report.md      results table + plots
    weights/          the model                      data/          the tables it was trained on
    index/item_vectors.npz  the item index (tower models)
    added_items.csv   items added after the fit      run_state.json running / finished
    checkpoints/      resumable stages               workers/       a multi-worker fit's workers
    scan.json, vocab/ a streamed run's data scan and vocabularies
    .lock             held by the fit writing the folder (not a run file)

and decides what a new fit does with an existing folder (:meth:`RunFolder.check`):
start, resume an unfinished run of the same config, or refuse (finished run,
different config, foreign files) unless told to overwrite. This module does
not import TensorFlow, so the command line can take the lock and check the
folder before it loads anything.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil

from afetler_tf import files


class RunDirError(ValueError):
    """``--out DIR`` holds something a new fit must not silently overwrite."""


class RunLockedError(RuntimeError):
    """Another process holds the lock of the run directory."""


class RunFolder:
    """A run directory at ``root`` (it need not exist yet)."""

    CONFIG = "config.json"
    METRICS = "metrics.json"
    HISTORY = "history.json"
    REPORT = "report.md"
    WEIGHTS = "weights"
    DATA = "data"
    INDEX = os.path.join("index", "item_vectors.npz")
    ADDED_ITEMS = "added_items.csv"
    RUN_STATE = "run_state.json"
    CHECKPOINTS = "checkpoints"
    WORKERS = "workers"
    SCAN = "scan.json"
    VOCAB = "vocab"
    LOCK = ".lock"

    def __init__(self, root: str):
        self.root = root

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    @property
    def config(self) -> str:
        return self.path(self.CONFIG)

    @property
    def metrics(self) -> str:
        return self.path(self.METRICS)

    @property
    def history(self) -> str:
        return self.path(self.HISTORY)

    @property
    def weights(self) -> str:
        return self.path(self.WEIGHTS)

    @property
    def checkpoints(self) -> str:
        return self.path(self.CHECKPOINTS)

    def worker_metrics(self, task: str) -> str:
        return self.path(self.WORKERS, f"{task}.json")

    def is_run(self) -> bool:
        """True when the folder holds a written run (its ``config.json``)."""
        return os.path.exists(self.config)

    def _contents(self) -> list:
        """The names in the folder that belong to a run (the lock file left out)."""
        return [name for name in os.listdir(self.root) if name != self.LOCK]

    def check(self, config: dict, overwrite: bool = False) -> str:
        """What ``fit --out`` does here: "new", "resume" or (overwrite) "overwrite".

        Raises:
            RunDirError: the folder holds a finished run, a run of another
                config, or files that are not a run, and ``overwrite`` is off.
        """
        out, state_path = self.root, self.path(self.RUN_STATE)
        if not os.path.isdir(out) or not self._contents():
            return "new"
        if overwrite:
            shutil.rmtree(self.checkpoints, ignore_errors=True)
            if os.path.exists(state_path):
                os.remove(state_path)
            return "overwrite"
        if not os.path.exists(state_path):
            what = "a run written before resumable runs" if os.path.exists(
                self.metrics) else "files that are not a fit run"
            raise RunDirError(f"{out} holds {what}. Choose another --out, or pass --overwrite to "
                              f"replace it.")
        state = files.read_json(state_path)
        if state.get("status") == "finished":
            raise RunDirError(f"{out} holds a finished run (see {out}/{self.METRICS}). Choose "
                              f"another --out, or pass --overwrite to train it again.")
        if state.get("config") != config:
            changed = _changed_fields(state.get("config") or {}, config)
            raise RunDirError(f"{out} holds an unfinished run of a different config (changed: "
                              f"{', '.join(changed) or 'config'}). Run the same command again to "
                              f"resume it, choose another --out, or pass --overwrite.")
        return "resume"

    def mark(self, config: dict, status: str, **extra) -> None:
        """Writes ``run_state.json``: status "running" or "finished" + config."""
        files.write_json(self.path(self.RUN_STATE), {"status": status, "config": config, **extra})

    def forget(self) -> None:
        """Removes ``run_state.json`` (and the folder if that leaves it empty but
        for the lock file, which goes too: a later fit makes a new one)."""
        path = self.path(self.RUN_STATE)
        if os.path.exists(path):
            os.remove(path)
        if os.path.isdir(self.root) and not self._contents():
            if os.path.exists(self.path(self.LOCK)):
                os.remove(self.path(self.LOCK))
            try:
                os.rmdir(self.root)
            except OSError:  # another fit has just made its lock file here
                pass

    def lock(self):
        """Takes ``.lock`` (an exclusive, non-blocking ``flock``) and writes this
        process's id into it; returns the open file, whose closing (or the
        process's end, crash or kill included) releases the lock.

        Raises:
            RunLockedError: another process holds it (its id in the message).
        """
        out = self.root
        os.makedirs(out, exist_ok=True)
        path = self.path(self.LOCK)
        while True:
            handle = open(path, "a+")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    handle.close()
                    raise
                handle.seek(0)
                pid = handle.read().strip() or "unknown"
                handle.close()
                raise RunLockedError(f"another fit is running in {out} (pid {pid}); wait for it "
                                     f"to end, or choose another --out.") from None
            try:  # the holder before us may have removed the file (forget): retry
                same = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            handle.close()
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return handle


def _changed_fields(old: dict, new: dict, prefix: str = "") -> list:
    changed = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += _changed_fields(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append(f"{prefix}{key}")
    return changed
