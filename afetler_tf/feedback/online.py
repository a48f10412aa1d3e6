"""Online updates: fine-tune the towers on a revealed round (docs/design.md §5).

No retraining from scratch: the trained network keeps its weights and its
vocabularies (ids first seen online go through the OOV buckets), and a few
passes of Adam run over the round's interactions, mixed with a sample of
earlier revealed ones (experience replay, ``online_replay`` times the round's
size, against forgetting). Each interaction is weighted by its reward:

    weight = +1 (rating >= like), -penalty_weight (rating <= dislike), 0 otherwise.

Loss of a batch (p_u, p_v L2-normalised, logits = <p_u, p_v> / T - log Q):
    rewards:   weighted in-batch softmax cross-entropy (log-Q corrected, other
               rows holding the same item masked), as in warm-up training;
    penalties: weighted logistic loss softplus(l_ii - mean_j l_ij), pushing a
               disliked item below the user's average in-batch candidate;
    ratings:   ranking-head MSE on every revealed rating (weight rating_weight).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import tensorflow as tf

from afetler_tf import training
from afetler_tf.feedback.config import FeedbackConfig


def reward_weights(ratings, like: float = 4.0, dislike: float = 2.0,
                   penalty_weight: float = 1.0) -> np.ndarray:
    """Sample weight of each interaction: +1 reward, -penalty_weight penalty, else 0."""
    r = np.asarray(ratings, np.float64)
    return np.where(r >= like, 1.0, np.where(r <= dislike, -penalty_weight, 0.0)).astype(np.float32)


def feedback_loss(p_u, p_v, item_ids, weights, sampling_probability, temperature: float):
    """Reward-weighted retrieval loss with penalties as weighted negatives.

    Args:
        p_u, p_v: (batch, d) tower outputs of the revealed pairs.
        item_ids: (batch,) str, to mask accidental hits.
        weights: (batch,) reward weights (positive: reward, negative: penalty).
        sampling_probability: (batch,) Q of each item (log-Q correction).
        temperature: Softmax temperature T.

    Returns:
        Scalar loss.
    """
    logits = tf.matmul(p_u, p_v, transpose_b=True) / temperature  # (batch, batch)
    logits -= tf.math.log(tf.maximum(sampling_probability, 1e-12))[None, :]
    same = tf.equal(item_ids[:, None], item_ids[None, :])
    eye = tf.eye(tf.shape(logits)[0], dtype=tf.bool)
    logits = tf.where(tf.logical_and(same, tf.logical_not(eye)), -1e9, logits)
    diagonal = tf.linalg.diag_part(logits)
    positive, negative = tf.nn.relu(weights), tf.nn.relu(-weights)
    reward = -tf.reduce_sum(positive * tf.linalg.diag_part(tf.nn.log_softmax(logits, axis=1)))
    others = tf.cast(tf.logical_not(same), logits.dtype)  # (batch, batch); same item incl. self
    mean_other = tf.reduce_sum(others * logits, axis=1) / tf.maximum(tf.reduce_sum(others, axis=1), 1.0)
    margin = diagonal - mean_other
    penalty = tf.reduce_sum(negative * tf.nn.softplus(margin))
    return (reward + penalty) / tf.maximum(tf.reduce_sum(positive + negative), 1.0)


class OnlineUpdater:
    """Fine-tunes a tower model (afetler, two_tower) on each revealed round.

    Args:
        model: A trained Afetler-family recommender (``network``,
            ``examples`` and ``add_history``).
        config: Online settings (epochs, batch size, learning rate, weights).

    Raises:
        ValueError: The model has no towers to fine-tune.
    """

    def __init__(self, model, config: FeedbackConfig):
        if not all(hasattr(model, a) for a in ("network", "examples", "add_history")):
            raise ValueError(f"Online updates need a tower model (afetler or two_tower), "
                             f"not {model.name!r}.")
        self.model, self.config = model, config
        self._optimizer = tf.keras.optimizers.Adam(config.online_learning_rate)
        self._step = tf.function(self._train_step, reduce_retracing=True)
        self._seed = config.seed

    def _train_step(self, batch):
        net = self.model.network
        with tf.GradientTape() as tape:
            p_u, p_v = net.query_tower(batch, training=True), net.candidate_tower(batch, training=True)
            loss = feedback_loss(p_u, p_v, batch["item_id"], batch["reward_weight"],
                                 batch["sampling_probability"], self.model.config.retrieval_temperature)
            if net.ranking_head is not None and self.config.rating_weight:
                rating = net.rate(batch, p_u, p_v, training=True)[:, 0]
                loss += self.config.rating_weight * tf.reduce_mean(tf.square(rating - batch["rating"]))
        variables = net.trainable_variables
        gradients = tape.gradient(loss, variables)
        self._optimizer.apply_gradients(
            [(g, v) for g, v in zip(gradients, variables) if g is not None])
        return loss

    def _with_replay(self, interactions: pd.DataFrame, revealed: pd.DataFrame) -> pd.DataFrame:
        """The round plus a seeded sample of the interactions revealed before it."""
        earlier = revealed.iloc[:len(revealed) - len(interactions)]  # the round is revealed last
        n = min(int(round(self.config.online_replay * len(interactions))), len(earlier))
        sample = earlier.sample(n=n, random_state=self._seed) if n else earlier.iloc[:0]
        return pd.concat([interactions, sample], ignore_index=True)

    def update(self, interactions: pd.DataFrame, revealed: pd.DataFrame) -> dict:
        """Fine-tunes on ``interactions`` (the round just revealed).

        Args:
            interactions: The round's interactions.
            revealed: Everything revealed so far, the round last (replay
                sample and log-Q probabilities).

        Returns:
            ``update_seconds`` (the cost of the round), ``update_examples``,
            ``update_steps`` and ``update_loss`` (mean over the steps).
        """
        start = time.perf_counter()
        cfg = self.config
        self.model.add_history(interactions)
        self._seed += 1
        frame = self._with_replay(interactions, revealed)
        features = self.model.examples(frame, training.sampling_probabilities(revealed))
        features["reward_weight"] = reward_weights(frame["rating"], cfg.like_threshold,
                                                   cfg.dislike_threshold, cfg.penalty_weight)
        dataset = training.make_dataset(features, None, cfg.online_batch_size, shuffle=True,
                                        seed=self._seed)
        losses = [float(self._step(batch)) for _ in range(cfg.online_epochs) for batch in dataset]
        return {"update_seconds": time.perf_counter() - start, "update_examples": int(len(frame)),
                "update_steps": len(losses), "update_loss": float(np.mean(losses)) if losses else 0.0}
