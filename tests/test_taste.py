"""The users' taste for content on trained items (models.taste), fitted after training."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from afetler_tf.config import Config
from afetler_tf.features import ItemFeatures
from afetler_tf.layers.cold_items import ColdItemPath
from afetler_tf.layers.content import ContentRegression
from afetler_tf.layers.ranking import RankingHead
from afetler_tf.layers.taste import UserTaste
from afetler_tf.models import build_model


def tiny_config(**afetler):
    """The taste alone: the rating blend after it (tests/test_rating_blend.py) is off."""
    return Config(model="afetler").replace(
        train={"epochs": 4, "batch_size": 64, "learning_rate": 0.01, "patience": 4},
        tower={"embedding_dim": 8, "tower_units": [16, 8], "ranking_units": [16]},
        afetler={"rating_blend": False, **afetler})


@pytest.fixture(scope="module")
def trained(tiny_data, tiny_split):
    model = build_model(tiny_config())
    return model, model.fit(tiny_data, tiny_split, verbose=0)


def test_the_head_adds_the_users_taste_to_trained_items_only():
    """warm: mu + b_u + b_v + m + kappa_w * t_u . x(v); a routed item keeps its cold path."""
    features = ItemFeatures(["a1", "b1"], ["A", "B"], dim=4)
    head = RankingHead(["u"], ["a1", "b1"], [4], global_mean=3.0,
                       cold_items=ColdItemPath(ContentRegression(features, 2), 1),
                       taste=UserTaste(1, 2))
    p = tf.constant(np.random.default_rng(3).normal(size=(1, 3)), tf.float32)

    def rate(item, cats):
        raw = {"item_id": np.array([item], object), "categories": np.array([cats], object),
               "title": np.array([""], object)}
        return float(head((p, p, tf.constant(["u"]), tf.constant([item])), item_features=raw)[0, 0])
    before_warm, before_cold = rate("b1", "B"), rate("new", "B")
    head.taste.user_taste.assign([[9.0, 9.0], [0.2, -0.6]])  # row 0: unknown users
    assert rate("b1", "B") == pytest.approx(before_warm, abs=1e-6)  # kappa_w = 0 (unfitted)
    head.taste.taste_scale.assign(0.5)
    assert rate("b1", "B") == pytest.approx(before_warm + 0.5 * -0.6, abs=1e-5)  # x(B) = (0, 1)
    assert rate("b1", "A|B") == pytest.approx(rate("b1", "B") + 0.5 * (0.2 + 0.6) / 2, abs=1e-5)
    assert rate("new", "B") == pytest.approx(before_cold, abs=1e-6)  # never trained: not this term


def test_the_taste_is_a_ridge_fit_of_the_rankers_residuals(trained, tiny_split):
    """t_u = (X'X + 10 I)^-1 X'(r - r̂) over u's rated training pairs; kappa_w by least
    squares on the validation ratings, in [0, 1]."""
    model, history = trained
    head = model.network.ranking_head
    kappa = float(head.taste.taste_scale.numpy())
    assert history["taste/taste_scale"] == pytest.approx(kappa) and 0.0 <= kappa <= 1.0
    assert history["taste/taste_interactions"] == len(tiny_split.validation)
    assert history["taste/val_rmse"] <= history["taste/val_rmse_without"] + 1e-9  # kappa_w = 0 allowed
    mine = tiny_split.train[tiny_split.train.user_id == "u0"]
    net, f = model.network, model.examples(mine, model.sampling_probabilities)  # the pairs as trained on
    head.taste.taste_scale.assign(0.0)
    try:
        residual = mine.rating.to_numpy() - net.rate(f, net.query_tower(f), net.candidate_tower(f)).numpy()[:, 0]
    finally:
        head.taste.taste_scale.assign(kappa)
    x = head.cold_items.design(model.space.item_features(mine.item_id.to_numpy(object))).numpy()
    expected = np.linalg.solve(x.T @ x + 10.0 * np.eye(x.shape[1]), x.T @ residual)
    u0 = int(head.user_lookup(tf.constant(["u0"])).numpy()[0])
    np.testing.assert_allclose(head.taste.user_taste.numpy()[u0], expected, atol=1e-4)
    assert not np.any(head.taste.user_taste.numpy()[0])
    # The recorded validation RMSE is the fitted model's.
    val = tiny_split.validation
    f = model.examples(val, model.sampling_probabilities)
    rated = net.rate(f, net.query_tower(f), net.candidate_tower(f)).numpy()[:, 0]
    assert np.sqrt(np.mean((rated - val.rating.to_numpy()) ** 2)) == pytest.approx(
        history["taste/val_rmse"], abs=1e-4)


def test_too_few_validation_ratings_leave_the_taste_unused(trained, tiny_split):
    from afetler_tf.models.taste import fit_user_taste
    model, _ = trained
    scale = model.network.ranking_head.taste.taste_scale
    before = float(scale.numpy())
    with pytest.warns(UserWarning, match="taste_scale = 0"):
        assert fit_user_taste(model, tiny_split, min_interactions=10 ** 6)["taste_scale"] == 0.0
    assert float(scale.numpy()) == 0.0
    scale.assign(before)  # the module's other tests share the model


def test_the_fits_shared_training_examples_give_the_taste_it_builds_alone(trained, tiny_split):
    """The fit passes its training examples (built once for every stage); the
    taste fitted on them, rows of unrated pairs left out, is the one fitted on
    examples built here."""
    from afetler_tf.models.taste import fit_user_taste
    model, _ = trained
    taste = model.network.ranking_head.taste
    before = (taste.user_taste.numpy().copy(), float(taste.taste_scale.numpy()))
    split = dataclasses.replace(tiny_split, train=tiny_split.train.assign(
        rating=tiny_split.train.rating.where(tiny_split.train.index % 5 != 0)))  # some unrated
    try:
        alone = fit_user_taste(model, split)
        weights = taste.user_taste.numpy().copy()
        shared = fit_user_taste(model, split, train_examples=model.examples(
            split.train, model.sampling_probabilities))
        np.testing.assert_allclose(taste.user_taste.numpy(), weights, atol=1e-6)
        assert shared == pytest.approx(alone)
    finally:
        taste.user_taste.assign(before[0])
        taste.taste_scale.assign(before[1])


def test_the_taste_can_be_switched_off(tiny_data, tiny_split):
    model = build_model(tiny_config(user_taste=False).replace(train={"epochs": 1}))
    history = model.fit(tiny_data, tiny_split, verbose=0)
    assert not any(k.startswith("taste/") for k in history)
    assert float(model.network.ranking_head.taste.taste_scale.numpy()) == 0.0


def test_the_report_line_averages_what_the_runs_recorded():
    from experiments import benchmark_report
    runs = [{"user_taste": {"taste_scale": 0.4, "taste_interactions": 7000, "val_rmse_without": 0.91,
                            "val_rmse": 0.905}},
            {"user_taste": {"taste_scale": 0.6, "taste_interactions": 8000, "val_rmse_without": 0.93,
                            "val_rmse": 0.925}}, {}]  # a run without the step: skipped
    line = benchmark_report.user_taste_line(runs)
    assert "2 seeds" in line and "kappa_w = 0.50" in line and "7500 validation ratings" in line
    assert "0.9200 without it, 0.9150 with it" in line
    assert benchmark_report.user_taste_line([{}]) == ""


def test_bounded_share_by_hand():
    from afetler_tf.models.taste import bounded_share
    assert bounded_share([1.0, -1.0, 0.5], [2.0, -2.0, 0.0], default=0.0) == pytest.approx(0.5)  # 4 / 8
    assert bounded_share([3.0], [1.0], default=0.0) == 1.0  # 3, clipped
    assert bounded_share([-1.0], [1.0], default=0.0) == 0.0  # -1, clipped
    assert bounded_share([1.0], [0.0], default=0.7) == 0.7  # no term: the default


def test_the_user_taste_layer_alone_by_hand():
    """UserTaste: kappa_w t'_u . x, 0 until fitted; row 0 (unknown users) as stored."""
    taste = UserTaste(2, 3)
    users, x = tf.constant([1, 2, 0]), tf.constant([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [1.0, 1.0, 1.0]])
    np.testing.assert_array_equal(taste(users, x).numpy(), np.zeros((3, 1)))
    taste.user_taste.assign([[0.0, 0.0, 0.0], [0.4, 9.0, 9.0], [1.0, 2.0, -4.0]])
    taste.taste_scale.assign(0.5)
    np.testing.assert_allclose(taste(users, x).numpy()[:, 0], [0.5 * 0.4, 0.5 * (1.0 - 2.0), 0.0], atol=1e-6)
