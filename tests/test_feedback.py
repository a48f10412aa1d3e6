"""Feedback loop (protocol F), DBGD, exposure duals: tiny synthetic data, hand-computed values."""

import numpy as np
import pandas as pd
import pytest

from afetler_tf.evaluation import metrics
from afetler_tf.feedback import FeedbackConfig
from afetler_tf.feedback.dbgd import DuelingBanditGD, interleaving_winner, project_simplex, team_draft
from afetler_tf.feedback.exposure import (beta_grid, check_exposure_feasible, constrained_top_k, fit_duals,
                                          tradeoff_curve)
from afetler_tf.feedback.replay import make_replay, round_feedback, round_metrics, simulate
from afetler_tf.feedback.sources import fused_top_k, normalise_rows


def _log(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


def _timeline():
    """8 warm-up rows at t 0..7, then rounds over t 100..199 with a gap (empty round)."""
    rows = [(f"u{i % 3}", f"i{i}", 4.0, i) for i in range(8)]
    rows += [("u0", "i1", 5.0, 100), ("u1", "i9", 1.0, 110), ("u2", "i8", 4.0, 130),
             ("u3", "i2", 3.0, 180), ("u0", "i9", 2.0, 199), ("u4", "i3", 5.0, 190),
             ("u1", "i4", 4.0, 185), ("u2", "i5", 4.0, 195)]
    return _log(rows)


class SpyLearner:
    """Records what it was shown and when; recommends the first k columns."""

    def __init__(self, warmup):
        self.revealed = [warmup]
        self.calls = []

    def recommend(self, user_ids, k):
        seen = pd.concat(self.revealed)
        self.calls.append(("recommend", set(user_ids), int(seen["timestamp"].max()), len(seen)))
        return np.tile(np.arange(k), (len(user_ids), 1))

    def observe(self, interactions, lists, feedback):
        self.revealed.append(interactions)
        self.calls.append(("observe", int(interactions["timestamp"].min()), len(interactions)))
        return {}


def test_replay_splits_by_time_and_reports_empty_rounds():
    replay = make_replay(_timeline(), rounds=3, warmup_fraction=0.5)
    assert len(replay.warmup) == 8 and replay.warmup["timestamp"].max() == 7
    assert [len(r.interactions) for r in replay.rounds] == [3, 0, 5]  # 100-133, 133-166, 166-199
    assert replay.new_items == frozenset({"i9", "i8"})


def test_simulator_never_reveals_a_round_before_recommending_for_it(capsys):
    replay = make_replay(_timeline(), rounds=3, warmup_fraction=0.5)
    spy = SpyLearner(replay.warmup)
    log = simulate(spy, replay, np.array([f"i{j}" for j in range(10)], object), k=2, label="spy")
    played = [r for r in replay.rounds if len(r.interactions)]
    recommends = [c for c in spy.calls if c[0] == "recommend"]
    assert [c[0] for c in spy.calls] == ["recommend", "observe"] * len(played)
    revealed_rows = 8
    for call, rnd in zip(recommends, played):
        assert call[2] < rnd.interactions["timestamp"].min()  # nothing of this round known
        assert call[3] == revealed_rows  # exactly warm-up + earlier rounds
        assert call[1] == set(rnd.interactions["user_id"])
        revealed_rows += len(rnd.interactions)
    assert log[1] == {"round": 1, "skipped": True, "reason": "no interactions"}
    assert "round 2: no interactions, skipped" in capsys.readouterr().out


def test_reward_and_penalty_accounting_by_hand():
    catalogue = np.array(["a", "b", "c", "d"], object)
    rnd = _log([("x", "a", 5.0, 1), ("x", "b", 2.0, 2), ("x", "c", 3.0, 3),
                ("y", "d", 1.0, 1), ("y", "d", 4.0, 9), ("y", "a", 4.0, 2)])
    lists = np.array([[0, 1, 2, 3], [3, 1, -1, -1]])  # y rated d twice: the latest (4) counts
    feedback = round_feedback(lists, ["x", "y"], catalogue, rnd)
    np.testing.assert_array_equal(feedback, [[1, -1, 0, 0], [1, 0, 0, 0]])
    row = round_metrics(lists, feedback, 4, np.array([False, False, True, True]))
    assert row["reward"] == 1.0 and row["likes"] == 2 and row["penalties"] == 1
    assert row["hit_rate"] == 1.0 and row["coverage"] == 1.0
    assert row["new_item_exposure"] == pytest.approx(3 / 6)  # c, d, d of 6 shown slots


def test_projection_and_team_draft():
    np.testing.assert_allclose(project_simplex([0.5, 0.5, 0.5]), [1 / 3] * 3)
    np.testing.assert_allclose(project_simplex([2.0, 0.0]), [1.0, 0.0])
    items, team = team_draft(np.array([1, 2, 3, 4]), np.array([2, 5, 6, 7]), 4, np.random.default_rng(0))
    assert len(set(items)) == 4 and sorted(team.tolist()) == [0, 0, 1, 1]
    a_items, b_items = set(items[team == 0]), set(items[team == 1])
    assert a_items <= {1, 2, 3, 4} and b_items <= {2, 5, 6, 7}
    assert interleaving_winner(np.array([[0, 1, 0, 1]]), np.array([[1, 1, 0, 1]])) == 1
    assert interleaving_winner(np.array([[0, 1]]), np.array([[1, 1]])) == -1


def test_dbgd_moves_weights_toward_the_better_source():
    """Source 0 ranks each user's liked items first; source 1 is noise."""
    rng = np.random.default_rng(0)
    n_users, n_items, k = 30, 40, 5
    liked = rng.random((n_users, n_items)) < 0.15
    good = liked + 0.1 * rng.random((n_users, n_items))
    stack = np.stack([normalise_rows(good, np.ones_like(liked)),
                      normalise_rows(rng.random((n_users, n_items)), np.ones_like(liked))])
    bandit = DuelingBanditGD([0.2, 0.8], delta=0.5, gamma=0.1, seed=1)
    exclude = np.zeros(liked.shape, bool)
    for _ in range(60):
        u, candidate = bandit.propose()
        a, b = fused_top_k(stack, bandit.w, k, exclude), fused_top_k(stack, candidate, k, exclude)
        merged = [team_draft(a[i], b[i], k, rng) for i in range(n_users)]
        items, team = np.stack([m[0] for m in merged]), np.stack([m[1] for m in merged])
        feedback = np.take_along_axis(liked, items, axis=1).astype(float)
        bandit.update(u, interleaving_winner(team, feedback) == 1)
    assert bandit.w[0] > 0.8 and len(bandit.trajectory) == 61


def _scores(n_users=50, n_items=30, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_users, 4)) @ rng.normal(size=(4, n_items)) + 2 * rng.normal(size=n_items)


def test_dual_fit_meets_the_exposure_constraint():
    scores, k = _scores(), 5
    beta = beta_grid(50, 30, k, 6)[-1]  # the largest feasible share: m = floor(250 / 30) = 8
    v, info = fit_duals(scores, k, beta)
    top = constrained_top_k(scores, v, k, prefer=info["prefer"])
    exposure = np.bincount(top.ravel(), minlength=30)
    assert info["m"] == 8 and info["met"] and exposure.min() >= 8 and (v <= 0).all()
    assert exposure.min() / (50 * k) >= beta - 1e-12
    plain = np.bincount(metrics.top_k(scores, k).ravel(), minlength=30)
    assert plain.min() < 8  # the constraint did bind


def test_dual_fit_by_hand():
    # 2 users, k = 2, 3 items, m = 1: item 2 must enter one list. User 1 gives up
    # less for it (1 - 0 against user 0's 2 - 0), so user 1 takes it, and the
    # bonus -v_2 lies between 1 (enough for user 1) and 2 (not enough for user 0).
    scores = np.array([[3.0, 2.0, 0.0], [3.0, 1.0, 0.0]])
    v, info = fit_duals(scores, 2, 0.25)
    top = constrained_top_k(scores, v, 2, prefer=info["prefer"])
    assert info["m"] == 1 and info["met"]
    assert [sorted(t) for t in top.tolist()] == [[0, 1], [0, 2]]
    assert -2.0 - 1e-9 <= v[2] <= -1.0 + 1e-9


def test_dual_fit_splits_identical_columns_between_users():
    # Ten new items behind one shared vector: identical score columns, which no
    # per-item bonus alone can split; the LP's lists break the ties.
    scores, k = _scores(), 5
    scores[:, :10] = scores[:, [0]]
    beta = beta_grid(50, 30, k, 6)[-1]
    v, info = fit_duals(scores, k, beta)
    top = constrained_top_k(scores, v, k, prefer=info["prefer"])
    exposure = np.bincount(top.ravel(), minlength=30)
    assert info["met"] and exposure.min() >= info["m"] == 8
    np.testing.assert_array_equal(np.sort(top, axis=1), np.sort(np.nonzero(info["prefer"])[1].reshape(50, k), axis=1))


def test_beta_zero_gives_exactly_the_unconstrained_lists():
    scores = np.round(_scores(seed=3), 1)  # rounded: ties included
    exclude = np.random.default_rng(0).random(scores.shape) < 0.2
    v, info = fit_duals(scores, 5, 0.0, exclude)
    assert (v == 0).all()
    np.testing.assert_array_equal(constrained_top_k(scores, v, 5, exclude),
                                  metrics.top_k(scores, 5, exclude))
    relevant = [np.array([0, 1])] * 50
    rows = tradeoff_curve(scores, 5, beta_grid(50, 30, 5, 5), relevant, np.zeros(30, bool),
                          exclude, verbose=0)
    assert len(rows) == 5 and rows[0]["matches_unconstrained"]
    assert rows[-1]["coverage"] >= rows[0]["coverage"]


def test_impossible_exposure_is_a_clear_error():
    with pytest.raises(ValueError, match="Impossible exposure"):
        check_exposure_feasible(0.1, n_users=50, n_items=30, k=5)  # 30 items x 25 lists > 250
    with pytest.raises(ValueError, match="Impossible exposure"):
        fit_duals(_scores(), 5, 0.1)
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        FeedbackConfig(betas=(1.5,))


def test_normalise_rows_by_hand():
    scores = np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 0.0]])
    support = np.array([[True, True, False], [True, True, False]])
    np.testing.assert_allclose(normalise_rows(scores, support), [[0, 1, 0], [0, 0, 0]])


def test_decayed_counts_by_hand():
    from afetler_tf.feedback.sources import decayed_counts
    frame = _log([("u", "a", 4.0, 0), ("u", "a", 4.0, 10), ("v", "b", 4.0, 20)])
    catalogue = pd.Index(["a", "b", "c"])
    np.testing.assert_allclose(decayed_counts(frame, catalogue, 10.0), [0.25 + 0.5, 1.0, 0.0])
    np.testing.assert_allclose(decayed_counts(frame, catalogue, 0.0), [2.0, 1.0, 0.0])
