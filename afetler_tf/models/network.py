"""The two-tower network of AFETLER (and of the models built on it), and its builder.

:class:`AfetlerNetwork` is composed from parts (docs/design.md §3): a query
tower, a candidate tower, a retrieval objective, optionally a ranking head
(with the target-aware attention over the history) and the item-item
channel, and auxiliary losses (:mod:`afetler_tf.models.objectives`).
:func:`build_network` makes the parts a config asks for; ``two_tower`` and
the ablations are presets of that config (:mod:`afetler_tf.presets`). Total
loss (weights from ``Config.afetler`` / ``Config.tower``):

    L = L_retrieval + w_r L_rating + λ (L_u + L_v) + λ_att L_att + λ_CA L_CA
"""

from __future__ import annotations

from typing import Optional, Sequence

import tensorflow as tf
import tensorflow_recommenders as tfrs

from afetler_tf import losses
from afetler_tf.config import Config
from afetler_tf.features import FeatureSpace, ItemFeatures, UserFeatures
from afetler_tf.layers.cold_items import ColdItemPath
from afetler_tf.layers.content import ContentRegression
from afetler_tf.layers.fusion import AdaptiveFusion
from afetler_tf.layers.item_item import ItemItemChannel
from afetler_tf.layers.mcau import MCAU
from afetler_tf.layers.ranking import RankingHead
from afetler_tf.layers.rating_blend import RatingBlend
from afetler_tf.layers.taste import UserTaste
from afetler_tf.layers.towers import HistoryAttention, Tower
from afetler_tf.models import ease
from afetler_tf.models.negative_bank import NegativeBank
from afetler_tf.models.objectives import (CatalogueSoftmax, CategoryAlignmentLoss, InBatchSoftmax, MimicLoss,
                                          check_catalogue_size)

# The ranking stage's inputs: the frozen towers' outputs p_u and p_v, computed
# once per example before it (Afetler._fit_ranking) instead of at every step.
FROZEN_QUERY, FROZEN_CANDIDATE = "frozen_p_u", "frozen_p_v"
LOSS_NAMES = ("retrieval", "rating", "mimic", "attention", "category_alignment")

__all__ = ["AfetlerNetwork", "FROZEN_CANDIDATE", "FROZEN_QUERY", "build_network"]


def build_network(space: FeatureSpace, config: Config, global_mean: float,
                  item_id: bool = True, rated: bool = True) -> "AfetlerNetwork":
    """The network ``config`` describes: every part ``config.afetler`` switches
    on (the base two-tower model has them all off), over the features of ``space``.

    Args:
        space: The feature vocabularies.
        config: ``tower`` sizes and ``afetler`` parts.
        global_mean: The training ratings' mean (the ranking head's offset).
        item_id: Whether the candidate tower reads the item id (content-only towers: False).
        rated: Whether the training data has ratings; without them there is
            no ranking head (nor its target attention): nothing to learn it from.
    """
    cfg, acfg = config.tower, config.afetler
    item_features = ItemFeatures(space.item_ids, space.categories, space.title_vocab,
                                 space.item_numeric, cfg.embedding_dim, use_id=item_id)
    user_features = UserFeatures(space.user_ids, space.user_categorical, space.user_numeric,
                                 cfg.embedding_dim, use_id=cfg.user_id)
    primary = space.primary_categories()  # (n_items + 1,)
    history = _history(space, item_features, config) if acfg.mcau else None
    query_tower = Tower(user_features, cfg.tower_units, history=history,
                        fusion=_fusion(space.user_ids, cfg, acfg), id_key="user_id", name="query_tower")
    candidate_tower = Tower(item_features, cfg.tower_units, fusion=_fusion(space.item_ids, cfg, acfg),
                            id_key="item_id", name="candidate_tower")
    with_head = acfg.ranking_head and rated
    target_attention = (_history(space, item_features, config)
                        if with_head and acfg.target_attention else None)
    ranking_head = None
    if with_head:  # with the fitted extras: the cold-item path (after the GAN), users' taste, the blend
        content = ContentRegression(item_features, len(space.item_ids), name="content_bias")
        blend = (RatingBlend(len(space.user_ids), len(space.item_ids), config.mf.embedding_dim,
                             name="rating_blend") if acfg.rating_blend else None)
        ranking_head = RankingHead(space.user_ids, space.item_ids, cfg.ranking_units, global_mean,
                                   cold_items=ColdItemPath(content, len(space.user_ids), name="cold_items"),
                                   taste=UserTaste(len(space.user_ids), content.width, name="taste"),
                                   blend=blend, name="ranking_head")
    # Filled in closed form after stage 1 (models.item_item_fitting); neutral until then.
    # Its rank is capped at the number of items (an items x items matrix has no more).
    item_item = (ItemItemChannel(space.user_ids, space.item_ids, min(acfg.item_item_rank, len(space.item_ids)),
                                 cfg.tower_units[-1], name="item_item")
                 if acfg.item_item else None)
    if acfg.item_item and len(space.item_ids) > ease.MAX_ITEMS:
        raise ValueError(
            f"afetler.item_item fits its item-item model on a dense users x {len(space.item_ids):,} "
            f"matrix (EASE: a {len(space.item_ids):,} x {len(space.item_ids):,} inverse); above "
            f"{ease.MAX_ITEMS:,} items switch it off: --set afetler.item_item=false")
    if acfg.negatives == "catalogue":
        check_catalogue_size(len(space.item_ids))
        retrieval = CatalogueSoftmax(space.item_features(space.item_ids), config.retrieval_temperature)
    else:
        bank = NegativeBank(acfg.negative_bank, cfg.tower_units[-1]) if acfg.negative_bank else None
        retrieval = InBatchSoftmax(config.retrieval_temperature, bank)
    auxiliary = []
    if acfg.fusion:
        auxiliary.append(MimicLoss(acfg.mimic_weight))
    if acfg.category_alignment_weight:
        auxiliary.append(CategoryAlignmentLoss(acfg.category_alignment_weight, primary,
                                               item_features.id_lookup))
    return AfetlerNetwork(query_tower, candidate_tower, retrieval, ranking_head=ranking_head,
                          target_attention=target_attention, item_item=item_item, auxiliary=auxiliary,
                          rating_weight=cfg.rating_weight, attention_weight=acfg.attention_weight,
                          attention_tau=acfg.attention_tau,
                          joint_target_attention=acfg.target_attention_stage == "joint")


def _history(space, item_features, config):
    acfg = config.afetler
    channels = 3 if acfg.channels == "rating" else max(len(space.categories), 1)
    return HistoryAttention(item_features, space.category_matrix(), space.primary_categories(),
                            MCAU(channels, acfg.attention_units, acfg.num_heads),
                            channels=acfg.channels, like_threshold=config.data.like_threshold)


def _fusion(ids, cfg, acfg):
    if not acfg.fusion:
        return None
    return AdaptiveFusion(cfg.tower_units[-1], vocabulary=list(ids), mode=acfg.fusion_mode)


class AfetlerNetwork(tfrs.models.Model):
    """A query tower and a candidate tower trained by a retrieval objective,
    with an optional ranking head and auxiliary losses.

    Training has two stages (see :meth:`Afetler.fit`): ``stage = "joint"``
    optimises the whole loss; ``stage = "ranking"`` (towers frozen) only the
    ranking terms, so the ranker trains on until the validation rating error
    stops improving without moving the retrieval towers.

    Args:
        query_tower, candidate_tower: :class:`~afetler_tf.layers.towers.Tower` s.
        retrieval: The retrieval objective (:mod:`afetler_tf.models.objectives`).
        ranking_head: Optional :class:`~afetler_tf.layers.ranking.RankingHead`.
        target_attention: Optional :class:`~afetler_tf.layers.towers.HistoryAttention`
            whose output, attending to the target item, feeds the ranking head.
        item_item: Optional :class:`~afetler_tf.layers.item_item.ItemItemChannel`
            (fitted after the joint stage; read by the encoders, not the loss).
        auxiliary: Auxiliary losses of the joint stage, each with a ``name`` in LOSS_NAMES.
        rating_weight: w_r of the rating loss.
        attention_weight, attention_tau: The attention-alignment term's weight and temperature.
        joint_target_attention: Whether ``target_attention`` (and the
            attention-alignment term) also train in the joint stage; if not
            (``afetler.target_attention_stage="ranking"``), the joint stage's
            training steps give the ranking head a zero attention output and
            skip that MCAU, which then trains in the ranking stage (its own
            weights are frozen during the joint stage by ``Afetler``).
    """

    def __init__(self, query_tower: Tower, candidate_tower: Tower, retrieval,
                 ranking_head: Optional[RankingHead] = None,
                 target_attention: Optional[HistoryAttention] = None,
                 item_item: Optional[ItemItemChannel] = None, auxiliary: Sequence = (),
                 rating_weight: float = 1.0, attention_weight: float = 0.0, attention_tau: float = 1.0,
                 joint_target_attention: bool = True):
        super().__init__()
        self.query_tower, self.candidate_tower = query_tower, candidate_tower
        self.target_attention = target_attention
        self.ranking_head = ranking_head
        self.item_item = item_item
        self.retrieval = retrieval
        self.ranking = tfrs.tasks.Ranking(loss=tf.keras.losses.MeanSquaredError(
            reduction=tf.keras.losses.Reduction.NONE))  # (batch,); mean taken in compute_loss
        self.auxiliary = tuple(auxiliary)
        self.rating_weight = rating_weight
        self.attention_weight, self.attention_tau = attention_weight, attention_tau
        self.joint_target_attention = joint_target_attention
        self.stage = "joint"
        self.trackers = {}
        for name in LOSS_NAMES:  # one attribute each, so Keras reports them per epoch
            self.trackers[name] = tf.keras.metrics.Mean(name=f"{name}_loss")
            setattr(self, f"_{name}_tracker", self.trackers[name])

    def rate(self, features, p_u, p_v, training=False, return_attention=False, attend=True):
        """Ranking head rating (batch, 1); with ``return_attention`` also the
        target-aware MCAU weights and what the attention loss needs.

        The target item is seen through its content where its id says
        nothing: its categories come from ``features["categories"]`` (not the
        id-indexed matrix), and a never-trained id gets the ranking head's
        content bias. ``attend`` False (the joint stage without
        ``joint_target_attention``): the head reads a zero attention output,
        and the target-aware MCAU is not run."""
        extras, attention = [], None
        if self.target_attention is not None and not attend:
            extras.append(tf.zeros([tf.shape(p_u)[0], self.target_attention.width], p_u.dtype))
        elif self.target_attention is not None:
            h_t, target_categories, _ = self.target_attention.encode(  # (b, e), (b, K)
                features["item_id"], categories=features.get("categories"))
            o, alpha, beta, details = self.target_attention(features, query=h_t)
            extras.append(o)
            attention = dict(details, alpha=alpha, beta=beta, target_categories=target_categories)
        rating = self.ranking_head((p_u, p_v, features["user_id"], features["item_id"], *extras),
                                   training=training,
                                   item_features=features if "categories" in features else None)
        return (rating, attention) if return_attention else rating

    def rate_pairs(self, features, candidate_encoder=None):
        """(batch,) ratings of raw pair features: the query tower, the candidate
        side (``candidate_encoder``, default the candidate tower) and :meth:`rate`."""
        encoder = candidate_encoder or self.candidate_tower
        return self.rate(features, self.query_tower(features), encoder(features))[:, 0]

    @tf.autograph.experimental.do_not_convert  # plain TF ops: tracing skips the source rewrite
    def compute_loss(self, features, training=False):
        if self.stage == "ranking" and FROZEN_QUERY in features:
            return self._ranking_loss(features, features[FROZEN_QUERY], features[FROZEN_CANDIDATE],
                                      training, {})
        query = self.query_tower.forward(features, training=training)
        terms = {}
        if self.stage == "joint":
            terms["retrieval"], candidate = self.retrieval(features, query["p"], self.candidate_tower,
                                                           training)
            for term in self.auxiliary:
                terms[term.name] = term(features, query, candidate)
        else:
            candidate = self.candidate_tower.forward(features, training=training)
        return self._ranking_loss(features, query["p"], candidate["p"], training, terms)

    def _ranking_loss(self, features, p_u, p_v, training, terms: dict):
        """``terms`` plus the ranking terms (rating, attention alignment), each
        tracked; their sum."""
        if self.ranking_head is not None:
            # Only the joint stage's training steps skip it: a loss computed
            # outside training (e.g. the first call, which creates the
            # variables) runs it.
            attend = self.stage != "joint" or self.joint_target_attention or not training
            rating, attention = self.rate(features, p_u, p_v, training, return_attention=True,
                                          attend=attend)
            terms["rating"] = self.rating_weight * tf.reduce_mean(self.ranking(
                labels=features["rating"], predictions=rating, compute_metrics=False))
            if attention is not None and self.attention_weight:
                terms["attention"] = self.attention_weight * losses.attention_alignment_loss(
                    attention["alpha"], attention["history_categories"],
                    attention["target_categories"], attention["mask"], attention["channel_ids"],
                    tau=self.attention_tau)
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        return tf.add_n(list(terms.values()))
