"""The rating blend: the last step of AFETLER's fit (rated data only; docs/design.md §3.11).

The ranking head reads the frozen retrieval towers; where what users pick
says little about how they rate (a shop whose picks follow popularity and
promotions), the rating signal it needs is not in its inputs, and a biased
matrix factorisation, which learns from the ratings alone, carries some of
what it misses. So after the users' taste, a biased MF
(:class:`~afetler_tf.models.mf.MatrixFactorization`, ``config.mf``) is trained
on the training ratings, early-stopped on the validation RMSE, its tables
are copied into the ranking head's
:class:`~afetler_tf.layers.rating_blend.RatingBlend`, and the weights of

    c + w_r * rating + w_f * f(u, v)

are the least-squares fit of the validation ratings of the pairs the MF
knows (user and item trained on, item not taken by the cold-item path).
The blend is kept only where it helps on data its weights were not fitted
on: the validation pairs are cut in two halves (seeded), each half's
weights score the other half, and the blend stays neutral unless that
cross-fitted RMSE is below the ranker's own. The test split is never read.
"""

from __future__ import annotations

import warnings
from typing import Optional

import numpy as np

from afetler_tf.data.schema import Split
from afetler_tf.models.mf import MatrixFactorization


def least_squares_blend(truth, *parts) -> np.ndarray:
    """[c, w_1, ..., w_k], the least-squares fit of ``truth`` ~ c + sum_i w_i parts[i]
    (here the ranker's rating and the MF's: [c, w_r, w_f])."""
    design = np.column_stack([np.ones(len(truth))] + [np.asarray(p, np.float64) for p in parts])
    return np.linalg.lstsq(design, np.asarray(truth, np.float64), rcond=None)[0]


def blend(weights, *parts) -> np.ndarray:
    """c + sum_i w_i parts[i], ``weights`` = [c, w_1, ..., w_k]."""
    return weights[0] + sum(w * np.asarray(p, np.float64) for w, p in zip(weights[1:], parts))


def cross_fitted(rating, factor, truth, seed: int) -> np.ndarray:
    """Each pair's blend with the weights fitted on the other half of the pairs
    (two halves, cut by a permutation seeded with ``seed``), (n,)."""
    order = np.random.default_rng(seed).permutation(len(truth))
    halves = (order[: len(order) // 2], order[len(order) // 2:])
    out = np.empty(len(truth), np.float64)
    rating, factor, truth = (np.asarray(a, np.float64) for a in (rating, factor, truth))
    for fit_on, score_on in (halves, halves[::-1]):
        weights = least_squares_blend(truth[fit_on], rating[fit_on], factor[fit_on])
        out[score_on] = blend(weights, rating[score_on], factor[score_on])
    return out


def fit_rating_blend(model, data, split, verbose: int = 0, checkpoint_dir: Optional[str] = None,
                     min_interactions: int = 50) -> dict:
    """Fits the ranking head's :class:`~afetler_tf.layers.rating_blend.RatingBlend` (module docstring).

    Args:
        model: A fitted :class:`~afetler_tf.models.afetler.Afetler` with a ranking head.
        data: Its Dataset: predictions are clipped to its ``rating_range``
            (default 1-5) when RMSEs are compared, as protocol R scores them.
        split: Its split: the MF trains on ``split.train``'s ratings, the
            blend is fitted on ``split.validation``'s.
        verbose: Progress output level (the MF's epochs).
        checkpoint_dir: The MF's per-epoch checkpoints (a killed fit resumes them).
        min_interactions: Fewer rated validation pairs the MF knows than this
            leave the blend neutral (with a warning).

    Returns:
        ``blend_used`` (bool), ``blend_intercept``, ``blend_ranker`` and
        ``blend_factor``: c, w_r, w_f as fitted (even when not used),
        ``blend_interactions`` (the validation pairs the MF knows),
        ``val_rmse_without``, ``val_rmse_crossfit`` (the blend, each half
        scored by the other's weights), ``val_rmse`` (the rating the model
        now gives), ``factor_epochs``; with too few validation pairs only
        the first two, and no MF is trained; {} without a blend.
    """
    head = model.network.ranking_head
    if head is None or head.blend is None:
        return {}
    layer = head.blend
    layer.set_blend(0.0, 1.0, 0.0)  # neutral while fitting: the ranker's own rating
    # The rated parts of train and validation; the test part is never read (an empty frame).
    rated = Split(split.kind, split.seed, train=split.train[split.train["rating"].notna()],
                  validation=split.validation[split.validation["rating"].notna()],
                  test=split.train.iloc[:0])
    # The validation pairs the MF will know: user and item rated in training, the item not
    # taken by the cold-item path. Too few, and there is nothing to fit the weights on.
    validation = rated.validation
    user_ids, item_ids = (validation[key].astype(str).to_numpy(object) for key in ("user_id", "item_id"))
    known = (np.isin(user_ids, rated.train["user_id"].astype(str).unique())
             & np.isin(item_ids, rated.train["item_id"].astype(str).unique()))
    item_rows = head.item_lookup(item_ids).numpy()
    if head.cold_items is not None:
        known &= ~head.cold_items.routed_items(item_rows).numpy()
    out = {"blend_used": False, "blend_interactions": int(known.sum())}
    if known.sum() < min_interactions:
        warnings.warn(f"Only {int(known.sum())} rated validation interactions of users and items "
                      f"with training ratings (< {min_interactions}): the rating blend is not used "
                      f"(no matrix factorisation trained).")
        return out

    factorisation = MatrixFactorization(model.config)
    mf_history = factorisation.fit(data, rated, verbose=verbose, checkpoint_dir=checkpoint_dir)
    users, items = (np.asarray(factorisation.vocabulary[key], object) for key in ("users", "items"))
    p, b_u = factorisation.net.user_table(users)
    q, b_v = factorisation.net.item_table(items)
    layer.set_factorisation(head.user_lookup(users).numpy(), p.numpy(), b_u.numpy(),
                            head.item_lookup(items).numpy(), q.numpy(), b_v.numpy(),
                            factorisation.vocabulary["mean"])
    out["factor_epochs"] = int(mf_history.get("best_epoch", len(mf_history.get("loss", []))))
    user_rows = head.user_lookup(user_ids).numpy()
    if not np.array_equal(known, known & layer.known(user_rows, item_rows).numpy()):
        raise AssertionError("rating blend: a validation pair counted as known has no MF row")
    validation = validation[known]
    truth = validation["rating"].to_numpy(np.float64)
    rating = model.rate_pairs(model.examples(validation, model.sampling_probabilities))
    factor = layer.factorisation(user_rows[known], item_rows[known]).numpy()

    bounds = data.rating_range or (1.0, 5.0)

    def rmse(prediction):
        return float(np.sqrt(np.mean((np.clip(prediction, *bounds) - truth) ** 2)))
    weights = least_squares_blend(truth, rating, factor)
    crossfit = rmse(cross_fitted(rating, factor, truth, model.config.train.seed))
    out.update(blend_intercept=float(weights[0]), blend_ranker=float(weights[1]),
               blend_factor=float(weights[2]), val_rmse_without=rmse(rating), val_rmse_crossfit=crossfit)
    if crossfit < out["val_rmse_without"]:
        layer.set_blend(*weights)
        out.update(blend_used=True, val_rmse=rmse(blend(weights, rating, factor)))
    else:
        out["val_rmse"] = out["val_rmse_without"]
    return out
