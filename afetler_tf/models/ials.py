"""iALS, implicit alternating least squares (Hu, Koren & Volinsky, "Collaborative
Filtering for Implicit Feedback Datasets", ICDM 2008), in NumPy: the item
factors behind one of the item-item channel's two fits
(:mod:`afetler_tf.models.item_item_fitting`).

With P the binary user x item matrix of the training interactions (repeats
count once) and confidence c_ui = 1 + alpha p_ui, the factors X (users, k)
and Y (items, k) minimise

    sum_ui c_ui (p_ui - x_u . y_i)^2 + lambda (||X||^2 + ||Y||^2),

by alternating least-squares steps; each user's solves

    (Y^T Y + alpha Y_u^T Y_u + lambda I) x_u = (1 + alpha) Y_u^T 1,

Y_u the factors of the items u interacted with (the items' step is the same
with the roles swapped). As in the implicit package (Takács, Pilászy & Tikk,
"Applications of the conjugate gradient method for implicit feedback
collaborative filtering", RecSys 2011), each step runs ``cg_steps`` steps of
conjugate gradient from the previous factors instead of solving exactly, for
every row at once: a product with the system matrix is x (Y^T Y + lambda I)
plus alpha times one sparse product of the pairs' dot products y_i . x_u with
Y, so a step costs O(cg_steps nnz k + rows k^2) instead of an exact solve's
O(nnz k^2 + rows k^3), for the same objective up to the solver's rounding
(measured: docs/decisions.md, 2026-12-02, "iALS by conjugate gradient").

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


def _cg_step(pairs: sparse.csr_matrix, start: np.ndarray, other: np.ndarray,
             regularization: float, alpha: float, steps: int) -> np.ndarray:
    """One side's least-squares step: rows of ``pairs`` (rows, others), binary,
    sorted indices) get (rows, k) factors against ``other`` (others, k) by
    ``steps`` conjugate-gradient steps from ``start`` (rows, k), every row's
    system at once (module docstring); k steps solve it exactly up to rounding."""
    k = other.shape[1]
    gram = other.T @ other + regularization * np.eye(k)
    row_of_pair = np.repeat(np.arange(pairs.shape[0]), np.diff(pairs.indptr))
    other_of_pair = other[pairs.indices]  # (nnz, k)

    def system(v):  # each row's (Y^T Y + lambda I + alpha Y_u^T Y_u) v_u, (rows, k)
        dots = np.einsum("nk,nk->n", other_of_pair, v[row_of_pair])
        return v @ gram + alpha * (sparse.csr_matrix((dots, pairs.indices, pairs.indptr),
                                                     shape=pairs.shape) @ other)
    x = start.copy()
    x[np.diff(pairs.indptr) == 0] = 0.0  # a row without pairs: its solution is 0 exactly
    residual = (1.0 + alpha) * (pairs @ other) - system(x)
    direction = residual.copy()
    norm = np.einsum("uk,uk->u", residual, residual)
    for _ in range(int(steps)):
        product = system(direction)
        curvature = np.einsum("uk,uk->u", direction, product)
        step = np.divide(norm, curvature, out=np.zeros_like(norm), where=curvature > 0)
        x += step[:, None] * direction
        residual -= step[:, None] * product
        new_norm = np.einsum("uk,uk->u", residual, residual)
        ratio = np.divide(new_norm, norm, out=np.zeros_like(norm), where=norm > 0)
        direction = residual + ratio[:, None] * direction
        norm = new_norm
    return x


def als_factors(rows: np.ndarray, cols: np.ndarray, shape: tuple, factors: int,
                regularization: float, alpha: float, iterations: int,
                seed: int = 0, cg_steps: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """X (users, k) and Y (items, k) of the (user row, item column) pairs
    (module docstring); a pair given more than once counts once. A row or
    column without pairs gets zero factors. ``cg_steps``: conjugate-gradient
    steps per alternating step (3, as the implicit package's default).

    Raises:
        ValueError: a setting out of range, or a pair outside ``shape``.
    """
    if not (int(factors) == factors and factors > 0 and int(iterations) == iterations
            and iterations > 0 and int(cg_steps) == cg_steps and cg_steps > 0
            and regularization > 0 and alpha >= 0):
        raise ValueError(f"iALS needs factors, iterations and cg_steps > 0 (integers), "
                         f"regularization > 0 and alpha >= 0; got {factors!r}, {iterations!r}, "
                         f"{cg_steps!r}, {regularization!r}, {alpha!r}.")
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    if len(rows) and (rows.min() < 0 or cols.min() < 0 or rows.max() >= shape[0]
                      or cols.max() >= shape[1]):
        raise ValueError(f"iALS pairs must lie in a {shape[0]} x {shape[1]} matrix.")
    pairs = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
    pairs.data[:] = 1.0  # repeats count once
    pairs.sort_indices()
    transposed = pairs.T.tocsr()
    transposed.sort_indices()
    rng = np.random.default_rng(seed)
    y = rng.normal(0.0, 0.01, (shape[1], int(factors)))
    x = np.zeros((shape[0], int(factors)))
    for _ in range(int(iterations)):
        x = _cg_step(pairs, x, y, regularization, alpha, cg_steps)
        y = _cg_step(transposed, y, x, regularization, alpha, cg_steps)
    return x, y


def linear_fold_in(y: np.ndarray, ridge: float) -> np.ndarray:
    """W = Y (Y^T Y + ridge I)^-1, (items, k): the history weights of the
    channel's rank-k model W Y^T (module docstring)."""
    if not ridge > 0:
        raise ValueError(f"the fold-in ridge must be > 0, got {ridge!r}.")
    k = y.shape[1]
    return y @ np.linalg.inv(y.T @ y + ridge * np.eye(k))
