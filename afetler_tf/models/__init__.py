"""Recommenders: AFETLER, the base two-tower model and the paper's baselines."""

import importlib

from afetler_tf.config import Config
from afetler_tf.models.base import Recommender
from afetler_tf.registry import MODELS


def build_model(config: Config) -> Recommender:
    """Returns the untrained Recommender that ``config.model`` names (``registry.MODELS``)."""
    if config.model not in MODELS:
        raise ValueError(f"Unknown model {config.model!r}")
    module, name = MODELS[config.model].split(":")
    return getattr(importlib.import_module(module), name)(config)


__all__ = ["Recommender", "build_model"]
