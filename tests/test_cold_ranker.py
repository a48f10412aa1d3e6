"""The ranker sees a cold item through its content: content bias and target categories (issue 4)."""

import numpy as np
import pytest
import tensorflow as tf

from afetler_tf.features import MISSING, ItemFeatures
from afetler_tf.layers.cold_items import ColdItemPath
from afetler_tf.layers.content import ContentRegression
from afetler_tf.layers.mcau import MCAU
from afetler_tf.layers.ranking import RankingHead
from afetler_tf.layers.towers import HistoryAttention

CATS = ["A", "B", "C"]
WARM = ["a1", "a2", "b1", "c1"]


def item_features(year=False):
    numeric = {"year": [1950.0, 1990.0]} if year else {}
    return ItemFeatures(WARM, CATS, numeric=numeric, dim=4)


def raw(ids, cats, years=None):
    out = {"item_id": np.array(ids, object), "categories": np.array(cats, object),
           "title": np.array([""] * len(ids), object)}
    if years is not None:
        out["year"] = np.array(years, np.float32)
    return out


def test_cold_bias_is_the_mean_bias_of_the_warm_items_of_its_category():
    bias = ContentRegression(item_features(), len(WARM))
    np.testing.assert_array_equal(bias(raw(["x"], ["A"])).numpy(), [0.0])  # unfitted: the OOV row's 0
    fit = bias.fit(raw(WARM, ["A", "A", "B", "C"]), [0.2, 0.6, -0.4, 0.1], ridge=0.0)
    assert fit["items"] == 4 and fit["r2"] == pytest.approx(1.0 - 0.02 / 0.126875, abs=1e-6)
    got = bias(raw(["new_a", "new_b", "new_ab"], ["A", "B", "A|B"])).numpy()
    # A: mean(0.2, 0.6); B: -0.4; two categories: the mean of the two.
    np.testing.assert_allclose(got, [0.4, -0.4, 0.0], atol=1e-5)


def test_warm_items_are_weighted_by_their_interactions():
    bias = ContentRegression(item_features(), len(WARM))
    bias.fit(raw(WARM, ["A", "A", "B", "C"]), [0.2, 0.6, -0.4, 0.1], weights=[1, 3, 2, 1], ridge=0.0)
    np.testing.assert_allclose(bias(raw(["new"], ["A"])).numpy(), [0.5], atol=1e-5)  # (0.2 + 3 * 0.6) / 4


def test_numeric_buckets_and_the_ridge_fit():
    bias = ContentRegression(item_features(year=True), len(WARM))
    feats = raw(WARM, ["A", "A", "B", "B"], [1940.0, 1995.0, 1940.0, 1995.0])
    y, w = np.array([0.5, -0.1, 0.3, -0.3]), np.array([2.0, 1.0, 1.0, 3.0])
    bias.fit(feats, y, weights=w, ridge=0.0)
    # Additive in category and year bucket, so least squares fits it exactly.
    np.testing.assert_allclose(bias(feats).numpy(), y, atol=1e-5)
    # A year-less item falls in bucket 0 (below every boundary), like 1940.
    assert bias(raw(["n"], ["A"], [MISSING])).numpy()[0] == pytest.approx(0.5, abs=1e-5)
    bias.fit(feats, y, weights=w, ridge=10.0)  # the unpenalised intercept keeps the weighted mean
    np.testing.assert_allclose(np.average(bias(feats).numpy(), weights=w), np.average(y, weights=w),
                               atol=1e-5)


def test_the_head_gives_a_cold_item_the_content_bias_of_a_warm_twin():
    features = item_features()
    head = RankingHead(["u"], WARM, [4], global_mean=3.0,
                       cold_items=ColdItemPath(ContentRegression(features, len(WARM)), 1))
    p = tf.constant(np.random.default_rng(0).normal(size=(1, 3)), tf.float32)

    def rate(item, cats):
        return float(head((p, p, tf.constant(["u"]), tf.constant([item])),
                          item_features=raw([item], [cats]))[0, 0])
    before = rate("cold", "B")
    head.cold_items.content_bias.fit(raw(WARM, ["A", "A", "B", "C"]), [0.2, 0.6, -0.4, 0.1], ridge=0.0)
    # The warm twin b1 with its learned bias set to the content bias (-0.4) rates the same.
    head.item_bias.embeddings.assign(np.array([[0.0], [9.0], [9.0], [-0.4], [9.0]], np.float32))
    assert rate("cold", "B") == pytest.approx(rate("b1", "Z"), abs=1e-5)  # b1: its own bias, not content
    assert rate("cold", "B") != pytest.approx(before, abs=1e-4)
    # A routed in-vocabulary item (below min_interactions) takes the content bias too.
    head.cold_items.content_bias.routed.assign([1.0, 0.0, 0.0, 0.0, 1.0])  # row 4 = c1
    assert rate("c1", "B") == pytest.approx(rate("cold", "B"), abs=1e-5)


def test_the_target_path_takes_a_cold_items_categories_from_its_content():
    features = item_features()
    matrix = np.zeros((len(WARM) + 1, len(CATS)), np.float32)
    matrix[[1, 2, 3, 4], [0, 0, 1, 2]] = 1.0  # a1, a2: A; b1: B; c1: C
    attention = HistoryAttention(features, matrix, np.array([-1, 0, 0, 1, 2], np.int32),
                                 MCAU(3, 4, 1), channels="rating")
    ids, cats = tf.constant(["a1", "cold"]), tf.constant(["A", "B|C"])
    h_id, hot_id, _ = attention.encode(ids)
    h, hot, _ = attention.encode(ids, categories=cats)
    np.testing.assert_array_equal(hot_id.numpy(), [[1, 0, 0], [0, 0, 0]])  # by id: cold has none
    np.testing.assert_array_equal(hot.numpy(), [[1, 0, 0], [0, 1, 1]])
    np.testing.assert_allclose(h[0].numpy(), h_id[0].numpy(), atol=1e-6)  # warm: unchanged
    expected = features.embed_categories(tf.constant([[0.0, 1.0, 1.0]]))[0]  # no OOV id part
    np.testing.assert_allclose(h[1].numpy(), expected.numpy(), atol=1e-6)


def test_the_interaction_scale_shrinks_only_a_cold_items_interaction_term():
    features = item_features()
    head = RankingHead(["u"], WARM, [4], global_mean=3.0,
                       cold_items=ColdItemPath(ContentRegression(features, len(WARM)), 1))
    p = tf.constant(np.random.default_rng(1).normal(size=(1, 3)), tf.float32)
    head.cold_items.content_bias.fit(raw(WARM, ["A", "A", "B", "C"]), [0.2, 0.6, -0.4, 0.1], ridge=0.0)

    def rate(item, cats):
        return float(head((p, p, tf.constant(["u"]), tf.constant([item])),
                          item_features=raw([item], [cats]))[0, 0])
    rate("cold", "B")  # builds the MLP
    head.mlp.layers[-1].bias.assign([0.7])  # a visible interaction term
    cold, warm = rate("cold", "B"), rate("b1", "B")
    head.cold_items.interaction_scale.assign(0.0)
    assert rate("cold", "B") == pytest.approx(3.0 - 0.4, abs=1e-5)  # mu + b_u (0) + content bias
    assert rate("b1", "B") == pytest.approx(warm, abs=1e-6)  # a trained id keeps its interaction
    head.cold_items.interaction_scale.assign(0.5)
    assert rate("cold", "B") == pytest.approx((cold + 2.6) / 2, abs=1e-5)
    # The user's offset o_u: cold = mu + b_u + b(x) + o_u + gamma * (m - o_u).
    head.cold_items.user_offset.assign([0.0, 0.3])  # row 0: unknown users
    m = cold - 2.6
    assert rate("cold", "B") == pytest.approx(2.6 + 0.3 + 0.5 * (m - 0.3), abs=1e-5)
    head.cold_items.interaction_scale.assign(0.0)
    assert rate("cold", "B") == pytest.approx(2.9, abs=1e-5)
    assert rate("b1", "B") == pytest.approx(warm, abs=1e-6)  # a trained id: untouched


def test_shrinkage_by_hand():
    from afetler_tf.models.cold_path import shrinkage
    base, full = [3.0, 3.0, 4.0], [4.0, 2.0, 4.0]  # interaction terms 1, -1, 0
    assert shrinkage([3.5, 2.5, 1.0], base, full) == pytest.approx(0.5)  # (0.5 + 0.5) / 2
    assert shrinkage([5.0, 1.0, 4.0], base, full) == 1.0  # 2.0, clipped
    assert shrinkage([2.0, 4.0, 4.0], base, full) == 0.0  # -1.0, clipped
    assert shrinkage([1.0, 2.0], [3.0, 3.0], [3.0, 3.0]) == 1.0  # no interaction term at all


def test_the_users_taste_adds_to_a_cold_items_interaction_term_only():
    """cold = mu + b_u + b(x) + o_u + gamma * (m - o_u) + kappa * t_u . x(v)."""
    features = item_features()
    head = RankingHead(["u"], WARM, [4], global_mean=3.0,
                       cold_items=ColdItemPath(ContentRegression(features, len(WARM)), 1))
    p = tf.constant(np.random.default_rng(2).normal(size=(1, 3)), tf.float32)

    def rate(item, cats):
        return float(head((p, p, tf.constant(["u"]), tf.constant([item])),
                          item_features=raw([item], [cats]))[0, 0])
    rate("cold", "B")  # builds the MLP
    head.mlp.layers[-1].bias.assign([0.7])
    head.cold_items.interaction_scale.assign(0.0)
    warm = rate("b1", "B")
    head.cold_items.user_affinity.assign([[5.0, 5.0, 5.0], [0.1, 0.4, -0.2]])  # row 0: unknown users
    assert rate("cold", "B") == pytest.approx(3.0, abs=1e-5)  # kappa = 0 (unfitted): no taste
    head.cold_items.affinity_scale.assign(0.5)
    assert rate("cold", "B") == pytest.approx(3.0 + 0.5 * 0.4, abs=1e-5)  # x(B) = (0, 1, 0)
    assert rate("cold", "A|C") == pytest.approx(3.0 + 0.5 * (0.1 - 0.2) / 2, abs=1e-5)  # shares 1/2
    assert rate("b1", "B") == pytest.approx(warm, abs=1e-6)  # a trained id: untouched


def test_ridge_per_key_by_hand():
    from afetler_tf.layers.content import ridge_per_key
    keys = np.array([1, 2, 1])
    design = np.array([[1.0], [1.0], [2.0]])
    targets = np.array([1.0, 3.0, 2.0])
    # key 1: (1 + 4 + 1)^-1 (1 + 4) = 5/6; key 2: (1 + 1)^-1 3 = 3/2; key 0 (no rows): 0.
    for chunk in (1, 2, 4096):  # a key's rows split across chunks add up the same
        np.testing.assert_allclose(ridge_per_key(keys, design, targets, 3, 1.0, chunk=chunk)[:, 0],
                                   [0.0, 5 / 6, 1.5], atol=1e-12)
    two = ridge_per_key(np.array([1, 1, 1]), np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
                        np.array([1.0, 2.0, 3.0]), 2, 1.0)
    # (X'X + I) = [[3, 1], [1, 3]], X'y = (4, 5): t = (7/8, 11/8).
    np.testing.assert_allclose(two[1], [7 / 8, 11 / 8], atol=1e-12)
    with pytest.raises(ValueError, match="ridge must be > 0"):
        ridge_per_key(keys, design, targets, 3, 0.0)


def test_cold_scales_by_hand():
    from afetler_tf.models.cold_path import cold_scales
    base = np.array([3.0, 3.0, 3.0, 3.0])
    term, taste = np.array([1.0, -1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0, -1.0])  # orthogonal
    truth = base + 0.5 * term + 0.25 * taste
    assert cold_scales(truth, base, base + term, taste) == pytest.approx((0.5, 0.25))
    truth = base + 0.5 * term + 2.0 * taste  # kappa 2 is out of [0, 1]: clipped to 1
    assert cold_scales(truth, base, base + term, taste) == pytest.approx((0.5, 1.0))
    assert cold_scales(truth, base, base + term, np.zeros(4)) == pytest.approx((0.5, 0.0))  # no taste
    assert cold_scales(truth, base, base, np.zeros(4)) == (1.0, 0.0)  # no terms at all: defaults


def test_the_cold_item_path_alone_by_hand():
    """ColdItemPath: neutral until fitted (gamma 1, o_u 0, kappa 0: m unchanged), then
    o_u + gamma (m - o_u) + kappa t_u . x; its rows and regressors are the content bias's."""
    cold = ColdItemPath(ContentRegression(item_features(), len(WARM)), 2)
    users, m = tf.constant([1, 2]), tf.constant([[0.8], [-0.2]])
    x = cold.design(raw(["n1", "n2"], ["A", "B|C"]))  # shares: (1, 0, 0), (0, 1/2, 1/2)
    np.testing.assert_allclose(cold.interaction(users, m, x).numpy(), m.numpy())
    cold.user_offset.assign([0.0, 0.1, -0.3])
    cold.user_affinity.assign([[0.0] * 3, [1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    cold.interaction_scale.assign(0.5)
    cold.affinity_scale.assign(0.25)
    expected = [0.1 + 0.5 * (0.8 - 0.1) + 0.25 * 1.0,
                -0.3 + 0.5 * (-0.2 + 0.3) + 0.25 * (-1.0 + 2.0) / 2]
    np.testing.assert_allclose(cold.interaction(users, m, x).numpy()[:, 0], expected, atol=1e-6)
    index = tf.constant([0, 1, 4])
    np.testing.assert_array_equal(cold.routed_items(index).numpy(), [True, False, False])  # OOV only
    assert cold.width == cold.content_bias.width == len(CATS)
