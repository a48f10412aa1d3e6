"""The base two-tower model: TFRS retrieval with log-Q correction + ranking head.

AFETLER's network with every AFETLER component switched off: the same
features (user profile; item id, categories, title, year), no history
attention, no adaptive fusion, no alignment losses, no NewItemGAN. Catalogue scores
(protocols T, C) are the retrieval dot products <p_u, p_v>; pair scores
(protocol R) are the ranking head's ratings. Trained by the same two-stage
recipe as AFETLER, so the comparison isolates the components.
"""

from __future__ import annotations

from afetler_tf.config import Config
from afetler_tf.models.afetler import Afetler

BASE_COMPONENTS = {"fusion": False, "mcau": False, "target_attention": False,
                   "attention_weight": 0.0, "category_alignment_weight": 0.0,
                   "ranking_head": True, "negative_bank": 0, "negatives": "batch", "item_item": False,
                   "temperature": None}  # None: tower.temperature


class TwoTower(Afetler):
    """The base two-tower recommender."""

    name = "two_tower"

    def __init__(self, config: Config):
        super().__init__(config.replace(afetler=BASE_COMPONENTS, gan={"enabled": False}))
