"""Recommenders: AFETLER, the base two-tower model and the paper's baselines."""

from afetler_tf.config import Config
from afetler_tf.models.base import Recommender


def build_model(config: Config) -> Recommender:
    """Returns the untrained Recommender that ``config.model`` names."""
    if config.model == "popularity":
        from afetler_tf.models.popularity import PopularityRecommender
        return PopularityRecommender(config)
    if config.model == "mf":
        from afetler_tf.models.mf import MatrixFactorization
        return MatrixFactorization(config)
    if config.model == "deepfm":
        from afetler_tf.models.deepfm import DeepFM
        return DeepFM(config)
    if config.model == "two_tower":
        from afetler_tf.models.two_tower import TwoTower
        return TwoTower(config)
    if config.model == "content_tower":
        from afetler_tf.models.content_tower import ContentTower
        return ContentTower(config)
    if config.model in ("random", "category_popularity"):
        from afetler_tf.models.cold_baselines import CategoryPopularity, RandomRecommender
        return RandomRecommender(config) if config.model == "random" else CategoryPopularity(config)
    if config.model == "content_bias":
        from afetler_tf.models.content_bias import ContentBias
        return ContentBias(config)
    if config.model == "ease":
        from afetler_tf.models.ease import Ease
        return Ease(config)
    if config.model == "afetler":
        from afetler_tf.models.afetler import Afetler
        return Afetler(config)
    raise ValueError(f"Unknown model {config.model!r}")


__all__ = ["Recommender", "build_model"]
