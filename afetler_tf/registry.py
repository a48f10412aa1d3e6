"""Every model ``python -m afetler_tf.fit --model NAME`` knows, in one place.

NAME -> "module:builder": a Recommender class, or a function that builds one
(the two-tower presets over AFETLER's network);
the module is imported only when the model is built (``models.build_model``),
so reading this table (the config does, to check ``model``) imports no
TensorFlow.
"""

MODELS = {
    "afetler": "afetler_tf.models.afetler:Afetler",
    "two_tower": "afetler_tf.models.two_tower:two_tower",
    "mf": "afetler_tf.models.mf:MatrixFactorization",
    "deepfm": "afetler_tf.models.deepfm:DeepFM",
    "popularity": "afetler_tf.models.popularity:PopularityRecommender",
    "random": "afetler_tf.models.cold_baselines:RandomRecommender",
    "category_popularity": "afetler_tf.models.cold_baselines:CategoryPopularity",
    "content_tower": "afetler_tf.models.content_tower:content_tower",
    "content_bias": "afetler_tf.models.content_bias:ContentBias",
    "ease": "afetler_tf.models.ease:Ease",
}
