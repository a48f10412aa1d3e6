"""Dueling Bandit Gradient Descent over source weights (Yue & Joachims, 2009).

The final list blends the normalised scores of several sources with weights
w on the probability simplex. Each comparison draws a unit direction u,
proposes w' = P(w + delta u), shows users the team-draft interleaving of the
lists of w and w', credits each list with the feedback (+1 reward, -1
penalty) on the items it contributed, and moves w <- P(w + gamma u) when w'
wins. P is the Euclidean projection onto the simplex.
"""

from __future__ import annotations

import numpy as np


def project_simplex(w: np.ndarray) -> np.ndarray:
    """Euclidean projection of ``w`` (dim,) onto {x >= 0, sum x = 1} (Duchi et al., 2008)."""
    w = np.asarray(w, np.float64)
    u = np.sort(w)[::-1]
    cumulative = np.cumsum(u) - 1.0
    rho = np.nonzero(u - cumulative / np.arange(1, len(w) + 1) > 0)[0][-1]
    return np.maximum(w - cumulative[rho] / (rho + 1.0), 0.0)


def random_direction(dim: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform unit vector of shape (dim,)."""
    u = rng.normal(size=dim)
    return u / np.linalg.norm(u)


def team_draft(list_a: np.ndarray, list_b: np.ndarray, k: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Team-draft interleaving of two ranked lists (Radlinski et al., 2008).

    The team with fewer picks (a coin flip on a tie) adds its best item not
    yet shown; a team whose list is used up lets the other one pick.

    Args:
        list_a, list_b: Ranked columns (length >= k), -1 = padding.
        k: Length of the interleaved list.

    Returns:
        (items (k,), team (k,)): columns (-1 padding) and 0 for A, 1 for B, -1 none.
    """
    lists = [[c for c in list_a if c >= 0], [c for c in list_b if c >= 0]]
    items, team, shown, picks, pos = [], [], set(), [0, 0], [0, 0]
    while len(items) < k:
        for t in (0, 1):  # skip items the other team already showed
            while pos[t] < len(lists[t]) and lists[t][pos[t]] in shown:
                pos[t] += 1
        left = [pos[t] < len(lists[t]) for t in (0, 1)]
        if not any(left):
            break
        t = int(picks[1] < picks[0] or (picks[0] == picks[1] and rng.random() < 0.5))
        t = t if left[t] else 1 - t
        items.append(lists[t][pos[t]])
        team.append(t)
        shown.add(lists[t][pos[t]])
        picks[t] += 1
    pad = k - len(items)
    return np.array(items + [-1] * pad, np.int64), np.array(team + [-1] * pad, np.int64)


def interleaving_winner(team: np.ndarray, feedback: np.ndarray) -> int:
    """1 if B's items earned more feedback than A's, 0 if A's did, -1 on a tie.

    Args:
        team: (users, k) team of each slot (0 = A, 1 = B, -1 = empty).
        feedback: (users, k) reward +1 / penalty -1 / 0 of each slot.
    """
    credit_a, credit_b = float(feedback[team == 0].sum()), float(feedback[team == 1].sum())
    return 1 if credit_b > credit_a else (0 if credit_a > credit_b else -1)


class DuelingBanditGD:
    """Source weights w learned from interleaved comparisons.

    Args:
        initial: Starting weights (dim,), projected onto the simplex.
        delta: Exploration step of the candidate w' = P(w + delta u).
        gamma: Update step, w <- P(w + gamma u) when w' wins.
        seed: Seed of the directions u.

    Example:
        bandit = DuelingBanditGD([0.5, 0.5], delta=0.3, gamma=0.1)
        u, candidate = bandit.propose()
        bandit.update(u, b_wins=True)
    """

    def __init__(self, initial, delta: float = 0.3, gamma: float = 0.1, seed: int = 42):
        if delta <= 0 or gamma <= 0:
            raise ValueError(f"delta and gamma must be positive, got {delta} and {gamma}.")
        self.w = project_simplex(np.asarray(initial, np.float64))
        self._delta, self._gamma = float(delta), float(gamma)
        self._rng = np.random.default_rng(seed)
        self.trajectory = [self.w.copy()]

    def propose(self) -> tuple[np.ndarray, np.ndarray]:
        """A direction u (dim,) and the candidate weights w' = P(w + delta u)."""
        u = random_direction(len(self.w), self._rng)
        return u, project_simplex(self.w + self._delta * u)

    def update(self, u: np.ndarray, b_wins: bool) -> np.ndarray:
        """Moves w by gamma u when the candidate won; records the trajectory."""
        if b_wins:
            self.w = project_simplex(self.w + self._gamma * u)
        self.trajectory.append(self.w.copy())
        return self.w
