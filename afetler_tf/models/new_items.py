"""The NewItemGAN stage of :class:`~afetler_tf.models.afetler.Afetler`.

After the towers and the ranker are trained, the generator learns to map an
item's content to the trained item tower's vector p_v (warm items only:
those with at least ``gan.min_interactions`` training interactions). A share
``gan.validation_items`` of the warm items is held out whole, so early
stopping measures what the generator is for: items it has never seen.

The same stage fits the ranking head's content bias (:func:`fit_content_bias`):
the item bias b_v of an item the ranker never trained (the OOV row, 0) is
replaced by a regression of the warm items' learned biases on content, so
the rating of a new item sees its content in the bias too. Before it
(:func:`fit_offsets`), the users' and items' mean interaction terms, the
parts of their main effects the ranker's MLP carries; after it, the users'
taste for content (:func:`fit_user_affinity`), then
(:func:`fit_interaction_scale`) the factor gamma that shrinks a new item's
interaction term toward the user's mean and the share kappa of the taste
term, fitted on simulated cold items: the held-out warm items' validation
interactions, shown under unknown ids.

Weights are saved beside the network's, in ``<weights>/gan/`` (``weights*``
checkpoint + ``gan.json``: the GAN's config and a training summary); the
content bias is part of the network's weights.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf
from scipy import optimize

from afetler_tf import files
from afetler_tf import train as training
from afetler_tf.models.gan import GanEpochLog, NewItemGAN
from afetler_tf.models.taste import bounded_share, user_content_ridge

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
    floor = float(model._probabilities.min())
    prob = pd.Series(items).map(model._probabilities).astype("float64").fillna(floor)
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
        checkpoint_dir: If given, the stage is resumable (``resume.StageCheckpoint``
            through ``train.fit_with_early_stopping``): every epoch checkpoints
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
    monitor = "val_retrieval_loss" if gcfg.retrieval_weight else "val_similarity_loss"
    history = training.fit_with_early_stopping(
        gan, training.make_dataset(gan_examples(model, train, p_u, p_v), None, gcfg.batch_size,
                                   shuffle=True, seed=model.config.train.seed),
        training.make_dataset(gan_examples(model, validation, p_u, p_v), None, 4096),
        gcfg.epochs, gcfg.patience, monitor, verbose=verbose, checkpoint_dir=checkpoint_dir,
        prefix="gan ", progress=GanEpochLog(monitor, prefix="gan ") if verbose else None)
    model.attach_gan(gan)
    if not split.train["rating"].notna().any():  # implicit data: the ranker was not trained,
        return history                           # so it has no cold-item path to calibrate
    history["user_offsets"] = fit_offsets(model, split)
    history.update({f"content_bias_{k}": v for k, v in fit_content_bias(model, split).items()})
    history["user_affinities"] = fit_user_affinity(model, split)
    history.update(fit_interaction_scale(model, split))
    return history


def fit_content_bias(model, split, ridge: float = 1.0, exclude=()) -> dict:
    """Fits the ranking head's :class:`~afetler_tf.towers.ContentBias` to the
    main effects b_v + o_v (learned bias plus the mean interaction term,
    ``item_offset``, :func:`fit_offsets`) of the warm items (>= ``gan.min_interactions``
    training interactions; minus ``exclude``), each weighted by its training
    interactions (rating errors are per interaction), and routes the ranker's
    never-trained ids (OOV) and the items below ``gan.min_interactions``
    to it. Returns {"items", "r2"} ({} without a ranking head)."""
    head = model.network.ranking_head
    if head is None or head.content_bias is None:
        return {}
    min_interactions = model.config.gan.min_interactions
    excluded = set(exclude)
    warm = [i for i in warm_items(split.train, min_interactions) if i not in excluded]
    counts = split.train["item_id"].astype(str).value_counts()
    index = head.item_lookup(np.array(warm, object)).numpy()
    biases = head.item_bias(index).numpy()[:, 0] + head.item_offset.numpy()[index]
    rare = [i for i in model.space.item_ids if counts.get(str(i), 0) < min_interactions]
    routed = head.item_lookup(np.array(rare, object)).numpy() if rare else None
    return head.content_bias.fit(model.space.item_features(warm), biases,
                                 weights=counts.reindex(warm).to_numpy(np.float64), ridge=ridge,
                                 routed_index=routed)


def fit_user_affinity(model, split, ridge: float = 3.0, exclude=()) -> int:
    """Sets the ranker's ``user_affinity`` t_u: per user, the ridge
    regression (penalty ``ridge``, no intercept) of the residuals
    e = rating - mu - b_u - (b_v + o_v) - o_u of the user's rated training
    pairs with warm items (not routed, minus ``exclude``) on the items'
    content regressors x(v) (``ContentBias.design``: category shares and
    numeric buckets). What is left after the main effects, explained by
    content: the user's taste, which the interaction term on a generated
    vector carries poorly. Run after :func:`fit_offsets`. Returns the
    number of users with a taste (0 without a ranking head)."""
    head = model.network.ranking_head
    if head is None or head.content_bias is None:
        return 0
    bias = head.content_bias
    rated = split.train[split.train["rating"].notna().to_numpy()
                        & ~split.train["item_id"].astype(str).isin(set(exclude)).to_numpy()]
    items = head.item_lookup(rated["item_id"].astype(str).to_numpy(object)).numpy()
    warm = ~bias.routed_items(items).numpy()
    rated, items = rated[warm], items[warm]
    users = head.user_lookup(rated["user_id"].astype(str).to_numpy(object)).numpy()
    residual = (rated["rating"].to_numpy(np.float64) - head._global_mean
                - head.user_bias(users).numpy()[:, 0].astype(np.float64)
                - head.item_bias(items).numpy()[:, 0] - head.item_offset.numpy()[items]
                - head.user_offset.numpy()[users])
    taste = user_content_ridge(model, rated, residual, ridge)
    head.user_affinity.assign(taste.astype(np.float32))
    return int(np.count_nonzero(np.bincount(users, minlength=len(taste))[1:]))


@contextlib.contextmanager
def without_items(model, split, held):
    """Within: the content bias and the users' tastes refitted without the
    training pairs of ``held`` (so simulated cold items are unseen by the
    cold path); restored to the full fit on leaving."""
    try:
        fit_content_bias(model, split, exclude=held)
        fit_user_affinity(model, split, exclude=held)
        yield
    finally:
        fit_content_bias(model, split)
        fit_user_affinity(model, split)


def simulated_cold(model, split) -> tuple[set, pd.DataFrame]:
    """The GAN's held-out warm items as cold items, for fitting and checking
    the ranker's cold path on validation data only.

    Returns:
        (held-out item ids, their rated interactions in ``split.validation``).
    """
    warm = warm_items(split.train, model.config.gan.min_interactions)
    held = set(gan_frames(model, split, warm)[1]["item_id"].astype(str))
    rows = split.validation[split.validation["item_id"].astype(str).isin(held).to_numpy()
                            & split.validation["rating"].notna().to_numpy()]
    return held, rows


def as_cold(model, frame: pd.DataFrame) -> dict:
    """Model inputs of ``frame``'s pairs with every item id replaced by an
    unknown one (content kept), so the ranker takes each cold path:
    generator p_v, content bias, target categories from content."""
    feats = model.examples(frame, model._probabilities)
    feats["item_id"] = np.array([f"<cold>{i}" for i in feats["item_id"]], object)
    return feats


def shrinkage(truth, base, full) -> float:
    """The least-squares gamma in [0, 1] of truth ~ base + gamma * (full - base)
    (1 when the interaction term is zero everywhere)."""
    truth, base, full = (np.asarray(a, np.float64) for a in (truth, base, full))
    return bounded_share(truth - base, full - base, default=1.0)


def cold_scales(truth, base, full, taste) -> tuple[float, float]:
    """(gamma, kappa), both in [0, 1], minimising the squared error of
    truth ~ base + gamma * (full - base) + kappa * taste (bounded least
    squares). A term that is zero everywhere gets its default (gamma 1,
    kappa 0)."""
    truth, base, full, taste = (np.asarray(a, np.float64) for a in (truth, base, full, taste))
    terms = np.stack([full - base, taste], 1)  # (n, 2)
    live = np.sum(terms * terms, 0) > 0.0
    scales = np.array([1.0, 0.0])
    if live.any():
        scales[live] = optimize.lsq_linear(terms[:, live], truth - base, bounds=(0.0, 1.0)).x
    return float(scales[0]), float(scales[1])


def fit_offsets(model, split, damping: float = 5.0) -> int:
    """Sets the ranker's ``user_offset`` and ``item_offset`` from the
    interaction term m = rating - mu - b_u - b_v of the training pairs with
    warm (non-routed) items: o_u = the user's mean m, then o_v = the item's
    mean of m - o_u, both damped toward 0 (sum / (n + ``damping``)).
    Returns the number of users with an offset (0 without a ranking head)."""
    head, net = model.network.ranking_head, model.network
    if head is None or head.content_bias is None:
        return 0
    feats = model.examples(split.train, model._probabilities)
    items = head.item_lookup(feats["item_id"]).numpy()
    warm = ~head.content_bias.routed_items(items).numpy()
    kappa_w = float(head.taste_scale.numpy())
    head.taste_scale.assign(0.0)  # m without the users' taste (models.taste), if already fitted
    try:
        rating = training.batched(
            lambda b: net.rate(b, net.query_tower(b), net.candidate_tower(b))[:, 0], feats)
    finally:
        head.taste_scale.assign(kappa_w)
    users = head.user_lookup(feats["user_id"]).numpy()
    term = (rating - head._global_mean - head.user_bias(users).numpy()[:, 0]
            - head.item_bias(items).numpy()[:, 0])

    def damped_means(index, values, size):
        sums = np.bincount(index[warm], weights=values[warm], minlength=size)
        means = sums / (np.bincount(index[warm], minlength=size) + damping)
        means[0] = 0.0  # unknown ids: no offset
        return means
    user_offset = damped_means(users, term, head.user_offset.shape[0])
    head.user_offset.assign(user_offset.astype(np.float32))
    item_offset = damped_means(items, term - user_offset[users], head.item_offset.shape[0])
    head.item_offset.assign(item_offset.astype(np.float32))
    return int(np.count_nonzero(np.bincount(users[warm], minlength=len(user_offset))[1:]))


def fit_interaction_scale(model, split, min_interactions: int = 50) -> dict:
    """Fits the ranker's ``content_bias.interaction_scale`` (gamma) and
    ``content_bias.affinity_scale`` (kappa) on simulated cold items
    (:func:`simulated_cold`, :func:`as_cold`), after :func:`fit_offsets`
    and :func:`fit_user_affinity`, with the content bias and the tastes
    refitted without those items for the fit (:func:`without_items`). A cold
    item's rating is mu + b_u + b(content) + o_u + gamma * (m - o_u) +
    kappa * t_u . x(v), m the ranker's interaction term (:func:`cold_scales`).
    Fewer than ``min_interactions`` rated validation interactions leave
    gamma at 1 and kappa at 0 (with a warning).

    Returns:
        ``interaction_scale``, ``affinity_scale``,
        ``interaction_scale_interactions`` and the simulated-cold RMSE at
        gamma = 1 (kappa 0), at gamma = kappa = 0 (mu + b_u + b(content) +
        o_u), at the best gamma with kappa = 0, and at the fitted pair
        (``cold_rmse_unscaled``, ``cold_rmse_bias_only``,
        ``cold_rmse_no_affinity``, ``cold_rmse``); {} without a ranking head.
    """
    head = model.network.ranking_head
    if head is None or head.content_bias is None:
        return {}
    gamma_var, kappa_var = head.content_bias.interaction_scale, head.content_bias.affinity_scale
    held, rows = simulated_cold(model, split)
    feats, truth = as_cold(model, rows), rows["rating"].to_numpy(np.float64)
    out = {"interaction_scale_interactions": int(len(truth))}
    if len(truth) < min_interactions:
        gamma_var.assign(1.0)
        kappa_var.assign(0.0)
        warnings.warn(f"Only {len(truth)} rated validation interactions of the NewItemGAN's held-out "
                      f"items (< {min_interactions}): the ranker's interaction term for new items is "
                      f"left unscaled (interaction_scale = 1) and the users' tastes unused "
                      f"(affinity_scale = 0).")
        return dict(out, interaction_scale=1.0, affinity_scale=0.0)
    net, encoder = model.network, model.candidate_encoder

    def rate(gamma, kappa):
        gamma_var.assign(gamma)
        kappa_var.assign(kappa)
        return training.batched(lambda b: net.rate(b, net.query_tower(b), encoder(b))[:, 0], feats)
    with without_items(model, split, held):
        full, base, tasted = rate(1.0, 0.0), rate(0.0, 0.0), rate(0.0, 1.0)
    gamma, kappa = cold_scales(truth, base, full, tasted - base)
    gamma_var.assign(gamma)
    kappa_var.assign(kappa)
    alone = shrinkage(truth, base, full)

    def rmse(pred):
        return float(np.sqrt(np.mean((pred - truth) ** 2)))
    return dict(out, interaction_scale=gamma, affinity_scale=kappa, cold_rmse_unscaled=rmse(full),
                cold_rmse_bias_only=rmse(base),
                cold_rmse_no_affinity=rmse(base + alone * (full - base)),
                cold_rmse=rmse(base + gamma * (full - base) + kappa * (tasted - base)))


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
    encoder = model.retrieval_encoder
    return training.batched(lambda f: encoder(f), feats)
