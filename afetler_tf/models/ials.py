"""iALS, implicit alternating least squares (Hu, Koren & Volinsky, "Collaborative
Filtering for Implicit Feedback Datasets", ICDM 2008), in NumPy: the item
factors behind one of the item-item channel's two fits
(:mod:`afetler_tf.models.item_item_fitting`).

With P the binary user x item matrix of the training interactions (repeats
count once) and confidence c_ui = 1 + alpha p_ui, the factors X (users, k)
and Y (items, k) minimise

    sum_ui c_ui (p_ui - x_u . y_i)^2 + lambda (||X||^2 + ||Y||^2),

by alternating exact solves; each user's is

    x_u = (Y^T Y + alpha Y_u^T Y_u + lambda I)^-1 (1 + alpha) Y_u^T 1,

Y_u the factors of the items u interacted with (the items' step is the same
with the roles swapped). Y^T Y is formed once a step; the per-row sums
Y_u^T Y_u come from one sparse product with the items' outer products, so a
step costs O(nnz k^2 + rows k^3), not a pass over the dense matrix.

:func:`linear_fold_in` turns Y into the channel's history weights: a user's
factors from their history x_u alone, without the per-user confidence term,

    q_u = x_u Y (Y^T Y + mu I)^-1,   score(u, v) = q_u . y_v,

a rank-k item-item model W V^T with W = Y (Y^T Y + mu I)^-1, V = Y: the same
linear form as EASE's factors, so a served request with any history is scored
by one dot product.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse


def _solve(pairs: sparse.csr_matrix, other: np.ndarray, regularization: float,
           alpha: float) -> np.ndarray:
    """One side's exact least-squares step: rows of ``pairs`` (rows, others),
    binary) get (rows, k) factors against ``other`` (others, k)."""
    k = other.shape[1]
    gram = other.T @ other + regularization * np.eye(k)
    outer = np.einsum("ik,il->ikl", other, other).reshape(len(other), k * k)
    a = gram[None] + alpha * (pairs @ outer).reshape(-1, k, k)  # (rows, k, k)
    b = (1.0 + alpha) * (pairs @ other)  # (rows, k)
    return np.linalg.solve(a, b[..., None])[..., 0]


def als_factors(rows: np.ndarray, cols: np.ndarray, shape: tuple, factors: int,
                regularization: float, alpha: float, iterations: int,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X (users, k) and Y (items, k) of the (user row, item column) pairs
    (module docstring); a pair given more than once counts once. A row or
    column without pairs gets zero factors.

    Raises:
        ValueError: a setting out of range, or a pair outside ``shape``.
    """
    if not (int(factors) == factors and factors > 0 and int(iterations) == iterations
            and iterations > 0 and regularization > 0 and alpha >= 0):
        raise ValueError(f"iALS needs factors and iterations > 0 (integers), regularization > 0 "
                         f"and alpha >= 0; got {factors!r}, {iterations!r}, {regularization!r}, "
                         f"{alpha!r}.")
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    if len(rows) and (rows.min() < 0 or cols.min() < 0 or rows.max() >= shape[0]
                      or cols.max() >= shape[1]):
        raise ValueError(f"iALS pairs must lie in a {shape[0]} x {shape[1]} matrix.")
    pairs = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
    pairs.data[:] = 1.0  # repeats count once
    transposed = pairs.T.tocsr()
    rng = np.random.default_rng(seed)
    y = rng.normal(0.0, 0.01, (shape[1], int(factors)))
    x = np.zeros((shape[0], int(factors)))
    for _ in range(int(iterations)):
        x = _solve(pairs, y, regularization, alpha)
        y = _solve(transposed, x, regularization, alpha)
    return x, y


def linear_fold_in(y: np.ndarray, ridge: float) -> np.ndarray:
    """W = Y (Y^T Y + ridge I)^-1, (items, k): the history weights of the
    channel's rank-k model W Y^T (module docstring)."""
    if not ridge > 0:
        raise ValueError(f"the fold-in ridge must be > 0, got {ridge!r}.")
    k = y.shape[1]
    return y @ np.linalg.inv(y.T @ y + ridge * np.eye(k))
