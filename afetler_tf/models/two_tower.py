"""The base two-tower model: TFRS retrieval with log-Q correction + ranking head.

AFETLER's network with every AFETLER component switched off (the ``base``
preset, :mod:`afetler_tf.presets`): the same features (user profile; item
id, categories, title, year), no history attention, no adaptive fusion, no
alignment losses, no item-item channel, no NewItemGAN. Catalogue scores
(protocols T, C) are the retrieval dot products <p_u, p_v>; pair scores
(protocol R) are the ranking head's ratings. Trained by the same staged
recipe as AFETLER, so the comparison isolates the components.
"""

from __future__ import annotations

from afetler_tf import presets
from afetler_tf.config import Config
from afetler_tf.models.afetler import Afetler


def two_tower(config: Config) -> Afetler:
    """The base two-tower recommender: AFETLER built with the ``base`` preset."""
    return Afetler(config.replace(afetler=presets.BASE, gan={"enabled": False}), name="two_tower")
