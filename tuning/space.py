"""The AFETLER search space, in one place: hyperparameter names -> Config fields.

Every tunable hyperparameter has a flat name (``learning_rate``,
``tower_units``, ...) and the ``Config`` section and field it sets. A search
starts from a base Config (``--config FILE``, or the defaults), so everything
that is not tuned (data source, split, seeds, switches) carries over to the
best configuration unchanged. The base values are the defaults of the space
(a choice list or range is widened to contain them), which is what lets a
search evaluate the base configuration as its first trial.

Example:
    >>> space = SearchSpace(Config(), only=["learning_rate", "tower_units"])
    >>> hp = space.hyperparameters()          # a kt.HyperParameters
    >>> space.config({"learning_rate": 0.01, "tower_units": "128,64"}).tower.tower_units
    (128, 64)
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping, Optional, Sequence

import keras_tuner as kt

from afetler_tf.config import Config


@dataclasses.dataclass(frozen=True)
class Param:
    """One tunable hyperparameter.

    Attributes:
        section: Config section the value goes to ("tower", "afetler", ...).
        field: Field of that section.
        choices: Candidate values (a Choice); empty for a range.
        low: Lower end of a range (Float, or Int when ``integer``).
        high: Upper end of a range.
        log: Sample the range log-uniformly.
        integer: The range holds integers.
    """

    section: str
    field: str
    choices: tuple = ()
    low: Optional[float] = None
    high: Optional[float] = None
    log: bool = False
    integer: bool = False


# The search space. Tower sizes are strings ("128,64") because KerasTuner
# choices hold scalars; the last size is the output dimension d of p_u, p_v.
PARAMS = {
    "embedding_dim": Param("tower", "embedding_dim", choices=(16, 32, 64)),
    "tower_units": Param("tower", "tower_units", choices=("64,32", "128,64", "128,32", "64,64", "256,128,64")),
    "fusion_mode": Param("afetler", "fusion_mode", choices=("gate", "concat")),
    "num_heads": Param("afetler", "num_heads", choices=(1, 2, 4)),
    "channels": Param("afetler", "channels", choices=("rating", "category")),
    "history_length": Param("data", "history_length", choices=(20, 30, 50, 100)),
    "mimic_weight": Param("afetler", "mimic_weight", low=0.05, high=2.0, log=True),
    "attention_weight": Param("afetler", "attention_weight", low=0.01, high=1.0, log=True),
    "category_alignment_weight": Param("afetler", "category_alignment_weight", low=0.01, high=1.0, log=True),
    "rating_weight": Param("tower", "rating_weight", low=0.1, high=3.0, log=True),
    "temperature": Param("afetler", "temperature", low=0.02, high=0.5, log=True),
    "learning_rate": Param("train", "learning_rate", low=1e-3, high=2e-2, log=True),
    "batch_size": Param("train", "batch_size", choices=(512, 1024, 2048, 4096)),
    "epochs": Param("train", "epochs", low=2, high=20, integer=True),
}
NAMES = tuple(PARAMS)
_POSITIVE_INTS = ("embedding_dim", "num_heads", "history_length", "batch_size", "epochs")
_CLOSED_CHOICES = ("fusion_mode", "channels")
_TUNER_PREFIX = "tuner/"  # KerasTuner's own entries (Hyperband budget), not Config fields


def check_names(names: Sequence[str], where: str = "hyperparameter") -> list[str]:
    """Returns ``names`` as a list; raises ValueError listing the valid names."""
    unknown = [name for name in names if name not in PARAMS]
    if unknown:
        raise ValueError(f"Unknown {where} name(s) {unknown}; valid: {', '.join(NAMES)}.")
    return list(names)


def parse_fixed(items: Sequence[str]) -> dict[str, Any]:
    """Parses ``--fix NAME=VALUE`` items (JSON values, else bare strings)."""
    fixed = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--fix {item!r}: expected NAME=VALUE, NAME one of {', '.join(NAMES)}.")
        check_names([name], where="--fix")
        try:
            fixed[name] = json.loads(text)
        except json.JSONDecodeError:
            fixed[name] = text
    return fixed


def coerce(name: str, value: Any) -> Any:
    """Checks ``value`` for hyperparameter ``name``; returns it as the Config field wants it."""
    check_names([name])
    if name == "tower_units":
        sizes = value.split(",") if isinstance(value, str) else value
        try:
            sizes = tuple(int(size) for size in sizes)
        except (TypeError, ValueError):
            sizes = ()
        if not sizes or min(sizes) < 1:
            raise ValueError(f"tower_units must be positive sizes like '128,64', got {value!r}.")
        return sizes
    if name in _CLOSED_CHOICES:
        if value not in PARAMS[name].choices:
            raise ValueError(f"{name} must be one of {list(PARAMS[name].choices)}, got {value!r}.")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    if name in _POSITIVE_INTS:
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        return int(value)
    if value < 0 or (value == 0 and name in ("learning_rate", "temperature")):
        raise ValueError(f"{name} must be {'positive' if name in ('learning_rate', 'temperature') else '>= 0'}, "
                         f"got {value!r}.")
    return float(value)


def _as_hp_value(name: str, value: Any) -> Any:
    """A Config field value as a KerasTuner value (tuples become "a,b" strings)."""
    return ",".join(str(size) for size in value) if name == "tower_units" else value


class SearchSpace:
    """The space a search explores, around a base configuration.

    Args:
        base: Starting Config; its values are the defaults of the space, and
            every field not tuned keeps its base value. Must be an AFETLER config.
        only: Tune only these names (default: all of NAMES minus ``fixed``).
        fixed: ``{name: value}`` set on the base and not tuned.
        epochs_cap: Upper end of the ``epochs`` range; the base epochs are
            capped to it too (None: the base value).
        tune_epochs: False when the tuner sets the epochs itself (Hyperband).

    Raises:
        ValueError: Unknown or bad names/values, a name both fixed and in
            ``only``, or a base config that is not "afetler".
    """

    def __init__(self, base: Config, only: Optional[Sequence[str]] = None,
                 fixed: Optional[Mapping[str, Any]] = None, epochs_cap: Optional[int] = None,
                 tune_epochs: bool = True):
        if base.model != "afetler":
            raise ValueError(f"The search space is AFETLER's, but the base config's model is "
                             f"{base.model!r}; set \"model\": \"afetler\".")
        fixed = dict(fixed or {})
        check_names(list(fixed), where="--fix")
        names = check_names(only, where="--only") if only else [n for n in NAMES if n not in fixed]
        both = sorted(set(names) & set(fixed))
        if both:
            raise ValueError(f"{both} are both fixed (--fix) and tuned (--only); choose one.")
        self.fixed = {name: coerce(name, value) for name, value in fixed.items()}
        self.base = self._apply(base, self.fixed)
        if epochs_cap is not None:
            epochs_cap = coerce("epochs", epochs_cap)
            self.base = self._apply(self.base, {"epochs": min(self.base.train.epochs, epochs_cap)})
        self.names = [n for n in names if tune_epochs or n != "epochs"]
        self.epochs_cap = epochs_cap

    def hyperparameters(self) -> kt.HyperParameters:
        """The space as ``kt.HyperParameters``; each value starts at the base value."""
        hp = kt.HyperParameters()
        for name in self.names:
            param, default = PARAMS[name], _as_hp_value(name, self.base_value(name))
            if param.choices:
                values = list(dict.fromkeys(param.choices + (default,)))
                hp.Choice(name, sorted(values) if not isinstance(default, str) else values, default=default)
            elif param.integer:
                high = self.epochs_cap if name == "epochs" and self.epochs_cap else param.high
                low = min(param.low, high)
                if low == high:
                    hp.Fixed(name, int(high))
                else:
                    hp.Int(name, low, high, default=int(min(max(default, low), high)))
            else:
                hp.Float(name, min(param.low, default), max(param.high, default),
                         sampling="log" if param.log and default > 0 else "linear", default=default)
        return hp

    def base_value(self, name: str) -> Any:
        param = PARAMS[name]
        return getattr(getattr(self.base, param.section), param.field)

    def config(self, values: Mapping[str, Any]) -> Config:
        """The base Config with ``values`` (KerasTuner's ``tuner/...`` entries ignored)."""
        values = {k: v for k, v in values.items() if not k.startswith(_TUNER_PREFIX)}
        return self._apply(self.base, {name: coerce(name, value) for name, value in values.items()})

    def describe(self) -> dict:
        """What defines this search (compared when a search is resumed)."""
        return {"tuned": list(self.names), "fixed": {k: _as_hp_value(k, v) for k, v in self.fixed.items()},
                "epochs_cap": self.epochs_cap, "trial_base": self.base.to_dict()}

    @staticmethod
    def _apply(config: Config, values: Mapping[str, Any]) -> Config:
        sections: dict[str, dict] = {}
        for name, value in values.items():
            param = PARAMS[check_names([name])[0]]
            sections.setdefault(param.section, {})[param.field] = value
        return config.replace(**sections) if sections else config
