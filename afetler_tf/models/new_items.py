"""The NewItemGAN stage of :class:`~afetler_tf.models.afetler.Afetler`.

After the towers and the ranker are trained, the generator learns to map an
item's content to the trained item tower's vector p_v (warm items only:
those with at least ``gan.min_interactions`` training interactions). A share
``gan.validation_items`` of the warm items is held out whole, so early
stopping measures what the generator is for: items it has never seen.

On rated data the same stage then calibrates the ranker's cold-item path
(:mod:`afetler_tf.models.cold_path`).

Weights are saved beside the network's, in ``<weights>/gan/`` (``weights*``
checkpoint + ``gan.json``: the GAN's config and a training summary); the
content bias is part of the network's weights.
"""

from __future__ import annotations

import os
import warnings
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from afetler_tf import files, training
from afetler_tf.models.gan import GanEpochLog, NewItemGAN

GAN_DIR = "gan"


def build_gan(model) -> NewItemGAN:
    """An untrained NewItemGAN over the model's content vocabularies."""
    gcfg, space = model.config.gan, model.space
    return NewItemGAN(space.categories, space.title_vocab, space.item_numeric,
                      output_dim=model.config.tower.tower_units[-1], hidden_units=gcfg.hidden_units,
                      embedding_dim=gcfg.embedding_dim, dropout=gcfg.dropout,
                      loss_weights=(gcfg.adversarial_weight, gcfg.similarity_weight,
                                    gcfg.retrieval_weight),
                      temperature=model.config.retrieval_temperature, name="new_item_gan")


def warm_items(train: pd.DataFrame, min_interactions: int) -> list:
    """Items with >= ``min_interactions`` training interactions (sorted ids)."""
    counts = train["item_id"].astype(str).value_counts()
    return sorted(counts[counts >= min_interactions].index.tolist())


def gan_examples(model, frame: pd.DataFrame, user_vectors: pd.DataFrame,
                 item_vectors: pd.DataFrame) -> dict:
    """Positive (user, item) pairs of ``frame`` as GAN inputs.

    Returns:
        Raw candidate features of the items, ``user_vector`` and
        ``item_vector`` (n, d) float32 (frozen p_u, p_v) and
        ``sampling_probability`` (n,).
    """
    items = frame["item_id"].astype(str).to_numpy(object)
    out = model.space.item_features(items)
    out["user_vector"] = user_vectors.loc[frame["user_id"].astype(str)].to_numpy(np.float32)
    out["item_vector"] = item_vectors.loc[items].to_numpy(np.float32)
    floor = float(model.sampling_probabilities.min())
    prob = pd.Series(items).map(model.sampling_probabilities).astype("float64").fillna(floor)
    out["sampling_probability"] = prob.to_numpy(np.float32)
    return out


def gan_frames(model, split, warm: list) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training pairs, validation pairs): validation = every known pair of
    the held-out warm items; training = the other warm items' train pairs."""
    gcfg = model.config.gan
    rng = np.random.default_rng(model.config.train.seed)
    n_held = max(1, int(round(gcfg.validation_items * len(warm))))
    held = set(rng.choice(np.array(warm, object), n_held, replace=False).tolist())
    train_items = split.train["item_id"].astype(str)
    train = split.train[train_items.isin(set(warm) - held).to_numpy()]
    known = pd.concat([split.train, split.validation], ignore_index=True)
    validation = known[known["item_id"].astype(str).isin(held).to_numpy()]
    return train, validation


def fit_gan(model, split, verbose: int = 1, checkpoint_dir: Optional[str] = None) -> dict:
    """Trains a NewItemGAN for ``model`` (towers frozen) and attaches it.

    Args:
        model: The trained Afetler.
        split: Its data split (warm items and their pairs come from ``split.train``).
        verbose: 0 silent, 1 one line per GAN epoch.
        checkpoint_dir: If given, the stage is resumable (``training.checkpoints.StageCheckpoint``
            through ``training.fit_with_early_stopping``): every epoch checkpoints
            G, D and both players' optimizers (``g_optimizer``, ``d_optimizer``:
            model attributes, so tracked by the model's checkpoint), a killed
            stage goes on from its last finished epoch, and a finished one is
            skipped (G and D restored, its recorded history returned).

    Returns:
        The GAN's history (per-epoch d_loss, g_loss, terms and ``val_*``;
        ``best_epoch``), JSON-serialisable.

    Raises:
        ValueError: Fewer than 2 warm items to learn from.
    """
    gcfg = model.config.gan
    warm = warm_items(split.train, gcfg.min_interactions)
    if len(warm) < 2:
        raise ValueError(f"NewItemGAN needs >= 2 items with >= gan.min_interactions="
                         f"{gcfg.min_interactions} training interactions; found {len(warm)}.")
    train, validation = gan_frames(model, split, warm)
    users = sorted(set(train["user_id"].astype(str)) | set(validation["user_id"].astype(str)))
    p_u = pd.DataFrame(model.tower_user_vectors(users), index=users)
    tower = model.network.candidate_tower
    p_v = pd.DataFrame(training.batched(lambda f: tower(f), model.space.item_features(warm)),
                       index=warm)
    gan = build_gan(model)
    gan.compile(g_optimizer=tf.keras.optimizers.Adam(gcfg.g_learning_rate),
                d_optimizer=tf.keras.optimizers.Adam(gcfg.d_learning_rate))
    # Creates G's and D's variables now, so a finished stage's restored weights
    # land at once (not deferred until a call), and are then saved by save_gan.
    probe = model.space.item_features(warm[:1])
    gan.discriminator((gan(probe), probe))
    training.create_optimizer_slots(gan)  # so the train step is traced once
    monitor = "val_retrieval_loss" if gcfg.retrieval_weight else "val_similarity_loss"
    history = training.fit_with_early_stopping(
        gan, training.make_dataset(gan_examples(model, train, p_u, p_v), None, gcfg.batch_size,
                                   shuffle=True, seed=model.config.train.seed),
        training.make_dataset(gan_examples(model, validation, p_u, p_v), None, 4096),
        gcfg.epochs, gcfg.patience, monitor, verbose=verbose, checkpoint_dir=checkpoint_dir,
        prefix="gan ", progress=GanEpochLog(monitor, prefix="gan ") if verbose else None)
    model.attach_gan(gan)
    return history


def save_gan(gan: NewItemGAN, directory: str, history: Optional[dict] = None) -> None:
    """Writes ``directory/gan/weights*`` and ``gan.json`` (written last)."""
    path = os.path.join(directory, GAN_DIR)
    os.makedirs(path, exist_ok=True)
    gan.save_weights(os.path.join(path, "weights"))
    summary = {k: v for k, v in (history or {}).items() if not isinstance(v, list)}
    files.write_json(os.path.join(path, "gan.json"), {"config": gan.get_config(), "training": summary})


def load_gan(model, directory: str) -> Optional[NewItemGAN]:
    """The GAN saved under ``directory`` by :func:`save_gan`, or None (with a
    warning when the config asks for one: new items then take the tower's
    out-of-vocabulary path)."""
    path = os.path.join(directory, GAN_DIR)
    if not os.path.exists(os.path.join(path, "gan.json")):
        if model.config.gan.enabled:
            warnings.warn(f"{directory} holds no trained NewItemGAN (gan/gan.json); new items are "
                          f"embedded by the item tower's out-of-vocabulary path.")
        return None
    gan = NewItemGAN.from_config(files.read_json(os.path.join(path, "gan.json"))["config"])
    probe = model.space.item_features(["<probe>"])
    gan.discriminator((gan(probe), probe))  # creates the variables before restoring them
    gan.load_weights(os.path.join(path, "weights")).expect_partial()
    return gan


def warn_without_content(gan: NewItemGAN, encoder, features: dict) -> int:
    """Counts generated items with no content at all, and warns about them.

    Such an item gets G's content-free vector (finite, the same for all of
    them): a documented fallback, reported here rather than hidden.
    """
    generated = encoder.uses_generator(features["item_id"]).numpy()
    empty = generated & ~gan.generator.has_content(features).numpy()
    if empty.any():
        ids = [str(i) for i in features["item_id"][empty][:5]]
        warnings.warn(f"{int(empty.sum())} new item(s) have no known content (categories, title "
                      f"words, numeric attributes), e.g. {ids}; they get NewItemGAN's content-free "
                      f"vector. Add categories or a title to rank them meaningfully.")
    return int(empty.sum())


def extend_catalogue(space, items: pd.DataFrame):
    """The FeatureSpace with ``items`` added to its content look-up table
    (vocabularies unchanged, so the trained layers still fit)."""
    table = pd.concat([space.items, items.set_index("item_id", drop=False)])
    return type(space)(**{**space.__dict__, "items": table})


def vectors_of(model, item_ids: Sequence[str]) -> np.ndarray:
    """The index's item vectors: p_v through the serving candidate tower
    (tower or generator), with the item-item channel's part where it is on
    (``model.retrieval_encoder``), (n, d) or (n, d + k)."""
    feats = model.space.item_features(item_ids)
    if model.gan is not None:
        warn_without_content(model.gan, model.candidate_encoder, feats)
    return training.batched(model.compiled(model.retrieval_encoder), feats)
