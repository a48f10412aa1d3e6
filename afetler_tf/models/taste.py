"""The users' taste for content: the last step of AFETLER's fit (rated data only).

The ranking head sees an item's content only through p_v and the
target-aware attention; what it leaves of a user's ratings still leans on
the item's content in a way of the user's own (a user who rates comedies
above what the ranker predicts for them). After training, per user, a ridge
regression of the ranker's residuals r - r̂ on their rated training pairs
against the items' content regressors x(v) (``ContentRegression.design``: category
shares and numeric buckets such as the year) gives the user's taste t_u
(the ranking head's ``user_taste``); a trained item's rating becomes

    r̂ + kappa_w * t_u . x(v)

with kappa_w in [0, 1] (``taste_scale``) fitted by least squares on the
validation ratings: the residuals are in-sample, so the share of t_u that
carries to unseen pairs is measured, not assumed. Items the ranker never
trained (the cold path) have their own taste term (``user_affinity``,
``cold_path.fit_user_affinity``), fitted on what is left after the main
effects, because their interaction term is mostly shrunk away.
"""

from __future__ import annotations

import warnings
from typing import Optional

import numpy as np
import pandas as pd

from afetler_tf import training
from afetler_tf.layers.content import ridge_per_key


def bounded_share(target, term, default: float) -> float:
    """The least-squares s in [0, 1] of target ~ s * term; ``default`` when
    the term is zero everywhere."""
    target, term = np.asarray(target, np.float64), np.asarray(term, np.float64)
    energy = float(np.sum(term * term))
    if energy <= 0.0:
        return float(default)
    return float(np.clip(np.sum(target * term) / energy, 0.0, 1.0))


def user_content_ridge(model, frame: pd.DataFrame, residual, ridge: float) -> np.ndarray:
    """Per user of the ranking head's vocabulary (row 0: unknown users, 0),
    the ridge fit of ``residual`` (one per row of ``frame``) on the content
    regressors of the rows' items. Returns (users + 1, width) float64."""
    head = model.network.ranking_head
    users = head.user_lookup(frame["user_id"].astype(str).to_numpy(object)).numpy()
    # Each item's regressors once (an item's row depends on its content alone), then per row.
    items, rows = np.unique(frame["item_id"].astype(str).to_numpy(object), return_inverse=True)
    design = training.batched(head.cold_items.design, model.space.item_features(items)
                              ).astype(np.float64)[rows.reshape(-1)]  # (n, width)
    taste = ridge_per_key(users, design, np.asarray(residual, np.float64),
                          head.user_bias.input_dim, ridge)
    taste[0] = 0.0
    return taste


def fit_user_taste(model, split, ridge: float = 10.0, min_interactions: int = 50,
                   train_examples: Optional[dict] = None) -> dict:
    """Fits the ranking head's :class:`~afetler_tf.layers.taste.UserTaste`:
    ``user_taste`` (on ``split.train``'s rated pairs with trained items) and
    ``taste_scale`` (on ``split.validation``'s rated pairs with trained
    items). Fewer than ``min_interactions`` such
    validation ratings leave kappa_w at 0 (with a warning).
    ``train_examples``: ``model.examples`` of ``split.train`` (its rows, in
    order), where the caller has them (the fit's stages share them).

    Returns:
        ``taste_scale``, ``taste_interactions`` (validation ratings used),
        ``val_rmse_without`` and ``val_rmse`` (validation rating RMSE at
        kappa_w = 0 and at the fitted kappa_w); {} without a ranking head.
    """
    head, net = model.network.ranking_head, model.network
    if head is None or head.taste is None:
        return {}
    scale = head.taste.taste_scale
    scale.assign(0.0)

    def rated_warm(frame) -> np.ndarray:
        rated = frame["rating"].notna().to_numpy()
        items = head.item_lookup(frame["item_id"].astype(str).to_numpy(object))
        return rated & ~head.cold_items.routed_items(items).numpy()

    def rate(examples):
        return model.rate_pairs(examples, net.candidate_tower)

    def examples_of(frame):
        return model.examples(frame, model.sampling_probabilities)
    keep = rated_warm(split.train)
    train = split.train[keep]
    train_examples = (examples_of(train) if train_examples is None
                      else {key: value[keep] for key, value in train_examples.items()})
    validation = split.validation[rated_warm(split.validation)]
    residual = train["rating"].to_numpy(np.float64) - rate(train_examples)
    head.taste.user_taste.assign(user_content_ridge(model, train, residual, ridge).astype(np.float32))
    truth = validation["rating"].to_numpy(np.float64)
    out = {"taste_interactions": int(len(truth))}
    if len(truth) < min_interactions:
        warnings.warn(f"Only {len(truth)} rated validation interactions with trained items "
                      f"(< {min_interactions}): the users' taste for content is not used "
                      f"(taste_scale = 0).")
        return dict(out, taste_scale=0.0)
    validation_examples = examples_of(validation)
    base = rate(validation_examples)
    scale.assign(1.0)
    term = rate(validation_examples) - base
    kappa = bounded_share(truth - base, term, default=0.0)
    scale.assign(kappa)

    def rmse(pred):
        return float(np.sqrt(np.mean((pred - truth) ** 2)))
    return dict(out, taste_scale=kappa, val_rmse_without=rmse(base), val_rmse=rmse(base + kappa * term))
