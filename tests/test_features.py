"""Feature space and the raw-feature embedding layers."""

import numpy as np
import tensorflow as tf

from afetler_tf.features import MISSING, FeatureSpace, ItemFeatures, UserFeatures


def test_space_vocabularies_come_from_training_only(tiny_data, tiny_split):
    space = FeatureSpace.from_data(tiny_data, tiny_split.train)
    assert space.item_ids == sorted(tiny_split.train.item_id.unique())
    assert set(space.user_categorical) == {"gender", "occupation"}
    assert set(space.user_numeric) == {"age"} and set(space.item_numeric) == {"year"}
    assert space.categories == ["Action", "Comedy", "Drama", "Horror"]


def test_unknown_ids_and_missing_values_get_defined_features(tiny_data, tiny_split):
    space = FeatureSpace.from_data(tiny_data, tiny_split.train)
    users = space.user_features(["u1", "nobody"])
    assert users["gender"][1] == "" and users["age"][1] == MISSING
    items = space.item_features(["i0", "brand-new"])
    assert items["categories"][0] == "Action|Comedy" and items["categories"][1] == ""
    layer = ItemFeatures(space.item_ids, space.categories, space.title_vocab, space.item_numeric, dim=4)
    out = layer(items)
    assert out.shape == (2, 4 * 4)  # id, categories, title, year
    assert np.isfinite(out.numpy()).all()
    user_layer = UserFeatures(space.user_ids, space.user_categorical, space.user_numeric, dim=4)
    assert np.isfinite(user_layer(users).numpy()).all()


def test_category_multi_hot_ignores_empty_and_unknown_names():
    layer = ItemFeatures(["a"], ["Action", "Drama"], dim=2)
    multi_hot = layer.categories_multi_hot(tf.constant(["Action|Drama", "", "Nope|Drama"]))
    np.testing.assert_array_equal(multi_hot.numpy(), [[1, 1], [0, 0], [0, 1]])
    # The mean embedding of no category is the zero vector, not NaN.
    np.testing.assert_array_equal(layer.embed_categories(multi_hot).numpy()[1], [0.0, 0.0])


def test_category_matrix_rows_follow_the_id_lookup(tiny_data, tiny_split):
    space = FeatureSpace.from_data(tiny_data, tiny_split.train)
    matrix, primary = space.category_matrix(), space.primary_categories()
    assert matrix.shape == (len(space.item_ids) + 1, 4) and matrix[0].sum() == 0 and primary[0] == -1
    row = space.item_ids.index("i0") + 1
    np.testing.assert_array_equal(matrix[row], [1, 1, 0, 0])  # Action|Comedy
    assert primary[row] == 0


def test_layers_round_trip_their_config(tiny_data, tiny_split):
    space = FeatureSpace.from_data(tiny_data, tiny_split.train)
    layer = UserFeatures(space.user_ids, space.user_categorical, space.user_numeric, dim=3)
    clone = UserFeatures.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
