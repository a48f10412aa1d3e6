"""Evaluation driver: a Recommender on a Split, through protocols R, T and C.

The formulas live in :mod:`afetler_tf.evaluation.metrics`; this module only asks the model
for scores (:meth:`Recommender.score` for pairs, :meth:`Recommender.score_all`
in user batches for top-N) and turns the split's tables into index arrays.
Test data is only ever scored, never used to fit anything: the calibration of
protocol R is fitted on ``split.validation``.

Example:
    >>> results = evaluate(model, data, split, protocols=("R", "T"))
    >>> results["T"]["ndcg@10"], results["T"]["counts"]["users"]
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from afetler_tf.data.schema import Dataset, Split
from afetler_tf.evaluation import metrics
from afetler_tf.models.base import Recommender

PROTOCOLS = ("R", "T", "C")
RELEVANT = ("all", "liked")


def evaluate(model: Recommender, data: Dataset, split: Split, protocols: Sequence[str] = ("R", "T"),
             relevant: str = "all", k: int = 10, like_threshold: float = 4.0,
             batch_users: int = 256) -> dict:
    """Evaluates ``model`` on ``split.test`` (docs/design.md §4).

    Args:
        model: A trained recommender.
        data: The data set (its item table is the catalogue of protocol T).
        split: The split the model was trained on.
        protocols: Any of "R" (rating), "T" (top-N over the catalogue) and
            "C" (cold items; only run on a "cold-items" split).
        relevant: Protocols T/C relevance: "all" test items or the "liked" ones.
        k: List length.
        like_threshold: A rating >= this is a like (relevant in R).
        batch_users: Users scored per ``score_all`` call.

    Returns:
        ``{protocol: {metric: value, ..., "counts": {...}}}``; ``{}`` (with a
        warning) for a "none" split, which has no test set.

    Raises:
        ValueError: on a bad argument, an empty test set, or data the protocol
            cannot use (e.g. "liked" without ratings).
    """
    _check_arguments(protocols, relevant, k, batch_users)
    if split.kind == "none":
        warnings.warn("Split 'none' has no test set: nothing to evaluate (metrics are {}).")
        return {}
    if split.test.empty:
        raise ValueError(f"Split {split.kind!r} has an empty test set; protocols R/T/C need test data.")
    protocols = _runnable(protocols, split, data)
    needs_pairs = bool({"R", "C"} & set(protocols))
    scores = _pair_scores(model, split.test) if needs_pairs else None
    calibration = _calibration(model, split, like_threshold) if needs_pairs and _has_ratings(split) else None
    rating_range = data.rating_range or metrics.RATING_RANGE
    results = {}
    if "R" in protocols:
        rated = split.test.rating.notna().to_numpy()
        results["R"] = metrics.protocol_r(split.test.user_id[rated], split.test.item_id[rated],
                                          split.test.rating[rated], scores[rated], calibration, k, rating_range)
    if "T" in protocols:
        results["T"] = run_topn(model, topn_task(data, split, None, relevant, like_threshold), k,
                                batch_users)
    if "C" in protocols:
        results["C"] = _protocol_cold(model, data, split, scores, calibration, relevant, k,
                                      like_threshold, batch_users, rating_range)
    return results


def _check_arguments(protocols, relevant, k, batch_users) -> None:
    unknown = sorted(set(protocols) - set(PROTOCOLS))
    if unknown:
        raise ValueError(f"Unknown protocol(s) {unknown}; valid: {list(PROTOCOLS)}.")
    if relevant not in RELEVANT:
        raise ValueError(f"relevant must be one of {RELEVANT}, got {relevant!r}.")
    if int(k) < 1 or int(batch_users) < 1:
        raise ValueError(f"k and batch_users must be >= 1; got k={k}, batch_users={batch_users}.")


def _has_ratings(split: Split) -> bool:
    return bool(split.test.rating.notna().any()) and bool(split.validation.rating.notna().any())


def _runnable(protocols: Sequence[str], split: Split, data: Dataset) -> list[str]:
    """The requested protocols this split and data can answer (skips are warned)."""
    runnable = []
    for protocol in dict.fromkeys(protocols):
        if protocol == "C" and split.kind != "cold-items":
            warnings.warn(f"Protocol C needs a 'cold-items' split, not {split.kind!r}: skipped.")
        elif protocol == "R" and not _has_ratings(split):
            warnings.warn("Protocol R needs ratings in the validation and test sets: skipped.")
        else:
            runnable.append(protocol)
    return runnable


def _ids(column: pd.Series) -> np.ndarray:
    """Ids as a numpy object array of str (pandas 3 strings are StringDtype)."""
    return column.astype(str).to_numpy(object)


def _pair_scores(model: Recommender, pairs: pd.DataFrame) -> np.ndarray:
    scores = np.asarray(model.score(_ids(pairs.user_id), _ids(pairs.item_id)), np.float64).reshape(-1)
    if scores.shape != (len(pairs),):
        raise ValueError(f"{model.name}.score returned {scores.shape[0]} scores for {len(pairs)} pairs.")
    return scores


def _calibration(model: Recommender, split: Split, like_threshold: float) -> metrics.Calibration:
    """Fits P(like|score) (and score -> rating if needed) on the validation set only."""
    validation = split.validation[split.validation.rating.notna()]
    calibration = metrics.Calibration(like_threshold, scores_are_ratings=model.predicts_ratings)
    return calibration.fit(_pair_scores(model, validation), validation.rating.to_numpy(np.float64))


def _training_part(split: Split) -> pd.DataFrame:
    """What the model saw: train + validation (excluded from its lists)."""
    return pd.concat([split.train, split.validation], ignore_index=True)


@dataclasses.dataclass(frozen=True)
class TopNTask:
    """What a top-N protocol needs from the data and the split, apart from the
    model: computed once by :func:`topn_task`, scored by :func:`run_topn` as
    often as needed (a validation check after every epoch or grid point).

    Attributes:
        item_ids: The candidate item ids (str), in catalogue order.
        users: The users with >= 1 relevant item (sorted str ids).
        relevant: Per user, the columns of its relevant items.
        exclude_rows, exclude_cols: (user row, item column) of the training
            part's interactions among ``users`` x ``item_ids``, by row.
        popularity: Each candidate's training-part popularity percentile.
        categories: Each candidate's category (None: the data has none).
    """

    item_ids: np.ndarray
    users: np.ndarray
    relevant: list
    exclude_rows: np.ndarray
    exclude_cols: np.ndarray
    popularity: np.ndarray
    categories: Optional[np.ndarray]


def topn_task(data: Dataset, split: Split, candidates: Optional[np.ndarray] = None,
              relevant: str = "all", like_threshold: float = 4.0) -> TopNTask:
    """Protocol T's task on ``split.test`` (``candidates`` None: the whole
    catalogue) or the top-N part of C's (``candidates``: the cold item ids).

    Raises:
        ValueError: ``relevant="liked"`` on test interactions without ratings.
    """
    catalogue = pd.Index(_ids(data.items.item_id))
    columns = np.arange(len(catalogue)) if candidates is None else catalogue.get_indexer(candidates)
    item_ids = catalogue[columns].to_numpy(object)
    test = split.test[split.test.item_id.astype(str).isin(item_ids)]
    if relevant == "liked" and test.rating.isna().any():
        raise ValueError("relevant='liked' needs ratings on every test interaction; use relevant='all'.")
    users, rel = _relevant_sets(test, pd.Index(item_ids), relevant, like_threshold)
    exclude_rows, exclude_cols = _pairs(_training_part(split), pd.Index(users), pd.Index(item_ids))
    popularity = metrics.popularity_percentiles(_popularity(split, catalogue))[columns]
    categories = data.items.category.astype(str).to_numpy()[columns] if "category" in data.items else None
    return TopNTask(item_ids, users, rel, exclude_rows, exclude_cols, popularity, categories)


def run_topn(model, task: TopNTask, k: int = 10, batch_users: int = 256) -> dict:
    """The top-N report (:func:`metrics.topn_report`) of ``model`` on ``task``:
    each user's k best candidates outside its training part."""
    users, item_ids = task.users, task.item_ids
    tops = [np.zeros((0, k), np.int64)]
    scorer = _catalogue_scorer(model, item_ids) if len(users) else None
    for start in range(0, len(users), batch_users):
        batch = users[start:start + batch_users]
        scores = _score_all(model, scorer, batch, item_ids)
        lo, hi = np.searchsorted(task.exclude_rows, [start, start + len(batch)])
        mask = np.zeros(scores.shape, bool)  # (batch, items)
        mask[task.exclude_rows[lo:hi] - start, task.exclude_cols[lo:hi]] = True
        tops.append(metrics.top_k(scores, k, mask))
    return metrics.topn_report(np.concatenate(tops), task.relevant, len(item_ids), task.popularity,
                               task.categories, k)


def _relevant_sets(test: pd.DataFrame, items: pd.Index, relevant: str,
                   like_threshold: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Users (sorted ids) with >= 1 relevant item, and their relevant columns."""
    users = pd.Index(np.unique(_ids(test.user_id)))
    ratings = test.rating.to_numpy(np.float64) if relevant == "liked" else None
    rel = metrics.relevant_columns(users.get_indexer(_ids(test.user_id)), items.get_indexer(_ids(test.item_id)),
                                   ratings, len(users), relevant, like_threshold)
    keep = [i for i, r in enumerate(rel) if len(r)]
    return users.to_numpy(object)[keep], [rel[i] for i in keep]


def _pairs(interactions: pd.DataFrame, users: pd.Index, items: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of each interaction among ``users`` x ``items``, sorted by row."""
    rows = users.get_indexer(_ids(interactions.user_id))
    cols = items.get_indexer(_ids(interactions.item_id))
    known = (rows >= 0) & (cols >= 0)
    order = np.argsort(rows[known], kind="stable")
    return rows[known][order], cols[known][order]


def _popularity(split: Split, catalogue: pd.Index) -> np.ndarray:
    """Training-part interaction count of each catalogue item."""
    cols = catalogue.get_indexer(_ids(_training_part(split).item_id))
    return np.bincount(cols[cols >= 0], minlength=len(catalogue)).astype(np.float64)


def _catalogue_scorer(model, item_ids: np.ndarray):
    """``model.catalogue_scorer`` (:class:`Recommender`), or ``score_all`` per user
    batch for a scorer that is not a Recommender (only ``score``/``score_all``)."""
    if hasattr(model, "catalogue_scorer"):
        return model.catalogue_scorer(item_ids)
    return lambda users: model.score_all(users, item_ids)


def _score_all(model: Recommender, scorer, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    scores = np.asarray(scorer(users))
    if scores.shape != (len(users), len(items)):
        raise ValueError(f"{model.name}.score_all returned shape {scores.shape}, "
                         f"expected ({len(users)}, {len(items)}).")
    return scores


def _protocol_cold(model, data, split, scores, calibration, relevant, k, like_threshold,
                   batch_users, rating_range) -> dict:
    """Protocol C: top-N among the cold items, plus rating errors on their test interactions."""
    cold_set = set(map(str, split.cold_items))
    cold = [item for item in _ids(data.items.item_id) if item in cold_set]  # catalogue order
    result = run_topn(model, topn_task(data, split, np.array(cold, object), relevant, like_threshold),
                      k, batch_users)
    is_cold = split.test.item_id.astype(str).isin(cold).to_numpy()
    rated = is_cold & split.test.rating.notna().to_numpy()
    counts = result.pop("counts")
    if calibration is not None:
        result.update(metrics.rating_errors(split.test.rating.to_numpy(np.float64)[rated],
                                            calibration.rating(scores[rated]), rating_range))
    result["counts"] = dict(counts, interactions=int(is_cold.sum()))
    return result
