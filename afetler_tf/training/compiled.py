"""Running a model's functions as graphs: batched calls and compiled encoders."""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import tensorflow as tf


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
