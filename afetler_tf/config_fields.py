"""Config fields: their types and ranges, checked whenever a section is built.

Every field of a section of :mod:`afetler_tf.config` is checked against its
annotation (bool, int, float (an int is accepted and stored as a float), str,
Optional[...] (None allowed), tuple of ints (a list is accepted)) and against
its range in :data:`RANGES`, whenever a section is built (JSON, ``--set``,
``Config.replace``): a bad value is refused before any data is read, with a
message naming ``section.field``, the value and what it must be. Choices
(optimizer, negatives, split, model, ...) and checks across fields are in
the sections' own ``__post_init__``.
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

_SECTIONS = {"Config": "", "DataConfig": "data", "TrainConfig": "train", "MFConfig": "mf",
             "DeepFMConfig": "deepfm", "EaseConfig": "ease", "IalsConfig": "ials", "TowerConfig": "tower",
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
    "ials": {"factors": _AT_LEAST_1, "regularization": _POSITIVE, "alpha": _AT_LEAST_0,
             "iterations": _AT_LEAST_1, "fold_in_ridge": _POSITIVE, "cg_steps": _AT_LEAST_1},
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

EXPECTED = {"bool": "a boolean (true or false)", "int": "an integer", "float": "a number",
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


def label(obj_or_cls, name: str) -> str:
    """``section.field`` of field ``name`` of a section (class or instance)."""
    cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
    section = _SECTIONS.get(cls.__name__, cls.__name__)
    return f"{section}.{name}" if section else name


def _type_error(label: str, kind: str, optional: bool, value) -> ValueError:
    expected = EXPECTED[kind] + (" or null" if optional else "")
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
        value, where = getattr(obj, name), label(obj, name)
        if kind == "section":
            default_type = type(getattr(type(obj), name, None))
            if dataclasses.is_dataclass(default_type) and not isinstance(value, default_type):
                raise ValueError(f"{where} must be a {default_type.__name__}, got {value!r}")
            continue
        typed = _typed(where, kind, optional, value)
        if typed is not value:
            object.__setattr__(obj, name, typed)
        rule = rules.get(name)
        if rule is not None and typed is not None and not rule[1](typed):
            what = rule[0] if rule[0].startswith("a ") else f"{EXPECTED[kind]} {rule[0]}"
            raise ValueError(f"{where} must be {what}{' or null' if optional else ''}, "
                             f"got {typed!r}")


def build(cls, raw: dict, where: str, root: Optional[str] = None):
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
            kwargs[name] = build(type(default), value, f"{where}.{name}", root)
        elif isinstance(default, tuple) and isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{root}: {e}") from None


_TRUE, _FALSE = ("true", "1"), ("false", "0")


def parse_value(cls, name: str, text: str):
    """The value of field ``name`` of section class ``cls`` written ``text`` on
    the command line (``--set section.name=text``), typed by its annotation.

    Booleans: true/false/1/0 (any case); numbers as Python writes them; None:
    null/none; lists of integers: JSON (``[64,32]``) or comma-separated
    (``64,32``); strings as they are (JSON quotes removed).

    Raises:
        ValueError: ``text`` is not a value of the field's type.
    """
    kind, optional = field_kinds(cls)[name]
    where, stripped = label(cls, name), text.strip()
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
                }.get(kind, EXPECTED[kind])
    raise ValueError(f"{where} must be {expected}{' or null' if optional else ''}, got {text!r}")
