"""Configuration: frozen dataclasses, JSON round-trip, named presets.

The CLI maps flags onto these; ``python -m afetler_tf.fit --config FILE``
reads the JSON written by :meth:`Config.to_json` (and by ``tuning``). Unknown
keys are errors that list the valid ones, so a typo never goes unnoticed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import numbers
import os
import typing
from typing import Any, Callable, Optional

MODELS = ("afetler", "two_tower", "mf", "deepfm", "popularity", "random", "category_popularity",
          "content_tower", "content_bias", "ease")
SPLITS = ("random", "temporal", "cold-items", "none")


# --- Field types and ranges ---------------------------------------------------------------
#
# Every field is checked against its annotation (bool, int, float (an int is
# accepted and stored as a float), str, Optional[...] (None allowed), tuple of
# ints (a list is accepted)) and against its range below, whenever a section is
# built (JSON, --set, Config.replace): a bad value is refused before any data is
# read, with a message naming section.field, the value and what it must be.
# Choices (optimizer, negatives, split, model, ...) and checks across fields are
# in the sections' own __post_init__.

_SECTIONS = {"Config": "", "DataConfig": "data", "TrainConfig": "train", "MFConfig": "mf",
             "DeepFMConfig": "deepfm", "EaseConfig": "ease", "TowerConfig": "tower",
             "AfetlerConfig": "afetler", "GanConfig": "gan"}

Rule = tuple[str, Callable[[Any], bool]]  # (what the value must be, predicate)
_AT_LEAST_1: Rule = (">= 1", lambda v: v >= 1)
_AT_LEAST_0: Rule = (">= 0", lambda v: v >= 0)
_POSITIVE: Rule = ("> 0", lambda v: v > 0)
_FRACTION: Rule = ("in [0, 1)", lambda v: 0 <= v < 1)
_OPEN_FRACTION: Rule = ("in (0, 1)", lambda v: 0 < v < 1)
_SEED: Rule = ("in [0, 2**32)", lambda v: 0 <= v < 2 ** 32)
_NOT_EMPTY: Rule = ("a non-empty string", lambda v: bool(v.strip()))
_UNITS: Rule = ("a list of integers >= 1", lambda v: all(u >= 1 for u in v))
_LAYERS: Rule = ("a non-empty list of integers >= 1", lambda v: len(v) > 0 and all(u >= 1 for u in v))

RANGES: dict[str, dict[str, Rule]] = {
    "data": {"source": _NOT_EMPTY, "seed": _SEED, "test_fraction": _FRACTION,
             "validation_fraction": _FRACTION, "history_length": _AT_LEAST_1},
    "train": {"epochs": _AT_LEAST_1, "batch_size": _AT_LEAST_1, "learning_rate": _POSITIVE,
              "patience": _AT_LEAST_0, "seed": _SEED, "ranking_learning_rate": _POSITIVE},
    "mf": {"embedding_dim": _AT_LEAST_1, "l2": _AT_LEAST_0, "bias_l2": _AT_LEAST_0,
           "init_stddev": _POSITIVE, "learning_rate": _POSITIVE, "batch_size": _AT_LEAST_1,
           "epochs": _AT_LEAST_1, "patience": _AT_LEAST_0},
    "deepfm": {"embedding_dim": _AT_LEAST_1, "hidden_units": _UNITS, "dropout": _FRACTION,
               "l2": _AT_LEAST_0, "dense_l2": _AT_LEAST_0, "numeric_buckets": _AT_LEAST_1,
               "zip_prefix": _AT_LEAST_0, "learning_rate": _POSITIVE, "batch_size": _AT_LEAST_1,
               "epochs": _AT_LEAST_1, "patience": _AT_LEAST_0},
    "ease": {"penalty": _POSITIVE},
    "tower": {"embedding_dim": _AT_LEAST_1, "tower_units": _LAYERS, "ranking_units": _UNITS,
              "rating_weight": _AT_LEAST_0, "temperature": _POSITIVE},
    "afetler": {"mimic_weight": _AT_LEAST_0, "num_heads": _AT_LEAST_1, "attention_units": _AT_LEAST_1,
                "attention_weight": _AT_LEAST_0, "attention_tau": _POSITIVE,
                "category_alignment_weight": _AT_LEAST_0, "item_item_rank": _AT_LEAST_1,
                "negative_bank": _AT_LEAST_0, "temperature": _POSITIVE},
    "gan": {"min_interactions": _AT_LEAST_1, "hidden_units": _UNITS, "embedding_dim": _AT_LEAST_1,
            "dropout": _FRACTION, "adversarial_weight": _AT_LEAST_0, "similarity_weight": _AT_LEAST_0,
            "retrieval_weight": _AT_LEAST_0, "epochs": _AT_LEAST_1, "patience": _AT_LEAST_0,
            "batch_size": _AT_LEAST_1, "g_learning_rate": _POSITIVE, "d_learning_rate": _POSITIVE,
            "validation_items": _OPEN_FRACTION},
}

_EXPECTED = {"bool": "a boolean (true or false)", "int": "an integer", "float": "a number",
             "str": "a string", "ints": "a list of integers"}


@functools.lru_cache(maxsize=None)
def field_kinds(cls) -> dict:
    """{field: (kind, optional)} of dataclass ``cls``; kind is "bool", "int",
    "float", "str", "ints" (tuple of ints) or "section" (a nested dataclass)."""
    hints = typing.get_type_hints(cls)
    kinds = {}
    for f in dataclasses.fields(cls):
        hint, optional = hints[f.name], False
        if typing.get_origin(hint) is typing.Union:
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            hint, optional = args[0], len(args) < len(typing.get_args(hint))
        if typing.get_origin(hint) is tuple:
            kind = "ints"
        elif dataclasses.is_dataclass(hint):
            kind = "section"
        elif hint in (bool, int, float, str):
            kind = hint.__name__
        else:  # pragma: no cover - a new field of a type this module does not know
            raise TypeError(f"{cls.__name__}.{f.name}: unsupported type {hint!r}")
        kinds[f.name] = (kind, optional)
    return kinds


def _label(obj_or_cls, name: str) -> str:
    cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
    section = _SECTIONS.get(cls.__name__, cls.__name__)
    return f"{section}.{name}" if section else name


def _type_error(label: str, kind: str, optional: bool, value) -> ValueError:
    expected = _EXPECTED[kind] + (" or null" if optional else "")
    return ValueError(f"{label} must be {expected}, got {value!r} ({type(value).__name__})")


def _typed(label: str, kind: str, optional: bool, value):
    """``value`` as a ``kind`` (ints as floats, lists as tuples), or a ValueError."""
    if value is None and optional:
        return None
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "str" and isinstance(value, os.PathLike):  # a pathlib.Path as data.source
        return os.fspath(value)
    if kind == "int" and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if kind == "float" and isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{label} must be a finite number, got {value!r}")
        return float(value)
    if kind == "ints" and isinstance(value, (tuple, list)) and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
        return tuple(int(v) for v in value)
    raise _type_error(label, kind, optional, value)


def check_fields(obj) -> None:
    """Checks (and normalises: ints of float fields to floats, lists to tuples)
    every field of the config section ``obj`` against its type and RANGES.

    Raises:
        ValueError: naming ``section.field``, the value and what it must be.
    """
    rules = RANGES.get(_SECTIONS.get(type(obj).__name__, ""), {})
    for name, (kind, optional) in field_kinds(type(obj)).items():
        value, label = getattr(obj, name), _label(obj, name)
        if kind == "section":
            default_type = type(getattr(type(obj), name, None))
            if dataclasses.is_dataclass(default_type) and not isinstance(value, default_type):
                raise ValueError(f"{label} must be a {default_type.__name__}, got {value!r}")
            continue
        typed = _typed(label, kind, optional, value)
        if typed is not value:
            object.__setattr__(obj, name, typed)
        rule = rules.get(name)
        if rule is not None and typed is not None and not rule[1](typed):
            what = rule[0] if rule[0].startswith("a ") else f"{_EXPECTED[kind]} {rule[0]}"
            raise ValueError(f"{label} must be {what}{' or null' if optional else ''}, "
                             f"got {typed!r}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is split (DESIGN §2).

    Attributes:
        source: "movielens-100k" or a folder (GroupLens ml-100k layout, or
            interactions.csv/.parquet with optional users/items files).
        split: One of SPLITS.
        seed: Seed of every random choice in splitting.
        test_fraction: Share of interactions (or of items, cold-items) held out.
        validation_fraction: Share of the training part carved out for
            validation (early stopping, tuning, calibration).
        history_length: Cap on each user's history (most recent first).
        like_threshold: A rating >= this counts as "liked" (relevant in R).
    """

    source: str = "movielens-100k"
    split: str = "random"
    seed: int = 42
    test_fraction: float = 0.2
    validation_fraction: float = 0.1
    history_length: int = 50
    like_threshold: float = 4.0

    def __post_init__(self):
        check_fields(self)


OPTIMIZERS = ("adam", "lazy_adam")  # afetler_tf.optimizers.make_optimizer
NEGATIVES = ("batch", "catalogue")  # AfetlerConfig.negatives


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
            sizes, for large catalogues: afetler_tf.optimizers).
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
        penalty: lambda, the L2 penalty of the item-item weights. 500 was
            chosen on validation NDCG@10 (random split, seed 1, EASE alone:
            0.2016 vs 0.1988 at 200; ``python -m tuning.variants``).
    """

    penalty: float = 500.0

    def __post_init__(self):
        check_fields(self)
        if not self.penalty > 0:
            raise ValueError(f"ease.penalty must be > 0, got {self.penalty!r}")


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
    """AFETLER's components and loss weights (DESIGN §3); each can be switched off.

    Attributes:
        fusion: Use AdaptiveFusion (augmented vectors a_u, a_v) in both towers.
        fusion_mode: "gate" (context-aware gate) or "concat" (DAT).
        mimic_weight: lambda_u = lambda_v of the adaptive-mimic losses.
        mcau: Use MCAU over the user's history in the query tower.
        target_attention: Use the target-aware MCAU output in the ranking head.
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
        item_item: Add the item-item channel to the retrieval score: a
            rank-``item_item_rank`` EASE score (``ease.penalty``), its share
            picked on validation NDCG@10 (``models.item_item``).
        item_item_rank: k, the width of the channel's vectors (64: chosen
            on validation NDCG@10 of the fitted model, seed 1: 0.2116 vs
            0.2085 at 32; ``python -m tuning.variants``).
        negative_bank: Size of the cross-batch negative bank (0 = off; with
            ``negatives="batch"`` only).
        negatives: Negatives of the retrieval softmax. ``"batch"``: the
            TFRS in-batch softmax with log-Q correction (DESIGN §3), a
            sampled estimate of the full softmax. ``"catalogue"``: the exact
            softmax over every training item, all of them passed through the
            item tower each step (cost grows with the catalogue; for
            catalogues of up to some tens of thousands of items).
        temperature: AFETLER's retrieval softmax temperature (None: use
            ``tower.temperature``, the base two-tower's). The defaults were
            chosen on validation NDCG@10 only (random split, seeds 1-2;
            ``python -m tuning.variants``, BENCHMARKS.md): AFETLER with the
            catalogue softmax is best at
            0.1, the base two-tower at 0.05, so each model keeps its own.
    """

    fusion: bool = True
    fusion_mode: str = "gate"
    mimic_weight: float = 0.5
    mcau: bool = True
    target_attention: bool = True
    channels: str = "rating"
    num_heads: int = 1
    attention_units: int = 32
    attention_weight: float = 0.1
    attention_tau: float = 0.5
    category_alignment_weight: float = 0.1
    ranking_head: bool = True
    user_taste: bool = True
    item_item: bool = True
    item_item_rank: int = 64
    negative_bank: int = 0
    negatives: str = "catalogue"
    temperature: Optional[float] = 0.1

    def __post_init__(self):
        check_fields(self)
        if self.temperature is not None and not self.temperature > 0:
            raise ValueError(f"afetler.temperature must be > 0 or null, got {self.temperature!r}")
        if self.negatives not in NEGATIVES:
            raise ValueError(f"afetler.negatives must be one of {', '.join(NEGATIVES)}; "
                             f"got {self.negatives!r}")
        if self.negatives == "catalogue" and self.negative_bank:
            raise ValueError("afetler.negative_bank adds negatives to the in-batch softmax; with "
                             "afetler.negatives='catalogue' (the default) every item is already one: "
                             "set afetler.negatives=batch to use the bank, or the bank to 0.")
        if not (isinstance(self.item_item_rank, int) and self.item_item_rank >= 1):
            raise ValueError(f"afetler.item_item_rank must be an integer >= 1, got {self.item_item_rank!r}")
        if self.fusion_mode not in ("gate", "concat"):
            raise ValueError(f"afetler.fusion_mode must be 'gate' or 'concat', got {self.fusion_mode!r}")
        if self.channels not in ("rating", "category"):
            raise ValueError(f"afetler.channels must be 'rating' or 'category', got {self.channels!r}")


@dataclasses.dataclass(frozen=True)
class GanConfig:
    """NewItemGAN: content -> item vector for items without interactions (DESIGN §3).

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
            ``dropout`` and ``g_learning_rate`` are chosen on validation data
            only: ``python -m afetler_tf.gan_select`` (cold-items split,
            seed 1; the GAN's loss on held-out warm items;
            benchmarks/gan_select.md).
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
        check_fields(self)
        if self.min_interactions < 1:
            raise ValueError(f"gan.min_interactions must be >= 1, got {self.min_interactions!r}")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 < self.validation_items < 1.0:
            raise ValueError(f"gan.dropout must be in [0, 1) and gan.validation_items in (0, 1); got "
                             f"{self.dropout!r} and {self.validation_items!r}")
        weights = (self.adversarial_weight, self.similarity_weight, self.retrieval_weight)
        if min(weights) < 0 or not any(weights):
            raise ValueError(f"gan loss weights must be >= 0 and not all 0, got {weights!r}")
        if min(self.epochs, self.batch_size, self.embedding_dim, *self.hidden_units) < 1:
            raise ValueError("gan.epochs, batch_size, embedding_dim and hidden_units must be >= 1")


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
        return _build(cls, raw, where)

    @classmethod
    def from_json(cls, path: str) -> "Config":
        from afetler_tf.files import read_json
        return cls.from_dict(read_json(path), where=path)


def _build(cls, raw: dict, where: str, root: Optional[str] = None):
    """Builds dataclass ``cls`` from ``raw``, rejecting unknown keys and values
    of the wrong type or out of range (:func:`check_fields`); a value error
    names the source (``root``, e.g. the JSON file) and ``section.field``."""
    root = where if root is None else root
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object, got {type(raw).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; valid: {sorted(fields)}")
    kwargs = {}
    for name, value in raw.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, f"{where}.{name}", root)
        elif isinstance(default, tuple) and isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{root}: {e}") from None


_TRUE, _FALSE = ("true", "1"), ("false", "0")


def parse_setting(section: str, name: str, text: str):
    """The value of ``section.name`` written ``text`` on the command line
    (``--set section.name=text``), typed by the field's annotation.

    Booleans: true/false/1/0 (any case); numbers as Python writes them; None:
    null/none; lists of integers: JSON (``[64,32]``) or comma-separated
    (``64,32``); strings as they are (JSON quotes removed).

    Raises:
        ValueError: ``text`` is not a value of the field's type.
    """
    cls = type(getattr(Config(), section))
    kind, optional = field_kinds(cls)[name]
    label, stripped = _label(cls, name), text.strip()
    if optional and stripped.lower() in ("null", "none"):
        return None
    try:
        if kind == "bool":
            if stripped.lower() in _TRUE + _FALSE:
                return stripped.lower() in _TRUE
        elif kind == "int":
            return int(stripped)
        elif kind == "float":
            return float(stripped)
        elif kind == "str":
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return text
            return value if isinstance(value, str) else text
        elif kind == "ints":
            if stripped.startswith("["):
                value = json.loads(stripped)
                if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                                   for v in value):
                    return tuple(value)
            else:
                return tuple(int(v) for v in stripped.split(",") if v.strip()) if stripped else ()
    except ValueError:  # json.JSONDecodeError included
        pass
    expected = {"bool": "a boolean (true/false/1/0)", "ints": "a list of integers ([64,32] or 64,32)"
                }.get(kind, _EXPECTED[kind])
    raise ValueError(f"{label} must be {expected}{' or null' if optional else ''}, got {text!r}")
