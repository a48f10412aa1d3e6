"""Checkpoint and resume: per-epoch training state and finished stages.

A fit killed at any moment (SIGKILL included) and started again with the same
command loses at most the epoch it was in:

- :class:`StageCheckpoint` keeps one training stage's state in its folder:
  ``epochs/`` (model + optimizer, ``tf.train.CheckpointManager``, written at
  the end of every epoch), ``state.json`` (per-epoch logs, early-stopping
  state, the checkpoint it belongs to), ``best/`` (weights of the best epoch so
  far) and, once the stage is over, ``final/`` + ``done.json`` (the marker). A
  restarted stage restores the last epoch and goes on; a finished stage is
  skipped and its weights restored, so a kill in stage 2 never reruns stage 1.
(What ``fit --out DIR`` does with an existing DIR: :meth:`afetler_tf.runs.RunFolder.check`.)

Every JSON file is replaced atomically and written after the checkpoint it
names, so a kill between two writes leaves a consistent (older) state.
Under a multi-worker strategy only the chief writes here; the other workers
write to a scratch folder they delete; a worker restores a resumed stage
from the chief's folder and its own best epoch from its scratch copy.
"""

from __future__ import annotations

import os
import shutil
from typing import Optional

import numpy as np
import tensorflow as tf

from afetler_tf import files


def is_chief() -> bool:
    """True unless this process is a non-chief worker of a multi-worker strategy."""
    strategy = tf.distribute.get_strategy()
    extended = getattr(strategy, "extended", None)
    return bool(getattr(extended, "should_checkpoint", True))


class StageCheckpoint:
    """One training stage's resumable state in ``directory`` (module docstring).

    Args:
        directory: The stage's folder (read by every worker).
        model: The Keras model trained in this stage (its optimizer once compiled).
    """

    def __init__(self, directory: str, model: tf.keras.Model):
        self.directory, self.model = directory, model
        self._chief = is_chief()
        self._write_dir = directory if self._chief else os.path.join(
            directory, f"workertemp_{os.getpid()}")
        self.state = self._read("state.json") or {"epochs_done": 0, "logs": [], "wait": 0,
                                                  "best": None, "best_epoch": None,
                                                  "stopped": False}

    def _read(self, name: str) -> Optional[dict]:
        path = os.path.join(self.directory, name)
        return files.read_json(path) if os.path.exists(path) else None

    def _write(self, name: str, payload: dict) -> None:
        files.write_json(os.path.join(self._write_dir, name), payload)

    def finished(self) -> Optional[dict]:
        """The stage's history if it already finished (then its weights are restored)."""
        done = self._read("done.json")
        if done is not None:
            self._weights().read(os.path.join(self.directory, "final", "weights")).expect_partial()
        return done

    def _weights(self) -> tf.train.Checkpoint:
        # The network's layers only: a finished stage's optimizer must not leak
        # into the next stage's freshly compiled one.
        return tf.train.Checkpoint(layers=list(self.model.layers))

    def restore(self) -> int:
        """Restores the last finished epoch (model + optimizer); returns its count."""
        path = self.state.get("checkpoint")
        if path:
            self._training().read(os.path.join(self.directory, path)).expect_partial()
        return int(self.state["epochs_done"])

    def _training(self) -> tf.train.Checkpoint:
        return tf.train.Checkpoint(model=self.model, optimizer=self.model.optimizer)

    def callback(self, monitor: Optional[str], mode: str, patience: int):
        """The per-epoch callback (replaces EarlyStopping; None monitor = no stopping)."""
        return _EpochCheckpoint(self, monitor, mode, patience)

    def end_epoch(self, epoch: int, logs: dict, improved: bool) -> None:
        """Saves epoch ``epoch`` (0-based): checkpoint, best weights, then state.json."""
        prefix = f"epochs/epoch-{epoch + 1}"
        self._training().write(os.path.join(self._write_dir, prefix))
        self.state["logs"] = self.state["logs"][:epoch] + [{k: float(v) for k, v in logs.items()}]
        if improved:
            self._weights().write(os.path.join(self._write_dir, "best", f"epoch-{epoch + 1}"))
            self.state["best_weights"] = f"best/epoch-{epoch + 1}"
        self.state.update(epochs_done=epoch + 1, checkpoint=prefix)
        self._write("state.json", self.state)
        self._prune(("epochs", "best"), keep=(prefix, self.state.get("best_weights")))

    def _prune(self, folders, keep) -> None:
        for folder in folders:
            path = os.path.join(self._write_dir, folder)
            for name in os.listdir(path) if os.path.isdir(path) else ():
                if not any(k and name.startswith(os.path.basename(k) + ".") for k in keep):
                    os.remove(os.path.join(path, name))

    def finish(self, history: dict) -> None:
        """Restores the best epoch's weights, saves them as final, writes done.json."""
        best = self.state.get("best_weights")
        if best and self.state.get("best_epoch") is not None:
            # Each worker reads its own copy (replicas hold the same weights): the
            # chief may already have removed best/ by the time another worker ends.
            self._weights().read(os.path.join(self._write_dir, best)).expect_partial()
        self._weights().write(os.path.join(self._write_dir, "final", "weights"))
        self._write("done.json", history)
        for folder in ("epochs", "best") if self._chief else ():  # final/ is all a rerun needs
            shutil.rmtree(os.path.join(self._write_dir, folder), ignore_errors=True)
        if not self._chief:
            shutil.rmtree(self._write_dir, ignore_errors=True)


class _EpochCheckpoint(tf.keras.callbacks.Callback):
    """Early stopping whose state survives a kill, plus the per-epoch checkpoint."""

    def __init__(self, stage: StageCheckpoint, monitor, mode: str, patience: int):
        super().__init__()
        self._stage, self._monitor, self._patience = stage, monitor, patience
        self._better = np.greater if mode == "max" else np.less

    def on_epoch_end(self, epoch, logs=None):
        logs, state = dict(logs or {}), self._stage.state
        value = logs.get(self._monitor) if self._monitor else None
        improved = value is not None and (state["best"] is None or self._better(value, state["best"]))
        if improved:
            state.update(best=float(value), best_epoch=epoch + 1, wait=0)
        elif value is not None:
            state["wait"] += 1
        if value is not None and state["wait"] >= self._patience:
            state["stopped"] = True
            self.model.stop_training = True
        self._stage.end_epoch(epoch, logs, improved)
