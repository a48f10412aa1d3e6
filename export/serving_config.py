"""``models.config``: one ``tensorflow_model_server`` serving every exported model.

The file is a ``ModelServerConfig`` text proto (tensorflow_serving/config/
model_server_config.proto), one entry per model::

    model_config_list {
      config {
        name: "afetler_index"
        base_path: "/srv/models/afetler_index"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 1 versions: 2 } }
        version_labels { key: "stable" value: 1 }
      }
    }

Labels follow TF Serving's rule (server_core.cc, UpdateModelVersionLabelMap,
which runs *before* new versions load): a label already in use may only
move to a version that is loaded. So a rollout takes two steps:

1. an export loads the new version next to ``stable`` (policy {stable, new})
   without moving any label; clients can try it at ``/versions/<new>``.
   The first export of a model labels its version ``stable`` at once.
2. ``--promote`` (once the server has loaded it) moves ``stable`` to the new
   version and ``previous`` to the old one (a rollback target).

``promote=True`` on the export does both at once, for a server (re)started
after the export. The text is written with string formatting (exporting
needs no tensorflow-serving-api); :func:`parse` checks it with the protos.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Iterable, Optional, Sequence

from export import layout, writing

CONFIG_NAME = "models.config"


@dataclasses.dataclass(frozen=True)
class ServedModel:
    """One ``config`` entry.

    Attributes:
        name: Model name in requests (``/v1/models/<name>``).
        base_path: The model folder as the server sees it.
        versions: Versions the server loads.
        labels: label -> version (each among ``versions``).
    """

    name: str
    base_path: str
    versions: tuple
    labels: dict


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # "\"" and "\\" escapes are text-proto escapes too


def _entry(model: ServedModel) -> str:
    lines = ["  config {",
             f"    name: {_quote(model.name)}",
             f"    base_path: {_quote(model.base_path)}",
             '    model_platform: "tensorflow"',
             "    model_version_policy {",
             "      specific {",
             *[f"        versions: {v}" for v in sorted(model.versions)],
             "      }",
             "    }"]
    for key, value in model.labels.items():
        lines += ["    version_labels {", f"      key: {_quote(key)}", f"      value: {value}", "    }"]
    return "\n".join(lines + ["  }"])


def render(models: Sequence[ServedModel]) -> str:
    """The text proto for ``models`` (module docstring)."""
    if not models:
        raise ValueError("No models to serve.")
    body = "\n".join(_entry(m) for m in models)
    return f"model_config_list {{\n{body}\n}}\n"


def read(path: str) -> dict:
    """model name -> {"base_path": str, "labels": {label: version}} of a
    models.config in this one-field-per-line text format ({} if absent)."""
    if not os.path.exists(path):
        return {}
    entries, name, key = {}, None, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            field, _, value = line.strip().partition(": ")
            if field == "name":
                name = json.loads(value)
                entries[name] = {"base_path": None, "labels": {}}
            elif field == "base_path" and name is not None:
                entries[name]["base_path"] = json.loads(value)
            elif field == "key":
                key = json.loads(value)
            elif field == "value" and name is not None and key is not None:
                entries[name]["labels"][key] = int(value)
                key = None
    return entries


def _labels(old: dict, on_disk: list, version: int, promote: bool) -> dict:
    """The labels after publishing (or promoting) ``version`` (module docstring)."""
    stable = old.get("stable") if old.get("stable") in on_disk else None
    if stable is None or stable == version:
        return {"stable": version}
    if promote:
        return {"stable": version, "previous": stable}
    previous = old.get("previous")
    return {"stable": stable, **({"previous": previous} if previous in on_disk else {})}


def render_update(base: str, model_dirs: Iterable[str], version: int, promote: bool = False,
                  serving_base: Optional[str] = None) -> tuple:
    """``(path, text)`` of ``base/models.config`` after publishing (or promoting)
    ``version`` of every model; writes nothing (see :func:`update`)."""
    path = os.path.join(base, CONFIG_NAME)
    old = read(path)
    served = []
    for folder in model_dirs:
        name, on_disk = os.path.basename(folder), layout.versions(folder)
        entry = old.get(name, {"base_path": None, "labels": {}})
        base_path = (f"{serving_base.rstrip('/')}/{name}" if serving_base else
                     entry["base_path"] or os.path.join(os.path.abspath(base), name))
        labels = _labels(entry["labels"], on_disk, version, promote)
        served.append(ServedModel(name, base_path, tuple(sorted({version, *labels.values()})), labels))
    return path, render(served)


def update(base: str, model_dirs: Iterable[str], version: int, promote: bool = False,
           serving_base: Optional[str] = None) -> str:
    """Rewrites ``base/models.config`` for ``version`` of every model; returns its path.

    The file is replaced atomically (temp file + ``os.replace``) with mode
    0o666 & ~umask (0644 under umask 022), so the server can read it.

    Args:
        base: The models folder (holds models.config).
        model_dirs: ``base/<model_name>`` folders to serve.
        version: The version just exported (or to promote).
        promote: Move ``stable`` to ``version`` (it must be loaded already
            when a running server reloads the file).
        serving_base: ``base`` as the server sees it; default: the model's
            ``base_path`` in the existing file, else the absolute ``base``.
    """
    path, text = render_update(base, model_dirs, version, promote, serving_base)
    return writing.write_text(path, text)


def promote(base: str, version: Optional[int] = None, serving_base: Optional[str] = None) -> int:
    """Moves ``stable`` of every model in ``base/models.config`` to ``version``.

    Args:
        base: The models folder.
        version: Default: the newest version every served model has on disk.
        serving_base: As in :func:`update` (keep the value the export used).

    Returns:
        The promoted version.

    Raises:
        FileNotFoundError: No models.config in ``base``.
        ValueError: ``version`` is missing from some model's folder.
    """
    layout.recover(base)  # a half-published set is rolled back or finished first
    names = list(read(os.path.join(base, CONFIG_NAME)))
    if not names:
        raise FileNotFoundError(f"{os.path.join(base, CONFIG_NAME)} lists no models: export first.")
    dirs = [os.path.join(base, name) for name in names]
    common = set.intersection(*(set(layout.versions(d)) for d in dirs))
    version = max(common, default=0) if version is None else version
    if version not in common:
        raise ValueError(f"Version {version} is not on disk for every model of {base} "
                         f"(common versions: {sorted(common)}).")
    update(base, dirs, version, promote=True, serving_base=serving_base)
    return version


def parse(text: str):
    """Parses a models.config with the tensorflow-serving-api protos.

    Returns:
        A ``tensorflow_serving.config.model_server_config_pb2.ModelServerConfig``.

    Raises:
        ImportError: tensorflow-serving-api is not installed.
        google.protobuf.text_format.ParseError: The text is not a valid config.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
