"""EASE: the closed-form item-item model (Steck, "Embarrassingly Shallow
Autoencoders for Sparse Data", WWW 2019), a protocol-T reference model and
the source of AFETLER's item-item channel (:mod:`afetler_tf.models.item_item_fitting`).

With X the binary user x item matrix of the training interactions and
G = X^T X, EASE's item-item weights are

    B = argmin ||X - X B||^2 + lambda ||B||^2  subject to diag(B) = 0
      = I - P diag(1 / diag(P)),  P = (G + lambda I)^-1,

and user u's score for item v is (x_u B)_v: the weights from the items u
interacted with to v. ``low_rank`` factors B into W V^T (truncated SVD), so
the score becomes a dot product (x_u W) . V_v, the form a two-tower index
serves. The cost is one dense inverse of an (items x items) matrix (by its
Cholesky factor; G is symmetric positive definite): fine for MovieLens-size
catalogues, the larger part of the fit on a catalogue of ten thousand items
(docs/decisions.md, 2026-12-01), refused above ``MAX_ITEMS``.

Example:
    model = Ease(Config(model="ease"))
    model.fit(data, split)
    model.score_all(["1"], ["50", "181"])  # (1, 2)
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.linalg import lapack

from afetler_tf import files, training
from afetler_tf.data.schema import Dataset, Split
from afetler_tf.models.base import Recommender, check_pairs

MAX_ITEMS = 20_000  # a dense float64 inverse of this size takes ~3 GiB
_WEIGHTS_FILE = "ease.npz"


def interaction_matrix(interactions: pd.DataFrame, users: pd.Index, items: pd.Index) -> np.ndarray:
    """Binary (len(users), len(items)) matrix: 1 where the user interacted with
    the item (repeats count once); rows or columns outside the indexes are left out."""
    rows = users.get_indexer(interactions["user_id"].astype(str))
    cols = items.get_indexer(interactions["item_id"].astype(str))
    keep = (rows >= 0) & (cols >= 0)
    x = np.zeros((len(users), len(items)))
    x[rows[keep], cols[keep]] = 1.0
    return x


def ease_weights(x: np.ndarray, penalty: float) -> np.ndarray:
    """EASE's item-item matrix B (items, items), zero diagonal (module docstring)."""
    if not penalty > 0:
        raise ValueError(f"EASE needs a penalty > 0, got {penalty!r}.")
    n = x.shape[1]
    if n > MAX_ITEMS:
        raise ValueError(f"EASE inverts an items x items matrix; {n} items is above {MAX_ITEMS}. "
                         f"Use a smaller catalogue (or switch AFETLER's afetler.item_item off).")
    g = gram(x)
    g[np.diag_indices(n)] += penalty
    b = _spd_inverse(g)  # P, then B in place (one items x items array at a time)
    b /= -np.diag(b).copy()[None, :]
    np.fill_diagonal(b, 0.0)
    return b


def gram(x: np.ndarray) -> np.ndarray:
    """G = X^T X (items, items) of the binary matrix ``x``, by a sparse product:
    its cost follows the interactions, not users x items^2."""
    xs = sparse.csr_matrix(x)
    return (xs.T @ xs).toarray()


def _spd_inverse(a: np.ndarray) -> np.ndarray:
    """The inverse of the symmetric positive definite ``a`` from its Cholesky
    factor (LAPACK potrf, potri): the same values as ``np.linalg.inv`` to
    float64 rounding, in less time (an LU inverse ignores the symmetry;
    docs/decisions.md, 2026-12-01). ``a`` is overwritten: LAPACK
    works on its transpose, the same matrix in Fortran order, without a copy."""
    factor, info = lapack.dpotrf(a.T, lower=False, overwrite_a=True, clean=False)
    if info == 0:
        inverse, info = lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:  # G + lambda I with lambda > 0 is positive definite: not a user's error
        raise np.linalg.LinAlgError(f"EASE's Cholesky inverse failed (LAPACK info {info}).")
    for start in range(0, len(inverse), 1024):  # the lower triangle from the upper, in blocks
        stop = start + 1024
        inverse[start:stop, :start] = inverse[:start, start:stop].T
        block = inverse[start:stop, start:stop]
        block[:] = np.triu(block) + np.triu(block, 1).T
    return inverse


def low_rank(b: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """(W, V), both (items, rank), with W V^T the best rank-``rank``
    approximation of ``b`` (truncated SVD; W carries the singular values).

    Below half the spectrum the top singular triplets come from ARPACK's
    Lanczos iteration (``scipy.sparse.linalg.svds``, a fixed start vector:
    the same result every run) instead of the full SVD, whose cost is that of
    the whole spectrum (docs/decisions.md, 2026-11-30), on a float32 copy of
    ``b``: each step reads the whole matrix, so half the bytes take about half
    the time, and the factors agree with float64's to float32 precision
    (docs/decisions.md, 2026-12-01)."""
    n = min(b.shape)
    if not 1 <= rank <= n:
        raise ValueError(f"rank must be in [1, {n}], got {rank!r}.")
    if 2 * rank >= n:
        u, s, vt = np.linalg.svd(b)
        return u[:, :rank] * s[:rank], vt[:rank].T
    from scipy.sparse.linalg import svds
    u, s, vt = svds(b.astype(np.float32), k=rank, v0=np.full(n, 1.0 / np.sqrt(n), np.float32))
    u, s, vt = (a.astype(np.float64) for a in (u, s, vt))
    order = np.argsort(-s)
    return u[:, order] * s[order], vt[order].T


class Ease(Recommender):
    """EASE on the training interactions (``ease.penalty`` = lambda).

    Scores are affinities (``predicts_ratings`` False: protocol R maps them to
    ratings with the linear fit on the validation set). A user or item unseen
    in training scores 0.
    """

    name = "ease"
    predicts_ratings = False

    def __init__(self, config):
        super().__init__(config)
        self._users, self._items = pd.Index([]), pd.Index([])
        self._x, self._b = np.zeros((0, 0)), np.zeros((0, 0))
        self._user_scores = np.zeros((0, 0))  # x_u B, (users, items)

    def fit(self, data: Dataset, split: Split, verbose: int = 1) -> dict:
        """Closed form on ``split.train`` (validation and test unused)."""
        users = pd.Index(sorted(split.train["user_id"].astype(str).unique()))
        items = pd.Index(sorted(split.train["item_id"].astype(str).unique()))
        x = interaction_matrix(split.train, users, items)
        self._set(users, items, x, ease_weights(x, self.config.ease.penalty))
        if verbose:
            print(f"ease: {len(users)} users x {len(items)} items, penalty {self.config.ease.penalty}")
        return {"n_users": len(users), "n_items": len(items)}

    def _set(self, users: pd.Index, items: pd.Index, x: np.ndarray, b: np.ndarray) -> None:
        self._users, self._items, self._x, self._b = users, items, x, b
        self._user_scores = x @ b

    def score_all(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        rows = self._users.get_indexer(training.as_strings(user_ids))
        cols = self._items.get_indexer(training.as_strings(item_ids))
        out = self._user_scores[np.maximum(rows, 0)][:, np.maximum(cols, 0)]
        out[rows < 0, :] = 0.0
        out[:, cols < 0] = 0.0
        return out

    def score(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        check_pairs(user_ids, item_ids)
        rows = self._users.get_indexer(training.as_strings(user_ids))
        cols = self._items.get_indexer(training.as_strings(item_ids))
        known = (rows >= 0) & (cols >= 0)
        out = np.zeros(len(rows))
        out[known] = self._user_scores[rows[known], cols[known]]
        return out

    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        files.atomic_write(os.path.join(directory, _WEIGHTS_FILE),
                        lambda f: np.savez(f, users=self._users.to_numpy(str),
                                           items=self._items.to_numpy(str), x=self._x, b=self._b))

    def load(self, directory: str, data: Dataset, split: Split) -> None:
        with np.load(os.path.join(directory, _WEIGHTS_FILE)) as f:
            self._set(pd.Index(f["users"].astype(str)), pd.Index(f["items"].astype(str)), f["x"], f["b"])
