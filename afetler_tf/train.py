"""Training helpers shared by every Keras model (baselines, two-tower, AFETLER).

Seeding, ``tf.data`` pipelines from feature dicts, the raw feature dicts of
(user, item) pairs with their log-Q sampling probabilities (docs/design.md §1:
retrieval without them loses to popularity), ``model.fit`` with early stopping
on a validation metric (best weights restored), resumable checkpoints, one
compact progress line per epoch, and batched prediction.
"""

from __future__ import annotations

import contextlib
import gc
import random
import time
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from afetler_tf.config import TrainConfig
from afetler_tf.features import FeatureSpace
from afetler_tf.optimizers import make_optimizer


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


def as_strings(values) -> np.ndarray:
    """Any id sequence (list, numpy, pandas StringDtype) as an object array of str."""
    return np.asarray(pd.Series(values, dtype="object").astype(str).to_numpy(object))


def ratings(frame: pd.DataFrame) -> np.ndarray:
    """The ``rating`` column as float32, with a clear error for implicit data."""
    if "rating" not in frame or frame["rating"].isna().any():
        raise ValueError("Rating models (mf, deepfm) need an explicit `rating` for every "
                         "interaction; use popularity, two_tower or afetler for implicit data.")
    return frame["rating"].to_numpy("float32")


def sampling_probabilities(train: pd.DataFrame) -> pd.Series:
    """item_id -> frequency in ``train`` / number of training interactions."""
    return train["item_id"].value_counts() / len(train)


def pair_examples(space: FeatureSpace, frame: pd.DataFrame, probabilities: pd.Series) -> dict:
    """Raw features of the (user, item) pairs of ``frame``, plus labels.

    Returns:
        dict of numpy arrays of length len(frame): query and candidate
        features, ``rating`` (float32; 0 where missing) and
        ``sampling_probability`` (items unseen in training get the smallest
        observed probability, so log-Q stays finite).
    """
    out = space.user_features(frame["user_id"].to_numpy(object))
    out.update(space.item_features(frame["item_id"].to_numpy(object)))
    out["rating"] = frame["rating"].fillna(0.0).to_numpy(np.float32)
    floor = float(probabilities.min()) if len(probabilities) else 1.0
    prob = frame["item_id"].map(probabilities).astype("float64").fillna(floor)
    out["sampling_probability"] = prob.to_numpy(np.float32)
    return out


def make_dataset(features: Mapping[str, np.ndarray], labels: Optional[np.ndarray], batch_size: int,
                 shuffle: bool = False, seed: int = 42,
                 drop_remainder: bool = False) -> tf.data.Dataset:
    """Batches of features (or (features, labels)); reshuffled every epoch when ``shuffle``.

    In-memory data is sharded across workers by element (AutoShardPolicy.DATA):
    every worker holds the same arrays and takes its share of each batch.

    The pipeline shuffles and batches row numbers and gathers each batch's
    rows in one op per feature: the same batches as slicing, shuffling and
    batching the rows themselves (the shuffle's order depends on its seed
    only), at a fraction of the cost with string features and histories.
    """
    tensors = {key: tf.constant(value) for key, value in features.items()}
    label_tensor = None if labels is None else tf.constant(labels)
    n = len(next(iter(features.values())))
    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)

    def rows(index):
        batch = {key: tf.gather(value, index) for key, value in tensors.items()}
        return batch if label_tensor is None else (batch, tf.gather(label_tensor, index))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.batch(batch_size, drop_remainder=drop_remainder).map(rows).with_options(
        options).prefetch(tf.data.AUTOTUNE)


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


def validation_split(split):
    """``split`` with its validation interactions as the test set (and no
    validation): what the validation checks evaluate. The test set is dropped.

    A "none" split (everything trains, no test set) keeps its validation
    carve-out, so its validation view is scored like a random split's: early
    stopping and the fitted shares work the same way in every split.
    """
    from afetler_tf.data.schema import Split
    kind = "random" if split.kind == "none" else split.kind
    return Split(kind, split.seed, split.train, split.validation.iloc[:0], split.validation)


def validation_ndcg(recommender, data, split, k: int = 10) -> float:
    """NDCG@k of protocol T on the validation set of ``split`` (never the test set)."""
    from afetler_tf.evaluate import evaluate
    return float(evaluate(recommender, data, validation_split(split), protocols=("T",), k=k)
                 ["T"][f"ndcg@{k}"])


class ValidationRanking(tf.keras.callbacks.Callback):
    """Adds ``val_ndcg@k``, protocol T on the validation set, to each epoch's logs.

    Candidates exclude each user's training items; relevant = the user's
    validation items. Lets early stopping pick the epoch by the ranking
    quality it is after rather than by a loss proxy. The test set is never
    touched.
    """

    def __init__(self, recommender, data, split, k: int = 10):
        super().__init__()
        self._recommender, self._data, self._split, self._k = recommender, data, split, k

    def on_epoch_end(self, epoch, logs=None):
        ndcg = validation_ndcg(self._recommender, self._data, self._split, self._k)
        if logs is not None:
            logs[f"val_ndcg@{self._k}"] = ndcg


def fit_with_early_stopping(model: tf.keras.Model, train: tf.data.Dataset,
                            validation: Optional[tf.data.Dataset], epochs: int, patience: int,
                            monitor: str = "val_rmse", verbose: int = 1,
                            checkpoint_dir: Optional[str] = None, prefix: str = "",
                            callbacks: Sequence[tf.keras.callbacks.Callback] = (),
                            steps_per_epoch: Optional[int] = None,
                            progress: Optional[tf.keras.callbacks.Callback] = None) -> dict:
    """Runs ``model.fit``, stopping on ``monitor`` and restoring the best weights.

    Args:
        model: A compiled model whose logs include the monitored key.
        train: Training batches.
        validation: Validation batches, or None to train exactly ``epochs``.
        epochs: Maximum number of epochs.
        patience: Epochs without improvement of ``monitor`` before stopping.
        monitor: A Keras log key, minimised.
        verbose: 0 silent, 1 one line per epoch.
        checkpoint_dir: If given, the stage is resumable (``resume.StageCheckpoint``):
            every epoch is checkpointed there, a killed fit started again goes
            on from its last finished epoch, and a finished stage is skipped
            (its weights restored, its recorded history returned).
        prefix: Text before each progress line (e.g. the stage name).
        callbacks: Run before the others (e.g. ValidationRanking, whose
            logged metric can be the monitor; ``val_ndcg*`` is maximised).
        steps_per_epoch: Batches per epoch, for repeated (streamed) input.
        progress: The per-epoch progress line when ``verbose`` (default:
            :class:`EpochLog` of the loss and ``monitor``).

    Returns:
        JSON-serialisable history: per-epoch logs, ``best_epoch`` (1-based)
        and ``best_<monitor>`` when validating, and ``fit_seconds``.
    """
    mode = "max" if monitor.startswith("val_ndcg") else "min"
    train, validation, steps = _steps_for_parameter_servers(train, validation, steps_per_epoch)
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        callbacks = [MeanOverReplicas(replicas), *callbacks]
    if verbose and progress is None:
        progress = EpochLog(monitor if validation is not None else "loss", prefix)
    if checkpoint_dir:
        return _fit_resumable(model, train, validation, epochs, patience, monitor, mode, verbose,
                              checkpoint_dir, prefix, list(callbacks), steps, progress)
    callbacks = list(callbacks)
    if verbose:
        callbacks.append(progress)
    if validation is not None:
        callbacks.append(tf.keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=patience, restore_best_weights=True))
    start = time.perf_counter()
    history = model.fit(train, validation_data=validation, epochs=epochs, verbose=0,
                        callbacks=callbacks, **steps)
    result = {key: [float(v) for v in values] for key, values in history.history.items()}
    return _summarise(result, time.perf_counter() - start, monitor if validation is not None
                      else None, mode)


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
    """fit_with_early_stopping with a StageCheckpoint (see its docstring)."""
    from afetler_tf.resume import StageCheckpoint
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
    callbacks.append(stage.callback(monitor if validation is not None else None, mode, patience))
    start = time.perf_counter()
    if initial_epoch < epochs and not stage.state["stopped"]:
        model.fit(train, validation_data=validation, epochs=epochs, initial_epoch=initial_epoch,
                  verbose=0, callbacks=callbacks, **steps)
    logs = stage.state["logs"]
    result = {key: [float(epoch_logs.get(key, np.nan)) for epoch_logs in logs]
              for key in (logs[0] if logs else {})}
    result = _summarise(result, time.perf_counter() - start,
                        monitor if validation is not None else None, mode)
    result["resumed_after_epoch"] = initial_epoch
    stage.finish(result)
    return result


def fit_model(model: tf.keras.Model, train: dict, validation: dict, cfg: TrainConfig,
              verbose: int = 1, checkpoint_dir: Optional[str] = None,
              monitor: str = "val_total_loss", prefix: str = "", callbacks=()) -> dict:
    """Compiles a TFRS model with Adam and fits it on feature dicts.

    Under a strategy with several replicas the last partial batch of each
    epoch is dropped (a replica must never get an empty share of a batch:
    its in-batch softmax would be NaN).
    """
    model.compile(optimizer=make_optimizer(cfg.optimizer, cfg.learning_rate))
    several = tf.distribute.get_strategy().num_replicas_in_sync > 1
    return fit_with_early_stopping(
        model, make_dataset(train, None, cfg.batch_size, shuffle=True, seed=cfg.seed,
                            drop_remainder=several),
        make_dataset(validation, None, 4096), cfg.epochs, cfg.patience, monitor,
        verbose=verbose, checkpoint_dir=checkpoint_dir, prefix=prefix, callbacks=callbacks)


def batched(fn: Callable[[dict], tf.Tensor], inputs: Mapping[str, np.ndarray],
            batch_size: int = 4096) -> np.ndarray:
    """Applies ``fn`` to slices of ``inputs``; concatenates the outputs."""
    n = len(next(iter(inputs.values())))
    outs = [np.asarray(fn({k: v[i:i + batch_size] for k, v in inputs.items()}))
            for i in range(0, n, batch_size)]
    return np.concatenate(outs, axis=0) if outs else np.zeros((0,), np.float32)


def signature_of(features: Mapping[str, np.ndarray]) -> dict:
    """TensorSpecs of a feature dict with every dimension left open (str arrays
    -> tf.string), so one trace serves any batch size and history length."""
    specs = {}
    for key, value in features.items():
        value = np.asarray(value)
        dtype = tf.string if value.dtype.kind in "OUS" else tf.as_dtype(value.dtype)
        specs[key] = tf.TensorSpec([None] * value.ndim, dtype, name=key)
    return specs


def with_autograph(layer: Callable) -> Callable:
    """``layer`` (e.g. a ``tfrs.tasks.Retrieval``, whose ``call`` needs AutoGraph)
    as a ``tf.function`` of its own: called from code traced without AutoGraph
    (``tf.autograph.experimental.do_not_convert``), it is still converted."""
    return tf.function(lambda *args, **kwargs: layer(*args, **kwargs))


class Compiled:
    """``fn`` (a feature dict -> tensor) as a ``tf.function``, traced once per
    set of feature keys with open dimensions (:func:`signature_of`): a
    function called many times on batches of different sizes (evaluation,
    the fitted stages after training) runs as one graph instead of op by op.
    ``fn`` is plain TF ops (no Python control flow on tensors): AutoGraph's
    source rewrite is skipped, which halves the tracing time."""

    def __init__(self, fn: Callable[[dict], tf.Tensor]):
        self._fn, self._traced = fn, {}

    def __call__(self, features: Mapping[str, np.ndarray]) -> tf.Tensor:
        key = tuple(sorted(features))
        if key not in self._traced:
            self._traced[key] = tf.function(tf.autograph.experimental.do_not_convert(self._fn),
                                            input_signature=[signature_of(features)])
        return self._traced[key](dict(features))


def predict_batched(fn: Callable[[dict], tf.Tensor], features: Mapping[str, np.ndarray],
                    batch_size: int = 65536) -> np.ndarray:
    """Like :func:`batched`, flattened to a float64 vector (one score per row)."""
    return batched(fn, features, batch_size).reshape(-1).astype("float64")
