"""Tests of the multi-channel attention unit (afetler_tf/layers/mcau.py)."""

import afetler_tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow)

import math
import os
import tempfile

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from afetler_tf.layers import MCAU


def _random_inputs(batch=4, length=6, dim=5, query_dim=5, seed=0):
    rng = np.random.default_rng(seed)
    history = rng.normal(size=(batch, length, dim)).astype("float32")
    channels = np.array([[0, 1, 0, 1, 0, 1]] * batch)[:, :length]  # channel 2 always empty
    mask = rng.random((batch, length)) > 0.3
    mask[0] = False  # a user with no history
    mask[1, :] = [True, False, False, False, False, False][:length]  # only channel 0
    query = rng.normal(size=(batch, query_dim)).astype("float32")
    return history, channels, mask, query


class MCAUTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.parameters(1, 3)
    def test_weights_are_distributions_over_unmasked_positions(self, num_heads):
        history, channels, mask, query = _random_inputs()
        o, alpha, beta = MCAU(num_channels=3, attention_units=4, num_heads=num_heads)(
            (history, channels, mask, query)
        )
        o, alpha, beta = o.numpy(), alpha.numpy(), beta.numpy()
        self.assertEqual(o.shape, (4, 5))
        self.assertEqual(alpha.shape, (4, 3, 6))
        self.assertEqual(beta.shape, (4, 3))
        for tensor in (o, alpha, beta):
            self.assertTrue(np.all(np.isfinite(tensor)))
        in_channel = (channels[:, None, :] == np.arange(3)[None, :, None]) & mask[:, None, :]  # (B, C, L)
        # Masked and out-of-channel positions get exactly zero weight.
        self.assertTrue(np.all(alpha[~in_channel] == 0.0))
        non_empty = in_channel.any(axis=-1)  # (B, C)
        self.assertAllClose(alpha.sum(-1)[non_empty], np.ones(non_empty.sum()))
        self.assertAllEqual(alpha.sum(-1)[~non_empty], np.zeros((~non_empty).sum()))
        # β: zero on empty channels (channel 2 everywhere), sums to one otherwise.
        self.assertTrue(np.all(beta[~non_empty] == 0.0))
        has_history = mask.any(axis=-1)
        self.assertAllClose(beta.sum(-1)[has_history], np.ones(has_history.sum()))
        # No history: o = 0 and all-zero weights.
        self.assertAllEqual(o[0], np.zeros(5))
        self.assertAllEqual(alpha[0], np.zeros((3, 6)))
        self.assertAllEqual(beta[0], np.zeros(3))
        # One channel only: β = (1, 0, 0) and o is that channel's summary, h_0.
        self.assertAllClose(beta[1], [1.0, 0.0, 0.0])
        self.assertAllClose(o[1], history[1, 0])

    def test_gradients_are_finite_for_empty_histories(self):
        history, channels, mask, query = _random_inputs()
        layer = MCAU(num_channels=3, attention_units=4)
        history = tf.constant(history)
        with tf.GradientTape() as tape:
            tape.watch(history)
            o, alpha, beta = layer((history, channels, mask, query))
            loss = tf.reduce_sum(o) + tf.reduce_sum(alpha) + tf.reduce_sum(beta)
        for grad in tape.gradient(loss, [history, *layer.trainable_variables]):
            self.assertTrue(np.all(np.isfinite(tf.convert_to_tensor(grad).numpy())))

    def test_hand_computed(self):
        # e = 2, A = 1, H = 1, C = 3, q = (1, 2).
        # W picks h_0 + h_1 q_1 out of [h ‖ q ‖ h ⊙ q] = [h0, h1, q0, q1, h0 q0, h1 q1]:
        #   s_j = tanh(h_j0 + 2 h_j1);   w = 1.
        # U picks g_0 + q_0 out of [g ‖ q] = [g0, g1, q0, q1]:  u_c = tanh(g_c0 + 1);  v = 1.
        # Row 0: h = (0,0), (1,0.5), (2,-1), (9,9); channels 0, 0, 1, 0; the last is masked.
        #   s = 0, tanh(2) = 0.9640276, tanh(0) = 0.
        #   channel 0 over positions 0, 1: α = (1, e^0.9640276) / (1 + 2.6222365)
        #                                    = (0.2760725, 0.7239275)
        #     g_0 = 0.7239275 · (1, 0.5) = (0.7239275, 0.3619637)
        #   channel 1, position 2 alone: α = 1, g_1 = (2, -1);   channel 2 empty: β_2 = 0.
        #   u_0 = tanh(1.7239275) = 0.9383342,  u_1 = tanh(3) = 0.9950548
        #   β = (1, e^(u_1 - u_0)) / (1 + e^(u_1 - u_0)) = (0.4858237, 0.5141763, 0)
        #   o = 0.4858237 g_0 + 0.5141763 g_1 = (1.3800538, -0.3383258)
        # Row 1: same history, all masked: o = 0, α = 0, β = 0.
        layer = MCAU(num_channels=3, attention_units=1)
        history = np.array([[[0, 0], [1, 0.5], [2, -1], [9, 9]]] * 2, "float32")
        channels = np.array([[0, 0, 1, 0]] * 2)
        mask = np.array([[True, True, True, False], [False] * 4])
        query = np.array([[1.0, 2.0]] * 2, "float32")
        layer((history, channels, mask, query))
        layer.item_kernel.assign(np.array([1, 0, 0, 0, 0, 1], "float32").reshape(1, 6, 1))
        layer.item_vector.assign([[1.0]])
        layer.channel_kernel.assign(np.array([1, 0, 1, 0], "float32").reshape(1, 4, 1))
        layer.channel_vector.assign([[1.0]])
        o, alpha, beta = layer((history, channels, mask, query))

        a_1 = math.exp(math.tanh(2.0)) / (1.0 + math.exp(math.tanh(2.0)))  # 0.7239275
        g_0 = (a_1, 0.5 * a_1)
        u_0, u_1 = math.tanh(g_0[0] + 1.0), math.tanh(3.0)
        b_1 = math.exp(u_1) / (math.exp(u_0) + math.exp(u_1))  # 0.5141763
        expected_alpha = [[1 - a_1, a_1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
        expected_o = [(1 - b_1) * g_0[0] + b_1 * 2.0, (1 - b_1) * g_0[1] - b_1]
        self.assertAllClose(alpha[0], expected_alpha, atol=1e-6)
        self.assertAllClose(beta[0], [1 - b_1, b_1, 0.0], atol=1e-6)
        self.assertAllClose(o[0], expected_o, atol=1e-6)
        self.assertAllClose(o[0], [1.3800538, -0.3383258], atol=1e-6)
        self.assertAllEqual(o[1], [0.0, 0.0])
        self.assertAllEqual(alpha[1], np.zeros((3, 4)))
        self.assertAllEqual(beta[1], np.zeros(3))

    def test_item_scores_follow_the_concatenated_formula(self):
        # The layer splits [h ‖ q ‖ h ⊙ q] W into parts; numpy applies W to the
        # concatenation itself (random weights, 2 heads, a non-zero q part).
        history, channels, mask, query = _random_inputs()
        layer = MCAU(num_channels=3, attention_units=4, num_heads=2)
        layer((history, channels, mask, query))
        rng = np.random.default_rng(1)
        layer.item_kernel.assign(rng.normal(size=layer.item_kernel.shape).astype("float32"))
        _, alpha, _ = layer((history, channels, mask, query))
        q = np.broadcast_to(query[:, None, :], history.shape)
        features = np.concatenate([history, q, history * q], axis=-1)  # (B, L, 3e)
        scores = np.einsum("bhla,ha->bhl", np.tanh(np.einsum("blf,hfa->bhla", features,
                                                             layer.item_kernel.numpy())),
                           layer.item_vector.numpy())
        expected = np.zeros(alpha.shape)
        for b in range(history.shape[0]):
            for c in range(3):
                members = mask[b] & (channels[b] == c)
                for h in range(2):
                    if members.any():
                        e = np.exp(scores[b, h] - scores[b, h][members].max()) * members
                        expected[b, c] += e / e.sum() / 2  # heads averaged
        self.assertAllClose(alpha, expected, atol=1e-5)

    def test_query_projection_and_heads(self):
        history, channels, mask, query = _random_inputs(dim=5, query_dim=7)
        layer = MCAU(num_channels=3, attention_units=4, num_heads=2)
        o, alpha, beta = layer((history, channels, mask, query))
        self.assertEqual((o.shape, alpha.shape, beta.shape), ((4, 5), (4, 3, 6), (4, 3)))
        shapes = {w.name.split("/")[-1].split(":")[0]: tuple(w.shape) for w in layer.weights}
        self.assertEqual(
            shapes,
            {
                "kernel": (7, 5),  # query_projection: q (7) -> e (5)
                "item_kernel": (2, 15, 4),
                "item_vector": (2, 4),
                "channel_kernel": (2, 10, 4),
                "channel_vector": (2, 4),
            },
        )
        self.assertNotAllClose(layer.item_vector[0], layer.channel_vector[0])

    def test_heads_average(self):
        # Two identical heads give the one-head result.
        inputs = _random_inputs()
        one = MCAU(num_channels=3, attention_units=4)
        two = MCAU(num_channels=3, attention_units=4, num_heads=2)
        expected = one(inputs)
        two(inputs)
        two.set_weights([np.concatenate([w, w]) for w in one.get_weights()])
        for got, want in zip(two(inputs), expected):
            self.assertAllClose(got, want)

    def test_batched_size_runs_under_tf_function(self):
        history = tf.random.normal((1024, 50, 32))
        channels = tf.random.uniform((1024, 50), 0, 3, tf.int32)
        mask = tf.random.uniform((1024, 50)) > 0.2
        query = tf.random.normal((1024, 32))
        o, alpha, beta = tf.function(MCAU(num_channels=3, attention_units=32))((history, channels, mask, query))
        self.assertEqual((o.shape, alpha.shape, beta.shape), ((1024, 32), (1024, 3, 50), (1024, 3)))

    @parameterized.parameters(
        dict(kwargs=dict(num_channels=0), message="0"),
        dict(kwargs=dict(attention_units=-1), message="-1"),
        dict(kwargs=dict(num_heads=1.5), message="1.5"),
    )
    def test_validation(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            MCAU(**kwargs)

    def test_config_round_trip(self):
        layer = MCAU(num_channels=4, attention_units=3, num_heads=2, name="history_attention")
        clone = MCAU.from_config(layer.get_config())
        self.assertEqual(clone.get_config(), layer.get_config())
        self.assertEqual(clone.get_config()["num_channels"], 4)
        self.assertIsInstance(tf.keras.layers.deserialize(tf.keras.layers.serialize(layer)), MCAU)

    def test_save_and_reload(self):
        history_in = tf.keras.Input(shape=(6, 5), name="history")
        channels_in = tf.keras.Input(shape=(6,), dtype=tf.int32, name="channels")
        mask_in = tf.keras.Input(shape=(6,), dtype=tf.bool, name="mask")
        query_in = tf.keras.Input(shape=(3,), name="query")
        o, alpha, beta = MCAU(num_channels=3, attention_units=4)((history_in, channels_in, mask_in, query_in))
        model = tf.keras.Model([history_in, channels_in, mask_in, query_in], [o, alpha, beta])
        inputs = list(_random_inputs(query_dim=3))
        expected = model(inputs)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model")
            model.save(path)  # SavedModel
            reloaded = tf.keras.models.load_model(path)
        self.assertTrue(any(isinstance(layer, MCAU) for layer in reloaded.layers))
        for got, want in zip(reloaded(inputs), expected):
            self.assertAllClose(got, want)


if __name__ == "__main__":
    tf.test.main()


def test_times_matrix_is_matmul_over_the_last_axis():
    from afetler_tf.layers.mcau import times_matrix
    x = tf.random.stateless_normal([3, 5, 4], seed=[1, 2])
    m = tf.random.stateless_normal([4, 2], seed=[3, 4])
    np.testing.assert_allclose(times_matrix(x, m).numpy(), np.einsum("blk,km->blm", x, m), atol=1e-5)
    assert times_matrix(x[0], m).shape == (5, 2) and times_matrix(x[:0], m).shape == (0, 5, 2)


def test_item_level_is_h_w_h_plus_h_times_q_w_hq():
    """The item level, hand-written per head: h W_h + (h ⊙ q) W_hq at every
    position; a row's MCAU output does not depend on which rows share its
    batch."""
    from afetler_tf.layers import mcau as mcau_module
    h = tf.random.stateless_normal([5, 7, 6], seed=[1, 1])
    q = tf.random.stateless_normal([5, 6], seed=[2, 2])
    w_h = tf.random.stateless_normal([2, 6, 4], seed=[3, 3])
    w_hq = tf.random.stateless_normal([2, 6, 4], seed=[4, 4])
    expected = np.concatenate([np.einsum("ble,ea->bla", h, w_h[k]) +
                               np.einsum("ble,ea->bla", h * q[:, None, :], w_hq[k]) for k in range(2)],
                              axis=-1)  # heads side by side, (B, L, H * A)
    level = mcau_module._item_level(h, q, w_h, w_hq).numpy()
    np.testing.assert_allclose(level, expected, atol=1e-5)
    layer = MCAU(num_channels=3, attention_units=4, num_heads=2)
    rows = 40
    history = tf.random.stateless_normal([rows, 7, 6], seed=[5, 5])
    channels = tf.random.stateless_uniform([rows, 7], seed=[6, 6], maxval=3, dtype=tf.int32)
    mask = tf.ones([rows, 7], tf.bool)
    query = tf.random.stateless_normal([rows, 6], seed=[7, 7])
    many = layer((history, channels, mask, query))[0].numpy()
    few = layer((history[:2], channels[:2], mask[:2], query[:2]))[0].numpy()
    np.testing.assert_allclose(few, many[:2], atol=1e-5)
