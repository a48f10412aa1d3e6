"""Tests of AdaptiveFusion (afetler_tf/layers/fusion.py)."""

import afetler_tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow)

import os
import tempfile

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from afetler_tf.layers import AdaptiveFusion
from afetler_tf.losses import mimic_loss

VOCABULARY = ["u1", "u2", "u3"]


class AdaptiveFusionTest(tf.test.TestCase, parameterized.TestCase):
    def _inputs(self):
        x = tf.constant([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]])  # (2, 3)
        ids = tf.constant(["u2", "u1"])  # (2,)
        return x, ids

    @parameterized.parameters("gate", "concat")
    def test_output_shapes(self, mode):
        fusion = AdaptiveFusion(dim=4, vocabulary=VOCABULARY, mode=mode)
        x, ids = self._inputs()
        z, a = fusion((x, ids), return_augmented=True)
        self.assertEqual(z.shape, (2, 3 + 4))
        self.assertEqual(a.shape, (2, 4))
        self.assertEqual(fusion.compute_output_shape(((2, 3), (2,))), (2, 7))
        self.assertAllClose(z[:, :3], x)  # x passes through unchanged
        self.assertAllClose(fusion.augmented(ids), a)
        # (batch, 1) ids are accepted too.
        self.assertAllClose(fusion((x, tf.reshape(ids, (2, 1)))), z)

    def test_concat_is_x_then_a(self):
        fusion = AdaptiveFusion(dim=2, num_ids=3, mode="concat")
        x = tf.constant([[1.0, 2.0]])
        z = fusion((x, tf.constant([2])))
        # Row of id 2 is table row 3 (row 0 is OOV).
        expected = np.concatenate([[1.0, 2.0], fusion.weights[0].numpy()[3]])[None]
        self.assertAllClose(z, expected)

    def test_gate_values_in_open_unit_interval(self):
        fusion = AdaptiveFusion(dim=4, vocabulary=VOCABULARY)
        x, ids = self._inputs()
        z, a = fusion((x, ids), return_augmented=True)
        g = fusion.gate(x, a)
        self.assertEqual(g.shape, (2, 4))
        self.assertAllGreater(g, 0.0)
        self.assertAllLess(g, 1.0)
        self.assertAllClose(z[:, 3:], g * a)

    def test_gate_hand_computed(self):
        # Gate kernel 0 and bias b = log(3): g = sigmoid(log 3) = 3 / (1 + 3) = 0.75
        # for every unit, so z = [x ‖ 0.75 a]. With a = (2, -4): g ⊙ a = (1.5, -3).
        fusion = AdaptiveFusion(dim=2, vocabulary=["a"])
        x = tf.constant([[1.0, 1.0, 1.0]])
        fusion((x, tf.constant(["a"])))
        fusion.weights[0].assign([[0.0, 0.0], [2.0, -4.0]])  # OOV row, "a"
        gate_kernel, gate_bias = fusion._gate.weights
        gate_kernel.assign(tf.zeros_like(gate_kernel))
        gate_bias.assign(tf.fill([2], float(np.log(3.0))))
        z = fusion((x, tf.constant(["a"])))
        self.assertAllClose(z, [[1.0, 1.0, 1.0, 1.5, -3.0]])

    def test_oov_id_gets_finite_zero_vector(self):
        fusion = AdaptiveFusion(dim=3, vocabulary=VOCABULARY)
        x = tf.ones((2, 2))
        z, a = fusion((x, tf.constant(["never-seen", "u1"])), return_augmented=True)
        self.assertAllEqual(a[0], [0.0, 0.0, 0.0])
        self.assertAllEqual(z[0], [1.0, 1.0, 0.0, 0.0, 0.0])
        self.assertTrue(np.all(np.isfinite(z.numpy())))
        # Integer ids outside [0, num_ids) are OOV too.
        int_fusion = AdaptiveFusion(dim=3, num_ids=5)
        self.assertAllEqual(int_fusion.augmented(tf.constant([-1, 5, 99])), tf.zeros((3, 3)))
        self.assertNotAllClose(int_fusion.augmented(tf.constant([4])), tf.zeros((1, 3)))

    def test_integer_vocabulary(self):
        fusion = AdaptiveFusion(dim=2, vocabulary=[10, 20, 30])
        a = fusion.augmented(tf.constant([20, 7], tf.int64))
        self.assertNotAllClose(a[0], [0.0, 0.0])
        self.assertAllEqual(a[1], [0.0, 0.0])

    def test_mimic_loss_trains_augmented_vectors_not_the_tower(self):
        fusion = AdaptiveFusion(dim=4, vocabulary=VOCABULARY)
        tower = tf.keras.layers.Dense(4)  # produces p from the other side
        x, ids = self._inputs()
        tower(x)
        with tf.GradientTape() as tape:
            _, a = fusion((x, ids), return_augmented=True)
            loss = mimic_loss(a, tower(x))
        variables = [fusion.weights[0], *tower.trainable_variables]
        table_grad, *tower_grads = tape.gradient(loss, variables)
        for grad in tower_grads:  # stop-gradient on p: no path to the tower
            self.assertTrue(grad is None or np.all(tf.convert_to_tensor(grad).numpy() == 0.0))
        table_grad = tf.convert_to_tensor(table_grad).numpy()  # (4, 4): OOV, u1, u2, u3
        self.assertGreater(np.abs(table_grad[1:3]).sum(), 0.0)  # u1, u2 were used
        self.assertAllEqual(table_grad[0], np.zeros(4))  # OOV row never trains
        self.assertAllEqual(table_grad[3], np.zeros(4))  # u3 not in the batch

    @parameterized.parameters(
        dict(kwargs=dict(dim=4, vocabulary=VOCABULARY, mode="sum"), message="'sum'"),
        dict(kwargs=dict(dim=0, num_ids=3), message="0"),
        dict(kwargs=dict(dim=4, vocabulary=VOCABULARY, num_ids=3), message="exactly one"),
        dict(kwargs=dict(dim=4), message="exactly one"),
        dict(kwargs=dict(dim=4, num_ids=-2), message="-2"),
        dict(kwargs=dict(dim=4, vocabulary=[]), message="empty"),
        dict(kwargs=dict(dim=4, vocabulary=["a", "a"]), message="duplicate"),
        dict(kwargs=dict(dim=4, vocabulary=["a", 1]), message="only str or only int"),
    )
    def test_validation(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            AdaptiveFusion(**kwargs)

    def test_config_round_trip(self):
        fusion = AdaptiveFusion(dim=4, vocabulary=VOCABULARY, mode="concat", name="user_fusion")
        x, ids = self._inputs()
        expected = fusion((x, ids))
        clone = AdaptiveFusion.from_config(fusion.get_config())
        self.assertEqual(clone.get_config(), fusion.get_config())
        clone((x, ids))
        clone.set_weights(fusion.get_weights())
        self.assertAllClose(clone((x, ids)), expected)
        restored = tf.keras.layers.deserialize(tf.keras.layers.serialize(fusion))
        self.assertIsInstance(restored, AdaptiveFusion)

    def test_save_and_reload(self):
        x_in = tf.keras.Input(shape=(3,), name="x")
        ids_in = tf.keras.Input(shape=(), dtype=tf.string, name="ids")
        z = AdaptiveFusion(dim=4, vocabulary=VOCABULARY)((x_in, ids_in))
        model = tf.keras.Model([x_in, ids_in], tf.keras.layers.Dense(2)(z))
        x, _ = self._inputs()
        ids = tf.constant(["u3", "unknown"])
        expected = model([x, ids])
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model")
            model.save(path)  # SavedModel
            reloaded = tf.keras.models.load_model(path)
        self.assertIsInstance(reloaded.layers[2], AdaptiveFusion)
        self.assertAllClose(reloaded([x, ids]), expected)


if __name__ == "__main__":
    tf.test.main()
