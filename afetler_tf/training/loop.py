"""The training loop shared by every Keras model (baselines, two-tower, AFETLER).

Seeding, ``model.fit`` with early stopping on a validation metric (best
weights restored), resumable checkpoints (:mod:`afetler_tf.training.checkpoints`)
and one compact progress line per epoch.
"""

from __future__ import annotations

import contextlib
import gc
import random
import time
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from afetler_tf.config import TrainConfig
from afetler_tf.training.checkpoints import StageCheckpoint
from afetler_tf.training.examples import make_dataset
from afetler_tf.training.optimizers import make_optimizer


# Train steps one call of a small model's train function runs (``compile(steps_per_execution=)``):
# the MF (its own fit and the rating blend's) takes small batches, and its short step is mostly
# the per-call overhead; the updates and the epochs' figures are the same. Not for the towers'
# stages: there it changed the dropout draws and saved nothing (docs/decisions.md, 2026-12-02,
# "Fewer Python calls for the MF's small steps").
SMALL_MODEL_STEPS_PER_EXECUTION = 64


def set_seed(seed: int) -> None:
    """Seeds Python, NumPy and TensorFlow (weight initialisation, shuffling)."""
    random.seed(seed)
    np.random.seed(seed)
    tf.keras.utils.set_random_seed(seed)


@contextlib.contextmanager
def collector_skips_what_exists():
    """Python's cyclic garbage collector leaves alone every object that exists
    when the block starts (``gc.freeze``) until it ends: the training examples
    hold millions of id strings in object arrays, which each full collection
    would otherwise walk (seconds between epochs). Objects made inside the
    block are collected as usual; reference counting frees anything, as always.
    (``gc.unfreeze`` at the end also releases what a caller froze before.)"""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class EpochLog(tf.keras.callbacks.Callback):
    """One compact progress line per epoch (Keras' own bar is noisy in logs)."""

    def __init__(self, monitor: str, prefix: str = ""):
        super().__init__()
        self._monitor, self._prefix = monitor, prefix
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        print(f"{self._prefix}epoch {epoch + 1:3d}  loss {logs.get('loss', float('nan')):.4f}  "
              f"{self._monitor} {logs.get(self._monitor, float('nan')):.4f}  "
              f"({time.perf_counter() - self._start:.1f}s)", flush=True)


class MeanOverReplicas(tf.keras.callbacks.Callback):
    """Turns Keras' per-epoch logs from sums over replicas into means.

    Under a strategy with several replicas Keras reduces the values a TFRS
    ``train_step``/``test_step`` returns by summing them over the replicas, so
    with N replicas every logged loss would read N times its per-replica mean.
    Runs first, so later callbacks (early stopping, checkpoints) see means.
    """

    def __init__(self, replicas: int):
        super().__init__()
        self._replicas = replicas

    def on_epoch_end(self, epoch, logs=None):
        for key, value in list((logs or {}).items()):
            logs[key] = float(value) / self._replicas


def fit_with_early_stopping(model: tf.keras.Model, train: tf.data.Dataset,
                            validation: Optional[tf.data.Dataset], epochs: int, patience: int,
                            monitor: str = "val_rmse", verbose: int = 1,
                            checkpoint_dir: Optional[str] = None, prefix: str = "",
                            callbacks: Sequence[tf.keras.callbacks.Callback] = (),
                            steps_per_epoch: Optional[int] = None,
                            progress: Optional[tf.keras.callbacks.Callback] = None,
                            early_stop: Optional[bool] = None) -> dict:
    """Runs ``model.fit``, stopping on ``monitor`` and restoring the best weights.

    Args:
        model: A compiled model whose logs include the monitored key.
        train: Training batches.
        validation: Validation batches (their loss is logged as ``val_*``
            each epoch), or None: none are run.
        epochs: Maximum number of epochs.
        patience: Epochs without improvement of ``monitor`` before stopping.
        monitor: A Keras log key, minimised.
        verbose: 0 silent, 1 one line per epoch.
        checkpoint_dir: If given, the stage is resumable (``checkpoints.StageCheckpoint``):
            every epoch is checkpointed there, a killed fit started again goes
            on from its last finished epoch, and a finished stage is skipped
            (its weights restored, its recorded history returned).
        prefix: Text before each progress line (e.g. the stage name).
        callbacks: Run before the others (e.g. ValidationRanking, whose
            logged metric can be the monitor; ``val_ndcg*`` is maximised).
        steps_per_epoch: Batches per epoch, for repeated (streamed) input.
        progress: The per-epoch progress line when ``verbose`` (default:
            :class:`EpochLog` of the loss and ``monitor``).
        early_stop: Stop on ``monitor`` (default: where ``validation`` is
            given; without it the stage trains exactly ``epochs``). True
            without ``validation``: the monitor comes from a callback (e.g.
            ValidationRanking), and no validation loss is computed.

    Returns:
        JSON-serialisable history: per-epoch logs, ``best_epoch`` (1-based)
        and ``best_<monitor>`` when validating, and ``fit_seconds``.
    """
    mode = "max" if monitor.startswith("val_ndcg") else "min"
    stops = validation is not None if early_stop is None else early_stop
    train, validation, steps = _steps_for_parameter_servers(train, validation, steps_per_epoch)
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        callbacks = [MeanOverReplicas(replicas), *callbacks]
    if verbose and progress is None:
        progress = EpochLog(monitor if stops else "loss", prefix)
    if checkpoint_dir:
        return _fit_resumable(model, train, validation, epochs, patience, monitor if stops else None,
                              mode, verbose, checkpoint_dir, prefix, list(callbacks), steps, progress)
    callbacks = list(callbacks)
    if verbose:
        callbacks.append(progress)
    if stops:
        callbacks.append(tf.keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=patience, restore_best_weights=True))
    start = time.perf_counter()
    history = model.fit(train, validation_data=validation, epochs=epochs, verbose=0,
                        callbacks=callbacks, **steps)
    result = {key: [float(v) for v in values] for key, values in history.history.items()}
    return _summarise(result, time.perf_counter() - start, monitor if stops else None, mode)


def create_optimizer_slots(model: tf.keras.Model) -> None:
    """Creates the optimizers' slot variables (Adam's moments) now, as their
    first step would. Call it on a compiled model whose own variables all
    exist (a later stage, or a first one after :func:`build_variables`).

    A ``tf.function`` whose first call creates variables is traced twice
    (once creating them, once more without them), and Keras' optimizers
    create their slots in the first train step: each later training stage
    traced its step twice. ``model.optimizer_variables()``, where a model
    defines it, gives the (optimizer, variables) pairs (a GAN's two
    players); otherwise ``model.optimizer`` and ``model.trainable_variables``,
    the variables the train step applies gradients to, in that order."""
    pairs = (model.optimizer_variables() if hasattr(model, "optimizer_variables")
             else [(model.optimizer, model.trainable_variables)])
    for optimizer, variables in pairs:
        with tf.name_scope(optimizer.name):
            optimizer.build(list(variables))


def build_variables(model: tf.keras.Model, examples: dict, rows: int = 8) -> bool:
    """Creates ``model``'s variables by one eager call of its loss on the
    first ``rows`` examples (not a training step: nothing is updated, no
    dropout is drawn; the trackers it feeds are reset when ``fit`` starts), so
    its first train step is traced once, not twice (see
    :func:`create_optimizer_slots`). Returns False, doing nothing, for a
    model without ``compute_loss`` (not a TFRS model)."""
    if not hasattr(model, "compute_loss"):
        return False
    model.compute_loss({key: value[:rows] for key, value in examples.items()}, training=False)
    return True


def _steps_for_parameter_servers(train, validation, steps_per_epoch) -> tuple:
    """(train, validation, model.fit step arguments).

    ParameterServerStrategy needs endless datasets and explicit step counts:
    finite datasets are repeated and their cardinality becomes the count.
    """
    steps = {"steps_per_epoch": steps_per_epoch}
    if not isinstance(tf.distribute.get_strategy(), tf.distribute.ParameterServerStrategy):
        return train, validation, steps
    if steps_per_epoch is None:
        steps["steps_per_epoch"] = int(train.cardinality())
        train = train.repeat()
    if validation is not None and int(validation.cardinality()) > 0:
        steps["validation_steps"] = int(validation.cardinality())
        validation = validation.repeat()
    return train, validation, steps


def _summarise(result: dict, seconds: float, monitor: Optional[str], mode: str) -> dict:
    result["fit_seconds"] = seconds
    if monitor and result.get(monitor):
        best = int(np.argmax(result[monitor]) if mode == "max" else np.argmin(result[monitor]))
        result["best_epoch"] = best + 1
        result[f"best_{monitor}"] = result[monitor][best]
    return result


def _fit_resumable(model, train, validation, epochs, patience, monitor, mode, verbose,
                   checkpoint_dir, prefix, callbacks, steps: dict, progress=None) -> dict:
    """fit_with_early_stopping with a StageCheckpoint (see its docstring);
    ``monitor`` None: no early stopping."""
    stage = StageCheckpoint(checkpoint_dir, model)
    done = stage.finished()
    if done is not None:
        if verbose:
            print(f"{prefix}stage already finished ({checkpoint_dir}): skipped, weights restored",
                  flush=True)
        return done
    initial_epoch = stage.restore()
    if verbose and initial_epoch:
        print(f"{prefix}resuming after epoch {initial_epoch} ({checkpoint_dir})", flush=True)
    if verbose:
        callbacks.append(progress)
    callbacks.append(stage.callback(monitor, mode, patience))
    start = time.perf_counter()
    if initial_epoch < epochs and not stage.state["stopped"]:
        model.fit(train, validation_data=validation, epochs=epochs, initial_epoch=initial_epoch,
                  verbose=0, callbacks=callbacks, **steps)
    logs = stage.state["logs"]
    result = {key: [float(epoch_logs.get(key, np.nan)) for epoch_logs in logs]
              for key in (logs[0] if logs else {})}
    result = _summarise(result, time.perf_counter() - start, monitor, mode)
    result["resumed_after_epoch"] = initial_epoch
    stage.finish(result)
    return result


def fit_model(model: tf.keras.Model, train: dict, validation: dict, cfg: TrainConfig,
              verbose: int = 1, checkpoint_dir: Optional[str] = None,
              monitor: str = "val_total_loss", prefix: str = "", callbacks=(),
              built: bool = False, validation_loss: bool = True) -> dict:
    """Compiles a TFRS model with Adam and fits it on feature dicts.

    ``validation_loss`` False: the ``validation`` examples are not run
    through the loss each epoch; early stopping reads ``monitor`` from one
    of ``callbacks`` (the joint stage's ValidationRanking: its validation
    loss was computed, logged and never read, at the cost of a traced test
    step and a pass over the validation examples every epoch).

    ``built``: the model's variables all exist (a later stage); otherwise,
    outside a distribution strategy, :func:`build_variables` creates them.
    Either way the optimizer's slots are then created before the first step
    (:func:`create_optimizer_slots`: the step is traced once, not twice);
    under a strategy a first stage's step is still traced twice.
    Under a strategy with several replicas the last partial batch of each
    epoch is dropped (a replica must never get an empty share of a batch:
    its in-batch softmax would be NaN).
    """
    model.compile(optimizer=make_optimizer(cfg.optimizer, cfg.learning_rate))
    if not built and not tf.distribute.has_strategy():
        built = build_variables(model, train)
    if built:
        create_optimizer_slots(model)
    several = tf.distribute.get_strategy().num_replicas_in_sync > 1
    return fit_with_early_stopping(
        model, make_dataset(train, None, cfg.batch_size, shuffle=True, seed=cfg.seed,
                            drop_remainder=several),
        make_dataset(validation, None, 4096) if validation_loss else None, cfg.epochs, cfg.patience,
        monitor, verbose=verbose, checkpoint_dir=checkpoint_dir, prefix=prefix, callbacks=callbacks,
        early_stop=True)


