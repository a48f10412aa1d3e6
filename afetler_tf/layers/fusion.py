"""AdaptiveFusion: id-keyed augmented vectors fused into a tower (docs/design.md §3).

After the Dual Augmented Two-tower model (DAT): every user (query tower) or
item (candidate tower) owns an augmented vector ``a`` of the tower output
dimension ``d``. The tower input becomes ``z = fuse(x, a)``; the augmented
vectors are trained by the adaptive-mimic losses in :mod:`afetler_tf.losses`
(``mimic_loss``) to imitate the *other* tower's output on positive pairs, so
they carry cross-tower information into each tower.
"""

from __future__ import annotations

import numbers
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

MODES = ("gate", "concat")


def _is_positive_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def _as_vocabulary(vocabulary) -> list:
    """A plain list of str or of int ids (bytes decoded), for lookup and config."""
    values = [v.decode("utf-8") if isinstance(v, bytes) else v for v in list(vocabulary)]
    values = [v.item() if isinstance(v, np.generic) else v for v in values]
    if not values:
        raise ValueError(f"`vocabulary` must not be empty, got {vocabulary!r}.")
    if all(isinstance(v, str) for v in values):
        pass
    elif not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"`vocabulary` must hold only str or only int ids, got {values[:5]!r}...")
    if len(set(values)) != len(values):
        duplicates = sorted({v for v in values if values.count(v) > 1}, key=str)[:5]
        raise ValueError(f"`vocabulary` has duplicate ids, e.g. {duplicates!r}.")
    return values


@tf.keras.utils.register_keras_serializable(package="afetler_tf")
class AdaptiveFusion(tf.keras.layers.Layer):
    """Fuses a tower's features ``x`` with the id's augmented vector ``a``.

    ``mode="gate"`` (default), a context-aware gate:
    ``g = sigmoid(W [x ‖ a] + b)``, ``z = [x ‖ g ⊙ a]``.
    ``mode="concat"``, DAT's plain fusion: ``z = [x ‖ a]``.

    Ids are raw: with ``vocabulary`` the layer owns a ``StringLookup`` (or
    ``IntegerLookup`` for int ids) with one OOV index; with ``num_ids`` the ids
    are integers in ``[0, num_ids)``. The augmented table has one row per id
    plus the OOV row 0. **The OOV row is fixed at zero** (masked in the lookup,
    so it never trains): an id never seen has no cross-tower evidence, so it
    gets no augmentation — ``z = [x ‖ 0]`` — and its vector is always finite.

    Input shape:
        A tuple ``(x, ids)``: ``x`` float ``(batch, e)``; ``ids`` ``(batch,)``
        (or ``(batch, 1)``) str ids with ``vocabulary``, int ids with
        ``num_ids``. Any extra leading dims are allowed if they match.

    Output shape:
        ``(batch, e + dim)``; with ``return_augmented=True`` the tuple
        ``(z, a)`` with ``a`` of shape ``(batch, dim)``.

    Example:

    >>> fusion = AdaptiveFusion(dim=4, vocabulary=["u1", "u2"])
    >>> z, a = fusion((tf.ones((2, 3)), tf.constant(["u1", "new"])),
    ...               return_augmented=True)
    >>> z.shape, a.shape
    (TensorShape([2, 7]), TensorShape([2, 4]))
    """

    def __init__(
        self,
        dim: int,
        vocabulary: Optional[Sequence] = None,
        num_ids: Optional[int] = None,
        mode: str = "gate",
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        gate_initializer="glorot_uniform",
        **kwargs,
    ):
        """Initialises the layer.

        Args:
            dim: Dimension d of the augmented vectors (the tower output dim).
            vocabulary: The known ids (all str or all int). Exclusive with
                ``num_ids``.
            num_ids: Number of integer ids ``0..num_ids-1``; any other id is
                OOV. Exclusive with ``vocabulary``.
            mode: ``"gate"`` or ``"concat"``.
            embeddings_initializer: Initializer of the augmented vectors.
            embeddings_regularizer: Optional regularizer of the augmented vectors.
            gate_initializer: Kernel initializer of the gate (bias starts at 0,
                so ``g`` starts near 0.5).
            **kwargs: Passed to ``tf.keras.layers.Layer``.

        Raises:
            ValueError: On a bad ``dim``, ``mode``, ``num_ids`` or vocabulary.
        """
        super().__init__(**kwargs)
        if not _is_positive_int(dim):
            raise ValueError(f"`dim` must be a positive int, got {dim!r}.")
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {MODES}, got {mode!r}.")
        if (vocabulary is None) == (num_ids is None):
            given = "neither" if vocabulary is None else f"both (num_ids={num_ids!r})"
            raise ValueError(f"Give exactly one of `vocabulary` or `num_ids`, got {given}.")
        if num_ids is not None and not _is_positive_int(num_ids):
            raise ValueError(f"`num_ids` must be a positive int, got {num_ids!r}.")
        self._dim = int(dim)
        self._vocabulary = None if vocabulary is None else _as_vocabulary(vocabulary)
        self._num_ids = int(num_ids) if num_ids is not None else len(self._vocabulary)
        self._mode = mode
        self._embeddings_initializer = tf.keras.initializers.get(embeddings_initializer)
        self._embeddings_regularizer = tf.keras.regularizers.get(embeddings_regularizer)
        self._gate_initializer = tf.keras.initializers.get(gate_initializer)
        self._lookup = None
        self._table = None

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def mode(self) -> str:
        return self._mode

    def _build_table(self) -> None:
        """Creates the id lookup and the augmented table (idempotent)."""
        if self._table is not None:
            return
        if self._vocabulary is not None:
            lookup_cls = (
                tf.keras.layers.StringLookup
                if isinstance(self._vocabulary[0], str)
                else tf.keras.layers.IntegerLookup
            )
            self._lookup = lookup_cls(vocabulary=self._vocabulary, num_oov_indices=1, name="id_lookup")
        self._table = self.add_weight(
            name="augmented_vectors",
            shape=(self._num_ids + 1, self._dim),  # row 0: OOV (kept at zero)
            initializer=self._embeddings_initializer,
            regularizer=self._embeddings_regularizer,
            trainable=True,
        )

    def build(self, input_shape):
        x_shape = tf.TensorShape(input_shape[0])
        self._build_table()
        if self._mode == "gate":
            self._gate = tf.keras.layers.Dense(
                self._dim, activation="sigmoid", kernel_initializer=self._gate_initializer, name="gate"
            )
            self._gate.build(x_shape[:-1].concatenate([x_shape[-1] + self._dim]))
        super().build(input_shape)

    def _indices(self, ids: tf.Tensor) -> tf.Tensor:
        """Table rows of the ids; 0 is the OOV row."""
        if self._lookup is not None:
            return tf.cast(self._lookup(ids), tf.int32)
        ids = tf.cast(ids, tf.int64)
        known = tf.logical_and(ids >= 0, ids < self._num_ids)
        return tf.cast(tf.where(known, ids + 1, tf.zeros_like(ids)), tf.int32)

    def augmented(self, ids) -> tf.Tensor:
        """The augmented vectors of ``ids``: shape ``ids.shape + (dim,)``.

        OOV ids get the zero vector (no gradient flows to row 0).
        """
        self._build_table()
        rows = self._indices(tf.convert_to_tensor(ids))  # ids.shape
        vectors = tf.gather(self._table, rows)  # ids.shape + (d,)
        known = tf.cast(rows > 0, vectors.dtype)[..., tf.newaxis]
        return vectors * known

    def gate(self, x: tf.Tensor, augmented: tf.Tensor) -> tf.Tensor:
        """The gate ``g = sigmoid(W [x ‖ a] + b)``, shape ``(batch, dim)``."""
        if self._mode != "gate":
            raise ValueError(f"`gate` needs mode='gate', this layer has mode={self._mode!r}.")
        return self._gate(tf.concat([x, augmented], axis=-1))

    def call(self, inputs, return_augmented: bool = False):
        """Returns ``z`` (and ``a`` when ``return_augmented``)."""
        x, ids = inputs
        x = tf.convert_to_tensor(x)  # (batch, e)
        ids = tf.convert_to_tensor(ids)
        if ids.shape.rank == x.shape.rank and ids.shape[-1] == 1:
            ids = tf.squeeze(ids, axis=-1)  # (batch, 1) -> (batch,)
        a = tf.cast(self.augmented(ids), x.dtype)  # (batch, d)
        if self._mode == "gate":
            a_fused = self.gate(x, a) * a  # (batch, d)
        else:
            a_fused = a
        z = tf.concat([x, a_fused], axis=-1)  # (batch, e + d)
        return (z, a) if return_augmented else z

    def compute_output_shape(self, input_shape):
        x_shape = tf.TensorShape(input_shape[0])
        return x_shape[:-1].concatenate([x_shape[-1] + self._dim])

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "dim": self._dim,
                "vocabulary": self._vocabulary,
                "num_ids": None if self._vocabulary is not None else self._num_ids,
                "mode": self._mode,
                "embeddings_initializer": tf.keras.initializers.serialize(self._embeddings_initializer),
                "embeddings_regularizer": tf.keras.regularizers.serialize(self._embeddings_regularizer),
                "gate_initializer": tf.keras.initializers.serialize(self._gate_initializer),
            }
        )
        return config
