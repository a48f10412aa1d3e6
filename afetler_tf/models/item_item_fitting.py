"""AFETLER's item-item channel: fitting it, and the encoders that serve it.

The channel (:class:`afetler_tf.layers.item_item.ItemItemChannel`) adds a
rank-k item-item score to the towers' retrieval score. After the towers are
trained (stage 1 of :meth:`Afetler.fit`), :func:`fit_item_item`

1. fits an item-item model of the binary training interactions as W V^T at
   rank k = ``afetler.item_item_rank`` (:func:`channel_factors`): EASE
   (``ease.penalty``), its item-item matrix B factored, or iALS (``ials``),
   its item factors folded in linearly (``models.ials``); with
   ``afetler.item_item_model="auto"`` (the default) both, steps 2-3 run for
   each and the one with the better validation NDCG@10 is kept (ties: EASE);
2. sets q_u = x_u W over each user's whole training history (not only the
   ``data.history_length`` latest items MCAU reads), and the moments that put
   both scores on one scale per user;
3. picks the share s on the validation split: the value of ``SHARES`` with the
   best validation NDCG@10 (protocol T over the validation interactions; ties
   go to the smaller share, so 0 (towers only) wins when the channel does not
   help);
4. with ``afetler.popularity_prior``, sets pi_v (each item's log(1 + n_v),
   n_v its training interactions, over their std) and picks beta of
   ``PRIOR_SHARES`` the same way, s kept (0 wins where popularity adds
   nothing).

Why it exists: the towers are a low-rank model trained by a softmax; on
MovieLens-100k a rank-64 EASE alone ranks better than either tower model,
and the sum ranks better than both (BENCHMARKS.md, ablation "no item-item
channel"). EASE and iALS win on different data (iALS where the picks follow
a low-rank taste and nothing else carries it, as on an implicit-only log;
docs/decisions.md). The item-item score stays a dot product, so one index
still serves the whole score.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import tensorflow as tf

from afetler_tf import training
from afetler_tf.data.schema import Dataset, Split
from afetler_tf.models import ease, ials

MODELS = {"auto": ("ease", "ials"), "ease": ("ease",), "ials": ("ials",)}  # afetler.item_item_model
KIND_NAMES = {"ease": "EASE", "ials": "iALS"}
SHARES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0)
PRIOR_SHARES = SHARES  # beta: the same grid (its first version, up to 0.5, chose 0.5 on two logs)


HISTORY = "item_item_history"  # the whole history the channel reads (feature key)
HISTORY_ROWS = "item_item_history_rows"  # that history looked up already: the tables' rows (int)


class ChannelEncoder(tf.keras.Model):
    """Raw features -> a tower's vector with the channel's part appended:
    ``side="query"``: [p_u / rho ‖ s q~_u ‖ beta]; ``side="candidate"``:
    [p_v ‖ v_v ‖ pi_v].

    The query side computes q_u from the features' whole history,
    ``features[HISTORY]`` (batch, L) str, or from its rows in the channel's
    tables, ``features[HISTORY_ROWS]`` (an index that has looked the history
    up already); without either, from
    the table of q~_u keyed by ``user_id`` (as fitted)."""

    def __init__(self, encoder: tf.keras.Model, channel, side: str, **kwargs):
        super().__init__(**kwargs)
        if side not in ("query", "candidate"):
            raise ValueError(f"side must be 'query' or 'candidate', got {side!r}.")
        self.encoder, self.channel, self.side = encoder, channel, side

    def get_config(self) -> dict:  # the encoder and channel are the caller's objects
        return {"side": self.side, "name": self.name}

    def call(self, features, training=False):
        p = self.encoder(features, training=training)
        if self.side == "query":
            if HISTORY_ROWS in features:
                return self.channel.query_from_rows(p, features[HISTORY_ROWS])
            if HISTORY in features:
                return self.channel.query_from_history(p, features[HISTORY])
            return self.channel.query(p, features["user_id"])
        return self.channel.candidate(p, features["item_id"])


def user_rows(channel, interactions: pd.DataFrame) -> np.ndarray:
    """q~_u for every user of the channel's vocabulary, (n_users, k), from
    ``interactions`` (each user's whole history) and the stored W and V."""
    users = pd.Index(channel.user_vocabulary).astype(str)
    items = pd.Index(channel.item_vocabulary).astype(str)
    x = ease.interaction_matrix(interactions, users, items)
    w = channel.history_table.numpy()[1:]  # (items, k)
    v = channel.item_table.numpy()[1:]
    return normalised_queries(x @ w, v)


def normalised_queries(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """q_u / RMS over the items of <q_u, v_v> (rows with RMS 0 stay 0)."""
    rms = np.sqrt(np.einsum("uk,kl,ul->u", q, v.T @ v / max(len(v), 1), q))
    return np.divide(q, rms[:, None], out=np.zeros_like(q), where=rms[:, None] > 0)


def popularity_prior(train: pd.DataFrame, items: pd.Index) -> np.ndarray:
    """pi_v of ``items``: log(1 + n_v) over its std across them, (n,);
    n_v = the item's interactions in ``train`` (zeros if they do not vary)."""
    counts = train["item_id"].astype(str).value_counts().reindex(items.astype(str)).fillna(0.0)
    prior = np.log1p(counts.to_numpy(np.float64))
    std = float(prior.std())
    return prior / std if std > 0 else np.zeros_like(prior)


def channel_factors(kind: str, x_items: np.ndarray, config, rank: int,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """W and V, each (items, ``rank``), of the item-item model ``kind`` fitted on
    the binary (users, items) matrix ``x_items``: ``"ease"``, EASE's B factored
    at rank ``rank``; ``"ials"``, iALS's item factors V = Y and W = Y (Y^T Y +
    mu I)^-1 (``models.ials``) at k = ``ials.factors`` (capped at ``rank``, as
    the channel's rank is at the catalogue's size), zero columns beyond k."""
    if kind == "ease":
        return ease.low_rank(ease.ease_weights(x_items, config.ease.penalty), rank)
    if kind != "ials":
        raise ValueError(f"unknown item-item model {kind!r}: 'ease' or 'ials'.")
    settings = config.ials
    rows, cols = np.nonzero(x_items)
    _, y = ials.als_factors(rows, cols, x_items.shape, min(settings.factors, rank), settings.regularization,
                            settings.alpha, settings.iterations, seed, settings.cg_steps)
    w = ials.linear_fold_in(y, settings.fold_in_ridge)
    pad = ((0, 0), (0, rank - y.shape[1]))
    return np.pad(w, pad), np.pad(y, pad)


def fit_item_item(model, data: Dataset, split: Split, verbose: int = 1) -> dict:
    """Fits ``model.network.item_item`` (steps 1-4 of the module docstring).

    Returns:
        ``{"model", "share", "val_ndcg@10": {share: value}, "models": {model:
        best validation NDCG@10}, "rank", "penalty", "ials"}`` (``model``:
        the fit kept, ``val_ndcg@10`` its shares' figures), with
        ``afetler.popularity_prior`` also ``"prior_share"`` (beta) and
        ``"prior_val_ndcg@10": {beta: value}``.
    """
    channel, config = model.network.item_item, model.config
    kinds = MODELS[config.afetler.item_item_model]
    items = pd.Index(channel.item_vocabulary).astype(str)
    if verbose:  # EASE's inverse grows with the cube of the catalogue: say what is running
        print(f"item-item channel: {' and '.join(KIND_NAMES[k] for k in kinds)} over "
              f"{len(items):,} items, rank {channel.rank}, then {len(SHARES)} shares scored on "
              f"validation ...", flush=True)
    x_items = ease.interaction_matrix(split.train, pd.Index(channel.user_vocabulary).astype(str), items)
    tower = model.network.candidate_tower
    p_v = training.batched(lambda f: tower(f), model.space.item_features(list(items)))  # (n, d)
    channel.set_prior(popularity_prior(split.train, items) if config.afetler.popularity_prior
                      else np.zeros(len(items)), share=0.0)
    validation_ndcg = training.ValidationNdcg(data, split)  # the split's part once, for every check
    moment = p_v.T @ p_v / len(p_v)
    fits = {}
    for kind in kinds:
        w, v = channel_factors(kind, x_items, config, channel.rank, config.train.seed)
        channel.assign(normalised_queries(x_items @ w, v), v, w, moment, share=0.0)
        fits[kind] = _Fit(w, v, _ShareSearch(model, p_v.shape[1]))
        for share in SHARES:
            fits[kind].search.share = share
            fits[kind].scores[share] = validation_ndcg(fits[kind].search)
    kind = max(kinds, key=lambda k: (round(fits[k].best_score, 6), -kinds.index(k)))
    kept = fits[kind]
    if kind != kinds[-1]:  # the channel holds the last fit: put the kept one back
        channel.assign(normalised_queries(x_items @ kept.w, kept.v), kept.v, kept.w, moment, share=0.0)
    best, scores, search = kept.share, kept.scores, kept.search  # its vectors were cached at its fit
    channel.set_share(best)
    if verbose:
        print(f"item-item channel: {KIND_NAMES[kind]}, rank {channel.rank}, share {best} "
              f"(validation NDCG@10 {scores[0.0]:.4f} towers only -> {scores[best]:.4f}"
              + "".join(f"; {KIND_NAMES[k]} {fits[k].best_score:.4f}" for k in kinds if k != kind)
              + ")", flush=True)
    result = {"model": kind, "share": best, "val_ndcg@10": {str(s): v for s, v in scores.items()},
              "models": {k: fits[k].best_score for k in kinds},
              "rank": channel.rank, "penalty": config.ease.penalty,
              "ials": dataclasses.asdict(config.ials)}
    if config.afetler.popularity_prior:
        search.share = best
        priors = {0.0: scores[best]}
        for beta in PRIOR_SHARES[1:]:
            search.prior_share = beta
            priors[beta] = validation_ndcg(search)
        beta = max(PRIOR_SHARES, key=lambda b: (round(priors[b], 6), -b))
        channel.set_prior(share=beta)
        if verbose:
            print(f"popularity prior: beta {beta} (validation NDCG@10 {priors[0.0]:.4f} -> "
                  f"{priors[beta]:.4f})", flush=True)
        result.update(prior_share=beta, **{"prior_val_ndcg@10": {str(b): v for b, v in priors.items()}})
    return result


@dataclasses.dataclass
class _Fit:
    """One candidate fit of the channel: its factors, the share search over its
    vectors and the validation NDCG@10 of each share."""

    w: np.ndarray
    v: np.ndarray
    search: "_ShareSearch"
    scores: dict = dataclasses.field(default_factory=dict)

    @property
    def share(self) -> float:  # ties go to the smaller share (0: towers only)
        return max(self.scores, key=lambda s: (round(self.scores[s], 6), -s))

    @property
    def best_score(self) -> float:
        return self.scores[self.share]


class _ShareSearch:
    """The recommender :func:`fit_item_item` evaluates at each share s and
    prior share beta (``share``, ``prior_share``, set by the caller), from one
    pass of the encoders: the retrieval score is linear in both,
    <p_u / rho, p_v> + s <q~_u, v_v> + beta pi_v, so the vectors are computed
    once at s = beta = 1 and only the sum is formed per pair of shares (the
    caller sets pi_v before the search)."""

    predicts_ratings = False

    def __init__(self, model, tower_dim: int):
        self.name = f"{model.name} (item-item share search)"
        self._model, self._d, self.share, self.prior_share = model, tower_dim, 0.0, 0.0
        self._vectors = {}  # (side, ids) -> vectors at s = beta = 1

    def _at_share_one(self, side: str, ids) -> np.ndarray:
        key = (side, tuple(ids))
        if key not in self._vectors:
            channel = self._model.network.item_item
            fitted = float(channel.share.numpy()), float(channel.prior_share.numpy())
            channel.set_share(1.0)
            channel.set_prior(share=1.0)
            try:
                encode = self._model.user_vectors if side == "user" else self._model.item_vectors
                self._vectors[key] = encode(ids)
            finally:
                channel.set_share(fitted[0])
                channel.set_prior(share=fitted[1])
        return self._vectors[key]

    def catalogue_scorer(self, item_ids):
        v = self._at_share_one("item", item_ids)
        prior = v[:, -1][None, :]  # (1, n): pi_v
        items = np.ascontiguousarray(v[:, :-1].T)  # (d + k, n): [p_v ‖ v_v], one matmul a batch

        def score(user_ids):
            u = self._at_share_one("user", user_ids)[:, :-1].copy()  # [p_u / rho ‖ q~_u]
            u[:, self._d:] *= self.share
            out = u @ items
            out += self.prior_share * prior
            return out
        return score
