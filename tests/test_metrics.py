"""Hand-computed checks of the protocol R/T/C metrics (docs/design.md §4)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.metrics import roc_auc_score

from afetler_tf.evaluation import metrics

LOG3 = np.log2(3.0)  # discount of rank 2 is 1/log2(3) = 0.63093


# ---------------------------------------------------------------- calibration

def _rating_calibration():
    # Validation: scores == ratings 1..5, liked = {4, 5}: the logistic boundary
    # lies between 3 and 4, so scores <= 2 are "not liked" and >= 4.5 "liked".
    return metrics.Calibration(4.0, scores_are_ratings=True).fit([1, 2, 3, 4, 5], [1, 2, 3, 4, 5])


def test_calibration_logistic_is_monotone_and_splits_the_classes():
    p = _rating_calibration().like_probability([1.0, 2.0, 4.5, 5.0])
    assert np.all(np.diff(p) > 0)
    assert_array_equal(p >= 0.5, [False, False, True, True])


def test_calibration_linear_map_for_non_rating_scores():
    # ratings = 1 + 2 * score exactly, so score 0.5 -> rating 2.
    cal = metrics.Calibration(4.0, scores_are_ratings=False).fit([0.0, 1.0, 2.0], [1.0, 3.0, 5.0])
    rating, p_like = cal.transform([0.5, 2.0])
    assert_allclose(rating, [2.0, 5.0])
    assert p_like[1] > p_like[0]


def test_calibration_with_one_class_is_constant():
    cal = metrics.Calibration(4.0, scores_are_ratings=True).fit([1.0, 2.0], [4.0, 5.0])
    assert_allclose(cal.like_probability([-3.0, 9.0]), [1.0, 1.0])
    assert_allclose(cal.rating([4.2]), [4.2])  # identity for rating models


def test_calibration_rejects_empty_input():
    with pytest.raises(ValueError, match="non-empty"):
        metrics.Calibration().fit([], [])


# ---------------------------------------------------------------- protocol R

def test_rating_errors_clip_predictions_to_the_rating_range():
    # clipped predictions [1, 3.5, 5] -> errors [0, 0.5, 0]
    out = metrics.rating_errors([1, 3, 5], [0, 3.5, 6])
    assert_allclose([out["mse"], out["mae"], out["rmse"]], [0.25 / 3, 0.5 / 3, np.sqrt(0.25 / 3)])


def test_rank_within_users_breaks_ties_by_item_id():
    # user a: rows 1 (i2, .5), 2 (i1, .5), 3 (i9, .9) -> row 3, then i1 before i2.
    ranks = metrics.rank_within_users(["b", "a", "a", "a"], ["i3", "i2", "i1", "i9"], [1, .5, .5, .9])
    assert_array_equal(ranks, [0, 2, 1, 0])


def test_auc_by_user_equals_sklearn_with_ties_and_one_class_users():
    rng = np.random.default_rng(2)
    users = rng.integers(0, 30, 600)
    labels = rng.random(600) < 0.4
    labels[users == 7] = True                       # one class -> NaN
    scores = rng.integers(0, 4, 600).astype(float)  # many ties
    auc = metrics.auc_by_user(users, labels, scores)
    for u in range(30):
        if u == 7:
            assert np.isnan(auc[u])
        else:
            assert_allclose(auc[u], roc_auc_score(labels[users == u], scores[users == u]))


# Test set (rows deliberately not in ranking order). Scores are ratings.
#   user A: a3 (r1, s2.0), a2 (r5, s2.0), a1 (r2, s5.0)
#     ranked a1, then the tie a2/a3 broken by id -> a2, a3; liked = a2 only
#     AUC: a2 vs a1 -> 0, a2 vs a3 (tie) -> 0.5 => 0.25
#   user B: b1 (r4, s4.5): one class -> AUC skipped
#   user C: c1 (r5, s5), c2 (r1, s1), c3 (r4, s4.5), c4 (r3, s1.5)
#     ranked c1, c3, c4, c2; AUC = 1
R_USERS = ["A", "A", "A", "B", "C", "C", "C", "C"]
R_ITEMS = ["a3", "a2", "a1", "b1", "c1", "c2", "c3", "c4"]
R_RATINGS = [1, 5, 2, 4, 5, 1, 4, 3]
R_SCORES = [2.0, 2.0, 5.0, 4.5, 5.0, 1.0, 4.5, 1.5]


@pytest.mark.parametrize("k, precision, accuracy", [
    # k=2: L_A = a1, a2 -> P 1/2; predicted liked (s >= 4.5) a1 wrong, a2 wrong -> 0
    #      L_B = b1 (|T_B| = 1 < k) -> P 1, acc 1;  L_C = c1, c3 -> P 1, acc 1
    (2, (0.5 + 1 + 1) / 3, (0 + 1 + 1) / 3),
    # k=10 (every user has < 10 items, L_u = T_u):
    #      A: P 1/3, acc 1/3 (only a3 right); B: 1, 1; C: P 2/4, acc 4/4
    (10, (1 / 3 + 1 + 0.5) / 3, (1 / 3 + 1 + 1) / 3),
])
def test_protocol_r_by_hand(k, precision, accuracy):
    out = metrics.protocol_r(R_USERS, R_ITEMS, R_RATINGS, R_SCORES, _rating_calibration(), k=k)
    assert_allclose(out[f"precision@{k}"], precision)
    assert_allclose(out[f"accuracy@{k}"], accuracy)
    assert_allclose(out[f"roc_auc@{k}"], (0.25 + 1.0) / 2)  # user B skipped
    assert out["counts"] == {"users": 3, "auc_users": 2, "auc_skipped_users": 1, "interactions": 8}
    # errors |s - r|: 1, 3, 3, .5, 0, 0, .5, 1.5 -> squares sum 21.75, abs sum 9.5
    assert_allclose([out["mse"], out["mae"]], [21.75 / 8, 9.5 / 8])
    assert_allclose(out["rmse"], np.sqrt(21.75 / 8))


def test_protocol_r_does_not_depend_on_row_order():
    perm = np.random.default_rng(0).permutation(len(R_USERS))
    take = lambda xs: [xs[i] for i in perm]  # noqa: E731
    a = metrics.protocol_r(R_USERS, R_ITEMS, R_RATINGS, R_SCORES, _rating_calibration(), k=2)
    b = metrics.protocol_r(take(R_USERS), take(R_ITEMS), take(R_RATINGS), take(R_SCORES),
                           _rating_calibration(), k=2)
    assert a == b


# ---------------------------------------------------------------- top-k

SCORES = np.array([[0.1, 0.9, 0.5, 0.9, 0.3],
                   [1.0, 1.0, 1.0, 1.0, 1.0],
                   [0.2, 0.8, 0.6, 0.4, 0.0]])
EXCLUDE = np.array([[0, 0, 0, 0, 0],
                    [0, 1, 0, 0, 0],
                    [1, 1, 1, 0, 1]], bool)


def test_top_k_ties_exclusion_and_padding():
    # row 0: tie .9 at cols 1, 3 -> lower column first; then col 2 (.5)
    # row 1: all tied, col 1 excluded -> 0, 2, 3
    # row 2: only col 3 allowed -> padded with -1
    assert_array_equal(metrics.top_k(SCORES, 3, EXCLUDE), [[1, 3, 2], [0, 2, 3], [3, -1, -1]])


def test_top_k_longer_than_catalogue_and_candidates():
    assert_array_equal(metrics.top_k(SCORES[:1], 7), [[1, 3, 2, 4, 0, -1, -1]])
    # candidates 0, 2, 4 only: .5 (2), .3 (4), .1 (0)
    assert_array_equal(metrics.top_k(SCORES[:1], 2, candidates=[0, 2, 4]), [[2, 4]])


def test_top_k_matches_a_stable_sort_under_heavy_ties():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 5, size=(60, 300)).astype(float)
    exclude = rng.random((60, 300)) < 0.3
    expected = np.argsort(np.where(exclude, np.inf, -scores), axis=1, kind="stable")[:, :10]
    assert_array_equal(metrics.top_k(scores, 10, exclude), expected)
    assert_array_equal(metrics.top_k(scores.astype(np.float32), 10, exclude), expected)


def test_top_k_rejects_nan():
    with pytest.raises(ValueError, match="NaN"):
        metrics.top_k([[0.0, np.nan]], 1)


# ---------------------------------------------------------------- protocol T

def test_relevant_columns_all_and_liked():
    rows, cols, ratings = [0, 0, 2, 2], [4, 1, 3, 0], [5, 2, 4, 3]
    all_ = metrics.relevant_columns(rows, cols, ratings, 3)
    liked = metrics.relevant_columns(rows, cols, ratings, 3, relevant="liked")
    assert [r.tolist() for r in all_] == [[1, 4], [], [0, 3]]
    assert [r.tolist() for r in liked] == [[4], [], [3]]


# Four users, k = 3, six candidate columns.
TOP = np.array([[1, 3, 2], [0, 2, 3], [3, -1, -1], [0, 1, 4]])
RELEVANT = [np.array([3, 4]), np.array([], int), np.array([3]), np.array([0, 2, 4, 5])]
COUNTS = [10, 0, 5, 5, 20, 1]          # percentiles 80, 0, 50, 50, 100, 20
CATEGORIES = ["A", "B", "A", "B", "C", "A"]


def test_popularity_percentiles_average_ties():
    assert_allclose(metrics.popularity_percentiles(COUNTS), [80, 0, 50, 50, 100, 20])


def test_topn_report_by_hand():
    # user 0: hits [0,1,0]; P 1/3, R 1/2, DCG 1/log2(3), IDCG over min(3,2)=2
    #         = 1 + 1/log2(3); AP = (1/2) / 2 = 0.25
    # user 1: no relevant item -> skipped (counted)
    # user 2: hits [1,-,-]; P 1/3 (denominator k), R 1, NDCG 1, AP 1
    # user 3: 4 relevant > k: hits [1,0,1]; P 2/3, R 2/4, DCG 1 + 1/2,
    #         IDCG over min(3,4)=3 = 1 + 1/log2(3) + 1/2; AP = (1 + 2/3) / 3
    out = metrics.topn_report(TOP, RELEVANT, 6, metrics.popularity_percentiles(COUNTS), CATEGORIES, k=3)
    ndcg0 = (1 / LOG3) / (1 + 1 / LOG3)
    ndcg3 = 1.5 / (1 + 1 / LOG3 + 0.5)
    assert_allclose(out["precision@3"], (1 / 3 + 1 / 3 + 2 / 3) / 3)
    assert_allclose(out["recall@3"], (0.5 + 1 + 0.5) / 3)
    assert_allclose(out["ndcg@3"], (ndcg0 + 1 + ndcg3) / 3)
    assert_allclose(out["map@3"], (0.25 + 1 + (1 + 2 / 3) / 3) / 3)
    assert_allclose(out["hit_rate@3"], 1.0)
    # lists of evaluated users cover {0,1,2,3,4} of 6 columns
    assert_allclose(out["coverage@3"], 5 / 6)
    # slots: user0 0,50,50; user2 50; user3 80,0,100 -> 330 / 7
    assert_allclose(out["popularity_percentile"], 330 / 7)
    # user0 B,B,A -> 2/3 pairs differ; user2 has no pair (skipped); user3 A,B,C -> 1
    assert_allclose(out["diversity@3"], (2 / 3 + 1) / 2)
    assert out["counts"] == {"users": 3, "users_without_relevant": 1}


def test_protocol_t_never_recommends_excluded_items():
    # user 0's best item (col 1, a training item) is excluded; relevant {3}:
    # list [3, 2] -> hit at rank 1: P 1/2, NDCG 1, MAP 1.
    # user 1: relevant {0}; list [0, 2]: rank 1 as well.
    scores = np.array([[0.0, 9.0, 1.0, 2.0], [3.0, 1.0, 2.0, 0.0]])
    exclude = np.array([[0, 1, 0, 0], [0, 0, 0, 0]], bool)
    out = metrics.protocol_t(scores, [np.array([3]), np.array([0])], exclude, k=2)
    assert_allclose([out["precision@2"], out["ndcg@2"], out["map@2"]], [0.5, 1.0, 1.0])
    assert_allclose(out["coverage@2"], 3 / 4)
    assert np.isnan(out["diversity@2"]) and np.isnan(out["popularity_percentile"])


def test_protocol_c_restricts_candidates_to_cold_items():
    # cold columns 3, 4. user 0: cold scores .2 (3), .1 (4) -> [3, 4]; relevant
    # {1 (warm, ignored), 4} -> hit at rank 2: P 1/2, R 1, NDCG 1/log2(3), AP 1/2.
    # user 1: relevant {2} is warm -> no cold relevant item, skipped.
    scores = np.array([[0.0, 9.0, 5.0, 0.2, 0.1], [0.0, 0.0, 0.0, 1.0, 2.0]])
    out = metrics.protocol_c(scores, [np.array([1, 4]), np.array([2])], [3, 4],
                             y_true=[4.0, 2.0], y_pred=[3.0, 2.0], k=2)
    assert_allclose([out["precision@2"], out["recall@2"]], [0.5, 1.0])
    assert_allclose([out["ndcg@2"], out["map@2"]], [1 / LOG3, 0.5])
    assert_allclose(out["coverage@2"], 1.0)  # both cold items recommended
    assert_allclose([out["mse"], out["mae"], out["rmse"]], [0.5, 0.5, np.sqrt(0.5)])
    assert out["counts"] == {"users": 1, "users_without_relevant": 1, "interactions": 2}
