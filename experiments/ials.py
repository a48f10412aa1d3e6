"""iALS (implicit ALS, Hu, Koren & Volinsky 2008) from the ``implicit`` package,
as an :class:`afetler_tf.models.base.Recommender`: a benchmark extra of the
``datasets`` suite (``pip install implicit``, or the ``bench`` extra), not an
``afetler_tf`` model.

The binary user x item matrix of ``split.train`` (a repeat counts once, like
EASE) is factorised by ``implicit.cpu.als.AlternatingLeastSquares``; a
user's score for an item is the dot product of their factors (unknown user or
item: 0). Scores are affinities (``predicts_ratings`` False: protocol R maps
them to ratings with the linear fit on validation, as for EASE).

Hyperparameters are chosen on the validation carve-out only (NDCG@10 of
protocol T on ``split.validation``, :func:`afetler_tf.training.validation_ndcg`;
the test split is never read): every combination of ``GRID``'s factors,
regularization and alpha at ``GRID['iterations'][0]`` iterations, then the
other iteration counts for the best of those; the model is then refitted on
``split.train`` with the chosen values (the same data every candidate was
fitted on). ``QUICK_GRID`` is the --quick suite's.
"""

from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from afetler_tf.data.schema import Dataset, Split
from afetler_tf.models.base import Recommender, check_pairs

# 48 combinations at 15 iterations, then 2 more iteration counts: 50 fits (about 15 s on a
# 3,000-user synthetic log, one core). Regularization reaches 100: on the synthetic logs
# validation NDCG@10 peaked at 10-100 (0.01-1 was the first grid's edge).
GRID = {"factors": (16, 32, 64, 128), "regularization": (0.1, 1.0, 10.0, 100.0),
        "alpha": (1.0, 10.0, 40.0), "iterations": (15, 5, 30)}
QUICK_GRID = {"factors": (16,), "regularization": (0.1,), "alpha": (1.0, 10.0), "iterations": (5,)}


def available() -> bool:
    """Whether the ``implicit`` package can be imported."""
    try:
        from implicit.cpu import als
    except ImportError:
        return False
    return als is not None


def candidates(grid: dict) -> list:
    """The first stage's settings: factors x regularization x alpha, first iteration count."""
    return [{"factors": f, "regularization": r, "alpha": a, "iterations": grid["iterations"][0]}
            for f in grid["factors"] for r in grid["regularization"] for a in grid["alpha"]]


class IALS(Recommender):
    """iALS with its hyperparameters picked on validation NDCG@10 (module docstring).

    ``config`` is an :class:`afetler_tf.config.Config` (its ``model`` names a
    registry model, so it cannot say "ials"): only ``config.train.seed`` is read
    (the factors' initialisation). ``num_threads``: implicit's threads (1:
    deterministic and polite on a shared machine).
    """

    name = "ials"
    predicts_ratings = False

    def __init__(self, config, grid: Optional[dict] = None, num_threads: int = 1):
        super().__init__(config)
        self.grid = dict(GRID if grid is None else grid)
        self.num_threads = num_threads
        self.params: dict = {}
        self._users, self._items = pd.Index([]), pd.Index([])
        self._user_factors = np.zeros((0, 0), np.float32)
        self._item_factors = np.zeros((0, 0), np.float32)

    def fit(self, data: Dataset, split: Split, verbose: int = 1) -> dict:
        from afetler_tf.training import ValidationNdcg
        # The split's part once, for every trial (None: no validation set to score).
        validation_ndcg = ValidationNdcg(data, split) if not split.validation.empty else None
        self._users = pd.Index(sorted(split.train["user_id"].astype(str).unique()))
        self._items = pd.Index(sorted(split.train["item_id"].astype(str).unique()))
        matrix = self._matrix(split.train)
        trials = []

        def trial(params):
            t0 = time.time()
            self._fit(matrix, params)
            ndcg = validation_ndcg(self) if validation_ndcg is not None else 0.0
            trials.append(dict(params, val_ndcg=ndcg, seconds=time.time() - t0))
            if verbose:
                print(f"ials {params}: validation NDCG@10 {ndcg:.4f}", flush=True)
            return ndcg

        best = max(candidates(self.grid), key=trial)
        for iterations in self.grid["iterations"][1:]:
            params = dict(best, iterations=iterations)
            if trial(params) > max(t["val_ndcg"] for t in trials[:-1]):
                best = params
        t0 = time.time()
        self._fit(matrix, best)
        self.params = best
        return {"params": best, "val_ndcg@10": max(t["val_ndcg"] for t in trials),
                "final_fit_seconds": time.time() - t0, "trials": trials,
                "n_users": len(self._users), "n_items": len(self._items)}

    def _matrix(self, frame: pd.DataFrame):
        from scipy import sparse
        rows = self._users.get_indexer(frame["user_id"].astype(str))
        cols = self._items.get_indexer(frame["item_id"].astype(str))
        x = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                              shape=(len(self._users), len(self._items)))
        x.data[:] = 1.0  # repeats count once
        return x

    def _fit(self, matrix, params: dict) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits
        model = AlternatingLeastSquares(factors=params["factors"],
                                        regularization=params["regularization"],
                                        alpha=params["alpha"], iterations=params["iterations"],
                                        num_threads=self.num_threads,
                                        random_state=self.config.train.seed)
        with threadpool_limits(1, "blas"):  # implicit's own threads do the work
            model.fit(matrix, show_progress=False)
        self._user_factors = np.asarray(model.user_factors, np.float32)
        self._item_factors = np.asarray(model.item_factors, np.float32)

    def _rows(self, index: pd.Index, ids: Sequence[str], factors: np.ndarray) -> np.ndarray:
        from afetler_tf import training
        positions = index.get_indexer(training.as_strings(ids))
        out = factors[np.maximum(positions, 0)].copy()
        out[positions < 0] = 0.0
        return out

    def score_all(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        users = self._rows(self._users, user_ids, self._user_factors)
        items = self._rows(self._items, item_ids, self._item_factors)
        return (users @ items.T).astype(np.float64)

    def score(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        check_pairs(user_ids, item_ids)
        users = self._rows(self._users, user_ids, self._user_factors)
        items = self._rows(self._items, item_ids, self._item_factors)
        return np.einsum("nd,nd->n", users, items).astype(np.float64)
