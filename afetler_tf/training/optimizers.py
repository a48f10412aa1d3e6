"""Optimisers of the Keras models: Adam, and LazyAdam for large vocabularies.

Keras' Adam applies a sparse gradient (the rows of an embedding table a
batch touched) by decaying the *whole* first- and second-moment tables and
then the whole variable: three passes over every row of every table, each
step. Its cost per step therefore grows with the vocabularies, not with the
batch, and a catalogue of 1M items makes training several times slower per
example than one of 100k (benchmarks/scale.md).

:class:`LazyAdam` (after TensorFlow Addons' LazyAdam) updates only the rows
in the batch: their moments are decayed and updated, and only they move.
Dense gradients get Keras' Adam update unchanged. Rows a batch did not touch
keep their moments until they next appear, so on sparse data it differs from
Adam (it is what large-scale recommenders use); on dense variables it is
identical.

``TrainConfig.optimizer`` picks one (``make_optimizer``).
"""

from __future__ import annotations

import tensorflow as tf

from afetler_tf.config import OPTIMIZERS


@tf.keras.utils.register_keras_serializable(package="afetler_tf")
class LazyAdam(tf.keras.optimizers.Adam):
    """Adam whose sparse updates touch only the gradient's rows.

    Same arguments as ``tf.keras.optimizers.Adam`` (``amsgrad`` is not
    supported for sparse updates).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.amsgrad:
            raise ValueError("LazyAdam does not support amsgrad; use optimizer 'adam' for it.")

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        beta_1_power, beta_2_power = tf.pow(beta_1, step), tf.pow(beta_2, step)
        alpha = tf.cast(self.learning_rate, dtype) * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        epsilon = self.epsilon * tf.sqrt(1 - beta_2_power) if self.adaptive_epsilon else self.epsilon

        # Repeated rows (an item twice in a batch) are summed first, as the
        # dense gradient would hold them.
        rows, position = tf.unique(gradient.indices)
        values = tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(rows)[0])

        index = self._index_dict[self._var_key(variable)]
        m, v = self._momentums[index], self._velocities[index]
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * values
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(values)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_sub(tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + epsilon), rows))


def make_optimizer(name: str, learning_rate: float) -> tf.keras.optimizers.Optimizer:
    """The optimiser called ``name`` (one of OPTIMIZERS) at ``learning_rate``.

    Raises:
        ValueError: An unknown name (the valid ones are listed).
    """
    if name == "adam":
        return tf.keras.optimizers.Adam(learning_rate)
    if name == "lazy_adam":
        return LazyAdam(learning_rate)
    raise ValueError(f"Unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}.")
