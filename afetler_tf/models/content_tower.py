"""Content-only two-tower baseline for cold items (protocol C).

The base two-tower model (no MCAU, fusion, alignment losses) whose item
tower sees only content (categories, title tokens, year and other numeric
attributes), never the item id, and no NewItemGAN: a new item is embedded by
the very same tower as a warm one. It is the natural reference for the
generator: does adversarial + similarity + retrieval training of a separate
content -> vector map beat simply training the item tower on content alone?
The ranking head keeps its id-keyed item bias, which is 0 (the OOV row) for
items unseen in training.
"""

from __future__ import annotations

from afetler_tf import presets
from afetler_tf.config import Config
from afetler_tf.models.afetler import Afetler


def content_tower(config: Config) -> Afetler:
    """The two-tower recommender with an id-free, content-only item tower: the
    ``base`` preset, no NewItemGAN, the item id left out of the item tower."""
    return Afetler(config.replace(afetler=presets.BASE, gan={"enabled": False}),
                   name="content_tower", item_id=False)
