"""Splits and histories on tiny synthetic data."""

import numpy as np
import pandas as pd
import pytest

from afetler_tf.data import Dataset, make_histories, make_split, user_histories


# --- splits -------------------------------------------------------------------------------------

def synthetic(n_users=30, n_items=40, per_user=12, seed=0) -> Dataset:
    """Unique (user, item) pairs with distinct timestamps."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for j in rng.choice(n_items, per_user, replace=False):
            rows.append((f"u{u}", f"i{j}", float(rng.integers(1, 6))))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating"]).astype({"user_id": object,
                                                                                 "item_id": object})
    frame["timestamp"] = rng.permutation(len(frame)).astype(np.int64) * 10 + 1000
    users = pd.DataFrame({"user_id": pd.Series([f"u{u}" for u in range(n_users)], dtype=object)})
    items = pd.DataFrame({"item_id": pd.Series([f"i{j}" for j in range(n_items)], dtype=object)})
    return Dataset("synthetic", frame, users, items)


def keys(frame):
    return set(zip(frame["user_id"], frame["item_id"], frame["timestamp"]))


@pytest.fixture(scope="module")
def data():
    return synthetic()


@pytest.mark.parametrize("kind", ["random", "temporal", "cold-items", "none"])
def test_split_is_deterministic_disjoint_and_complete(data, kind):
    a, b = make_split(data, kind, seed=7), make_split(data, kind, seed=7)
    for part in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(getattr(a, part), getattr(b, part))
        assert list(getattr(a, part).index) == list(range(len(getattr(a, part))))
    train, val, test = keys(a.train), keys(a.validation), keys(a.test)
    assert not (train & val) and not (train & test) and not (val & test)
    assert len(train) + len(val) + len(test) == len(data.interactions)
    assert a.kind == kind and a.seed == 7
    if kind in ("random", "cold-items"):  # temporal with distinct times does not depend on the seed
        other = make_split(data, kind, seed=8)
        assert keys(other.test) != test


def test_random_split_sizes(data):
    n = len(data.interactions)
    s = make_split(data, "random")
    assert len(s.test) == round(0.2 * n)
    assert len(s.validation) == round(0.1 * (n - len(s.test)))
    assert s.cold_items == ()


def test_temporal_split_cuts_at_the_80th_percentile(data):
    s = make_split(data, "temporal")
    assert s.train["timestamp"].max() <= s.test["timestamp"].min()
    assert s.validation["timestamp"].max() <= s.test["timestamp"].min()
    assert s.train["timestamp"].max() <= s.validation["timestamp"].min()  # latest 10% of training
    assert len(s.test) == round(0.2 * len(data.interactions))


def test_temporal_split_sizes_with_tied_timestamps():
    frame = synthetic().interactions.copy()
    frame["timestamp"] = np.where(frame["timestamp"] > frame["timestamp"].quantile(0.5), 5000, 1000)
    data = Dataset("ties", frame, synthetic().users, synthetic().items)
    s = make_split(data, "temporal")
    assert len(s.test) == round(0.2 * len(frame))
    assert s.train["timestamp"].max() <= s.test["timestamp"].min()


def test_cold_items_never_train(data):
    s = make_split(data, "cold-items")
    cold = set(s.cold_items)
    n_items = data.interactions["item_id"].nunique()
    assert len(cold) == round(0.2 * n_items)
    assert not cold & set(s.train["item_id"]) and not cold & set(s.validation["item_id"])
    assert set(s.test["item_id"]) == cold
    assert len(s.test) == data.interactions["item_id"].isin(cold).sum()


def test_none_split_trains_on_everything(data):
    s = make_split(data, "none")
    assert len(s.test) == 0 and list(s.test.columns) == list(data.interactions.columns)
    assert len(s.train) + len(s.validation) == len(data.interactions)


def test_unknown_split_kind_lists_valid_ones(data):
    with pytest.raises(ValueError, match="random, temporal, cold-items, none"):
        make_split(data, "by-user")


def test_bad_fraction(data):
    with pytest.raises(ValueError, match="test_fraction"):
        make_split(data, test_fraction=1.5)


# --- histories ----------------------------------------------------------------------------------

def frame(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]).astype(
        {"user_id": object, "item_id": object, "rating": np.float64, "timestamp": np.int64})


TRAIN = frame([("a", "x", 5, 10), ("a", "y", 3, 30), ("a", "z", 1, 20), ("a", "w", 4, 30),
               ("b", "x", 2, 5)])


def test_history_order_padding_and_self_exclusion():
    h = make_histories(TRAIN, TRAIN, max_len=4)
    assert h["history_item_ids"].dtype == object and h["history_item_ids"].shape == (5, 4)
    assert h["history_ratings"].dtype == np.float32 and h["history_length"].dtype == np.int32
    # Row 0 is (a, x, 10): the others, newest first, ties (30) by item id.
    assert h["history_item_ids"][0].tolist() == ["w", "y", "z", ""]
    assert h["history_ratings"][0].tolist() == [4, 3, 1, 0]
    assert h["history_item_ids"][1].tolist() == ["w", "z", "x", ""]  # (a, y, 30) left out
    assert h["history_item_ids"][4].tolist() == ["", "", "", ""]  # b's only interaction is the target
    assert h["history_length"].tolist() == [3, 3, 3, 3, 0]


def test_history_cap_keeps_the_most_recent():
    h = make_histories(TRAIN, frame([("a", "new", 0, 99)]), max_len=2)
    assert h["history_item_ids"][0].tolist() == ["w", "y"] and h["history_length"][0] == 2


def test_temporal_history_uses_only_earlier_interactions():
    targets = frame([("a", "q", 0, 30), ("a", "q", 0, 10), ("a", "x", 5, 10), ("c", "x", 1, 50)])
    h = make_histories(TRAIN, targets, max_len=3, temporal=True)
    assert h["history_item_ids"][0].tolist() == ["z", "x", ""]  # time 30 excluded (not < 30)
    assert h["history_length"].tolist() == [2, 0, 0, 0]  # unknown user c: empty


def test_user_histories_have_no_exclusion():
    h = user_histories(TRAIN, ["b", "a", "nobody"], max_len=5)
    assert h["history_item_ids"][0].tolist() == ["x", "", "", "", ""]
    assert h["history_item_ids"][1].tolist() == ["w", "y", "z", "x", ""]
    assert h["history_length"].tolist() == [1, 4, 0]


def test_implicit_ratings_become_zero():
    train = TRAIN.assign(rating=np.nan)
    h = user_histories(train, ["a"], max_len=2)
    assert h["history_ratings"][0].tolist() == [0.0, 0.0] and h["history_length"][0] == 2


@pytest.mark.parametrize("kind", ["random", "temporal", "cold-items"])
def test_no_test_interaction_leaks_into_training_or_histories(data, kind):
    s = make_split(data, kind)
    test = keys(s.test)
    assert not test & keys(s.train) and not test & keys(s.validation)
    test_pairs = set(zip(s.test["user_id"], s.test["item_id"]))  # (user, item) pairs are unique here
    for targets in (s.train, s.validation, s.test):
        h = make_histories(s.train, targets, max_len=50, temporal=kind == "temporal")
        for user, history in zip(targets["user_id"], h["history_item_ids"]):
            assert not {(user, item) for item in history if item} & test_pairs
    if kind == "temporal":
        h = make_histories(s.train, s.test, temporal=True)
        assert (h["history_length"] > 0).any()
