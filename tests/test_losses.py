"""Tests of the ATL losses (afetler_tf/losses.py), against hand-computed values."""

import afetler_tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow)

import math

import numpy as np
import tensorflow as tf

from afetler_tf import losses


class MimicLossTest(tf.test.TestCase):
    def test_value_and_weights(self):
        # ‖(1,2) − (0,0)‖² = 5,  ‖(0,0) − (1,1)‖² = 2  ->  mean 3.5.
        a = tf.constant([[1.0, 2.0], [0.0, 0.0]])
        p = tf.constant([[0.0, 0.0], [1.0, 1.0]])
        self.assertAllClose(losses.mimic_loss(a, p), 3.5)
        # Weights (1, 0) keep the first pair only: 5.  (3, 1): (15 + 2) / 4 = 4.25.
        self.assertAllClose(losses.mimic_loss(a, p, weights=[1.0, 0.0]), 5.0)
        self.assertAllClose(losses.mimic_loss(a, p, weights=[3.0, 1.0]), 4.25)
        self.assertAllClose(losses.mimic_loss(a, p, weights=[0.0, 0.0]), 0.0)

    def test_stop_gradient_on_tower_output(self):
        # d/da mean_b ‖a_b − p_b‖² = 2 (a − p) / B = (a − p) for B = 2.
        a = tf.Variable([[1.0, 2.0], [0.0, 0.0]])
        p = tf.Variable([[0.0, 0.0], [1.0, 1.0]])
        with tf.GradientTape() as tape:
            loss = losses.mimic_loss(a, p)
        grad_a, grad_p = tape.gradient(loss, [a, p])
        self.assertAllClose(grad_a, [[1.0, 2.0], [-1.0, -1.0]])
        self.assertIsNone(grad_p)


class AttentionAlignmentLossTest(tf.test.TestCase):
    # Three history positions over K = 3 categories, target {0}:
    #   h_0 = {0, 1}: |∩| = 1, |∪| = 2 -> J = 0.5
    #   h_1 = {2}:    |∩| = 0, |∪| = 2 -> J = 0
    #   h_2 = {0}:    |∩| = 1, |∪| = 1 -> J = 1
    HISTORY = [[[1, 1, 0], [0, 0, 1], [1, 0, 0]]]  # (1, 3, 3)
    TARGET = [[1, 0, 0]]  # (1, 3)
    CHANNELS = [[0, 0, 1]]  # channel 2 is empty
    MASK = [[True, True, True]]

    def test_jaccard(self):
        overlap = losses.jaccard(tf.constant(self.HISTORY), tf.constant(self.TARGET)[:, None, :])
        self.assertAllClose(overlap, [[0.5, 0.0, 1.0]])
        self.assertAllClose(losses.jaccard([0, 0], [0, 0]), 0.0)  # empty sets: 0, not NaN

    def test_hand_computed_kl(self):
        # τ = 1. Channel 0 (positions 0, 1): π = softmax(0.5, 0) = (0.6224593, 0.3775407);
        #   α = (0.5, 0.5): KL = 0.6224593 ln(0.6224593 / 0.5) + 0.3775407 ln(0.3775407 / 0.5)
        #                      = 0.1364 − 0.1061 = 0.0302999
        # Channel 1 (position 2): π = α = 1, KL = 0.   Channel 2: empty, not counted.
        # Loss = (0.0302999 + 0) / 2 = 0.0151499.
        alpha = tf.constant([[[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]])
        pi_0 = math.exp(0.5) / (math.exp(0.5) + 1.0)
        kl_0 = pi_0 * math.log(pi_0 / 0.5) + (1 - pi_0) * math.log((1 - pi_0) / 0.5)
        loss = losses.attention_alignment_loss(alpha, self.HISTORY, self.TARGET, self.MASK, self.CHANNELS)
        self.assertAllClose(loss, kl_0 / 2.0, atol=1e-6)
        self.assertAllClose(loss, 0.0151499, atol=1e-6)
        # τ = 0.5: π_0 = softmax(1, 0) = (0.7310586, 0.2689414).
        pi_0 = 1.0 / (1.0 + math.exp(-1.0))
        kl_0 = pi_0 * math.log(pi_0 / 0.5) + (1 - pi_0) * math.log((1 - pi_0) / 0.5)
        loss = losses.attention_alignment_loss(alpha, self.HISTORY, self.TARGET, self.MASK, self.CHANNELS, tau=0.5)
        self.assertAllClose(loss, kl_0 / 2.0, atol=1e-6)

    def test_channel_mask_form_and_zero_cases(self):
        alpha = tf.constant([[[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]])
        channel_mask = [[[True, True, False], [False, False, True], [False, False, False]]]  # (1, 3, 3)
        loss = losses.attention_alignment_loss(alpha, self.HISTORY, self.TARGET, channel_mask)
        self.assertAllClose(loss, 0.0151499, atol=1e-6)
        # α = π: zero loss.
        pi_0 = math.exp(0.5) / (math.exp(0.5) + 1.0)
        alpha_pi = tf.constant([[[pi_0, 1 - pi_0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]])
        self.assertAllClose(
            losses.attention_alignment_loss(alpha_pi, self.HISTORY, self.TARGET, channel_mask), 0.0, atol=1e-6
        )
        # No history at all: 0, not NaN.
        empty = losses.attention_alignment_loss(
            tf.zeros((1, 3, 3)), self.HISTORY, self.TARGET, [[False] * 3], self.CHANNELS
        )
        self.assertAllEqual(empty, 0.0)

    def test_gradient_reaches_alpha_only(self):
        alpha = tf.Variable([[[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]])
        with tf.GradientTape() as tape:
            loss = losses.attention_alignment_loss(alpha, self.HISTORY, self.TARGET, self.MASK, self.CHANNELS)
        grad = tape.gradient(loss, alpha).numpy()
        # d/dα_0j of −π_j ln α_j / 2 = −π_j / (2 α_j): (−0.6224593, −0.3775407) for α_j = 0.5.
        self.assertAllClose(grad[0, 0, :2], [-0.6224593, -0.3775407], atol=1e-5)
        self.assertAllEqual(grad[0, 2], [0.0, 0.0, 0.0])

    def test_validation(self):
        with self.assertRaisesRegex(ValueError, "-1"):
            losses.attention_alignment_loss(tf.zeros((1, 3, 3)), self.HISTORY, self.TARGET, self.MASK, tau=-1)
        with self.assertRaisesRegex(ValueError, "channel_ids"):
            losses.attention_alignment_loss(tf.zeros((1, 3, 3)), self.HISTORY, self.TARGET, self.MASK)


class CategoryAlignmentLossTest(tf.test.TestCase):
    def test_hand_computed_five_vectors(self):
        # Category 7: (1,0), (3,0): Cov (unbiased, n − 1 = 1) = d dᵀ / 2 with d = (2, 0)
        #             = [[2, 0], [0, 0]].
        # Category 3: (0,1), (1,2): d = (−1, −1): Cov = [[0.5, 0.5], [0.5, 0.5]].
        # Category 9: one item, skipped. 7 and 3 tie at 2 items; 7 appears first, so it is
        # the major one (the loss is symmetric here anyway).
        # L = ‖[[1.5, −0.5], [−0.5, −0.5]]‖²_F = 2.25 + 0.25 + 0.25 + 0.25 = 3.
        vectors = tf.constant([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0], [1.0, 2.0], [5.0, 5.0]])
        categories = tf.constant([7, 3, 7, 3, 9])
        self.assertAllClose(losses.category_alignment_loss(vectors, categories), 3.0)
        np_covariances = [np.cov(vectors.numpy()[categories.numpy() == c].T) for c in (7, 3)]
        self.assertAllClose(np.sum((np_covariances[0] - np_covariances[1]) ** 2), 3.0)

    def test_hand_computed_clear_major(self):
        # Major 0: (0,0), (2,0), (1,3); mean (1,1); centred (−1,−1), (1,−1), (0,2):
        #   Σ c cᵀ = [[2, 0], [0, 6]] -> Cov = [[1, 0], [0, 3]].
        # Category 1: (0,0), (0,2): Cov = [[0, 0], [0, 2]]  -> ‖[[1,0],[0,1]]‖² = 2.
        # Category 2: (4,4), (6,4): Cov = [[2, 0], [0, 0]]  -> ‖[[−1,0],[0,3]]‖² = 10.
        # Category 3: one item, skipped.  L = 2 + 10 = 12.
        vectors = tf.constant([[0, 0], [0, 0], [4, 4], [2, 0], [9, 9], [0, 2], [6, 4], [1, 3]], tf.float32)
        categories = tf.constant([1, 0, 2, 0, 3, 1, 2, 0])
        self.assertAllClose(losses.category_alignment_loss(vectors, categories), 12.0)

    def test_degenerate_batches_give_zero(self):
        vectors = tf.constant([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
        self.assertAllEqual(losses.category_alignment_loss(vectors, [1, 2, 3]), 0.0)  # all singletons
        self.assertAllEqual(losses.category_alignment_loss(vectors, [4, 4, 4]), 0.0)  # one category
        self.assertAllEqual(losses.category_alignment_loss(tf.zeros((0, 2)), tf.zeros((0,), tf.int32)), 0.0)

    def test_under_tf_function_with_dynamic_categories(self):
        @tf.function(
            input_signature=[tf.TensorSpec((None, None), tf.float32), tf.TensorSpec((None,), tf.int32)]
        )
        def loss_fn(vectors, categories):
            return losses.category_alignment_loss(vectors, categories)

        five = tf.constant([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0], [1.0, 2.0], [5.0, 5.0]])
        self.assertAllClose(loss_fn(five, tf.constant([7, 3, 7, 3, 9])), 3.0)
        self.assertAllClose(loss_fn(five[:4], tf.constant([0, 1, 0, 1])), 3.0)
        self.assertAllClose(loss_fn(five, tf.constant([2, 2, 2, 2, 2])), 0.0)
        self.assertEqual(loss_fn.experimental_get_tracing_count(), 1)  # one graph for all category sets

    def test_gradient_is_finite(self):
        vectors = tf.Variable(tf.random.stateless_normal((16, 4), seed=(1, 2)))
        categories = tf.constant([0, 1, 2, 3] * 3 + [4, 5, 6, 7])
        with tf.GradientTape() as tape:
            loss = losses.category_alignment_loss(vectors, categories)
        grad = tape.gradient(loss, vectors).numpy()
        self.assertTrue(np.all(np.isfinite(grad)))
        self.assertAllEqual(grad[12:], np.zeros((4, 4)))  # singleton categories get nothing
        self.assertGreater(np.abs(grad[:12]).sum(), 0.0)


if __name__ == "__main__":
    tf.test.main()
