"""The raw-feature inputs of the exported signatures, and their preparation.

The input names and dtypes come from the model's FeatureSpace (the same
dicts ``space.user_features`` / ``space.item_features`` build for training),
so an export always asks for exactly what the towers read:

    user: user_id (batch,) str + the user table's columns (str, or float32
          for numeric ones such as ``age``)
    history (models with MCAU / target attention):
          history_item_ids (batch, L) str, "" = padding, most recent first
          history_ratings (batch, L) float32, 0 = padding / implicit
    item: item_id, categories ("|"-joined), title (batch,) str + numeric
          columns such as ``year`` (float32)

Serving-side preparation (inside the signature, so every client gets it):
NaN in a numeric feature means "missing" (the FeatureSpace's stand-in
``MISSING``); NaN ratings are 0; histories longer than the training cap are
cut to it for MCAU, and an empty history (L = 0) is padded to one "" entry.
The item-item channel (AFETLER) reads the whole history as sent, under the
key ``item_item_fitting.HISTORY`` (see :mod:`afetler_tf.layers.item_item` for why).

The index has a second signature, ``exclude``: the index's inputs plus
``exclude_item_ids`` (batch, E) str, "" = padding, the items never to return
(``serving_default`` excludes the request's history).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

import afetler_tf  # noqa: F401  (Keras-2 set-up before TensorFlow)
from afetler_tf.features import MISSING
from afetler_tf.models.item_item_fitting import HISTORY as CHANNEL_HISTORY

HISTORY_KEYS = ("history_item_ids", "history_ratings")
K_KEY = "k"
EXCLUDE_KEY = "exclude_item_ids"


def _spec(name: str, values: np.ndarray) -> tf.TensorSpec:
    if values.dtype.kind in "OUS":
        return tf.TensorSpec([None], tf.string, name=name)
    if values.dtype.kind == "f":
        return tf.TensorSpec([None], tf.float32, name=name)
    raise ValueError(f"Feature {name!r} has dtype {values.dtype}; exports take str or float features.")


def _specs(features: dict) -> dict:
    return {name: _spec(name, np.asarray(values)) for name, values in features.items()}


def check_consistent(features: dict) -> dict:
    """Asserts, inside the graph, that a request's tensors fit together.

    Every input of rank >= 1 is batch-first, so all of them must have one
    batch size (dim 0), and ``history_item_ids`` / ``history_ratings`` one
    shape (batch, L). Otherwise the signature fails with InvalidArgument
    "assertion failed: [Inputs must share one batch size (dim 0):] [user_id]
    [2] [history_item_ids] [3 4] ..." (what TF Serving answers), not with a
    ConcatOp error deep in the towers. Returns a copy of ``features`` whose
    tensors depend on the checks (so they run before anything reads them).
    """
    features = {n: tf.convert_to_tensor(t) for n, t in features.items()}
    batched = [n for n, t in features.items() if t.shape.rank is None or t.shape.rank >= 1]
    shapes = {}  # one ShapeN per dtype, not a Shape per input (the graph runs per request: few ops)
    for dtype in dict.fromkeys(features[n].dtype for n in batched):
        names = [n for n in batched if features[n].dtype == dtype]
        shapes.update(zip(names, tf.shape_n([features[n] for n in names])))
    checks = []
    if len(batched) > 1:
        ranks = [features[n].shape.rank for n in batched]
        if None in ranks:
            sizes = tf.stack([shapes[n][0] for n in batched])
        else:  # each input's dim 0, picked out of the concatenated shapes at once
            sizes = tf.gather(tf.concat([shapes[n] for n in batched], 0), np.cumsum([0] + ranks[:-1]))
        data = ["Inputs must share one batch size (dim 0):"]
        for name in batched:
            data += [name, shapes[name]]
        checks.append(tf.debugging.Assert(tf.reduce_all(tf.equal(sizes, sizes[0])), data, summarize=8))
    if all(k in features for k in HISTORY_KEYS):
        ids, ratings = (shapes[k] if k in shapes else tf.shape(features[k]) for k in HISTORY_KEYS)
        ranks = [features[k].shape.rank for k in HISTORY_KEYS]
        same = tf.reduce_all(tf.equal(ids, ratings))
        if ranks[0] is None or ranks[0] != ranks[1]:  # (static ranks of the signatures: equal)
            same = tf.logical_and(tf.equal(tf.size(ids), tf.size(ratings)), same)
        checks.append(tf.debugging.Assert(same, [
            f"{HISTORY_KEYS[0]} and {HISTORY_KEYS[1]} must have one shape (batch, L):",
            HISTORY_KEYS[0], ids, HISTORY_KEYS[1], ratings], summarize=8))
    if not checks:
        return dict(features)
    with tf.control_dependencies(checks):
        return {name: tf.identity(t) for name, t in features.items()}


@dataclasses.dataclass(frozen=True)
class InputSpecs:
    """Signature inputs of one model's exports.

    Attributes:
        user: user feature name -> TensorSpec (batch,).
        item: item feature name -> TensorSpec (batch,).
        history: The two history TensorSpecs (batch, L), or {} without MCAU.
        history_length: Cap L of the training histories.
        item_item: The model has the item-item channel (reads the whole history).
    """

    user: dict
    item: dict
    history: dict
    history_length: int
    item_item: bool = False

    @classmethod
    def from_model(cls, model) -> "InputSpecs":
        """Reads the inputs off an Afetler model's FeatureSpace.

        Raises:
            ValueError: A user and an item feature share a name, or a feature
                is named ``k`` (the index's own input).
        """
        space = model.space
        user = _specs(space.user_features(["<probe>"]))
        item = _specs(space.item_features(["<probe>"]))
        clash = sorted((set(user) & set(item)) | ({K_KEY} & (set(user) | set(item))))
        if clash:
            raise ValueError(f"Feature name(s) {clash} are used twice (user, item or the index's k); "
                             f"rename the column(s) in the data before exporting.")
        history = {}
        if model.uses_history:
            history = {"history_item_ids": tf.TensorSpec([None, None], tf.string, name="history_item_ids"),
                       "history_ratings": tf.TensorSpec([None, None], tf.float32, name="history_ratings")}
        channel = getattr(getattr(model, "network", None), "item_item", None) is not None
        return cls(user, item, history, int(model.config.data.history_length), channel)

    @property
    def query(self) -> dict:
        """Inputs of the query tower: user features + history."""
        return {**self.user, **self.history}

    @property
    def index(self) -> dict:
        """Inputs of the retrieval index: query inputs + scalar int32 ``k``."""
        return {**self.query, K_KEY: tf.TensorSpec([], tf.int32, name=K_KEY)}

    @property
    def index_exclude(self) -> dict:
        """Inputs of the index's ``exclude`` signature: index inputs + the ids to exclude."""
        return {**self.index, EXCLUDE_KEY: tf.TensorSpec([None, None], tf.string, name=EXCLUDE_KEY)}

    @property
    def ranker(self) -> dict:
        """Inputs of the ranker: query inputs + item features."""
        return {**self.query, **self.item}

    def prepare(self, features: dict) -> dict:
        """Graph-side clean-up of a request (module docstring); returns a new dict."""
        return self.prepare_with_history(features)[0]

    def prepare_with_history(self, features: dict) -> tuple:
        """:meth:`prepare`, plus what a caller that looks the history up itself
        (``export.modules.HistoryLookup``) needs: the request's whole
        ``history_item_ids`` as sent (checked, before the cut) and ``cut``,
        the function that cuts a (batch, L) tensor as MCAU's history was cut
        (``cut(values, padding)``); (None, None) without a history input."""
        out = check_consistent(features)  # batch sizes and history lengths agree, or a clear error
        for name, spec in {**self.user, **self.item}.items():
            if name in out and spec.dtype == tf.float32:
                out[name] = tf.where(tf.math.is_nan(out[name]), tf.constant(MISSING, tf.float32), out[name])
        if not (self.history and HISTORY_KEYS[0] in out):
            return out, None, None
        whole = out["history_item_ids"]
        if self.item_item:
            out[CHANNEL_HISTORY] = whole  # whole, as sent (module docstring)
        # The latest history_length entries (MCAU's training cap); L = 0 -> one padding column
        pad = tf.cast(tf.equal(tf.shape(whole)[1], 0), tf.int32)
        paddings = tf.stack([tf.zeros([2], tf.int32), tf.stack([0, pad])])

        def cut(values, padding):
            return tf.pad(values[:, :self.history_length], paddings, constant_values=padding)

        out["history_item_ids"] = cut(whole, "")
        ratings = cut(out["history_ratings"], 0.0)
        out["history_ratings"] = tf.where(tf.math.is_nan(ratings), 0.0, ratings)
        return out, whole, cut
