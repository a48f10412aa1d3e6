"""AFETLER, the recommender: fitting its stages, scoring, saving (docs/design.md §3).

The network itself (towers, ranking head, item-item channel, losses) is
:class:`afetler_tf.models.network.AfetlerNetwork`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from afetler_tf import training
from afetler_tf.config import Config
from afetler_tf.data import Dataset, HistoryIndex, Split, make_histories, user_histories
from afetler_tf.features import FeatureSpace
from afetler_tf.layers.item_item import PRIOR_WEIGHTS
from afetler_tf.layers.rating_blend import BLEND_WEIGHTS
from afetler_tf.layers.towers import HISTORY_INDEX
from afetler_tf.models import cold_path, item_item_fitting, new_items
from afetler_tf.models.base import Recommender
from afetler_tf.models.gan import NewItemTower
from afetler_tf.models.network import FROZEN_CANDIDATE, FROZEN_QUERY, build_network
from afetler_tf.models.rating_blend import fit_rating_blend
from afetler_tf.models.taste import fit_user_taste
from afetler_tf.training.stages import FitContext, Stage, run_stages

ROWS_AT_ONCE = 65536  # history rows hashed per look-up call (examples)

class Afetler(Recommender):
    """The AFETLER recommender (Recommender interface, see models.base).

    Pair scores (protocol R) are the ranking head's ratings; catalogue scores
    (protocols T, C) are the retrieval scores <p_u, p_v>, plus the item-item
    channel's score with ``afetler.item_item`` (:attr:`query_encoder`,
    :attr:`retrieval_encoder`). With ``gan.enabled``
    p_v of an item with fewer than ``gan.min_interactions`` training
    interactions (unknown ids included) comes from the NewItemGAN generator
    (see :attr:`candidate_encoder`), in both paths.
    """

    name = "afetler"
    predicts_ratings = True

    def __init__(self, config: Config, name: str = "afetler", item_id: bool = True):
        """``name``: the model's name (a preset's, e.g. "two_tower"); ``item_id``:
        embed the item id in the candidate tower (off: a content-only tower)."""
        super().__init__(config)
        self.name, self.item_id = name, item_id
        if (self.name == "afetler" and config.afetler.temperature is not None
                and config.tower.temperature != type(config.tower)().temperature):
            warnings.warn(f"tower.temperature={config.tower.temperature} is the base two-tower's; "
                          f"AFETLER uses afetler.temperature={config.afetler.temperature} (set that, "
                          f"or afetler.temperature=null to use tower.temperature).")
        self.network = None
        self.space = None
        self.gan, self.gan_history = None, None
        self._encoder = self._retrieval_encoder = self._query_encoder = None
        self.predicts_ratings = config.afetler.ranking_head

    @property
    def sampling_probabilities(self):
        """Each training item's share of the training interactions (the log-Q
        correction's sampling probabilities; examples carry them)."""
        return self._probabilities

    @property
    def history_log(self) -> pd.DataFrame:
        """The interactions the query side reads as the users' histories (the
        training part, plus what ``add_history`` revealed since)."""
        return self._history_source

    @property
    def uses_history(self) -> bool:
        """Whether the query side reads the user's history: MCAU, the ranking
        head's target attention, or the item-item channel (whose q_u is
        computed from the history in the query model)."""
        acfg = self.config.afetler
        return acfg.mcau or (acfg.ranking_head and acfg.target_attention) or acfg.item_item

    def fit(self, data: Dataset, split: Split, verbose: int = 1, checkpoint_dir=None,
            skip_stages: Sequence[str] = ()) -> dict:
        """Runs :meth:`stages` in order (``afetler_tf.training.stages``); returns their
        histories, the later ones prefixed ``ranking/``, ``gan/``, ``taste/`` and ``blend/``
        (the item-item channel's under ``item_item``). With ``checkpoint_dir``
        each training stage is resumable per epoch in its own folder
        (``joint/``, ``ranking/``, ``gan/``, ``rating_blend/``;
        ``training.checkpoints.StageCheckpoint``).
        ``skip_stages``: stages not to run (their names; for experiments such
        as a tuning trial judged on retrieval only: the model is then not one
        to deploy)."""
        training.set_seed(self.config.train.seed)
        self._prepare(data, split)
        context = FitContext(self, data, split, self.examples(split.train, self._probabilities),
                             self.examples(split.validation, self._probabilities), verbose,
                             checkpoint_dir, skip=frozenset(skip_stages))
        with training.collector_skips_what_exists():
            history = run_stages(self.stages(), context)
        self._serve_whole_log(split)
        return history

    def stages(self) -> list:
        """AFETLER's fit, in order (docs/design.md §3.7):

        1. ``joint``: everything trained jointly, early-stopped on the
           validation NDCG@10 (protocol T on the validation set; the
           validation loss is not computed);
        2. ``item_item`` (``afetler.item_item``): the item-item channel fitted
           in closed form (``models.item_item``);
        3. ``ranking`` (a ranking head, rated data): the towers frozen, the
           ranking terms trained on, early-stopped on the validation rating loss;
        4. ``gan`` (``gan.enabled``): the NewItemGAN against the frozen towers,
           then the ranker's cold-item path (:meth:`fit_new_item_gan`);
        5. ``taste`` (``afetler.user_taste``, a ranking head, rated data): the
           users' taste for content on the ranker's residuals (``models.taste``);
        6. ``rating_blend`` (``afetler.rating_blend``, a ranking head, rated
           data): a biased MF trained on the ratings, blended with the
           ranker's rating by weights fitted on validation (``models.rating_blend``).
        """
        def rated(context):
            return self.network.ranking_head is not None and context.data.has_ratings

        return [Stage("joint", self._fit_joint),
                Stage("item_item", lambda c: item_item_fitting.fit_item_item(self, c.data, c.split, c.verbose),
                      when=lambda c: self.network.item_item is not None, prefix=None),
                Stage("ranking", self._fit_ranking, when=rated, prefix="ranking/"),
                Stage("gan", lambda c: self.fit_new_item_gan(c.split, c.verbose, c.stage_dir("gan"),
                                                             train_examples=c.train),
                      when=lambda c: self.config.gan.enabled, prefix="gan/"),
                Stage("taste", self._fit_taste, prefix="taste/",
                      when=lambda c: rated(c) and self.config.afetler.user_taste),
                Stage("rating_blend", self._fit_rating_blend, prefix="blend/",
                      when=lambda c: rated(c) and self.network.ranking_head.blend is not None)]

    def _fit_joint(self, context: FitContext) -> dict:
        ranking_check = training.ValidationRanking(self, context.data, context.split)
        attention = self.network.target_attention
        if attention is not None:  # its own weights train in the stage that runs it
            attention.train_own_weights(self.network.joint_target_attention)
        try:
            return training.fit_model(self.network, context.train, context.validation, self.config.train,
                                      context.verbose, context.stage_dir("joint"), monitor="val_ndcg@10",
                                      prefix="joint ", callbacks=[ranking_check], validation_loss=False)
        finally:
            if attention is not None:
                attention.train_own_weights(True)

    def _fit_ranking(self, context: FitContext) -> dict:
        self._freeze_towers(True)
        self.network.stage = "ranking"
        stage2 = dataclasses.replace(self.config.train,
                                     learning_rate=self.config.train.ranking_learning_rate)
        try:
            return training.fit_model(self.network, self._with_frozen_towers(context.train),
                                      self._with_frozen_towers(context.validation), stage2,
                                      context.verbose, context.stage_dir("ranking"),
                                      monitor="val_rating_loss", prefix="ranking ", built=True)
        finally:
            self.network.stage = "joint"
            self._freeze_towers(False)

    def _with_frozen_towers(self, examples: dict) -> dict:
        """``examples`` with the frozen towers' p_u and p_v, computed once for the
        ranking stage (the towers map equal features to equal outputs): p_u
        per example (its history leaves the example's own item out), p_v once
        per item (an example's candidate features are its item's)."""
        net = self.network
        _, first, rows = np.unique(examples["item_id"], return_index=True, return_inverse=True)
        items = {key: value[first] for key, value in examples.items()}  # one example per item
        return dict(examples, **{
            FROZEN_QUERY: training.batched(self.compiled(net.query_tower), examples),
            FROZEN_CANDIDATE: training.batched(self.compiled(net.candidate_tower), items)[rows.reshape(-1)]})

    def _fit_taste(self, context: FitContext) -> dict:
        taste = fit_user_taste(self, context.split, train_examples=context.train)
        if context.verbose and "val_rmse" in taste:
            print(f"user taste: share {taste['taste_scale']:.2f}, validation rating RMSE "
                  f"{taste['val_rmse_without']:.4f} -> {taste['val_rmse']:.4f}", flush=True)
        return taste

    def _fit_rating_blend(self, context: FitContext) -> dict:
        blend = fit_rating_blend(self, context.data, context.split, verbose=context.verbose,
                                 checkpoint_dir=context.stage_dir("rating_blend"))
        if context.verbose and "val_rmse_crossfit" in blend:
            weights = ", ".join(f"{blend[key]:.2f}" for key in ("blend_intercept", "blend_ranker", "blend_factor"))
            print(f"rating blend: {'used' if blend['blend_used'] else 'not used'} (weights {weights}), "
                  f"validation rating RMSE {blend['val_rmse_without']:.4f} -> "
                  f"{blend['val_rmse_crossfit']:.4f} cross-fitted", flush=True)
        return blend

    def _serve_whole_log(self, split: Split) -> None:
        """A "none" split is a deployed model's: once fitted, the users'
        histories are their whole logs (the validation carve-out included),
        as the served requests carry them and as recommend excludes them."""
        if split.kind == "none" and not split.validation.empty:
            self.add_history(split.validation)

    def fit_new_item_gan(self, split: Split, verbose: int = 1, checkpoint_dir=None,
                         train_examples: Optional[dict] = None) -> dict:
        """Trains the NewItemGAN on the trained (frozen) towers; returns its history.

        With ``checkpoint_dir`` the stage is resumable per epoch (generator,
        discriminator and both optimizers), like the other stages; a finished
        one is skipped and its weights restored (:func:`new_items.fit_gan`).
        Then, on rated data, the ranker's cold-item path is calibrated
        (:func:`cold_path.fit_cold_path`; ``train_examples``: :meth:`examples`
        of ``split.train`` where the caller has them)."""
        history = new_items.fit_gan(self, split, verbose, checkpoint_dir)
        history.update(cold_path.fit_cold_path(self, split, train_examples))
        self.gan_history = history
        return history

    def attach_gan(self, gan) -> None:
        """Embeds new items with ``gan``'s generator from now on (None: tower only)."""
        self.gan, self._encoder, self._retrieval_encoder = gan, None, None
        self._functions = {}  # (encoder, rate) -> training.Compiled (:meth:`compiled`)

    @property
    def candidate_encoder(self) -> tf.keras.Model:
        """Raw candidate features (batch,) -> p_v (batch, d): the candidate tower,
        or a NewItemTower choosing tower vs generator per item inside the graph."""
        if self.gan is None:
            return self.network.candidate_tower
        if self._encoder is None:
            self._encoder = NewItemTower(self.network.candidate_tower, self.gan.generator,
                                         self._counts, self.config.gan.min_interactions)
        return self._encoder

    @property
    def query_encoder(self) -> tf.keras.Model:
        """Raw user features -> the retrieval query vector: p_u, or with the
        item-item channel [p_u / rho ‖ s q~_u] (``layers.item_item``)."""
        channel = self.network.item_item
        if channel is None:
            return self.network.query_tower
        if self._query_encoder is None:
            self._query_encoder = item_item_fitting.ChannelEncoder(self.network.query_tower, channel, "query")
        return self._query_encoder

    @property
    def retrieval_encoder(self) -> tf.keras.Model:
        """Raw item features -> the vector the index holds: :attr:`candidate_encoder`'s
        p_v, with the item-item channel's v_v appended where it is on."""
        channel = self.network.item_item
        if channel is None:
            return self.candidate_encoder
        if self._retrieval_encoder is None:
            self._retrieval_encoder = item_item_fitting.ChannelEncoder(self.candidate_encoder, channel,
                                                               "candidate")
        return self._retrieval_encoder

    def add_items(self, items: pd.DataFrame) -> None:
        """Adds content-only items (canonical item table) to the catalogue the
        model can embed; their vectors come from the generator."""
        if self.gan is None:
            raise ValueError("This model has no trained NewItemGAN (gan.enabled was off or the run "
                             "predates it): it cannot embed new items. Retrain with gan.enabled.")
        self.space = new_items.extend_catalogue(self.space, items)

    def _freeze_towers(self, frozen: bool) -> None:
        self.network.query_tower.trainable = not frozen
        self.network.candidate_tower.trainable = not frozen

    def _prepare(self, data: Dataset, split: Split) -> None:
        self.space = FeatureSpace.from_data(data, split.train)
        self._probabilities = training.sampling_probabilities(split.train)
        self._set_history(split.train)
        self._temporal = split.kind == "temporal"
        self._counts = split.train["item_id"].astype(str).value_counts().to_dict()
        mean = float(split.train["rating"].mean()) if data.has_ratings else 1.0
        self.network = build_network(self.space, self.config, mean, item_id=self.item_id,
                                     rated=data.has_ratings)
        # Implicit data: no ranking head (nothing to learn it from), so no ratings either.
        self.predicts_ratings = self.network.ranking_head is not None
        self._query_encoder = None
        self.attach_gan(None)

    def _set_history(self, interactions: pd.DataFrame) -> None:
        """The interactions the query side reads from now on (its index is
        built again, once, when next needed)."""
        self._history_source, self._history_index = interactions, None

    def examples(self, frame: pd.DataFrame, probabilities) -> dict:
        out = training.pair_examples(self.space, frame, probabilities)
        if self.uses_history:
            hist = make_histories(self._history_source, frame,
                                  max_len=self.config.data.history_length, temporal=self._temporal)
            out.update(history_item_ids=hist["history_item_ids"],
                       history_ratings=hist["history_ratings"])
            out[HISTORY_INDEX] = self._history_rows(hist["history_item_ids"])
        return out

    def _history_rows(self, ids: np.ndarray) -> np.ndarray:
        """The history ids' rows in the item lookup, (n, L) int32, looked up
        once for every epoch and for both attention units (the query tower's
        MCAU and the ranker's target attention read the same history), instead
        of hashing each batch's strings in every step, twice."""
        net = self.network
        history = getattr(net.query_tower, "history", None)
        history = net.target_attention if history is None else history
        if history is None or ids.size == 0:  # only the item-item channel reads the history
            return np.zeros(ids.shape, np.int32)
        rows = [history.item_features.id_lookup(tf.constant(ids[i:i + ROWS_AT_ONCE])).numpy()
                for i in range(0, len(ids), ROWS_AT_ONCE)]
        return np.concatenate(rows).astype(np.int32)

    def add_history(self, interactions: pd.DataFrame) -> None:
        """Appends newly revealed interactions to the users' histories (online
        learning, docs/design.md §5); vocabularies stay as trained (a new user's id
        goes OOV, their history is read in full).

        Raises:
            ValueError: An item id the model's catalogue does not hold (neither
                in the run's data nor added with ``add_items``): data that does
                not belong to this run, named rather than silently remapped.
        """
        unknown = pd.Index(interactions["item_id"].astype(str).unique()).difference(
            self.space.items.index.astype(str))
        if len(unknown):
            raise ValueError(f"add_history: {len(unknown)} item id(s) are not in this model's "
                             f"catalogue, e.g. {list(unknown[:5])}: the interactions belong to other "
                             f"data than the run was trained on. Add new items first (add_items), "
                             f"or fit a new run on the new data.")
        columns = list(self._history_source.columns)
        self._set_history(pd.concat([self._history_source, interactions[columns]], ignore_index=True))
        channel = self.network.item_item
        if channel is not None:  # q_u reads the whole history: recomputed (W, V stay as fitted)
            channel.user_table.assign(np.vstack([np.zeros((1, channel.rank), np.float32),
                                                 item_item_fitting.user_rows(channel, self._history_source)]))

    def pair_frame(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> pd.DataFrame:
        """Unlabelled (user, item) pairs as of now (after every training event)."""
        return pd.DataFrame({"user_id": np.asarray(user_ids, object),
                             "item_id": np.asarray(item_ids, object),
                             "rating": np.nan, "timestamp": np.iinfo(np.int64).max})

    def compiled(self, encoder: tf.keras.Model, rate: bool = False) -> training.Compiled:
        """``encoder`` (or, with ``rate``, the ranking head's rating of pairs with
        ``encoder`` as the candidate side: :meth:`AfetlerNetwork.rate_pairs`) as
        one compiled function, kept while the network and encoders stay."""
        key = (encoder, rate)
        if key not in self._functions:
            net = self.network
            self._functions[key] = training.Compiled(
                (lambda f: net.rate_pairs(f, encoder)) if rate else (lambda f: encoder(f)))
        return self._functions[key]

    def rate_pairs(self, features: dict, encoder=None) -> np.ndarray:
        """The ranking head's ratings of raw pair features (``examples``), (n,);
        ``encoder``: the candidate side (default :attr:`candidate_encoder`)."""
        return training.batched(self.compiled(encoder or self.candidate_encoder, rate=True), features)

    def user_vectors(self, user_ids: Sequence[str]) -> np.ndarray:
        """Retrieval query vectors, (n, d) (or (n, d + k) with the item-item
        channel), from the profile and training history (:attr:`query_encoder`)."""
        return training.batched(self.compiled(self.query_encoder), self._user_features(user_ids))

    def tower_user_vectors(self, user_ids: Sequence[str]) -> np.ndarray:
        """p_u, the query tower's own output, (n, d)."""
        return training.batched(self.compiled(self.network.query_tower), self._user_features(user_ids))

    def _user_features(self, user_ids: Sequence[str]) -> dict:
        """The query side's features: profile, the latest ``data.history_length``
        interactions (MCAU) and, with the item-item channel, the whole history
        (``item_item_fitting.HISTORY``), as a served request carries them."""
        feats = self.space.user_features(user_ids)
        if self._history_index is None:
            self._history_index = HistoryIndex(self._history_source)
        index = self._history_index
        if self.uses_history:
            hist = user_histories(index, user_ids, max_len=self.config.data.history_length)
            feats.update(history_item_ids=hist["history_item_ids"],
                         history_ratings=hist["history_ratings"])
        if self.network.item_item is not None:
            ids = np.asarray(user_ids, object).astype(str)
            longest = int(index.counts(ids).max()) if len(ids) else 0
            whole = user_histories(index, ids, max_len=max(longest, 1))
            feats[item_item_fitting.HISTORY] = whole["history_item_ids"]
        return feats

    def item_vectors(self, item_ids: Sequence[str]) -> np.ndarray:
        """The index's item vectors, (n, d) (or (n, d + k) with the item-item
        channel), through :attr:`retrieval_encoder`."""
        return new_items.vectors_of(self, item_ids)

    def score(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        if self.network.ranking_head is None:
            return np.sum(self.user_vectors(user_ids) * self.item_vectors(item_ids), axis=1)
        return self.rate_pairs(self.examples(self.pair_frame(user_ids, item_ids), self._probabilities))

    def score_all(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        return self.user_vectors(user_ids) @ self.item_vectors(item_ids).T

    def catalogue_scorer(self, item_ids: Sequence[str]):
        """The items' vectors computed once; users are scored against them by a dot product."""
        vectors = self.item_vectors(item_ids)
        return lambda user_ids: self.user_vectors(user_ids) @ vectors.T

    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.network.save_weights(os.path.join(directory, "weights"))
        if self.gan is not None:
            new_items.save_gan(self.gan, directory, self.gan_history)

    def load(self, directory: str, data: Dataset, split: Split) -> None:
        self._prepare(data, split)
        status = self.network.load_weights(os.path.join(directory, "weights"))
        status.expect_partial()  # what the checkpoint holds beyond the network (optimizer slots)
        try:  # every weight that exists before the first call (the fitted extras) has a saved value
            status.assert_existing_objects_matched()
        except AssertionError as e:
            run = os.path.dirname(os.path.normpath(directory))
            missing = sorted({name.split(":")[0] for name in re.findall(r"<tf.Variable '([^']+)'", str(e))})
            count = re.search(r"Found (\d+) Python objects", str(e))
            if missing and {name.rsplit("/", 1)[-1] for name in missing} <= set(PRIOR_WEIGHTS + BLEND_WEIGHTS):
                missing = []  # written before the popularity prior or the rating blend: off, as fitted
        else:
            missing = []
        if missing:
            raise ValueError(
                f"{directory}: the saved weights do not fit this version's network (no saved value "
                f"for {count.group(1) if count else 'some'} of its weights, e.g. {', '.join(missing)}): "
                f"the run was written by an earlier "
                f"afetler_tf with another layout. Fit it again: python -m afetler_tf.fit --config "
                f"{os.path.join(run, 'config.json')} --out {run} --overwrite") from None
        if self.network.item_item is not None:  # N is derived: also right for older checkpoints
            self.network.item_item.refresh_item_moment()
        self.attach_gan(new_items.load_gan(self, directory) if self.config.gan.enabled else None)
        self._serve_whole_log(split)

    def explain(self, user_id: str, item_ids: Sequence[str]) -> list[dict]:
        """Which history items (and channels) the target-aware attention leaned on.

        Returns:
            One dict per item: ``item_id``, ``rating`` and ``history``, a list
            of (history item, channel, weight) sorted by weight, weight =
            alpha_cj * beta_c (the item's share of the output o).
        """
        if self.network.target_attention is None:
            raise ValueError("This model has no target-aware attention to explain "
                             "(afetler.ranking_head or afetler.target_attention is off, or the "
                             "data has no ratings).")
        feats = self.examples(self.pair_frame([user_id] * len(item_ids), item_ids),
                              self._probabilities)
        net = self.network
        p_u, p_v = net.query_tower(feats), self.candidate_encoder(feats)
        rating, att = net.rate(feats, p_u, p_v, return_attention=True)
        share = (att["alpha"] * att["beta"][:, :, None]).numpy()  # (n, C, L)
        return [self._explanation(item, float(rating[i, 0]), share[i], att["channel_ids"][i].numpy(),
                                  feats["history_item_ids"][i]) for i, item in enumerate(item_ids)]

    def _explanation(self, item, rating, share, channel_ids, history, top: int = 3) -> dict:
        weights = share.sum(axis=0)  # (L,): each position lies in one channel
        order = [j for j in np.argsort(-weights) if history[j] != ""][:top]
        names = ["liked", "neutral", "disliked"] if self.config.afetler.channels == "rating" \
            else self.space.categories
        return {"item_id": item, "rating": rating,
                "history": [(history[j], names[int(channel_ids[j])] if channel_ids[j] >= 0 else "",
                             float(weights[j])) for j in order]}
