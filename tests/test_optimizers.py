"""LazyAdam: sparse updates touch only the batch's rows; dense updates are Adam's."""

import numpy as np
import pytest
import tensorflow as tf

from afetler_tf.config import TrainConfig
from afetler_tf.training.optimizers import LazyAdam, make_optimizer


def _sparse_step(optimizer, variable, rows, values):
    grad = tf.IndexedSlices(tf.constant(values, tf.float32), tf.constant(rows, tf.int64),
                            tf.constant(variable.shape, tf.int64))
    optimizer.apply_gradients([(grad, variable)])


def test_first_sparse_step_by_hand_moves_only_the_rows_in_the_batch():
    table = tf.Variable(np.zeros((4, 2), np.float32))
    opt = LazyAdam(0.1, epsilon=1e-7)
    # Row 1 appears twice: its gradients are summed to (3, -1) first.
    _sparse_step(opt, table, [1, 2, 1], [[1.0, -0.5], [2.0, 2.0], [2.0, -0.5]])
    # Step 1: m = 0.1 g, v = 0.001 g^2, alpha = 0.1 sqrt(0.001) / 0.1, so the
    # step is 0.1 * g / (|g| + eps / sqrt(0.001)) ~ 0.1 sign(g).
    eps_hat = 1e-7 * np.sqrt(1 - 0.999)
    expected_step = lambda g: 0.1 * np.sqrt(0.001) / 0.1 * (0.1 * g) / (np.sqrt(0.001) * abs(g) + eps_hat)
    np.testing.assert_allclose(table.numpy(), [[0, 0], [-expected_step(3.0), -expected_step(-1.0)],
                                               [-expected_step(2.0), -expected_step(2.0)], [0, 0]], rtol=1e-5)


def test_rows_absent_from_a_batch_keep_still_unlike_adam():
    lazy, dense = tf.Variable(np.zeros((3, 1), np.float32)), tf.Variable(np.zeros((3, 1), np.float32))
    lazy_opt, adam = LazyAdam(0.1), tf.keras.optimizers.Adam(0.1)
    for opt, var in ((lazy_opt, lazy), (adam, dense)):
        _sparse_step(opt, var, [0], [[1.0]])
        _sparse_step(opt, var, [1], [[1.0]])
    assert lazy.numpy()[0, 0] == pytest.approx(-0.1, rel=1e-4)  # one step only
    assert dense.numpy()[0, 0] < -0.1 - 1e-3  # Adam's momentum moved row 0 again
    assert lazy.numpy()[2, 0] == 0.0 and dense.numpy()[2, 0] == 0.0


def test_dense_gradients_get_adams_update():
    a, b = tf.Variable([1.0, -2.0]), tf.Variable([1.0, -2.0])
    lazy_opt, adam = LazyAdam(0.05), tf.keras.optimizers.Adam(0.05)
    for g in ([0.3, -1.0], [0.5, 0.2], [-0.1, 0.4]):
        lazy_opt.apply_gradients([(tf.constant(g), a)])
        adam.apply_gradients([(tf.constant(g), b)])
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


def test_optimizer_names_are_checked():
    assert isinstance(make_optimizer("lazy_adam", 0.01), LazyAdam)
    with pytest.raises(ValueError, match="valid: adam, lazy_adam"):
        make_optimizer("sgd", 0.01)
    with pytest.raises(ValueError, match="train.optimizer"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="amsgrad"):
        LazyAdam(0.01, amsgrad=True)
