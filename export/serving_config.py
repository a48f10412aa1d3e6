"""``models.config``: one ``tensorflow_model_server`` serving every exported model.

The file is a ``ModelServerConfig`` text proto (tensorflow_serving/config/
model_server_config.proto). Each model serves its new version under the
label ``stable`` and, when an older version is on disk, that one under
``previous`` (a rollback target); the version policy loads exactly those::

    model_config_list {
      config {
        name: "afetler_index"
        base_path: "/srv/models/afetler_index"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 1 versions: 2 } }
        version_labels { key: "stable" value: 2 }
        version_labels { key: "previous" value: 1 }
      }
    }

It is written with plain string formatting (no tensorflow-serving-api
needed to export); :func:`parse` checks it with the real protos.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Optional, Sequence

CONFIG_NAME = "models.config"


@dataclasses.dataclass(frozen=True)
class ServedModel:
    """One ``config`` entry.

    Attributes:
        name: Model name in requests (``/v1/models/<name>``).
        base_path: The model folder as the server sees it.
        version: The version labelled ``stable``.
        previous: An older version kept loaded as ``previous``, or None.
    """

    name: str
    base_path: str
    version: int
    previous: Optional[int] = None


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # "\"" and "\\" escapes are text-proto escapes too


def _entry(model: ServedModel) -> str:
    loaded = sorted({model.version} | ({model.previous} if model.previous is not None else set()))
    labels = [("stable", model.version)] + ([("previous", model.previous)]
                                           if model.previous is not None else [])
    lines = ["  config {",
             f"    name: {_quote(model.name)}",
             f"    base_path: {_quote(model.base_path)}",
             '    model_platform: "tensorflow"',
             "    model_version_policy {",
             "      specific {",
             *[f"        versions: {v}" for v in loaded],
             "      }",
             "    }"]
    for key, value in labels:
        lines += ["    version_labels {", f"      key: {_quote(key)}", f"      value: {value}", "    }"]
    return "\n".join(lines + ["  }"])


def render(models: Sequence[ServedModel]) -> str:
    """The text proto for ``models`` (module docstring)."""
    if not models:
        raise ValueError("No models to serve.")
    body = "\n".join(_entry(m) for m in models)
    return f"model_config_list {{\n{body}\n}}\n"


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
