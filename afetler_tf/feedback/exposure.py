"""Exposure-constrained matching through item dual variables (after RIM).

Every one of U users gets a list of k items (U k slots). An item's share of
exposure is the number of lists holding it over U k; the constraint asks that
every item, new ones included, reaches a share of at least beta, i.e. at
least m = ceil(beta U k) lists. With one dual variable per item (v_y <= 0, a
bonus -v_y for under-exposed items) a user's list is the top k of
s(x, y) - v_y, so serving stays a plain top-k.

The duals are those of the matching LP (:func:`fit_duals`, solved by
HiGHS), so the lists are the best ones, by total score, that meet the
constraint. An earlier ascending auction on the duals alone could not
finish when many items share one score column (new items behind one
out-of-vocabulary vector, or generated from the same content): no per-item
bonus can split identical columns between users, so ties at a user's k-th
adjusted score are broken by the LP's own lists. At beta = 0 all v_y are 0
and the lists are exactly the unconstrained ones.
Varying beta traces the relevance-diversity trade-off (:func:`tradeoff_curve`).
"""

from __future__ import annotations

import math
import time
from typing import Optional, Sequence

import numpy as np
from scipy import optimize, sparse

from afetler_tf.evaluation import metrics

TIE_MARGIN = 1e-6  # relative to the score range; see constrained_top_k


def minimum_exposure(beta: float, n_users: int, k: int) -> int:
    """m = ceil(beta U k): the lists an item must be in (float noise ignored)."""
    return int(math.ceil(beta * n_users * k - 1e-9))


def check_exposure_feasible(beta: float, n_users: int, n_items: int, k: int) -> int:
    """Validates beta before any work; returns m.

    Raises:
        ValueError: beta outside [0, 1], or n_items * m above the U k list slots
            (or m above U, as an item appears at most once per list).
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"Exposure share beta must be in [0, 1], got {beta}.")
    m = minimum_exposure(beta, n_users, k)
    if m * n_items > n_users * k or m > n_users:
        raise ValueError(
            f"Impossible exposure: beta={beta} asks every one of {n_items} items to be in "
            f"{m} of {n_users} lists, {m * n_items} slots, but the lists hold only "
            f"{n_users} x {k} = {n_users * k}. Use beta <= {beta_max(n_users, n_items, k):.6g}.")
    return m


def beta_max(n_users: int, n_items: int, k: int) -> float:
    """Largest feasible share: floor(U k / n_items) lists per item (capped at U)."""
    return min((n_users * k) // max(n_items, 1), n_users) / (n_users * k)


def beta_grid(n_users: int, n_items: int, k: int, points: int = 6) -> list:
    """Evenly spaced feasible shares from 0 to :func:`beta_max` (distinct m each)."""
    m_max = round(beta_max(n_users, n_items, k) * n_users * k)
    ms = np.unique(np.round(np.linspace(0, m_max, points)).astype(int))
    return [float(m) / (n_users * k) for m in ms]


def fit_duals(scores: np.ndarray, k: int, beta: float,
              exclude: Optional[np.ndarray] = None) -> tuple[np.ndarray, dict]:
    """Fits v (items,) so that the top k of s - v gives every item >= m lists.

    Solves the relaxed matching LP (HiGHS dual simplex)::

        max sum s_xy z_xy  s.t.  sum_y z_xy = k_x,  sum_x z_xy >= m,  0 <= z <= 1

    (k_x = k, or fewer for a user with fewer than k allowed items). Its
    constraint matrix is that of a bipartite graph, so the optimal vertex is
    integral: z is a set of lists. v_y is the dual of item y's exposure row
    (v_y <= 0; -v_y is the bonus an under-exposed item needs). By
    complementary slackness each user's list is the top k_x of s - v, except
    where the LP is degenerate (ties at a user's k-th adjusted score, e.g.
    items whose score columns are identical, as new items sharing one
    out-of-vocabulary vector are): there the LP's own choice ``z`` breaks the
    tie (``info["prefer"]``, passed to :func:`constrained_top_k`).

    Args:
        scores: (users, items) finite relevance scores s(x, y).
        k: List length.
        beta: Minimum exposure share.
        exclude: Optional (users, items) bool mask of items a user never gets.

    Returns:
        (v, info): v <= 0 of shape (items,); info has ``m``, ``met`` (every
        item reached m in the served lists), ``prefer`` ((users, items) bool,
        the LP's lists; None at beta = 0), ``seconds`` and ``lp_status``.

    Raises:
        ValueError: An impossible beta (see :func:`check_exposure_feasible`),
            or an exclusion mask that leaves some item fewer than m users.
    """
    n_users, n_items = scores.shape
    m = check_exposure_feasible(beta, n_users, n_items, k)
    if m == 0:
        return np.zeros(n_items), {"m": 0, "met": True, "prefer": None, "seconds": 0.0,
                                   "lp_status": "not needed"}
    start = time.perf_counter()
    blocked = np.zeros(scores.shape, bool) if exclude is None else np.asarray(exclude, bool)
    allowed_users = (~blocked).sum(axis=0)
    if (allowed_users < m).any():
        item = int(np.argmin(allowed_users))
        raise ValueError(f"Impossible exposure: item column {item} may be shown to only "
                         f"{allowed_users[item]} users (the rest are excluded), below m = {m}; "
                         f"lower beta or exclude fewer pairs.")
    rows, cols = np.nonzero(~blocked)
    lengths = np.minimum((~blocked).sum(axis=1), k)
    index = np.arange(len(rows))
    per_user = sparse.csr_matrix((np.ones(len(rows)), (rows, index)), shape=(n_users, len(rows)))
    per_item = sparse.csr_matrix((-np.ones(len(rows)), (cols, index)), shape=(n_items, len(rows)))
    result = optimize.linprog(-np.asarray(scores, np.float64)[rows, cols], A_ub=per_item,
                              b_ub=np.full(n_items, -float(m)), A_eq=per_user, b_eq=lengths,
                              bounds=(0.0, 1.0), method="highs-ds")
    if result.status != 0:
        raise ValueError(f"The exposure LP for beta={beta} (m={m}) failed: {result.message}")
    v = np.minimum(np.asarray(result.ineqlin.marginals, np.float64), 0.0)
    prefer = np.zeros(scores.shape, bool)
    taken = result.x > 0.5
    prefer[rows[taken], cols[taken]] = True
    served = constrained_top_k(scores, v, k, blocked, prefer)
    exposure = np.bincount(served[served >= 0], minlength=n_items)
    return v, {"m": m, "met": bool((exposure >= m).all()), "prefer": prefer,
               "seconds": time.perf_counter() - start, "lp_status": result.message}


def _tradeoff_row(top, plain, beta, info, relevant, new_columns, k) -> dict:
    """Metrics of one beta's lists (users, k) against the plain top k."""
    judged = np.array([len(r) > 0 for r in relevant])
    hits = np.array([np.isin(t[t >= 0], r).sum() for t, r in zip(top, relevant)])
    exposure = np.bincount(top[top >= 0], minlength=len(new_columns))
    return {"beta": float(beta), "m": info["m"], "precision": float(hits[judged].mean() / k),
            "coverage": float((exposure > 0).mean()),
            "new_item_exposure": float(exposure[new_columns].sum() / max(exposure.sum(), 1)),
            "min_exposure": int(exposure.min()), "met": info["met"],
            "seconds": info["seconds"], "matches_unconstrained": bool(np.array_equal(top, plain))}


def constrained_top_k(scores: np.ndarray, v: np.ndarray, k: int, exclude: Optional[np.ndarray] = None,
                      prefer: Optional[np.ndarray] = None) -> np.ndarray:
    """(users, k) columns ranked by s(x, y) - v_y.

    ``prefer`` ((users, items) bool, :func:`fit_duals`' ``info["prefer"]``)
    breaks ties at a user's k-th adjusted score in favour of the LP's lists:
    it adds TIE_MARGIN times the score range, far above the LP's tolerance
    and far below any gap that decides a list. Remaining ties go by column.
    """
    adjusted = np.asarray(scores, np.float64) - np.asarray(v, np.float64)[None, :]
    if prefer is not None:
        adjusted = adjusted + TIE_MARGIN * (1.0 + float(np.ptp(scores))) * np.asarray(prefer, bool)
    return metrics.top_k(adjusted, k, exclude)


def tradeoff_curve(scores: np.ndarray, k: int, betas: Sequence[float], relevant: Sequence[np.ndarray],
                   new_columns: np.ndarray, exclude: Optional[np.ndarray] = None,
                   verbose: int = 1) -> list:
    """Precision vs item coverage (and new-item exposure) for each beta.

    Args:
        scores: (users, items) relevance scores.
        k: List length.
        betas: Minimum exposure shares (each checked before any fitting).
        relevant: Per user, the columns that count as hits (later period).
        new_columns: Bool (items,), True for new items.
        exclude: Optional (users, items) never-recommended mask.

    Returns:
        One dict per beta: beta, m, precision@k (over users with >= 1
        relevant item), coverage, new_item_exposure, min_exposure, met,
        seconds (LP) and ``matches_unconstrained`` (lists identical to
        the plain top k).
    """
    n_users, n_items = scores.shape
    for beta in betas:
        check_exposure_feasible(beta, n_users, n_items, k)
    plain = metrics.top_k(scores, k, exclude)
    rows = []
    for beta in betas:
        v, info = fit_duals(scores, k, beta, exclude)
        rows.append(_tradeoff_row(constrained_top_k(scores, v, k, exclude, info["prefer"]), plain, beta, info,
                                  relevant, new_columns, k))
        if verbose:
            r = rows[-1]
            print(f"exposure beta {beta:.6f} (m {r['m']}): precision@{k} {r['precision']:.4f}, "
                  f"coverage {r['coverage']:.3f}, min exposure {r['min_exposure']}, met {r['met']} "
                  f"(LP {r['seconds']:.1f}s)", flush=True)
    return rows
