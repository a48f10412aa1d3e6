"""Public models a user would pick instead of AFETLER, from their own packages, as
:class:`afetler_tf.models.base.Recommender` scorers: benchmark extras of the ``peers``
suite (:mod:`experiments.peers`; ``pip install cornac torch`` or the ``bench`` extra),
not ``afetler_tf`` models.

Every peer sees the binary user x item matrix of ``split.train`` (a repeat counts
once, as for EASE and iALS in ``afetler_tf``; Cornac's BiVAE binarises its input
itself) and nothing else; after the fit it holds the dense (train users x train
items) score matrix, so :meth:`score_all` is a lookup (fine at MovieLens-100k's
943 x 1,682; not meant for large catalogues). An unknown user or item scores 0,
as in ``afetler_tf``'s EASE and :mod:`experiments.ials`, so the evaluation
(:func:`afetler_tf.evaluation.evaluate`, protocol T) treats every row alike.

Hyperparameters are chosen on the validation carve-out only (NDCG@10 of
protocol T on ``split.validation``, :func:`afetler_tf.training.validation_ndcg`;
the test split is never read): each candidate of the peer's grid is fitted on
``split.train`` and scored on validation, then the best is refitted on
``split.train`` (the same data every candidate saw). A peer with one candidate
(BiVAE with fixed published settings) is fitted once; its validation NDCG@10
is still recorded.

Peers (``PEERS``):

  cornac_bivae            Cornac BiVAECF with Microsoft Recommenders' BiVAE
                          deep-dive settings on MovieLens-100k (k=50, encoder [100],
                          tanh, Poisson likelihood, 500 epochs, batch 128, lr 0.001)
  cornac_bivae_benchmark  the same model with the settings of Microsoft Recommenders'
                          movielens benchmark notebook (k=100, encoder [200], batch 1024)
  cornac_ease             Cornac EASE; penalty lambda and posB (clip negative
                          weights, Cornac's default) chosen on validation
  cornac_wmf              Cornac WMF (weighted matrix factorisation, Adam on the
                          full matrix); k, lambda_u = lambda_v and the weight b of the
                          unobserved cells chosen on validation
"""

from __future__ import annotations

import itertools
import time
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from afetler_tf.data.schema import Dataset, Split
from afetler_tf.models.base import Recommender, check_pairs

# Microsoft Recommenders, examples/02_model_collaborative_filtering/cornac_bivae_deep_dive
# (MovieLens-100k): LATENT_DIM 50, ENCODER_DIMS [100], tanh, pois, 500 epochs, batch 128, lr 1e-3.
BIVAE_DEEP_DIVE = {"k": 50, "encoder_structure": [100], "act_fn": "tanh", "likelihood": "pois",
                   "n_epochs": 500, "batch_size": 128, "learning_rate": 0.001}
# Microsoft Recommenders, examples/06_benchmarks/movielens.ipynb (bivae_params).
BIVAE_BENCHMARK = {"k": 100, "encoder_structure": [200], "act_fn": "tanh", "likelihood": "pois",
                   "n_epochs": 500, "batch_size": 1024, "learning_rate": 0.001}

EASE_GRID = {"lamb": (10.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0), "posB": (True, False)}
# Cornac's WMF defaults: k 200, lambda 0.01, a 1, b 0.01, lr 1e-3, batch 128, 100 iterations.
# Earlier grids on MovieLens-100k chose their edges on every seed: lambda 1 and b 0.1 of
# k (50, 200) x lambda (0.01, 0.1, 1) x b (0.01, 0.1); then k 200 (lambda 3, b 0.3 inside) of
# k (50, 200) x lambda (0.3, 1, 3, 10) x b (0.03, 0.1, 0.3, 1).
WMF_GRID = {"k": (100, 200, 400), "lambda_u": (1.0, 3.0, 10.0), "b": (0.1, 0.3, 1.0)}

QUICK = {"cornac_bivae": [dict(BIVAE_DEEP_DIVE, n_epochs=5)],
         "cornac_bivae_benchmark": [dict(BIVAE_BENCHMARK, n_epochs=5)],
         "cornac_ease": [{"lamb": 10.0, "posB": True}, {"lamb": 100.0, "posB": False}],
         "cornac_wmf": [{"k": 8, "lambda_u": 0.01, "b": 0.01, "max_iter": 3},
                        {"k": 8, "lambda_u": 0.1, "b": 0.1, "max_iter": 3}]}


def grid(**axes) -> list:
    """Every combination of the axes' values, as a list of dicts."""
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*axes.values())]


def available() -> Optional[str]:
    """None when Cornac (and torch, for BiVAE) import; else why not."""
    try:
        import cornac  # noqa: F401
    except ImportError as e:
        return f"cornac is not installed (pip install cornac): {e}"
    try:
        import torch  # noqa: F401
    except ImportError as e:
        return f"torch is not installed (Cornac's BiVAE needs it): {e}"
    return None


class CornacPeer(Recommender):
    """A Cornac model picked on validation NDCG@10 among ``candidates`` (module docstring).

    ``config`` is an :class:`afetler_tf.config.Config`; only ``config.train.seed``
    is read (the model's initialisation).
    """

    predicts_ratings = False
    label = "Cornac model"

    def __init__(self, config, candidates: Optional[Sequence[dict]] = None):
        super().__init__(config)
        self.candidates = [dict(c) for c in (candidates or self.default_candidates())]
        self.params: dict = {}
        self._users, self._items = pd.Index([]), pd.Index([])
        self._scores = np.zeros((0, 0))

    @classmethod
    def default_candidates(cls) -> list:
        raise NotImplementedError

    def build(self, params: dict):
        """The Cornac model of one candidate."""
        raise NotImplementedError

    def fit(self, data: Dataset, split: Split, verbose: int = 1) -> dict:
        from afetler_tf.training import ValidationNdcg
        # The split's part once, for every trial (None: no validation set to score).
        validation_ndcg = ValidationNdcg(data, split) if not split.validation.empty else None
        train = self._train_set(split.train)
        trials = []
        for params in self.candidates:
            t0 = time.time()
            self._fit(train, params)
            fit_seconds = time.time() - t0
            ndcg = validation_ndcg(self) if validation_ndcg is not None else 0.0
            trials.append({"params": params, "val_ndcg": ndcg, "fit_seconds": fit_seconds,
                           "seconds": time.time() - t0})
            if verbose:
                print(f"{self.name} {params}: validation NDCG@10 {ndcg:.4f} "
                      f"(fit {fit_seconds:.1f}s)", flush=True)
        best = max(trials, key=lambda t: t["val_ndcg"])
        if len(trials) > 1:  # refit the chosen candidate (the last fit was another one)
            t0 = time.time()
            self._fit(train, best["params"])
            final = time.time() - t0
        else:
            final = best["fit_seconds"]
        self.params = best["params"]
        return {"params": best["params"], "val_ndcg@10": best["val_ndcg"],
                "final_fit_seconds": final, "trials": trials,
                "n_users": len(self._users), "n_items": len(self._items)}

    def _train_set(self, frame: pd.DataFrame):
        import cornac
        pairs = frame[["user_id", "item_id"]].astype(str).drop_duplicates()
        self._users = pd.Index(sorted(pairs["user_id"].unique()))
        self._items = pd.Index(sorted(pairs["item_id"].unique()))
        triples = list(zip(pairs["user_id"], pairs["item_id"], np.ones(len(pairs))))
        return cornac.data.Dataset.from_uir(triples, seed=self.config.train.seed)

    def _fit(self, train, params: dict) -> None:
        from threadpoolctl import threadpool_limits
        model = self.build(params)
        with threadpool_limits(1):  # one core: deterministic and polite on a shared machine
            model.fit(train)
            scores = np.vstack([np.asarray(model.score(u), np.float64).ravel()
                                for u in range(train.num_users)])
        rows = [train.uid_map[u] for u in self._users]
        cols = [train.iid_map[i] for i in self._items]
        self._scores = scores[np.ix_(rows, cols)]

    def score_all(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        from afetler_tf import training
        rows = self._users.get_indexer(training.as_strings(user_ids))
        cols = self._items.get_indexer(training.as_strings(item_ids))
        out = self._scores[np.maximum(rows, 0)][:, np.maximum(cols, 0)]
        out[rows < 0, :] = 0.0
        out[:, cols < 0] = 0.0
        return out

    def score(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        from afetler_tf import training
        check_pairs(user_ids, item_ids)
        rows = self._users.get_indexer(training.as_strings(user_ids))
        cols = self._items.get_indexer(training.as_strings(item_ids))
        known = (rows >= 0) & (cols >= 0)
        out = np.zeros(len(rows))
        out[known] = self._scores[rows[known], cols[known]]
        return out


class BiVAE(CornacPeer):
    """Cornac's BiVAECF (Truong, Salah & Lauw, WSDM 2021) with fixed published settings."""

    name = "cornac_bivae"
    label = "BiVAE (Cornac; MS Recommenders deep-dive settings)"

    @classmethod
    def default_candidates(cls) -> list:
        return [dict(BIVAE_DEEP_DIVE)]

    def build(self, params: dict):
        import cornac
        import torch
        torch.set_num_threads(1)
        return cornac.models.BiVAECF(**params, seed=self.config.train.seed, use_gpu=False,
                                     verbose=False)


class BiVAEBenchmark(BiVAE):
    name = "cornac_bivae_benchmark"
    label = "BiVAE (Cornac; MS Recommenders benchmark settings)"

    @classmethod
    def default_candidates(cls) -> list:
        return [dict(BIVAE_BENCHMARK)]


class EASE(CornacPeer):
    """Cornac's EASE (Steck 2019): penalty and posB chosen on validation."""

    name = "cornac_ease"
    label = "EASE (Cornac; penalty on validation)"

    @classmethod
    def default_candidates(cls) -> list:
        return grid(**EASE_GRID)

    def build(self, params: dict):
        import cornac
        return cornac.models.EASE(**params, seed=self.config.train.seed, verbose=False)


class WMF(CornacPeer):
    """Cornac's WMF (Hu, Koren & Volinsky 2008 weights, Adam on the full matrix):
    k, lambda_u = lambda_v and b chosen on validation; the rest Cornac's defaults."""

    name = "cornac_wmf"
    label = "WMF (Cornac; on validation)"

    @classmethod
    def default_candidates(cls) -> list:
        return grid(**WMF_GRID)

    def build(self, params: dict):
        import cornac
        params = dict(params)
        return cornac.models.WMF(**params, lambda_v=params["lambda_u"],
                                 seed=self.config.train.seed, verbose=False)


PEERS = {cls.name: cls for cls in (BiVAE, BiVAEBenchmark, EASE, WMF)}
