"""NewItemGAN: item vectors from content for items without interactions (docs/design.md §3).

After ATNN. The generator G maps an item's content features (categories,
title tokens, year and other numeric attributes; never the id) to a d-dim
vector in the item tower's space; the discriminator D tells real pairs
(p_v, content) of warm items, p_v from the trained (frozen) item tower, from
generated pairs (G(x), content). Generator loss:

    L_G = w_adv BCE(D(G(x), x), 1) + λ_s mean (1 − cos(G(x), p_v))²
          + w_ret L_retrieval(p_u, G(x))

with L_retrieval TFRS' in-batch softmax (log-Q corrected) of the frozen query
tower's p_u against the generated vectors of the batch's positive items.
Training follows the keras-io DCGAN "overriding train_step" pattern: a
custom ``compile(g_optimizer, d_optimizer)``, ``Mean`` trackers exposed via
``metrics``, one GradientTape per player.

:class:`NewItemTower` is the serving-side candidate tower: it embeds an item
with the trained tower, or with G when the item has fewer than
``min_interactions`` training interactions (unknown ids included), inside one
graph, so it can be exported as is.

Example:
    gan = NewItemGAN(space.categories, space.title_vocab, space.item_numeric, output_dim=32)
    gan.compile(g_optimizer=tf.keras.optimizers.Adam(2e-3),
                d_optimizer=tf.keras.optimizers.Adam(1e-3))
    gan.fit(make_dataset(examples, None, 512, shuffle=True), epochs=10)
    vectors = gan(space.item_features(["new-item"]))  # (1, 32)
"""

from __future__ import annotations

import time
from typing import Sequence

import tensorflow as tf
import tensorflow_recommenders as tfrs

from afetler_tf.features import MISSING, ItemFeatures
from afetler_tf.layers.towers import mlp
from afetler_tf.models.objectives import id_codes
from afetler_tf.training import with_autograph

LOSS_NAMES = ("d_loss", "g_loss", "adversarial_loss", "similarity_loss", "retrieval_loss")
_NO_IDS = ["<none>"]  # the content encoders never embed ids (StringLookup needs a vocabulary)


class ContentGenerator(tf.keras.Model):
    """G: content features -> unit d-vector. Input: raw candidate features
    (``categories``, ``title``, numeric columns; batch,). Output: (batch, d)."""

    def __init__(self, categories, title_vocab, numeric, output_dim, hidden_units, embedding_dim,
                 dropout, **kwargs):
        super().__init__(**kwargs)
        self.content = ItemFeatures(_NO_IDS, categories, title_vocab, numeric, embedding_dim,
                                    use_id=False)
        self.mlp = mlp(list(hidden_units) + [output_dim], name="generator_mlp", dropout=dropout)

    def call(self, features, training=False):
        x = self.content(features)  # (batch, fields * e)
        return tf.math.l2_normalize(self.mlp(x, training=training), axis=-1)  # (batch, d)

    def has_content(self, features):
        """(batch,) bool: a known category, a known title word or a numeric value."""
        cats = tf.reduce_sum(self.content.categories_multi_hot(features["categories"]), -1) > 0
        known = cats
        if self.content.title_lookup is not None:
            tokens = self.content.title_lookup(features["title"])  # (batch, n), 0 = padding, 1 = OOV
            known = tf.logical_or(known, tf.reduce_any(tokens > 1, axis=-1))
        for col in self.content.fields:
            known = tf.logical_or(known, tf.cast(features[col], tf.float32) > MISSING / 2)
        return known


class PairDiscriminator(tf.keras.Model):
    """D: (vector (batch, d), content features) -> real/fake logit (batch, 1)."""

    def __init__(self, categories, title_vocab, numeric, hidden_units, embedding_dim, **kwargs):
        super().__init__(**kwargs)
        self.content = ItemFeatures(_NO_IDS, categories, title_vocab, numeric, embedding_dim,
                                    use_id=False)
        self.mlp = mlp(list(hidden_units) + [1], name="discriminator_mlp")

    def call(self, inputs, training=False):
        vector, features = inputs
        return self.mlp(tf.concat([vector, self.content(features)], -1), training=training)


@tf.keras.utils.register_keras_serializable(package="afetler_tf")
class NewItemGAN(tf.keras.Model):
    """Conditional GAN whose generator embeds new items from their content.

    Args:
        categories, title_vocab, numeric: Content vocabularies and numeric
            bucket boundaries (``FeatureSpace.categories`` etc.).
        output_dim: d, the item tower's output size.
        hidden_units: Hidden sizes of both players' MLPs.
        embedding_dim: Width of each content-feature embedding.
        dropout: Generator dropout.
        loss_weights: (adversarial, similarity λ_s, retrieval) weights.
        temperature: Softmax temperature of the retrieval loss.

    Training batches are dicts of raw candidate features plus
    ``user_vector`` (batch, d) and ``item_vector`` (batch, d) (frozen p_u,
    p_v of positive pairs), ``item_id`` and ``sampling_probability`` (batch,).
    ``call(features)`` returns G(x), (batch, d).
    """

    def __init__(self, categories: Sequence[str], title_vocab: Sequence[str] = (), numeric=None,
                 output_dim: int = 32, hidden_units: Sequence[int] = (128,), embedding_dim: int = 32,
                 dropout: float = 0.0, loss_weights: Sequence[float] = (0.05, 1.0, 1.0),
                 temperature: float = 0.05, **kwargs):
        super().__init__(**kwargs)
        if output_dim < 1 or len(loss_weights) != 3 or min(loss_weights) < 0:
            raise ValueError(f"NewItemGAN needs output_dim >= 1 and 3 non-negative loss_weights, got "
                             f"{output_dim!r} and {loss_weights!r}")
        self._args = dict(categories=list(categories), title_vocab=list(title_vocab),
                          numeric=dict(numeric or {}), output_dim=int(output_dim),
                          hidden_units=list(hidden_units), embedding_dim=int(embedding_dim),
                          dropout=float(dropout), loss_weights=[float(w) for w in loss_weights],
                          temperature=float(temperature))
        content = (self._args["categories"], self._args["title_vocab"], self._args["numeric"])
        self.generator = ContentGenerator(*content, output_dim, hidden_units, embedding_dim, dropout,
                                          name="generator")
        self.discriminator = PairDiscriminator(*content, hidden_units, embedding_dim,
                                               name="discriminator")
        self.trackers = {n: tf.keras.metrics.Mean(name=n) for n in LOSS_NAMES}

    def compile(self, g_optimizer, d_optimizer, loss_fn=None, **kwargs):
        """Keras compile with one optimizer per player; ``loss_fn`` is the
        adversarial loss on logits (default binary cross-entropy)."""
        super().compile(**kwargs)
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer
        # Per-example losses, averaged here: Keras refuses its own batch
        # reductions outside compile() under a tf.distribute strategy.
        none = tf.keras.losses.Reduction.NONE
        self.loss_fn = loss_fn or tf.keras.losses.BinaryCrossentropy(from_logits=True, reduction=none)
        loss = tf.keras.losses.CategoricalCrossentropy(from_logits=True, reduction=none)
        self.retrieval = tfrs.tasks.Retrieval(loss=loss, temperature=self._args["temperature"],
                                              remove_accidental_hits=True)

    def optimizer_variables(self) -> list:
        """(optimizer, the variables it updates) of each player
        (``training.loop.create_optimizer_slots``)."""
        return [(self.d_optimizer, self.discriminator.trainable_weights),
                (self.g_optimizer, self.generator.trainable_weights)]

    @property
    def metrics(self):
        return list(self.trackers.values())  # reset by Keras at each epoch

    def call(self, features, training=False):
        return self.generator(features, training=training)

    def _d_loss(self, data, fake):
        """BCE(D(p_v, x), 1) + BCE(D(G(x), x), 0)."""
        real_logits = self.discriminator((data["item_vector"], data), training=True)
        fake_logits = self.discriminator((fake, data), training=True)
        return (tf.reduce_mean(self.loss_fn(tf.ones_like(real_logits), real_logits))
                + tf.reduce_mean(self.loss_fn(tf.zeros_like(fake_logits), fake_logits)))

    def _g_terms(self, data, training):
        """The generator's three loss terms (unweighted) and its weighted sum."""
        fake = self.generator(data, training=training)  # (batch, d), unit norm
        logits = self.discriminator((fake, data), training=training)
        cos = tf.reduce_sum(fake * tf.math.l2_normalize(data["item_vector"], -1), -1)  # (batch,)
        terms = {"adversarial_loss": tf.reduce_mean(self.loss_fn(tf.ones_like(logits), logits)),
                 "similarity_loss": tf.reduce_mean(tf.square(1.0 - cos)),
                 "retrieval_loss": tf.reduce_mean(with_autograph(self.retrieval)(
                     data["user_vector"], fake, compute_metrics=False,
                     candidate_ids=id_codes(data["item_id"]),
                     candidate_sampling_probability=data["sampling_probability"]))}
        w_adv, w_sim, w_ret = self._args["loss_weights"]
        total = (w_adv * terms["adversarial_loss"] + w_sim * terms["similarity_loss"]
                 + w_ret * terms["retrieval_loss"])
        return terms, total, fake

    @tf.autograph.experimental.do_not_convert  # plain TF ops: tracing skips the source rewrite
    def train_step(self, data):
        with tf.GradientTape() as tape:  # discriminator step, generator fixed
            d_loss = self._d_loss(data, tf.stop_gradient(self.generator(data, training=True)))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        with tf.GradientTape() as tape:  # generator step, discriminator fixed
            terms, g_loss, _ = self._g_terms(data, training=True)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        return self._track(d_loss, g_loss, terms)

    @tf.autograph.experimental.do_not_convert
    def test_step(self, data):
        terms, g_loss, fake = self._g_terms(data, training=False)
        return self._track(self._d_loss(data, fake), g_loss, terms)

    def _track(self, d_loss, g_loss, terms):
        values = dict(terms, d_loss=d_loss, g_loss=g_loss)
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def get_config(self):
        return dict(self._args, name=self.name)

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class NewItemTower(tf.keras.Model):
    """The serving candidate tower: trained tower for warm items, G for new ones.

    An item is "new" when it has fewer than ``min_interactions`` training
    interactions (ids outside the vocabulary count 0). Both paths run inside
    one graph and ``tf.where`` picks per row, so the layer exports as is.

    Args:
        tower: The trained candidate Tower (raw features -> p_v).
        generator: A trained ContentGenerator.
        counts: item id -> number of training interactions.
        min_interactions: The threshold above.

    Input: raw candidate features (batch,). Output: (batch, d).
    """

    def __init__(self, tower, generator, counts: dict, min_interactions: int, **kwargs):
        super().__init__(**kwargs)
        self.tower, self.generator = tower, generator
        ids = sorted(counts)
        self.id_lookup = tf.keras.layers.StringLookup(vocabulary=ids or _NO_IDS, num_oov_indices=1)
        self._counts = tf.constant([0] + [int(counts[i]) for i in ids] + ([] if ids else [0]),
                                   tf.int32)  # (n_ids + 1,), row 0 = OOV
        self._min = int(min_interactions)

    def uses_generator(self, item_ids):
        """(batch,) str -> (batch,) bool: embedded by G."""
        return tf.gather(self._counts, self.id_lookup(item_ids)) < self._min

    def call(self, features, training=False):
        generated = self.uses_generator(features["item_id"])[:, None]  # (batch, 1)
        return tf.where(generated, self.generator(features, training=training),
                        self.tower(features, training=training))


class GanEpochLog(tf.keras.callbacks.Callback):
    """One progress line per GAN epoch (like ``training.EpochLog``)."""

    def __init__(self, monitor: str, prefix: str = "gan "):
        super().__init__()
        self._monitor, self._prefix, self._start = monitor, prefix, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        print(f"{self._prefix}epoch {epoch + 1:3d}  d_loss {logs.get('d_loss', float('nan')):.4f}  "
              f"g_loss {logs.get('g_loss', float('nan')):.4f}  {self._monitor} "
              f"{logs.get(self._monitor, float('nan')):.4f}  ({time.perf_counter() - self._start:.1f}s)",
              flush=True)
