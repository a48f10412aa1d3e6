"""The ranker's cold-item path, calibrated after the NewItemGAN is trained.

The ranking head's content bias (:func:`fit_content_bias`): the item bias
b_v of an item the ranker never trained (the OOV row, 0) is replaced by a
regression of the warm items' learned biases on content, so the rating of a
new item sees its content in the bias too. Before it (:func:`fit_offsets`),
the users' and items' mean interaction terms, the parts of their main effects
the ranker's MLP carries; after it, the users' taste for content
(:func:`fit_user_affinity`), then (:func:`fit_interaction_scale`) the factor
gamma that shrinks a new item's interaction term toward the user's mean and
the share kappa of the taste term, fitted on simulated cold items: the
held-out warm items' validation interactions, shown under unknown ids.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Optional

import numpy as np
import pandas as pd
from scipy import optimize

from afetler_tf.models.new_items import gan_frames, warm_items
from afetler_tf.models.taste import bounded_share, user_content_ridge


def fit_cold_path(model, split, train_examples: Optional[dict] = None) -> dict:
    """Every piece of the cold-item path, in order (module docstring); returns
    what each fitted ({} on implicit data: the ranker was not trained, so it
    has no cold-item path to calibrate). ``train_examples``: the model's
    examples of ``split.train`` where the caller has them (else built here)."""
    if not split.train["rating"].notna().any():
        return {}
    history = {"user_offsets": fit_offsets(model, split, train_examples=train_examples)}
    history.update({f"content_bias_{k}": v for k, v in fit_content_bias(model, split).items()})
    history["user_affinities"] = fit_user_affinity(model, split)
    history.update(fit_interaction_scale(model, split))
    return history


def fit_content_bias(model, split, ridge: float = 1.0, exclude=()) -> dict:
    """Fits the cold-item path's :class:`~afetler_tf.layers.content.ContentRegression` to the
    main effects b_v + o_v (learned bias plus the mean interaction term,
    ``item_offset``, :func:`fit_offsets`) of the warm items (>= ``gan.min_interactions``
    training interactions; minus ``exclude``), each weighted by its training
    interactions (rating errors are per interaction), and routes the ranker's
    never-trained ids (OOV) and the items below ``gan.min_interactions``
    to it. Returns {"items", "r2"} ({} without a ranking head)."""
    head = model.network.ranking_head
    if head is None or head.cold_items is None:
        return {}
    cold = head.cold_items
    min_interactions = model.config.gan.min_interactions
    excluded = set(exclude)
    warm = [i for i in warm_items(split.train, min_interactions) if i not in excluded]
    counts = split.train["item_id"].astype(str).value_counts()
    index = head.item_lookup(np.array(warm, object)).numpy()
    biases = head.item_bias(index).numpy()[:, 0] + cold.item_offset.numpy()[index]
    rare = [i for i in model.space.item_ids if counts.get(str(i), 0) < min_interactions]
    routed = head.item_lookup(np.array(rare, object)).numpy() if rare else None
    return cold.content_bias.fit(model.space.item_features(warm), biases,
                                 weights=counts.reindex(warm).to_numpy(np.float64), ridge=ridge,
                                 routed_index=routed)


def fit_user_affinity(model, split, ridge: float = 3.0, exclude=()) -> int:
    """Sets the cold-item path's ``user_affinity`` t_u: per user, the ridge
    regression (penalty ``ridge``, no intercept) of the residuals
    e = rating - mu - b_u - (b_v + o_v) - o_u of the user's rated training
    pairs with warm items (not routed, minus ``exclude``) on the items'
    content regressors x(v) (``ContentRegression.design``: category shares and
    numeric buckets). What is left after the main effects, explained by
    content: the user's taste, which the interaction term on a generated
    vector carries poorly. Run after :func:`fit_offsets`. Returns the
    number of users with a taste (0 without a ranking head)."""
    head = model.network.ranking_head
    if head is None or head.cold_items is None:
        return 0
    cold = head.cold_items
    rated = split.train[split.train["rating"].notna().to_numpy()
                        & ~split.train["item_id"].astype(str).isin(set(exclude)).to_numpy()]
    items = head.item_lookup(rated["item_id"].astype(str).to_numpy(object)).numpy()
    warm = ~cold.routed_items(items).numpy()
    rated, items = rated[warm], items[warm]
    users = head.user_lookup(rated["user_id"].astype(str).to_numpy(object)).numpy()
    residual = (rated["rating"].to_numpy(np.float64) - head.global_mean
                - head.user_bias(users).numpy()[:, 0].astype(np.float64)
                - head.item_bias(items).numpy()[:, 0] - cold.item_offset.numpy()[items]
                - cold.user_offset.numpy()[users])
    taste = user_content_ridge(model, rated, residual, ridge)
    cold.user_affinity.assign(taste.astype(np.float32))
    return int(np.count_nonzero(np.bincount(users, minlength=len(taste))[1:]))


@contextlib.contextmanager
def without_items(model, split, held):
    """Within: the content bias and the users' tastes refitted without the
    training pairs of ``held`` (so simulated cold items are unseen by the
    cold path); on leaving, back to the values they had on entering (the
    full fit, which :func:`fit_cold_path` makes just before: restored, not
    fitted a second time)."""
    cold = model.network.ranking_head.cold_items
    fitted = [cold.content_bias.intercept, cold.content_bias.weight, cold.content_bias.routed,
              cold.user_affinity]
    entered = [variable.numpy() for variable in fitted]
    try:
        fit_content_bias(model, split, exclude=held)
        fit_user_affinity(model, split, exclude=held)
        yield
    finally:
        for variable, value in zip(fitted, entered):
            variable.assign(value)


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
    feats = model.examples(frame, model.sampling_probabilities)
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


def fit_offsets(model, split, damping: float = 5.0, train_examples: Optional[dict] = None) -> int:
    """Sets the cold-item path's ``user_offset`` and ``item_offset`` from the
    interaction term m = rating - mu - b_u - b_v of the training pairs with
    warm (non-routed) items: o_u = the user's mean m, then o_v = the item's
    mean of m - o_u, both damped toward 0 (sum / (n + ``damping``)).
    Returns the number of users with an offset (0 without a ranking head).
    ``train_examples``: ``model.examples`` of ``split.train``, if the caller
    has them (the fit's stages share them: building them takes a second on
    MovieLens-100k)."""
    head, net = model.network.ranking_head, model.network
    if head is None or head.cold_items is None:
        return 0
    cold = head.cold_items
    feats = (train_examples if train_examples is not None
             else model.examples(split.train, model.sampling_probabilities))
    items = head.item_lookup(feats["item_id"]).numpy()
    warm = ~cold.routed_items(items).numpy()
    with without_taste(head):  # m without the users' taste (models.taste), if already fitted
        rating = model.rate_pairs(feats, net.candidate_tower)
    users = head.user_lookup(feats["user_id"]).numpy()
    term = (rating - head.global_mean - head.user_bias(users).numpy()[:, 0]
            - head.item_bias(items).numpy()[:, 0])

    def damped_means(index, values, size):
        sums = np.bincount(index[warm], weights=values[warm], minlength=size)
        means = sums / (np.bincount(index[warm], minlength=size) + damping)
        means[0] = 0.0  # unknown ids: no offset
        return means
    user_offset = damped_means(users, term, cold.user_offset.shape[0])
    cold.user_offset.assign(user_offset.astype(np.float32))
    item_offset = damped_means(items, term - user_offset[users], cold.item_offset.shape[0])
    cold.item_offset.assign(item_offset.astype(np.float32))
    return int(np.count_nonzero(np.bincount(users[warm], minlength=len(user_offset))[1:]))


@contextlib.contextmanager
def without_taste(head):
    """Within: the ranking head's users' taste term off (kappa_w = 0); restored on leaving."""
    if head.taste is None:
        yield
        return
    kappa_w = float(head.taste.taste_scale.numpy())
    head.taste.taste_scale.assign(0.0)
    try:
        yield
    finally:
        head.taste.taste_scale.assign(kappa_w)


def fit_interaction_scale(model, split, min_interactions: int = 50) -> dict:
    """Fits the cold-item path's ``interaction_scale`` (gamma) and
    ``affinity_scale`` (kappa) on simulated cold items
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
    if head is None or head.cold_items is None:
        return {}
    gamma_var, kappa_var = head.cold_items.interaction_scale, head.cold_items.affinity_scale
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
    encoder = model.candidate_encoder

    def rate(gamma, kappa):
        gamma_var.assign(gamma)
        kappa_var.assign(kappa)
        return model.rate_pairs(feats, encoder)
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
