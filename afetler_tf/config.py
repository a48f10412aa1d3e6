"""Configuration: frozen dataclasses, JSON round-trip, named presets.

The CLI maps flags onto these; ``python -m afetler_tf.fit --config FILE``
reads the JSON written by :meth:`Config.to_json` (and by ``tuning``). Unknown
keys are errors that list the valid ones, so a typo never goes unnoticed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Optional

MODELS = ("afetler", "two_tower", "mf", "deepfm", "popularity")
SPLITS = ("random", "temporal", "cold-items", "none")


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


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by the Keras models.

    Attributes:
        epochs: Maximum number of epochs (early stopping may end sooner).
        batch_size: Training batch size.
        learning_rate: Adam learning rate.
        patience: Early-stopping patience in epochs, on the validation loss.
        seed: Seed of weight initialisation and shuffling.
    """

    epochs: int = 20
    batch_size: int = 1024
    learning_rate: float = 0.005
    patience: int = 2
    seed: int = 42


@dataclasses.dataclass(frozen=True)
class MFConfig:
    """Biased matrix factorisation: r = mu + b_u + b_i + <p_u, q_i>."""

    embedding_dim: int = 32
    l2: float = 1e-4
    learning_rate: float = 0.005
    batch_size: int = 256
    epochs: int = 60
    patience: int = 3


@dataclasses.dataclass(frozen=True)
class DeepFMConfig:
    """DeepFM over user and item fields (ids, demographics, genres, year)."""

    embedding_dim: int = 16
    hidden_units: tuple[int, ...] = (64, 32)
    dropout: float = 0.2
    l2: float = 1e-4
    learning_rate: float = 0.001
    batch_size: int = 256
    epochs: int = 40
    patience: int = 3


@dataclasses.dataclass(frozen=True)
class TowerConfig:
    """Two-tower settings (used by the two-tower base and by AFETLER).

    Attributes:
        embedding_dim: Width of each feature embedding.
        tower_units: Hidden layer sizes of each tower's MLP; the last is the
            output dimension d of p_u and p_v.
        ranking_units: Hidden sizes of the ranking head MLP.
        rating_weight: Weight w_r of the ranking MSE in the total loss.
        temperature: Softmax temperature of the retrieval task.
    """

    embedding_dim: int = 32
    tower_units: tuple[int, ...] = (64, 32)
    ranking_units: tuple[int, ...] = (64, 32)
    rating_weight: float = 1.0
    temperature: float = 0.1


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything one ``fit`` run needs."""

    model: str = "afetler"
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    tower: TowerConfig = TowerConfig()
    mf: MFConfig = MFConfig()
    deepfm: DeepFMConfig = DeepFMConfig()

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"Unknown model {self.model!r}; valid: {', '.join(MODELS)}")
        if self.data.split not in SPLITS:
            raise ValueError(f"Unknown split {self.data.split!r}; valid: {', '.join(SPLITS)}")

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
            tmp = f"{path}.tmp{os.getpid()}"
            with open(tmp, "w") as f:
                f.write(text + "\n")
            os.replace(tmp, path)
        return text

    @classmethod
    def from_dict(cls, raw: dict, where: str = "config") -> "Config":
        return _build(cls, raw, where)

    @classmethod
    def from_json(cls, path: str) -> "Config":
        if not os.path.exists(path):
            raise FileNotFoundError(f"Config file {path} does not exist.")
        with open(path) as f:
            try:
                raw = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: not valid JSON ({e}).") from e
        return cls.from_dict(raw, where=path)


def _build(cls, raw: dict, where: str):
    """Builds dataclass ``cls`` from ``raw``, rejecting unknown keys."""
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
            kwargs[name] = _build(type(default), value, f"{where}.{name}")
        elif isinstance(default, tuple) and isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)
