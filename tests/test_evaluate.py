"""The evaluation driver on a hand-built Dataset/Split with toy recommenders."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from afetler_tf.config import Config
from afetler_tf.data.schema import Dataset, Split
from afetler_tf.evaluation import evaluate
from afetler_tf.models.base import Recommender


def _frame(rows):
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])
    frame["timestamp"] = np.arange(len(frame), dtype=np.int64)
    return frame


# Catalogue i1..i6 (primary categories A B A C B C), users u1..u3.
TRAIN = _frame([("u1", "i1", 5.0), ("u1", "i2", 3.0), ("u2", "i3", 4.0),
                ("u2", "i1", 2.0), ("u3", "i1", 4.0), ("u3", "i2", 5.0)])
VALIDATION = _frame([("u1", "i3", 4.0), ("u2", "i2", 1.0), ("u3", "i5", 2.0)])
TEST = _frame([("u1", "i4", 5.0), ("u1", "i5", 2.0), ("u1", "i6", 4.0),
               ("u2", "i4", 1.0), ("u2", "i5", 5.0),
               ("u3", "i6", 2.0), ("u3", "i4", 4.0)])
# Candidates (catalogue minus train + validation): u1 {i4,i5,i6}, u2 {i4,i5,i6}, u3 {i3,i4,i6}.
# Training-part counts: i1 3, i2 3, i3 2, i4 0, i5 1, i6 0
#   -> popularity percentiles i1 90, i2 90, i3 60, i4 10, i5 40, i6 10.


def _data():
    categories = [["A"], ["B"], ["A"], ["C"], ["B"], ["C"]]
    items = pd.DataFrame({"item_id": [f"i{n}" for n in range(1, 7)], "title": "",
                          "year": np.nan, "categories": categories,
                          "category": [c[0] for c in categories]})
    users = pd.DataFrame({"user_id": ["u1", "u2", "u3"]})
    interactions = pd.concat([TRAIN, VALIDATION, TEST], ignore_index=True)
    return Dataset("toy", interactions, users, items)


def _split(kind="random", cold=(), test=TEST):
    return Split(kind, 42, TRAIN, VALIDATION, test, tuple(cold))


class Oracle(Recommender):
    """Scores a known pair by its true rating, anything else 0."""

    name, predicts_ratings = "oracle", True

    def __init__(self):
        super().__init__(Config())
        frame = pd.concat([TRAIN, VALIDATION, TEST])
        self._ratings = dict(zip(zip(frame.user_id, frame.item_id), frame.rating))

    def fit(self, data, split, verbose=1):
        return {}

    def score(self, user_ids, item_ids):
        return np.array([self._ratings.get((u, i), 0.0) for u, i in zip(user_ids, item_ids)])

    def score_all(self, user_ids, item_ids):
        return np.array([self.score([u] * len(item_ids), item_ids) for u in user_ids])


class Constant(Oracle):
    """Same score for everything: every list is decided by tie-breaking."""

    name, predicts_ratings = "constant", False

    def score(self, user_ids, item_ids):
        return np.zeros(len(item_ids))


def test_oracle_is_perfect_at_k1():
    out = evaluate(Oracle(), _data(), _split(), k=1)
    # R: each user's best-scored test item is liked; oracle ratings are exact;
    # every user has both classes and the oracle orders them perfectly.
    assert_allclose([out["R"][m] for m in ("precision@1", "accuracy@1", "roc_auc@1", "mse", "mae")],
                    [1, 1, 1, 0, 0])
    assert out["R"]["counts"]["auc_users"] == 3
    # T: the best candidate is a test item: P 1; recall 1/3, 1/2, 1/2.
    assert_allclose([out["T"][m] for m in ("precision@1", "ndcg@1", "map@1", "hit_rate@1")], [1, 1, 1, 1])
    assert_allclose(out["T"]["recall@1"], (1 / 3 + 1 / 2 + 1 / 2) / 3)


def test_oracle_protocol_t_by_hand():
    out = evaluate(Oracle(), _data(), _split(), protocols=("T",), k=2)
    # Lists: u1 [i4 (5), i6 (4)], u2 [i5 (5), i4 (1)], u3 [i4 (4), i6 (2)] — all hits.
    t = out["T"]
    assert_allclose([t["precision@2"], t["ndcg@2"], t["map@2"]], [1, 1, 1])
    assert_allclose(t["recall@2"], (2 / 3 + 1 + 1) / 3)   # u1 has 3 test items
    assert_allclose(t["coverage@2"], 3 / 6)                # {i4, i5, i6}
    assert_allclose(t["popularity_percentile"], (10 + 10 + 40 + 10 + 10 + 10) / 6)
    assert_allclose(t["diversity@2"], (0 + 1 + 0) / 3)    # C,C | B,C | C,C
    assert t["counts"] == {"users": 3, "users_without_relevant": 0}
    assert "R" not in out


def test_relevant_liked():
    # Liked test items: u1 {i4, i6}, u2 {i5}, u3 {i4}; lists as above:
    # P@2 = (2/2 + 1/2 + 1/2) / 3; recall 1 each.
    t = evaluate(Oracle(), _data(), _split(), protocols=("T",), relevant="liked", k=2)["T"]
    assert_allclose([t["precision@2"], t["recall@2"], t["ndcg@2"]], [2 / 3, 1, 1])


def test_constant_model_ties_and_exclusion():
    out = evaluate(Constant(), _data(), _split(), k=2)
    r, t = out["R"], out["T"]
    # R: ties by item id -> u1 [i4, i5], u2 [i4, i5], u3 [i4, i6]: 1 liked each.
    # Calibration: constant scores -> rating = mean validation rating 7/3 and
    # P(like) = 1/3 < 0.5 -> "not liked" everywhere: accuracy 1/2 per user.
    assert_allclose([r["precision@2"], r["accuracy@2"], r["roc_auc@2"]], [0.5, 0.5, 0.5])
    errors = TEST.rating.to_numpy() - 7 / 3
    assert_allclose([r["mse"], r["mae"]], [np.mean(errors ** 2), np.mean(np.abs(errors))], rtol=1e-6)
    # T: ties by catalogue order, training items never listed:
    # u1 [i4, i5], u2 [i4, i5] (2 hits each), u3 [i3, i4] (1 hit).
    assert_allclose(t["precision@2"], (1 + 1 + 0.5) / 3)
    assert_allclose(t["coverage@2"], 3 / 6)


def test_batching_does_not_change_results():
    a = evaluate(Oracle(), _data(), _split(), k=2, batch_users=1)
    b = evaluate(Oracle(), _data(), _split(), k=2, batch_users=256)
    assert a == b


def test_cold_items_protocol():
    split = _split("cold-items", cold=("i6", "i4"))
    out = evaluate(Oracle(), _data(), split, protocols=("R", "T", "C"), k=2)
    c = out["C"]
    # Candidates {i4, i6}: u1 [i4, i6] 2 hits; u2 [i4 (1), i6 (0)] 1 of its 1;
    # u3 [i4, i6] 2 hits. Oracle ratings are exact.
    assert_allclose([c["precision@2"], c["recall@2"], c["ndcg@2"]], [(1 + 0.5 + 1) / 3, 1, 1])
    assert_allclose([c["coverage@2"], c["rmse"], c["mae"]], [1, 0, 0])
    assert c["counts"] == {"users": 3, "users_without_relevant": 0, "interactions": 5}
    assert set(out) == {"R", "T", "C"}


def test_protocol_c_is_skipped_outside_cold_items_split():
    with pytest.warns(UserWarning, match="cold-items"):
        out = evaluate(Oracle(), _data(), _split(), protocols=("T", "C"), k=2)
    assert set(out) == {"T"}


def test_none_split_returns_empty_with_a_warning():
    with pytest.warns(UserWarning, match="no test set"):
        assert evaluate(Oracle(), _data(), _split("none", test=TEST.iloc[:0])) == {}


def test_empty_test_set_and_bad_arguments_raise():
    with pytest.raises(ValueError, match="empty test set"):
        evaluate(Oracle(), _data(), _split(test=TEST.iloc[:0]))
    with pytest.raises(ValueError, match="Unknown protocol"):
        evaluate(Oracle(), _data(), _split(), protocols=("X",))
    with pytest.raises(ValueError, match="relevant"):
        evaluate(Oracle(), _data(), _split(), relevant="some")


def test_wrong_score_all_shape_is_reported():
    class Broken(Oracle):
        def score_all(self, user_ids, item_ids):
            return np.zeros((len(user_ids), 1))

    with pytest.raises(ValueError, match="score_all returned shape"):
        evaluate(Broken(), _data(), _split(), protocols=("T",))


def test_implicit_data_skips_protocol_r_and_rejects_liked():
    implicit = [frame.assign(rating=np.nan) for frame in (TRAIN, VALIDATION, TEST)]
    split = Split("random", 42, *implicit)
    with pytest.warns(UserWarning, match="Protocol R needs ratings"):
        out = evaluate(Oracle(), _data(), split, k=2)
    assert set(out) == {"T"} and out["T"]["counts"]["users"] == 3
    with pytest.raises(ValueError, match="relevant='liked' needs ratings"):
        evaluate(Oracle(), _data(), split, protocols=("T",), relevant="liked")


def test_the_validation_check_computes_the_split_once_and_scores_the_model_each_time():
    """ValidationNdcg (early stopping, the fitted shares) gives evaluate's
    figure on the validation view, for the model as it is at each call."""
    from afetler_tf.training import ValidationNdcg, validation_ndcg, validation_split

    class OnValidation(Oracle):
        """Scores the validation pairs by their rating while ``on``, everything else 0."""

        on = True

        def score(self, user_ids, item_ids):
            known = dict(zip(zip(VALIDATION.user_id, VALIDATION.item_id), VALIDATION.rating))
            return np.array([known.get((u, i), 0.0) if self.on else 0.0
                             for u, i in zip(user_ids, item_ids)])

    model, data, split = OnValidation(), _data(), _split()
    check = ValidationNdcg(data, split, k=1)
    # Each user's best candidate (outside its training items) is its validation item:
    # u1 i3 (4 against 0), u2 i2 (1 against 0), u3 i5 (2 against 0).
    assert check(model) == 1.0
    model.on = False  # every score 0: the lists come from tie-breaking
    by_ties = evaluate(model, data, validation_split(split), protocols=("T",), k=1)["T"]["ndcg@1"]
    assert by_ties < 1.0 and check(model) == by_ties == validation_ndcg(model, data, split, k=1)
    with pytest.raises(ValueError, match="no validation interactions.*data.validation_fraction > 0"):
        ValidationNdcg(data, Split("random", 42, TRAIN, VALIDATION.iloc[:0], TEST))
