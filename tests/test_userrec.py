"""UserRec: whom to market an item to, its evaluation, the Python API and the CLI."""

import numpy as np
import pandas as pd
import pytest

from afetler_tf import fit, recommend
from afetler_tf.feedback.userrec import evaluate_userrec, users_for_item
from afetler_tf.models.base import Recommender
from conftest import write_shop


class VectorModel(Recommender):
    """Fixed user and item vectors: score_all = U V^T (a test double)."""

    name = "vectors"

    def __init__(self, users: dict, items: dict):
        self.users, self.items = users, items

    def fit(self, data, split, verbose=1):
        return {}

    def score(self, user_ids, item_ids):
        return np.array([self.users[u] @ self.items[i] for u, i in zip(user_ids, item_ids)])

    def score_all(self, user_ids, item_ids):
        return np.array([[self.users[u] @ self.items[i] for i in item_ids] for u in user_ids])


USERS = {"a": np.array([1.0, 0.0]), "b": np.array([0.8, 0.2]), "c": np.array([0.0, 1.0]),
         "d": np.array([0.5, 0.5])}
ITEMS = {"x": np.array([1.0, 0.0]), "y": np.array([0.0, 1.0])}


def _log(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


def test_users_for_item_ranks_by_the_item_vector_and_skips_known_users():
    model = VectorModel(USERS, ITEMS)
    table = users_for_item(model, "x", list(USERS), n=3)
    assert list(table["user_id"]) == ["a", "b", "d"] and list(table["rank"]) == [1, 2, 3]
    known = _log([("a", "x", 5.0, 1)])
    assert list(users_for_item(model, "x", list(USERS), n=2, known=known)["user_id"]) == ["b", "d"]
    with pytest.raises(ValueError, match="n >= 1"):
        users_for_item(model, "x", list(USERS), n=0)


def test_userrec_evaluation_by_hand():
    model = VectorModel(USERS, ITEMS)
    known = _log([("a", "x", 5.0, 1)])
    later = _log([("b", "x", 4.0, 5), ("c", "x", 4.0, 6), ("c", "y", 5.0, 7), ("a", "x", 3.0, 8)])
    result = evaluate_userrec(model, list(USERS), known, later, n=2)
    # x: a is known (skipped), top 2 = b, d; relevant {b, c} -> P 1/2, R 1/2.
    # y: top 2 = c, d; relevant {c} -> P 1/2, R 1.  Targeted: b, c, d of 4 users.
    assert result == {"precision@2": 0.5, "recall@2": 0.75, "user_coverage": 0.75, "items": 2}


@pytest.fixture(scope="module")
def two_tower_run(tmp_path_factory, tiny_data):
    folder = write_shop(tmp_path_factory.mktemp("shop"), tiny_data)
    out = str(tmp_path_factory.mktemp("runs") / "two_tower")
    assert fit.main(["--model", "two_tower", "--data", str(folder), "--epochs", "1", "--out", out,
                     "--quiet", "--set", "tower.embedding_dim=8", "--set", "tower.tower_units=[8]",
                     "--set", "tower.ranking_units=[8]"]) == 0
    return out


def test_userrec_python_api_and_cli(capsys, two_tower_run):
    from afetler_tf.runs.training_run import load_run
    result = load_run(two_tower_run)
    table = recommend.recommend_users(result.model, result.data, result.split, "i3", n=5)
    known = pd.concat([result.split.train, result.split.validation])
    had = set(known.loc[known["item_id"] == "i3", "user_id"])
    assert len(table) == 5 and not set(table["user_id"]) & had
    assert table["score"].is_monotonic_decreasing
    assert recommend.main(["--run", two_tower_run, "--item", "i3", "--users", "4"]) == 0
    out = capsys.readouterr().out
    assert "top 4 users to market item i3 to" in out and table["user_id"].iloc[0] in out
    with pytest.raises(SystemExit):
        recommend.main(["--run", two_tower_run, "--item", "i3", "--user", "u1"])
