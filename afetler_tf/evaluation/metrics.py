"""Metrics of evaluation protocols R, T and C (docs/design.md §4).

Pure numpy / scikit-learn: ``afetler_tf.evaluation`` turns a model and a split
into the arrays these functions take, so every formula can be checked by hand.

Tie-breaking is deterministic:
    Protocol R ranks a user's test items by score descending, ties by item id
    ascending (string order), so the result does not depend on row order.
    Protocols T and C rank candidates by score descending, ties by column
    (catalogue position) ascending.

Top-N lists are int arrays of shape (users, k) holding column indices, padded
with -1 where a user has fewer than k candidates; excluded or non-candidate
columns are never in a list.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from scipy.stats import rankdata
from sklearn.linear_model import LinearRegression, LogisticRegression

RATING_RANGE = (1.0, 5.0)


def _as_1d(values) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if np.isnan(array).any():
        raise ValueError("Scores/ratings contain NaN; the model must return finite scores.")
    return array


class Calibration:
    """Maps model scores to P(like) and to ratings; fitted on the validation set.

    P(like | score) is a 1-D logistic fit of ``rating >= like_threshold`` on the
    score. For models whose scores are not ratings, ratings come from a linear
    fit score -> rating; otherwise the scores are the ratings.

    Args:
        like_threshold: A rating >= this is a "like".
        scores_are_ratings: True for models whose scores are on the rating scale.
    """

    def __init__(self, like_threshold: float = 4.0, scores_are_ratings: bool = False):
        self.like_threshold = like_threshold
        self.scores_are_ratings = scores_are_ratings
        self._logistic = self._linear = self._constant_p = None

    def fit(self, scores, ratings) -> "Calibration":
        """Fits on validation (score, rating) pairs; returns self (ValueError if empty)."""
        x, y = _as_1d(scores), _as_1d(ratings)
        if len(x) == 0 or len(x) != len(y):
            raise ValueError(f"Calibration needs equal, non-empty inputs; got {len(x)} scores, {len(y)} ratings.")
        # Standardised so the solver behaves for any score scale.
        self._center, self._scale = float(x.mean()), float(x.std()) or 1.0
        features, liked = self._features(x), y >= self.like_threshold
        if liked.all() or not liked.any():  # one class: P(like) is that class
            self._constant_p = float(liked.mean())
        else:
            self._logistic = LogisticRegression(C=1e4).fit(features, liked)
        if not self.scores_are_ratings:
            self._linear = LinearRegression().fit(features, y)
        return self

    def _features(self, scores: np.ndarray) -> np.ndarray:
        return ((scores - self._center) / self._scale)[:, None]  # (n, 1)

    def like_probability(self, scores) -> np.ndarray:
        """Calibrated P(like) per score, shape (n,)."""
        x = _as_1d(scores)
        if self._constant_p is not None:
            return np.full(len(x), self._constant_p)
        return self._logistic.predict_proba(self._features(x))[:, 1]

    def rating(self, scores) -> np.ndarray:
        """Rating prediction per score (unclipped), shape (n,)."""
        x = _as_1d(scores)
        return x if self.scores_are_ratings else self._linear.predict(self._features(x))

    def transform(self, scores) -> tuple[np.ndarray, np.ndarray]:
        """Returns (rating prediction, P(like)) for each score."""
        return self.rating(scores), self.like_probability(scores)


def rating_errors(y_true, y_pred, rating_range=RATING_RANGE) -> dict:
    """MSE, MAE and RMSE with predictions clipped to ``rating_range``."""
    y_true, y_pred = _as_1d(y_true), _as_1d(y_pred)
    if len(y_true) == 0:
        return dict.fromkeys(("mse", "mae", "rmse"), float("nan"))
    error = np.clip(y_pred, *rating_range) - y_true
    mse = float(np.mean(error ** 2))
    return {"mse": mse, "mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(mse))}


def _codes(ids) -> np.ndarray:
    """Integer codes that keep the sort order of the ids (as strings)."""
    return np.unique(np.asarray(ids, dtype=str), return_inverse=True)[1].reshape(-1)


def rank_within_users(user_ids, item_ids, scores) -> np.ndarray:
    """Rank (0 = best) of each row within its user: score desc, then item id asc."""
    users = _codes(user_ids)
    order = np.lexsort((_codes(item_ids), -_as_1d(scores), users))  # last key is primary
    starts = np.flatnonzero(np.r_[True, np.diff(users[order]) != 0])
    position = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    rank = np.empty(len(order), np.int64)
    rank[order] = position
    return rank


def auc_by_user(users: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC-AUC of ``scores`` vs ``labels`` per user code 0..n-1; NaN for one-class users.

    Mann-Whitney U (tied scores count 1/2): the value of
    ``sklearn.metrics.roc_auc_score`` (tested), but one sort for all users
    instead of a sklearn call per user (2-7 ms each; ~1 min for 10k users).
    """
    if len(users) == 0:
        return np.zeros(0)
    order = np.lexsort((scores, users))
    u, s, y = users[order], scores[order], labels[order].astype(np.float64)
    new_user = np.r_[True, u[1:] != u[:-1]]
    new_tie = new_user | np.r_[True, s[1:] != s[:-1]]
    first = np.flatnonzero(new_tie)                       # first position of each tie run
    last = np.r_[first[1:], len(u)] - 1
    user_start = np.maximum.accumulate(np.where(new_user, np.arange(len(u)), 0))
    rank = ((first + last) / 2)[np.cumsum(new_tie) - 1] - user_start + 1  # average rank, 1-based
    n_pos = np.bincount(u, y, minlength=users.max(initial=-1) + 1)
    n_neg = np.bincount(u, minlength=len(n_pos)) - n_pos
    rank_sum = np.bincount(u, rank * y, minlength=len(n_pos))
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def protocol_r(user_ids, item_ids, ratings, scores, calibration: Calibration,
               k: int = 10, rating_range=RATING_RANGE) -> dict:
    """Protocol R over test pairs: rating errors and per-user list metrics.

    Args:
        user_ids, item_ids, ratings, scores: One entry per test interaction.
        calibration: Fitted on validation; gives ratings and P(like).
        k: List length cap (L_u = top min(k, |T_u|)).
        rating_range: Clip range of rating predictions.

    Returns:
        mse, mae, rmse, accuracy@k, precision@k, roc_auc@k and ``counts``.
    """
    ratings, scores = _as_1d(ratings), _as_1d(scores)
    if len(ratings) == 0:
        raise ValueError("Protocol R needs at least one rated test interaction.")
    predicted, p_like = calibration.transform(scores)
    liked = ratings >= calibration.like_threshold
    users = _codes(user_ids)
    in_list = rank_within_users(user_ids, item_ids, scores) < k          # row in L_u
    n_list = np.bincount(users, in_list)                                 # |L_u|
    precision = np.bincount(users, in_list & liked) / n_list
    accuracy = np.bincount(users, in_list & ((p_like >= 0.5) == liked)) / n_list
    auc = auc_by_user(users, liked, scores)
    metrics = rating_errors(ratings, predicted, rating_range)
    metrics[f"accuracy@{k}"] = _mean(accuracy)
    metrics[f"precision@{k}"] = _mean(precision)
    metrics[f"roc_auc@{k}"] = _mean(auc[~np.isnan(auc)])  # one-class users skipped
    n_auc = int((~np.isnan(auc)).sum())
    metrics["counts"] = {"users": len(n_list), "auc_users": n_auc,
                         "auc_skipped_users": len(n_list) - n_auc, "interactions": len(ratings)}
    return metrics


def relevant_columns(rows, columns, ratings, n_rows: int, relevant: str = "all",
                     like_threshold: float = 4.0) -> list[np.ndarray]:
    """Per user row 0..n_rows-1, the relevant columns of protocols T/C.

    ``rows``, ``columns`` and ``ratings`` describe the test interactions;
    relevant is "all" of them or the "liked" ones (rating >= like_threshold).
    """
    if relevant not in ("all", "liked"):
        raise ValueError(f"relevant must be 'all' or 'liked', got {relevant!r}.")
    rows, columns = np.asarray(rows, np.int64), np.asarray(columns, np.int64)
    if relevant == "liked":
        keep = _as_1d(ratings) >= like_threshold
        rows, columns = rows[keep], columns[keep]
    order = np.argsort(rows, kind="stable")
    bounds = np.searchsorted(rows[order], np.arange(n_rows + 1))
    return [np.unique(columns[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:])]


def _mean(values) -> float:
    """Mean, NaN when there is nothing to average."""
    return float(np.mean(values)) if len(values) else float("nan")


def top_k(scores, k: int = 10, exclude=None, candidates=None) -> np.ndarray:
    """Top-k columns per row, ties by column ascending; -1 pads short lists.

    Selection is O(items) per row (``np.partition`` for the k-th score, then a
    mask), vectorised over the rows of a chunk; only the k chosen are sorted.

    Args:
        scores: (users, items) scores; NaN is an error.
        k: List length.
        exclude: Optional (users, items) bool mask of never-recommended items.
        candidates: Optional column indices; only these can be recommended.

    Returns:
        int64 array (users, k) of column indices into ``scores``.
    """
    columns = np.arange(np.shape(scores)[-1]) if candidates is None else np.asarray(candidates, np.int64)
    cost = _ranking_cost(scores, exclude, candidates)      # (users, candidates)
    chosen = _select_top(cost, min(k, cost.shape[1]))      # (users, kk) local columns
    values = np.take_along_axis(cost, chosen, axis=1)
    order = np.lexsort((chosen, values), axis=-1)          # score desc, column asc
    chosen, values = (np.take_along_axis(a, order, axis=1) for a in (chosen, values))
    top = np.where(np.isposinf(values), -1, columns[chosen])
    return np.pad(top, ((0, 0), (0, k - top.shape[1])), constant_values=-1)


def _ranking_cost(scores, exclude, candidates) -> np.ndarray:
    """Negated scores (lower is better); excluded items cost +inf."""
    scores = np.asarray(scores)
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
    if scores.ndim != 2 or np.isnan(scores).any():
        raise ValueError(f"scores must be a 2-D array without NaN; got shape {scores.shape}.")
    if candidates is not None:
        scores = scores[:, candidates]
        exclude = None if exclude is None else np.asarray(exclude, bool)[:, candidates]
    cost = np.negative(scores)
    # Real scores stay finite so an allowed item always beats an excluded one.
    np.minimum(cost, np.finfo(cost.dtype).max, out=cost)
    if exclude is not None:
        cost[np.asarray(exclude, bool)] = np.inf
    return cost


def _select_top(cost: np.ndarray, kk: int) -> np.ndarray:
    """The kk lowest-cost columns per row, ascending; ties at the cut: lowest columns."""
    if kk == 0:
        return np.zeros((len(cost), 0), np.int64)
    cut = np.partition(cost, kk - 1, axis=1)[:, kk - 1:kk]  # (users, 1) k-th best cost
    keep, tied = cost < cut, cost == cut                    # (users, items) each
    need = kk - keep.sum(axis=1, keepdims=True)             # tied slots left per row
    crowded = tied.sum(axis=1) > need[:, 0]                 # more ties than slots
    tied[crowded] &= np.cumsum(tied[crowded], axis=1) <= need[crowded]
    keep |= tied
    return np.nonzero(keep)[1].reshape(len(cost), kk)      # row-major: columns ascending


def popularity_percentiles(counts) -> np.ndarray:
    """Percentile (0..100, average rank over ties) of each item's popularity."""
    counts = _as_1d(counts)
    return 100.0 * (rankdata(counts, method="average") - 1) / max(len(counts) - 1, 1)


def intra_list_diversity(top: np.ndarray, categories: Sequence[str]) -> float:
    """Mean over lists (>= 2 items) of the share of item pairs whose categories differ."""
    codes = np.unique(np.asarray(categories, dtype=str), return_inverse=True)[1]
    valid = top >= 0
    cats = np.where(valid, codes[np.where(valid, top, 0)], -1)      # (users, k)
    upper = np.triu(np.ones((top.shape[1],) * 2, bool), k=1)        # pairs i < j
    pairs = valid[:, :, None] & valid[:, None, :] & upper          # (users, k, k)
    differ = (cats[:, :, None] != cats[:, None, :]) & pairs
    n_pairs = pairs.sum(axis=(1, 2))
    keep = n_pairs > 0
    return _mean(differ.sum(axis=(1, 2))[keep] / n_pairs[keep])


def _hits(top: np.ndarray, relevant: Sequence[np.ndarray]) -> np.ndarray:
    """(users, k) bool: is each recommended column in the user's relevant set."""
    n = max(top.max(initial=0), max((r.max(initial=0) for r in relevant), default=0)) + 1
    owner = np.repeat(np.arange(len(relevant)), [len(r) for r in relevant])
    rel_codes = owner * n + np.concatenate([np.zeros(0, np.int64), *relevant])
    top_codes = np.arange(len(top))[:, None] * n + top   # (users, k); -1 slots masked below
    return np.isin(top_codes, rel_codes) & (top >= 0)


def topn_report(top: np.ndarray, relevant: Sequence[np.ndarray], n_candidates: int,
                popularity_pct: Optional[np.ndarray] = None,
                categories: Optional[Sequence[str]] = None, k: int = 10) -> dict:
    """Protocol T/C metrics from top-k lists, over users with >= 1 relevant item.

    Args:
        top: (users, k) column indices from :func:`top_k`.
        relevant: Per user, the relevant column indices.
        n_candidates: Candidate catalogue size (coverage denominator).
        popularity_pct: Per column, training-popularity percentile (0..100).
        categories: Per column, the primary category.
        k: Cut-off.

    Returns:
        precision@k, recall@k, ndcg@k, map@k, hit_rate@k, coverage@k,
        popularity_percentile, diversity@k (NaN where not computable), counts.
    """
    relevant = [np.unique(np.asarray(r, np.int64)) for r in relevant]
    n_rel = np.array([len(r) for r in relevant], np.int64)
    keep = n_rel > 0
    top, n_rel = top[keep], n_rel[keep]
    hits = _hits(top, [r for r, kept in zip(relevant, keep) if kept])     # (users, k)
    discount = 1.0 / np.log2(np.arange(2, k + 2))                          # (k,)
    ideal = np.minimum(k, n_rel)
    n_hits = hits.sum(axis=1)
    precision_at = np.cumsum(hits, axis=1) / np.arange(1, k + 1)         # P@r, (users, k)
    return {
        f"precision@{k}": _mean(n_hits / k),
        f"recall@{k}": _mean(n_hits / n_rel),
        f"ndcg@{k}": _mean((hits @ discount) / np.cumsum(discount)[ideal - 1]),
        f"map@{k}": _mean((precision_at * hits).sum(axis=1) / ideal),
        f"hit_rate@{k}": _mean(hits.any(axis=1)),
        **_beyond_accuracy(top, n_candidates, popularity_pct, categories, k),
        "counts": {"users": int(keep.sum()), "users_without_relevant": int((~keep).sum())},
    }


def _beyond_accuracy(top, n_candidates, popularity_pct, categories, k) -> dict:
    """coverage@k, popularity_percentile, diversity@k (NaN without the data)."""
    valid = top[top >= 0]
    out = dict.fromkeys((f"coverage@{k}", "popularity_percentile", f"diversity@{k}"), float("nan"))
    if n_candidates:
        out[f"coverage@{k}"] = len(np.unique(valid)) / n_candidates
    if popularity_pct is not None:
        out["popularity_percentile"] = _mean(np.asarray(popularity_pct)[valid])
    if categories is not None:
        out[f"diversity@{k}"] = intra_list_diversity(top, categories)
    return out


def protocol_t(scores, relevant, exclude=None, popularity_pct=None, categories=None, k: int = 10) -> dict:
    """Protocol T on an in-memory score matrix (full catalogue as candidates)."""
    top = top_k(scores, k, exclude)
    return topn_report(top, relevant, np.shape(scores)[1], popularity_pct, categories, k)


def protocol_c(scores, relevant, cold_items, y_true, y_pred, exclude=None, popularity_pct=None,
               categories=None, k: int = 10, rating_range=RATING_RANGE) -> dict:
    """Protocol C: protocol T restricted to ``cold_items`` columns, plus rating errors.

    Args:
        scores: (users, items) over the full catalogue.
        relevant: Per user, relevant column indices (non-cold ones are ignored).
        cold_items: Column indices of the cold items (the only candidates).
        y_true, y_pred: Ratings and rating predictions of the cold interactions.
    """
    cold_items = np.asarray(cold_items, np.int64)
    top = top_k(scores, k, exclude, candidates=cold_items)
    relevant = [np.intersect1d(r, cold_items) for r in relevant]
    metrics = topn_report(top, relevant, len(cold_items), popularity_pct, categories, k)
    counts = metrics.pop("counts")
    metrics.update(rating_errors(y_true, y_pred, rating_range))
    metrics["counts"] = dict(counts, interactions=len(np.asarray(y_true)))
    return metrics
