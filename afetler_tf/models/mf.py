"""Biased matrix factorisation: r̂(u, i) = μ + b_u + b_i + <p_u, q_i>.

Ids go in as raw strings: a ``StringLookup`` inside the model maps them to rows,
with row 0 the out-of-vocabulary row, which training never touches except
through the L2 penalty, so an unknown user or item is answered from the global
mean and the other side's bias.

Training: MSE loss plus L2 on the embeddings and biases, Adam, early stopping on
the validation RMSE with the best weights restored. With ``refit_full`` the
model is then retrained from scratch on train + validation for the number of
epochs early stopping chose (the validation set is only used to pick that
number, never the test set).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from afetler_tf import files, training
from afetler_tf.config import Config, MFConfig
from afetler_tf.data.schema import Dataset, Split
from afetler_tf.models.base import Recommender

_VOCAB_FILE = "mf_vocab.json"
_WEIGHTS = "mf_weights"


class MFNet(tf.keras.Model):
    """The Keras model: raw string ids in, predicted ratings out.

    Input: dict with ``user_id`` and ``item_id``, string tensors of shape (batch,).
    Output shape: (batch,).
    """

    def __init__(self, user_vocab: Sequence[str], item_vocab: Sequence[str], mean: float,
                 cfg: MFConfig, **kwargs):
        super().__init__(**kwargs)
        self.user_lookup = tf.keras.layers.StringLookup(vocabulary=list(user_vocab), num_oov_indices=1)
        self.item_lookup = tf.keras.layers.StringLookup(vocabulary=list(item_vocab), num_oov_indices=1)
        self.user_embedding = _embedding(len(user_vocab) + 1, cfg.embedding_dim, cfg.l2, cfg.init_stddev)
        self.item_embedding = _embedding(len(item_vocab) + 1, cfg.embedding_dim, cfg.l2, cfg.init_stddev)
        self.user_bias = _embedding(len(user_vocab) + 1, 1, cfg.bias_l2, 0.0)
        self.item_bias = _embedding(len(item_vocab) + 1, 1, cfg.bias_l2, 0.0)
        self.mean = tf.constant(mean, tf.float32)

    def call(self, inputs, training=False):
        users = self.user_lookup(inputs["user_id"])  # (batch,)
        items = self.item_lookup(inputs["item_id"])  # (batch,)
        dot = tf.reduce_sum(self.user_embedding(users) * self.item_embedding(items), axis=1)
        biases = self.user_bias(users)[:, 0] + self.item_bias(items)[:, 0]
        return self.mean + biases + dot  # (batch,)

    def user_table(self, user_ids: np.ndarray):
        """(P, b_u) for ``user_ids``: shapes (n, dim) and (n,)."""
        rows = self.user_lookup(user_ids)
        return self.user_embedding(rows), self.user_bias(rows)[:, 0]

    def item_table(self, item_ids: np.ndarray):
        """(Q, b_i) for ``item_ids``: shapes (n, dim) and (n,)."""
        rows = self.item_lookup(item_ids)
        return self.item_embedding(rows), self.item_bias(rows)[:, 0]


def _embedding(rows: int, dim: int, l2: float, stddev: float) -> tf.keras.layers.Embedding:
    init = (tf.keras.initializers.RandomNormal(stddev=stddev) if stddev > 0
            else tf.keras.initializers.Zeros())
    reg = tf.keras.regularizers.L2(l2) if l2 > 0 else None
    return tf.keras.layers.Embedding(rows, dim, embeddings_initializer=init,
                                     embeddings_regularizer=reg)


class MatrixFactorization(Recommender):
    """Biased MF trained on explicit ratings (protocol R baseline).

    Example:
        model = MatrixFactorization(Config(model="mf"))
        model.fit(data, split)
        model.score(["1"], ["50"])  # predicted rating, shape (1,)
    """

    name = "mf"
    predicts_ratings = True

    def __init__(self, config: Config):
        super().__init__(config)
        self.net: MFNet | None = None
        self._vocab: dict = {}

    @property
    def vocabulary(self) -> dict:
        """What the fit trained on: ``users`` and ``items`` (their ids, the
        tables' rows 1..n) and ``mean``, the training ratings' mean mu."""
        return self._vocab

    def fit(self, data: Dataset, split: Split, verbose: int = 1, checkpoint_dir: Optional[str] = None) -> dict:
        """Trains on ``split.train``, early-stopped on ``split.validation``'s
        RMSE; with ``checkpoint_dir`` resumable per epoch (not the refit)."""
        cfg = self.config.mf
        train, validation = split.train, split.validation
        history = self._train(train, validation, cfg.epochs, verbose, checkpoint_dir)
        if cfg.refit_full and len(validation):
            epochs = history.get("best_epoch", cfg.epochs)
            if verbose:
                print(f"mf: refitting on train + validation for {epochs} epochs")
            full = _concat(train, validation)
            history["refit"] = self._train(full, full.iloc[:0], epochs, verbose)
        return history

    def _train(self, train, validation, epochs: int, verbose: int, checkpoint_dir=None) -> dict:
        cfg = self.config.mf
        training.set_seed(self.config.train.seed)
        users = sorted(set(training.as_strings(train["user_id"])))
        items = sorted(set(training.as_strings(train["item_id"])))
        self._build(users, items, float(training.ratings(train).mean()))
        train_ds = self._dataset(train, shuffle=True)
        val_ds = self._dataset(validation) if len(validation) else None
        return training.fit_with_early_stopping(
            self.net, train_ds, val_ds, epochs, cfg.patience, monitor="val_rmse", verbose=verbose,
            checkpoint_dir=checkpoint_dir, prefix="mf ")

    def _build(self, users: list, items: list, mean: float) -> None:
        cfg = self.config.mf
        self._vocab = {"users": users, "items": items, "mean": mean}
        self.net = MFNet(users, items, mean, cfg)
        self.net.compile(optimizer=tf.keras.optimizers.Adam(cfg.learning_rate), loss="mse",
                         metrics=[tf.keras.metrics.RootMeanSquaredError(name="rmse")],
                         steps_per_execution=training.SMALL_MODEL_STEPS_PER_EXECUTION)

    def _dataset(self, frame, shuffle: bool = False) -> tf.data.Dataset:
        features = {"user_id": training.as_strings(frame["user_id"]),
                    "item_id": training.as_strings(frame["item_id"])}
        batch = self.config.mf.batch_size if shuffle else 8192
        return training.make_dataset(features, training.ratings(frame), batch, shuffle,
                                      self.config.train.seed)

    def score(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        features = {"user_id": training.as_strings(user_ids),
                    "item_id": training.as_strings(item_ids)}
        if len(features["user_id"]) != len(features["item_id"]):
            raise ValueError(f"score() needs as many users as items, got "
                             f"{len(user_ids)} and {len(item_ids)}.")
        return training.predict_batched(self.net, features)

    def score_all(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """μ + b_u + b_i + P Qᵀ in one matrix product; shape (n_users, n_items)."""
        self._check_fitted()
        p, bu = self.net.user_table(training.as_strings(user_ids))
        q, bi = self.net.item_table(training.as_strings(item_ids))
        scores = tf.matmul(p, q, transpose_b=True) + bu[:, None] + bi[None, :] + self.net.mean
        return scores.numpy().astype("float64")

    def save(self, directory: str) -> None:
        self._check_fitted()
        os.makedirs(directory, exist_ok=True)
        self.net.save_weights(os.path.join(directory, _WEIGHTS))
        files.write_json(os.path.join(directory, _VOCAB_FILE),
                             {**self._vocab, "config": dataclasses.asdict(self.config.mf)})

    def load(self, directory: str, data: Dataset, split: Split) -> None:
        vocab = files.read_json(os.path.join(directory, _VOCAB_FILE))
        self.config = self.config.replace(mf=MFConfig(**vocab["config"]))
        self._build(vocab["users"], vocab["items"], vocab["mean"])
        self.net(self._probe())  # creates the variables before restoring them
        self.net.load_weights(os.path.join(directory, _WEIGHTS)).expect_partial()

    def _probe(self) -> dict:
        return {"user_id": tf.constant([""]), "item_id": tf.constant([""])}

    def _check_fitted(self) -> None:
        if self.net is None:
            raise RuntimeError("MatrixFactorization is not fitted: call fit() or load() first.")


def _concat(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([a, b], ignore_index=True)
