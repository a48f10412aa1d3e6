"""AfetlerNetwork: the Keras network of AFETLER (and of the models built on it).

Query tower with MCAU + fusion, fused candidate tower, target-aware ranking
head, item-item channel (docs/design.md §3). Total loss (weights from
``Config.afetler`` / ``Config.tower``):

    L = L_retrieval + w_r L_rating + λ (L_u + L_v) + λ_att L_att + λ_CA L_CA

Every component can be switched off in the config (ablations); with all of
them off the network is the base two-tower model.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_recommenders as tfrs

from afetler_tf import losses
from afetler_tf.config import Config
from afetler_tf.features import FeatureSpace, ItemFeatures, UserFeatures
from afetler_tf.layers.content import ContentRegression
from afetler_tf.layers.fusion import AdaptiveFusion
from afetler_tf.layers.item_item import ItemItemChannel
from afetler_tf.layers.mcau import MCAU
from afetler_tf.layers.ranking import RankingHead
from afetler_tf.layers.towers import HistoryAttention, Tower
from afetler_tf.models import ease
from afetler_tf.models.negative_bank import NegativeBank
from afetler_tf.training import with_autograph

# The ranking stage's inputs: the frozen towers' outputs p_u and p_v, computed
# once per example before it (Afetler._fit_ranking) instead of at every step.
FROZEN_QUERY, FROZEN_CANDIDATE = "frozen_p_u", "frozen_p_v"
LOSS_NAMES = ("retrieval", "rating", "mimic", "attention", "category_alignment")
CATALOGUE_SOFTMAX_LIMIT = 50_000  # items; larger catalogues: afetler.negatives="batch"


def retrieval_task(temperature: float) -> tfrs.tasks.Retrieval:
    """In-batch softmax, one loss per query (the caller takes the mean over the
    batch, so loss weights are comparable). Reduction NONE because Keras
    refuses SUM_OVER_BATCH_SIZE outside ``compile`` under a tf.distribute
    strategy; under one, the batch is the replica's share (per-replica negatives)."""
    loss = tf.keras.losses.CategoricalCrossentropy(
        from_logits=True, reduction=tf.keras.losses.Reduction.NONE)
    return tfrs.tasks.Retrieval(loss=loss, temperature=temperature, remove_accidental_hits=True)


class AfetlerNetwork(tfrs.models.Model):
    """Query tower with MCAU + fusion, fused candidate tower, target-aware ranker.

    Training has two stages (see :meth:`Afetler.fit`): ``stage = "joint"``
    optimises the whole loss; ``stage = "ranking"`` (towers frozen) only the
    ranking terms, so the ranker trains on until the validation rating error
    stops improving without moving the retrieval towers.
    """

    def __init__(self, space: FeatureSpace, config: Config, global_mean: float, item_id: bool = True):
        super().__init__()
        cfg, acfg = config.tower, config.afetler
        self._cfg, self._acfg = cfg, acfg
        self._temperature = config.retrieval_temperature
        item_features = ItemFeatures(space.item_ids, space.categories, space.title_vocab,
                                     space.item_numeric, cfg.embedding_dim, use_id=item_id)
        user_features = UserFeatures(space.user_ids, space.user_categorical, space.user_numeric,
                                     cfg.embedding_dim, use_id=cfg.user_id)
        self._primary = tf.constant(space.primary_categories(), tf.int32)  # (n_items + 1,)
        history = self._history(space, item_features, config) if acfg.mcau else None
        self.query_tower = Tower(user_features, cfg.tower_units, history=history,
                                 fusion=self._fusion(space.user_ids, cfg, acfg), id_key="user_id",
                                 name="query_tower")
        self.candidate_tower = Tower(item_features, cfg.tower_units,
                                     fusion=self._fusion(space.item_ids, cfg, acfg), id_key="item_id",
                                     name="candidate_tower")
        self.target_attention = (self._history(space, item_features, config)
                                 if acfg.ranking_head and acfg.target_attention else None)
        # b_v of never-trained items from their content (fitted by the NewItemGAN stage).
        self.ranking_head = (RankingHead(space.user_ids, space.item_ids, cfg.ranking_units,
                                         global_mean, name="ranking_head",
                                         content_bias=ContentRegression(item_features, len(space.item_ids),
                                                                  name="content_bias"))
                             if acfg.ranking_head else None)
        # Filled in closed form after stage 1 (models.item_item); neutral until then.
        # Its rank is capped at the number of items (an items x items matrix has no more).
        self.item_item = (ItemItemChannel(space.user_ids, space.item_ids,
                                          min(acfg.item_item_rank, len(space.item_ids)),
                                          cfg.tower_units[-1], name="item_item")
                          if acfg.item_item else None)
        self.retrieval = retrieval_task(self._temperature)
        self.ranking = tfrs.tasks.Ranking(loss=tf.keras.losses.MeanSquaredError(
            reduction=tf.keras.losses.Reduction.NONE))  # (batch,); mean taken in compute_loss
        self.bank = NegativeBank(acfg.negative_bank, cfg.tower_units[-1]) if acfg.negative_bank else None
        if acfg.item_item and len(space.item_ids) > ease.MAX_ITEMS:
            raise ValueError(
                f"afetler.item_item fits EASE, a dense {len(space.item_ids):,} x {len(space.item_ids):,} "
                f"inverse; above {ease.MAX_ITEMS:,} items switch it off: --set afetler.item_item=false")
        # afetler.negatives="catalogue": raw features of every training item, in
        # the id vocabulary's order (row r = vocabulary index r + 1).
        self._catalogue = None
        if acfg.negatives == "catalogue":
            if len(space.item_ids) > CATALOGUE_SOFTMAX_LIMIT:
                raise ValueError(
                    f"afetler.negatives='catalogue' passes all {len(space.item_ids):,} training items "
                    f"through the item tower at every step; above {CATALOGUE_SOFTMAX_LIMIT:,} items "
                    f"use the in-batch softmax: --set afetler.negatives=batch")
            self._catalogue = {k: tf.constant(v)
                               for k, v in space.item_features(space.item_ids).items()}
        self.stage = "joint"
        self.trackers = {}
        for name in LOSS_NAMES:  # one attribute each, so Keras reports them per epoch
            self.trackers[name] = tf.keras.metrics.Mean(name=f"{name}_loss")
            setattr(self, f"_{name}_tracker", self.trackers[name])

    @staticmethod
    def _history(space, item_features, config):
        acfg = config.afetler
        channels = 3 if acfg.channels == "rating" else max(len(space.categories), 1)
        return HistoryAttention(item_features, space.category_matrix(), space.primary_categories(),
                                MCAU(channels, acfg.attention_units, acfg.num_heads),
                                channels=acfg.channels, like_threshold=config.data.like_threshold)

    @staticmethod
    def _fusion(ids, cfg, acfg):
        if not acfg.fusion:
            return None
        return AdaptiveFusion(cfg.tower_units[-1], vocabulary=list(ids), mode=acfg.fusion_mode)

    def rate(self, features, p_u, p_v, training=False, return_attention=False):
        """Ranking head rating (batch, 1); with ``return_attention`` also the
        target-aware MCAU weights and what the attention loss needs.

        The target item is seen through its content where its id says
        nothing: its categories come from ``features["categories"]`` (not the
        id-indexed matrix), and a never-trained id gets the ranking head's
        content bias."""
        extras, attention = [], None
        if self.target_attention is not None:
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
        catalogue = None
        if self._catalogue is not None and self.stage == "joint":
            catalogue = self.candidate_tower.forward(self._catalogue, training=training)
            candidate = self._candidates_from_catalogue(features, catalogue, training)
        else:
            candidate = self.candidate_tower.forward(features, training=training)
        p_u, p_v = query["p"], candidate["p"]  # (batch, d) each
        terms = {}
        if self.stage == "joint":
            terms["retrieval"] = (self._catalogue_loss(features, p_u, catalogue["p"])
                                  if catalogue is not None
                                  else self._retrieval_loss(features, p_u, p_v, training))
        if self.query_tower.fusion is not None and self.stage == "joint":
            terms["mimic"] = self._acfg.mimic_weight * (
                losses.mimic_loss(query["a"], p_v) + losses.mimic_loss(candidate["a"], p_u))
        if self._acfg.category_alignment_weight and self.stage == "joint":
            terms["category_alignment"] = (self._acfg.category_alignment_weight
                                           * self._category_alignment(features, p_v))
        return self._ranking_loss(features, p_u, p_v, training, terms)

    def _ranking_loss(self, features, p_u, p_v, training, terms: dict):
        """``terms`` plus the ranking terms (rating, attention alignment), each
        tracked; their sum."""
        if self.ranking_head is not None:
            rating, attention = self.rate(features, p_u, p_v, training, return_attention=True)
            terms["rating"] = self._cfg.rating_weight * tf.reduce_mean(self.ranking(
                labels=features["rating"], predictions=rating, compute_metrics=False))
            if attention is not None and self._acfg.attention_weight:
                terms["attention"] = self._acfg.attention_weight * losses.attention_alignment_loss(
                    attention["alpha"], attention["history_categories"],
                    attention["target_categories"], attention["mask"], attention["channel_ids"],
                    tau=self._acfg.attention_tau)
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        return tf.add_n(list(terms.values()))

    def _candidates_from_catalogue(self, features, catalogue, training):
        """The batch's candidate-tower outputs as rows of the catalogue's (the
        tower maps equal features to equal outputs: no dropout in it), so the
        batch's items are not run through the tower a second time; a batch
        with an item outside the training vocabulary (validation) runs it."""
        rows = self.candidate_tower.features.id_lookup(features["item_id"]) - 1  # OOV: -1
        return tf.cond(tf.reduce_all(rows >= 0),
                       lambda: {k: tf.gather(catalogue[k], rows) for k in ("p", "a") if k in catalogue},
                       lambda: {k: v for k, v in self.candidate_tower.forward(
                           features, training=training).items() if k in ("p", "a")})

    def _retrieval_loss(self, features, p_u, p_v, training):
        ids, prob = features["item_id"], features["sampling_probability"]
        candidates = p_v
        if self.bank is not None and training:
            # Cross-batch negatives: earlier batches' candidates (stop-gradient)
            # appended after the batch's own; labels stay on the diagonal.
            bank_v, bank_ids, bank_prob = self.bank.read()
            candidates = tf.concat([p_v, bank_v], 0)
            ids, prob = tf.concat([ids, bank_ids], 0), tf.concat([prob, bank_prob], 0)
            self.bank.write(p_v, features["item_id"], features["sampling_probability"])
        retrieval = with_autograph(self.retrieval)  # compute_loss is traced without it
        return tf.reduce_mean(retrieval(p_u, candidates, compute_metrics=False, candidate_ids=ids,
                                        candidate_sampling_probability=prob))

    def _catalogue_loss(self, features, p_u, p_all):
        """Exact softmax over every training item (``afetler.negatives="catalogue"``;
        ``p_all`` (n, d) the catalogue's candidate vectors): the sampled in-batch
        softmax and its log-Q correction replaced by the quantity they estimate.
        Rows whose item is outside the vocabulary (validation only) are left out
        of the mean."""
        logits = tf.matmul(p_u, p_all, transpose_b=True) / self._temperature  # (batch, n)
        labels = self.candidate_tower.features.id_lookup(features["item_id"]) - 1  # OOV: -1
        known = labels >= 0
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.maximum(labels, 0), logits)
        count = tf.maximum(tf.reduce_sum(tf.cast(known, loss.dtype)), 1.0)
        return tf.reduce_sum(tf.where(known, loss, tf.zeros_like(loss))) / count

    def _category_alignment(self, features, p_v):
        index = self.candidate_tower.features.id_lookup(features["item_id"])
        primary = tf.gather(self._primary, index)  # (batch,), -1 = no category / unknown item
        known = primary >= 0
        return losses.category_alignment_loss(tf.boolean_mask(p_v, known),
                                              tf.boolean_mask(primary, known))
