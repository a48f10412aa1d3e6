"""Configuration: frozen dataclasses, JSON round-trip, named presets.

The CLI maps flags onto these; ``python -m afetler_tf.fit --config FILE``
reads the JSON written by :meth:`Config.to_json` (and by ``tuning``). Unknown
keys are errors that list the valid ones, so a typo never goes unnoticed.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Optional

from afetler_tf import registry
from afetler_tf.config_fields import build, check_fields, parse_value

MODELS = tuple(registry.MODELS)  # the model names (afetler_tf.registry)
SPLITS = ("random", "temporal", "cold-items", "none")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is split (docs/design.md §2).

    Attributes:
        source: "movielens-100k" or a folder (GroupLens ml-100k layout, or
            interactions.csv/.parquet with optional users/items files).
        split: One of SPLITS.
        seed: Seed of every random choice in splitting.
        test_fraction: Share of interactions (or of items, cold-items) held out.
        validation_fraction: Share of the training part carved out for
            validation (early stopping, tuning, calibration).
        history_length: Cap on the history MCAU and the target attention read
            (most recent first); 30 chosen on validation over the datasets
            suite's data sets (docs/decisions.md, 2026-11-30).
        like_threshold: A rating >= this counts as "liked" (relevant in R).
    """

    source: str = "movielens-100k"
    split: str = "random"
    seed: int = 42
    test_fraction: float = 0.2
    validation_fraction: float = 0.1
    history_length: int = 30
    like_threshold: float = 4.0

    def __post_init__(self):
        check_fields(self)


OPTIMIZERS = ("adam", "lazy_adam")  # afetler_tf.training.optimizers.make_optimizer
NEGATIVES = ("batch", "catalogue")  # AfetlerConfig.negatives
ITEM_ITEM_MODELS = ("auto", "ease", "ials")  # AfetlerConfig.item_item_model


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by the Keras models.

    Attributes:
        epochs: Maximum number of epochs (early stopping may end sooner).
        batch_size: Training batch size.
        learning_rate: Adam learning rate.
        patience: Early-stopping patience in epochs, on the validation loss.
        seed: Seed of weight initialisation and shuffling.
        ranking_learning_rate: Adam learning rate of the second (ranking)
            stage of the tower models, which fine-tunes the ranking head.
        optimizer: ``adam``, or ``lazy_adam`` (updates only the embedding
            rows of the batch; per-step cost independent of the vocabulary
            sizes, for large catalogues: afetler_tf.training.optimizers).
    """

    epochs: int = 20
    batch_size: int = 1024
    learning_rate: float = 0.005
    patience: int = 2
    seed: int = 42
    ranking_learning_rate: float = 0.001
    optimizer: str = "adam"

    def __post_init__(self):
        check_fields(self)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"train.optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}")


@dataclasses.dataclass(frozen=True)
class MFConfig:
    """Biased matrix factorisation: r = mu + b_u + b_i + <p_u, q_i>.

    Attributes:
        embedding_dim: Width of p_u and q_i.
        l2: L2 weight on the embedding tables (added to the MSE every batch).
        bias_l2: L2 weight on the bias tables.
        init_stddev: Standard deviation of the normal embedding initialiser.
        learning_rate: Adam learning rate.
        batch_size: Training batch size.
        epochs: Maximum number of epochs (early stopping on validation RMSE).
        patience: Early-stopping patience in epochs.
        refit_full: After early stopping, retrain from scratch on train +
            validation for the number of epochs early stopping chose.
    """

    embedding_dim: int = 32
    l2: float = 1.5e-4
    bias_l2: float = 1e-5
    init_stddev: float = 0.01
    learning_rate: float = 0.005
    batch_size: int = 256
    epochs: int = 60
    patience: int = 3
    refit_full: bool = False

    def __post_init__(self):
        check_fields(self)


@dataclasses.dataclass(frozen=True)
class DeepFMConfig:
    """DeepFM over user and item fields (ids, demographics, genres, year).

    Attributes:
        embedding_dim: Width k of every field embedding.
        hidden_units: Hidden layer sizes of the deep MLP.
        dropout: Dropout after each hidden layer.
        l2: L2 weight on the field embedding and first-order tables.
        dense_l2: L2 weight on the MLP kernels.
        numeric_buckets: Quantile buckets of numeric fields (age, year), plus
            one bucket for missing values.
        zip_prefix: Leading characters of the zip code kept as a field.
        learning_rate: Adam learning rate.
        batch_size: Training batch size.
        epochs: Maximum number of epochs (early stopping on validation RMSE).
        patience: Early-stopping patience in epochs.
    """

    embedding_dim: int = 16
    hidden_units: tuple[int, ...] = (64, 32)
    dropout: float = 0.2
    l2: float = 1e-4
    dense_l2: float = 0.0
    numeric_buckets: int = 10
    zip_prefix: int = 2
    learning_rate: float = 0.004
    batch_size: int = 1024
    epochs: int = 40
    patience: int = 3

    def __post_init__(self):
        check_fields(self)


@dataclasses.dataclass(frozen=True)
class EaseConfig:
    """EASE, the closed-form item-item model (``models.ease``): the ``ease``
    reference model and AFETLER's item-item channel.

    Attributes:
        penalty: lambda, the L2 penalty of the item-item weights, chosen on
            validation NDCG@10 (BENCHMARKS.md, "Configurations compared on the
            validation split", rows "EASE alone").
    """

    penalty: float = 500.0

    def __post_init__(self):
        check_fields(self)  # ranges: config_fields.RANGES


@dataclasses.dataclass(frozen=True)
class IalsConfig:
    """iALS (``models.ials``), the other fit of AFETLER's item-item channel
    (``afetler.item_item_model``): implicit ALS on the binary training
    matrix, its item factors Y turned into history weights by a linear
    fold-in, W = Y (Y^T Y + fold_in_ridge I)^-1.

    Attributes:
        factors: k of the factors (capped at the channel's rank).
        regularization: lambda of the factors' L2 penalty.
        alpha: The confidence of an observed pair, 1 + alpha.
        iterations: Alternating steps (users, then items), each by
            ``cg_steps`` conjugate-gradient steps.
        fold_in_ridge: mu of the linear fold-in.
        cg_steps: Conjugate-gradient steps per alternating step.

    The defaults were chosen on validation NDCG@10 (docs/decisions.md,
    2026-12-01, "The item-item channel is fitted by EASE or iALS, whichever
    validation prefers").
    """

    factors: int = 16
    regularization: float = 10.0
    alpha: float = 10.0
    iterations: int = 15
    fold_in_ridge: float = 100.0
    cg_steps: int = 3

    def __post_init__(self):
        check_fields(self)  # ranges: config_fields.RANGES


@dataclasses.dataclass(frozen=True)
class TowerConfig:
    """Two-tower settings (used by the two-tower base and by AFETLER).

    Attributes:
        embedding_dim: Width of each feature embedding.
        tower_units: Hidden layer sizes of each tower's MLP; the last is the
            output dimension d of p_u and p_v.
        ranking_units: Hidden sizes of the ranking head MLP.
        rating_weight: Weight w_r of the ranking MSE in the total loss.
        temperature: Softmax temperature of the retrieval task of the base
            two-tower (and content-only) models; AFETLER's is
            ``afetler.temperature`` unless that is None.
        user_id: Embed the user id in the query tower (off: the user is
            represented by profile and history alone).
    """

    embedding_dim: int = 32
    tower_units: tuple[int, ...] = (64, 32)
    ranking_units: tuple[int, ...] = (64, 32)
    rating_weight: float = 1.0
    temperature: float = 0.05
    user_id: bool = True

    def __post_init__(self):
        check_fields(self)


@dataclasses.dataclass(frozen=True)
class AfetlerConfig:
    """AFETLER's components and loss weights (docs/design.md §3); each can be switched off.

    Attributes:
        fusion: Use AdaptiveFusion (augmented vectors a_u, a_v) in both towers.
        fusion_mode: "gate" (context-aware gate) or "concat" (DAT).
        mimic_weight: lambda_u = lambda_v of the adaptive-mimic losses.
        mcau: Use MCAU over the user's history in the query tower.
        target_attention: Use the target-aware MCAU output in the ranking head.
        target_attention_stage: Where the target-aware MCAU (and the
            attention alignment loss) train: ``"joint"``, both training
            stages, or ``"ranking"``, the ranking stage only (the towers
            frozen; in the joint stage's rating term the head reads a zero
            attention output): joint epochs a quarter to a third shorter,
            the same retrieval, a worse rating RMSE where the attention
            matters (docs/decisions.md, 2026-11-30, "No ranking head without
            ratings; the target-aware attention keeps training in both
            stages"). Only training differs: a fitted model rates with it
            either way.
        channels: History channels: "rating" (liked >= 4 / neutral 3 /
            disliked <= 2) or "category" (primary category of the item).
        num_heads: MCAU attention heads.
        attention_units: Hidden size of the MCAU attention MLPs.
        attention_weight: lambda_att of the attention (KL) alignment loss.
        attention_tau: Temperature tau of the attention target pi.
        category_alignment_weight: lambda_CA of the category alignment loss.
        ranking_head: Train the ranking head (weight ``tower.rating_weight``);
            off: ratings come from the retrieval score via the linear map.
        user_taste: After training, fit the users' taste for content on the
            ranker's residuals (``models.taste``), its share fitted on the
            validation ratings; with a ranking head and rated data only.
        rating_blend: After the users' taste, train a biased matrix
            factorisation (``mf``) on the training ratings and blend the
            ranker's rating with it, c + w_r rating + w_f f(u, v), the weights
            fitted on the validation ratings and kept only where a
            cross-fitted validation RMSE says the blend helps
            (``models.rating_blend``); pairs the factorisation never trained
            on keep the ranker's rating. With a ranking head and rated data only.
        item_item: Add the item-item channel to the retrieval score: a
            rank-``item_item_rank`` item-item score, its share picked on
            validation NDCG@10 (``models.item_item_fitting``).
        item_item_model: What fits the channel: ``"ease"`` (EASE,
            ``ease.penalty``, factored at rank ``item_item_rank``),
            ``"ials"`` (iALS, ``ials``, by a linear fold-in) or ``"auto"``:
            both, the one with the better validation NDCG@10 kept (ties:
            EASE).
        popularity_prior: With the item-item channel, add a popularity
            prior beta * log(1 + n_v) (scaled) to the retrieval score, beta
            picked on validation NDCG@10 (0 included: off where it does
            not help; ``models.item_item_fitting``).
        item_item_rank: k, the width of the channel's vectors, chosen on
            validation NDCG@10 (BENCHMARKS.md, "Configurations compared on the
            validation split", rows "AFETLER + item-item channel" and
            "AFETLER, item-item rank 32").
        negative_bank: Size of the cross-batch negative bank (0 = off; with
            ``negatives="batch"`` only).
        negatives: Negatives of the retrieval softmax. ``"batch"``: the
            TFRS in-batch softmax with log-Q correction (docs/design.md §3), a
            sampled estimate of the full softmax. ``"catalogue"``: the exact
            softmax over every training item, all of them passed through the
            item tower each step (cost grows with the catalogue; for
            catalogues of up to some tens of thousands of items).
        temperature: AFETLER's retrieval softmax temperature (None: use
            ``tower.temperature``, the base two-tower's). Each model keeps the
            temperature its validation NDCG@10 chose (BENCHMARKS.md,
            "Configurations compared on the validation split", the softmax and
            T rows).
    """

    fusion: bool = True
    fusion_mode: str = "gate"
    mimic_weight: float = 0.5
    mcau: bool = True
    target_attention: bool = True
    target_attention_stage: str = "joint"
    channels: str = "rating"
    num_heads: int = 1
    attention_units: int = 32
    attention_weight: float = 0.1
    attention_tau: float = 0.5
    category_alignment_weight: float = 0.1
    ranking_head: bool = True
    user_taste: bool = True
    rating_blend: bool = True
    item_item: bool = True
    item_item_model: str = "auto"
    item_item_rank: int = 64
    popularity_prior: bool = True
    negative_bank: int = 0
    negatives: str = "catalogue"
    temperature: Optional[float] = 0.1

    def __post_init__(self):
        check_fields(self)  # ranges: config_fields.RANGES
        if self.negatives not in NEGATIVES:
            raise ValueError(f"afetler.negatives must be one of {', '.join(NEGATIVES)}; "
                             f"got {self.negatives!r}")
        if self.negatives == "catalogue" and self.negative_bank:
            raise ValueError("afetler.negative_bank adds negatives to the in-batch softmax; with "
                             "afetler.negatives='catalogue' (the default) every item is already one: "
                             "set afetler.negatives=batch to use the bank, or the bank to 0.")
        if self.fusion_mode not in ("gate", "concat"):
            raise ValueError(f"afetler.fusion_mode must be 'gate' or 'concat', got {self.fusion_mode!r}")
        if self.channels not in ("rating", "category"):
            raise ValueError(f"afetler.channels must be 'rating' or 'category', got {self.channels!r}")
        if self.item_item_model not in ITEM_ITEM_MODELS:
            raise ValueError(f"afetler.item_item_model must be one of {', '.join(ITEM_ITEM_MODELS)}, "
                             f"got {self.item_item_model!r}")
        if self.target_attention_stage not in ("ranking", "joint"):
            raise ValueError(f"afetler.target_attention_stage must be 'ranking' or 'joint', "
                             f"got {self.target_attention_stage!r}")


@dataclasses.dataclass(frozen=True)
class GanConfig:
    """NewItemGAN: content -> item vector for items without interactions (docs/design.md §3).

    Generator loss = adversarial_weight * L_adv
                     + similarity_weight * mean (1 - cos(G(x), p_v))^2
                     + retrieval_weight * L_retrieval(frozen p_u, G(x)).

    Attributes:
        enabled: Train the generator (and calibrate the ranker's cold-item
            path) as a stage of ``Afetler.fit``, and embed new items with it
            (off: new items take the tower's out-of-vocabulary path and
            ``add_items`` refuses). On by default, so a plain fit can take new
            items (``add_items``) the day it is deployed: the GAN only embeds
            items with fewer than ``min_interactions`` training interactions,
            so the warm items' lists and ratings stay as without it
            (docs/decisions.md, "NewItemGAN on by default").
        min_interactions: Items with fewer training interactions than this
            (1 = only items never seen in training) are embedded by the
            generator; the others by the trained item tower.
        hidden_units: Hidden sizes of the generator and discriminator MLPs.
        embedding_dim: Width of each content-feature embedding.
        dropout: Dropout after each hidden layer of the generator.
            ``dropout`` and ``g_learning_rate`` are chosen on the GAN's
            validation loss (BENCHMARKS.md, "NewItemGAN settings chosen on
            validation data").
        adversarial_weight: Weight of the generator's adversarial loss.
        similarity_weight: lambda_s of the cosine term.
        retrieval_weight: Weight of the retrieval loss against the frozen
            query tower (in-batch softmax with log-Q correction).
        epochs: Maximum number of GAN epochs.
        patience: Early-stopping patience, on the validation loss of held-out
            warm items (the cold-start situation the generator is for).
        batch_size: Interactions per batch.
        g_learning_rate: Adam learning rate of the generator.
        d_learning_rate: Adam learning rate of the discriminator.
        validation_items: Share of the warm items held out for early stopping.
    """

    enabled: bool = True
    min_interactions: int = 1
    hidden_units: tuple[int, ...] = (128,)
    embedding_dim: int = 32
    dropout: float = 0.5
    adversarial_weight: float = 0.05
    similarity_weight: float = 1.0
    retrieval_weight: float = 1.0
    epochs: int = 30
    patience: int = 3
    batch_size: int = 512
    g_learning_rate: float = 0.0005
    d_learning_rate: float = 0.001
    validation_items: float = 0.1

    def __post_init__(self):
        check_fields(self)  # ranges: config_fields.RANGES
        weights = (self.adversarial_weight, self.similarity_weight, self.retrieval_weight)
        if not any(weights):
            raise ValueError(f"gan loss weights must be >= 0 and not all 0, got {weights!r}")


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything one ``fit`` run needs."""

    model: str = "afetler"
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    tower: TowerConfig = TowerConfig()
    afetler: AfetlerConfig = AfetlerConfig()
    mf: MFConfig = MFConfig()
    ease: EaseConfig = EaseConfig()
    ials: IalsConfig = IalsConfig()
    deepfm: DeepFMConfig = DeepFMConfig()
    gan: GanConfig = GanConfig()

    def __post_init__(self):
        check_fields(self)
        if self.model not in MODELS:
            raise ValueError(f"Unknown model {self.model!r}; valid: {', '.join(MODELS)}")
        if self.data.split not in SPLITS:
            raise ValueError(f"Unknown split {self.data.split!r}; valid: {', '.join(SPLITS)}")

    @property
    def retrieval_temperature(self) -> float:
        """The retrieval softmax temperature of the tower models (and of the
        NewItemGAN's retrieval loss): ``afetler.temperature``, or
        ``tower.temperature`` where that is None (the base two-tower)."""
        own = self.afetler.temperature
        return self.tower.temperature if own is None else own

    def replace(self, **sections: Any) -> "Config":
        """Returns a copy; ``sections`` maps a section name to a dict of fields."""
        updates = {}
        for name, value in sections.items():
            if isinstance(value, dict):
                value = dataclasses.replace(getattr(self, name), **value)
            updates[name] = value
        return dataclasses.replace(self, **updates)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self, path: Optional[str] = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path:
            from afetler_tf.files import atomic_write_text
            atomic_write_text(path, text + "\n")
        return text

    @classmethod
    def from_dict(cls, raw: dict, where: str = "config") -> "Config":
        return build(cls, raw, where)

    @classmethod
    def from_json(cls, path: str) -> "Config":
        from afetler_tf.files import read_json
        return cls.from_dict(read_json(path), where=path)


def parse_setting(section: str, name: str, text: str):
    """The value of ``section.name`` written ``text`` on the command line
    (``--set section.name=text``): :func:`config_fields.parse_value`."""
    return parse_value(type(getattr(Config(), section)), name, text)
