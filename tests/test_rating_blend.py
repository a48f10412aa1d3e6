"""The rating blend (layers.rating_blend, models.rating_blend): the ranker's rating blended
with a biased MF's, weights fitted on validation, kept only where cross-fitting says so."""

import numpy as np
import pytest
import tensorflow as tf

from afetler_tf.config import Config
from afetler_tf.features import FeatureSpace, ItemFeatures
from afetler_tf.layers.cold_items import ColdItemPath
from afetler_tf.layers.content import ContentRegression
from afetler_tf.layers.ranking import RankingHead
from afetler_tf.layers.rating_blend import RatingBlend
from afetler_tf.models import build_model
from afetler_tf.models import rating_blend
from afetler_tf.models.network import build_network


def tiny_config(**afetler):
    return Config(model="afetler").replace(
        train={"epochs": 4, "batch_size": 64, "learning_rate": 0.01, "patience": 4},
        tower={"embedding_dim": 8, "tower_units": [16, 8], "ranking_units": [16]},
        mf={"embedding_dim": 4, "epochs": 5}, afetler=afetler)


@pytest.fixture(scope="module")
def trained(tiny_data, tiny_split):
    model = build_model(tiny_config())
    return model, model.fit(tiny_data, tiny_split, verbose=0)


def test_the_layer_blends_known_pairs_only():
    """c + w_r r + w_f (mu + b_u + b_v + <P_u, Q_v>) where both are known and eligible; r elsewhere."""
    layer = RatingBlend(num_users=2, num_items=3, dim=2)
    rating = tf.constant([[3.0], [4.0], [2.0], [5.0]])
    users, items = tf.constant([1, 2, 1, 0]), tf.constant([1, 1, 3, 1])
    np.testing.assert_allclose(layer(users, items, rating).numpy(), rating.numpy())  # neutral
    layer.set_factorisation([1, 2], [[1.0, 0.0], [0.0, 2.0]], [0.1, -0.2],
                            [1], [[0.5, 0.5]], [0.3], mean=3.5)
    layer.set_blend(0.2, 0.6, 0.5)
    f_11 = 3.5 + 0.1 + 0.3 + 0.5  # user row 1, item row 1
    f_21 = 3.5 - 0.2 + 0.3 + 1.0
    out = layer(users, items, rating, eligible=tf.constant([True, True, True, True])).numpy()[:, 0]
    np.testing.assert_allclose(out, [0.2 + 0.6 * 3 + 0.5 * f_11, 0.2 + 0.6 * 4 + 0.5 * f_21,
                                     2.0,  # item row 3: the MF never trained it
                                     5.0],  # user row 0: unknown
                               rtol=1e-6)
    out = layer(users, items, rating, eligible=tf.constant([False, True, True, True])).numpy()[:, 0]
    assert out[0] == pytest.approx(3.0)  # not eligible (the cold-item path's)
    with pytest.raises(ValueError, match="row 0"):
        layer.set_factorisation([0], [[1.0, 0.0]], [0.0], [1], [[0.0, 0.0]], [0.0], mean=3.0)


def test_the_head_leaves_items_of_the_cold_path_unblended():
    features = ItemFeatures(["a1", "b1"], ["A", "B"], dim=4)
    cold = ColdItemPath(ContentRegression(features, 2), 1)
    head = RankingHead(["u"], ["a1", "b1"], [4], global_mean=3.0, cold_items=cold,
                       blend=RatingBlend(1, 2, 2))
    p = tf.constant(np.random.default_rng(3).normal(size=(1, 3)), tf.float32)

    def rate(item):
        raw = {"item_id": np.array([item], object), "categories": np.array(["B"], object),
               "title": np.array([""], object)}
        return float(head((p, p, tf.constant(["u"]), tf.constant([item])), item_features=raw)[0, 0])
    before = rate("b1")
    head.blend.set_factorisation([1], [[0.0, 0.0]], [0.0], [1, 2], [[0.0, 0.0]] * 2, [0.0, 0.0], mean=4.0)
    head.blend.set_blend(1.0, 0.5, 0.25)
    assert rate("b1") == pytest.approx(1.0 + 0.5 * before + 0.25 * 4.0, abs=1e-5)
    cold.content_bias.routed.assign([True, False, True])  # b1 now taken by the cold path
    routed_rating = rate("b1")
    head.blend.set_blend(0.0, 1.0, 0.0)
    assert rate("b1") == pytest.approx(routed_rating, abs=1e-6)  # the blend never touched it


def test_least_squares_and_cross_fitting_by_hand():
    rating = np.array([3.0, 4.0, 2.0, 5.0, 1.0, 3.0])
    factor = np.array([2.0, 4.0, 3.0, 4.0, 2.0, 1.0])
    truth = 0.5 + 0.5 * rating + 0.25 * factor  # exact: the fit recovers it
    np.testing.assert_allclose(rating_blend.least_squares_blend(truth, rating, factor), [0.5, 0.5, 0.25],
                               atol=1e-10)
    np.testing.assert_allclose(rating_blend.blend([0.5, 0.5, 0.25], rating, factor), truth)
    np.testing.assert_allclose(rating_blend.cross_fitted(rating, factor, truth, seed=1), truth, atol=1e-9)
    noisy = truth + np.array([0.3, -0.2, 0.1, 0.0, -0.4, 0.2])
    out = rating_blend.cross_fitted(rating, factor, noisy, seed=1)
    order = np.random.default_rng(1).permutation(6)
    first, second = order[:3], order[3:]  # 3 points, 3 weights: each half is fitted exactly
    w = rating_blend.least_squares_blend(noisy[first], rating[first], factor[first])
    np.testing.assert_allclose(out[second], rating_blend.blend(w, rating[second], factor[second]))


def test_the_fit_trains_mf_and_keeps_the_blend_only_where_cross_fitting_says_so(trained, tiny_split):
    model, history = trained
    layer = model.network.ranking_head.blend
    assert history["blend/factor_epochs"] >= 1
    assert history["blend/blend_interactions"] > 0
    weights = [float(layer.blend_intercept.numpy()), float(layer.blend_ranker.numpy()),
               float(layer.blend_factor.numpy())]
    if history["blend/blend_used"]:
        assert history["blend/val_rmse_crossfit"] < history["blend/val_rmse_without"]
        fitted = [history[f"blend/blend_{key}"] for key in ("intercept", "ranker", "factor")]
        np.testing.assert_allclose(weights, fitted, rtol=1e-5)
    else:
        assert weights == [0.0, 1.0, 0.0]
    # Every user and item the MF trained on is known; nothing else.
    rated = tiny_split.train[tiny_split.train.rating.notna()]
    head = model.network.ranking_head
    known_users = np.flatnonzero(layer.factor_user_known.numpy())
    assert set(known_users) == set(head.user_lookup(rated.user_id.astype(str).unique()).numpy())
    assert layer.factor_user_known.numpy()[0] == 0 and layer.factor_item_known.numpy()[0] == 0


def test_too_few_validation_ratings_leave_the_blend_neutral_and_train_no_mf(trained, tiny_data, tiny_split):
    model, _ = trained
    layer = model.network.ranking_head.blend
    saved = [v.numpy() for v in (layer.blend_intercept, layer.blend_ranker, layer.blend_factor)]
    tables = layer.factor_users.numpy()
    try:
        with pytest.warns(UserWarning, match="rating blend is not used"):
            out = rating_blend.fit_rating_blend(model, tiny_data, tiny_split, min_interactions=10 ** 6)
        assert out == {"blend_used": False, "blend_interactions": out["blend_interactions"]}
        assert 0 < out["blend_interactions"] <= len(tiny_split.validation)
        assert [float(v.numpy()) for v in (layer.blend_intercept, layer.blend_ranker,
                                           layer.blend_factor)] == [0.0, 1.0, 0.0]
        np.testing.assert_array_equal(layer.factor_users.numpy(), tables)  # no MF trained
    finally:
        layer.set_blend(*saved)


def test_forcing_the_blend_changes_ratings_by_the_formula(trained, tiny_split):
    """Scores (the Python API, so also the exported ranker, which calls the same head) follow
    c + w_r r + w_f f for known pairs; an unknown user keeps the ranker's rating."""
    model, _ = trained
    layer = model.network.ranking_head.blend
    saved = [v.numpy() for v in (layer.blend_intercept, layer.blend_ranker, layer.blend_factor)]
    pairs = tiny_split.validation.head(5)
    users, items = pairs.user_id.astype(str).tolist(), pairs.item_id.astype(str).tolist()
    try:
        layer.set_blend(0.0, 1.0, 0.0)
        alone = model.score(users + ["nobody"], items + [items[0]])
        head = model.network.ranking_head
        f = layer.factorisation(head.user_lookup(users), head.item_lookup(items)).numpy()
        layer.set_blend(0.3, 0.4, 0.5)
        both = model.score(users + ["nobody"], items + [items[0]])
        np.testing.assert_allclose(both[:5], 0.3 + 0.4 * alone[:5] + 0.5 * f, rtol=1e-5)
        assert both[5] == pytest.approx(alone[5], abs=1e-5)
    finally:
        layer.set_blend(*saved)


def test_the_blend_saves_and_loads_with_the_run(trained, tiny_data, tiny_split, tmp_path):
    model, _ = trained
    model.save(str(tmp_path / "model"))
    again = build_model(tiny_config())
    again.load(str(tmp_path / "model"), tiny_data, tiny_split)
    pairs = tiny_split.validation.head(20)
    users, items = pairs.user_id.astype(str).tolist(), pairs.item_id.astype(str).tolist()
    np.testing.assert_allclose(again.score(users, items), model.score(users, items), rtol=1e-5)
    mine, theirs = model.network.ranking_head.blend, again.network.ranking_head.blend
    np.testing.assert_array_equal(mine.factor_users.numpy(), theirs.factor_users.numpy())


def test_off_there_is_no_blend_layer_and_the_base_two_tower_has_it_off(tiny_data, tiny_split):
    space = FeatureSpace.from_data(tiny_data, tiny_split.train)
    assert build_network(space, tiny_config(), 3.5).ranking_head.blend is not None
    assert build_network(space, tiny_config(rating_blend=False), 3.5).ranking_head.blend is None
    assert build_model(Config(model="two_tower")).config.afetler.rating_blend is False


def test_the_report_line_averages_what_the_runs_recorded():
    from experiments import benchmark_report
    one = {"blend_used": True, "blend_intercept": 0.1, "blend_ranker": 0.6, "blend_factor": 0.3,
           "blend_interactions": 7000, "val_rmse_without": 0.91, "val_rmse_crossfit": 0.90,
           "val_rmse": 0.899, "factor_epochs": 8}
    two = dict(one, blend_used=False, blend_intercept=0.3, blend_ranker=0.8, blend_factor=0.1,
               blend_interactions=8000, val_rmse_without=0.93, val_rmse_crossfit=0.94, factor_epochs=10)
    line = benchmark_report.rating_blend_line([{"rating_blend": one}, {"rating_blend": two}, {}])
    assert "2 seeds" in line and "(9 epochs)" in line and "0.20 + 0.70 * ranker + 0.20 * MF" in line
    assert "7500 validation ratings" in line and "used on 1 of 2 seeds" in line
    assert "cross-fitted validation RMSE 0.9200 against the ranker's 0.9200" in line
    assert benchmark_report.rating_blend_line([{}]) == ""


def test_a_suite_measured_before_a_default_changed_says_so():
    from afetler_tf.config import Config
    from experiments import benchmark_report
    today = Config().to_dict()["afetler"]
    older = {k: v for k, v in today.items() if k not in ("rating_blend", "num_heads")}
    assert benchmark_report.stale_defaults([{"label": "full", "config": {"afetler": today}}]) == ""
    line = benchmark_report.stale_defaults([{"label": "full", "config": {"afetler": older}},
                                            {"label": "no fusion", "config": {"afetler": {}}}])
    # an added setting reads as what the run did (no blend); one unknown to the table as absent
    assert "afetler.rating_blend (false then, true now)" in line and "fusion" not in line
    assert "afetler.num_heads (absent then, 1 now)" in line


def test_the_blends_mf_is_resumable_per_epoch(tiny_data, tiny_split, tmp_path, capsys):
    """A finished MF stage found in its checkpoint folder is not trained again: its weights
    come back as they were (a killed fit resumes the rating_blend stage from there)."""
    from afetler_tf.models.mf import MatrixFactorization
    config = tiny_config()
    first = MatrixFactorization(config)
    first.fit(tiny_data, tiny_split, verbose=1, checkpoint_dir=str(tmp_path / "rating_blend"))
    again = MatrixFactorization(config)
    capsys.readouterr()
    again.fit(tiny_data, tiny_split, verbose=1, checkpoint_dir=str(tmp_path / "rating_blend"))
    assert "mf stage already finished" in capsys.readouterr().out
    users = np.asarray(first.vocabulary["users"], object)
    np.testing.assert_array_equal(first.net.user_table(users)[0].numpy(), again.net.user_table(users)[0].numpy())
