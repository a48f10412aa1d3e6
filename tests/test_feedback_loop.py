"""Online updates, the replayed learner and the feedback CLI on tiny synthetic data."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from afetler_tf import Config
from afetler_tf.feedback import FeedbackConfig
from afetler_tf.feedback.learner import FusionLearner
from afetler_tf.feedback.online import feedback_loss, reward_weights
from afetler_tf.feedback.replay import make_replay
from afetler_tf.models import build_model
from conftest import write_shop
from experiments import feedback as cli
from experiments.feedback import warmup_split

TINY = {"tower": {"embedding_dim": 8, "tower_units": (8,), "ranking_units": (8,)},
        "train": {"epochs": 1, "batch_size": 128}}


def test_reward_weights_by_hand():
    np.testing.assert_array_equal(reward_weights([5, 4, 3, 2, 1], penalty_weight=0.5),
                                  [1, 1, 0, -0.5, -0.5])


def test_penalty_pushes_the_disliked_item_down():
    p_u = tf.constant([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    ids = tf.constant(["a", "b", "c"])
    q = tf.constant([0.3, 0.3, 0.4])
    liked, disliked = tf.constant([1.0, 1.0, 0.0]), tf.constant([0.0, 0.0, -1.0])
    near = tf.constant([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])   # the disliked item matches its user
    far = tf.constant([[1.0, 0.0], [0.0, 1.0], [-0.6, -0.8]])  # ... or is far from them
    assert float(feedback_loss(p_u, near, ids, disliked, q, 0.1)) > \
        float(feedback_loss(p_u, far, ids, disliked, q, 0.1))
    away = tf.constant([[-1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])  # a liked item far from its user
    assert float(feedback_loss(p_u, near, ids, liked, q, 0.1)) < \
        float(feedback_loss(p_u, away, ids, liked, q, 0.1))


@pytest.fixture(scope="module")
def trained(tiny_data):
    replay = make_replay(tiny_data.interactions, rounds=2, warmup_fraction=0.5)
    config = Config(model="two_tower").replace(**TINY)
    model = build_model(config)
    model.fit(tiny_data, warmup_split(tiny_data, replay.warmup, 0.1, 42), verbose=0)
    return model, replay


def test_online_update_fine_tunes_without_rebuilding(trained, tiny_data):
    model, replay = trained
    catalogue = tiny_data.items["item_id"].to_numpy(object)
    learner = FusionLearner(model, catalogue, replay.warmup, FeedbackConfig(candidates=20), learn=True)
    before = [v.numpy().copy() for v in model.network.trainable_variables]
    rnd = replay.rounds[0].interactions
    users = np.asarray(pd.unique(rnd["user_id"]), object)
    lists = learner.recommend(users, 10)
    seen = set(zip(replay.warmup["user_id"], replay.warmup["item_id"]))
    assert not any((u, catalogue[c]) in seen for u, row in zip(users, lists) for c in row if c >= 0)
    stats = learner.observe(rnd, lists, np.zeros(lists.shape))
    after = model.network.trainable_variables
    assert [b.shape for b in before] == [a.shape for a in after]  # same vocabularies
    assert any(not np.allclose(b, a.numpy()) for b, a in zip(before, after))
    assert stats["update_steps"] >= 1 and stats["update_seconds"] > 0
    assert stats["dbgd_comparisons"] == 4 and abs(sum(stats["weights"].values()) - 1) < 1e-9
    assert len(learner.revealed) == len(replay.warmup) + len(rnd)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, tiny_data):
    folder = write_shop(tmp_path_factory.mktemp("shop"), tiny_data)
    config = Config(model="two_tower").replace(data={"source": str(folder)}, **TINY)
    config.to_json(str(folder / "config.json"))
    return folder


def test_cli_writes_rounds_tradeoff_and_benchmark_section(tmp_path, data_dir):
    out, bench = str(tmp_path / "fb"), str(tmp_path / "bench")
    assert cli.main(["--rounds", "2", "--out", out, "--config", str(data_dir / "config.json"),
                     "--benchmark", bench]) == 0
    for name in ("results.json", "rounds.csv", "tradeoff.csv", "rounds.png", "tradeoff.png"):
        assert os.path.exists(os.path.join(out, name)), name
    with open(os.path.join(out, "results.json")) as f:
        result = json.load(f)
    assert set(result["summary"]) == {"loop", "frozen"}
    assert len(result["tradeoff"]) >= 5 and result["tradeoff"][0]["matches_unconstrained"]
    rounds = pd.read_csv(os.path.join(out, "rounds.csv"))
    assert {"reward", "hit_rate", "coverage", "new_item_exposure", "w_ranker"} <= set(rounds.columns)
    assert "## Feedback loop" in open(os.path.join(bench, "feedback.md")).read()


def test_cli_rejects_an_impossible_exposure_before_training(capsys, data_dir, monkeypatch, tmp_path):
    def no_training(config):
        raise AssertionError("trained before checking beta")
    monkeypatch.setattr("experiments.feedback.build_model", no_training)
    assert cli.main(["--rounds", "2", "--out", str(tmp_path), "--config", str(data_dir / "config.json"),
                     "--betas", "0.5"]) == 2
    assert "Impossible exposure" in capsys.readouterr().err
