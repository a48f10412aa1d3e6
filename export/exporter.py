"""Exports a trained run: four SavedModels in the TF Serving layout + models.config.

    from export.exporter import export_run
    result = export_run("runs/afetler", "models")      # version = max existing + 1
    result.paths["index"]                               # models/afetler_index/1

Every version folder also holds ``export.json`` (what was exported, from
which run, the signature's inputs and outputs); TF Serving ignores it.

The four versions and models.config are published as one set
(``layout.publish_set``): a killed export leaves either the old set or the
new one, repaired by the next export (``layout.recover``). Folders are
0o777 & ~umask and files 0o666 & ~umask (0755 / 0644 under umask 022).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import json
import os
from typing import Optional, Union

import numpy as np
import tensorflow as tf

import afetler_tf  # noqa: F401  (Keras-2 set-up before TensorFlow)
from afetler_tf.runs.training_run import RunResult, load_run
from export import layout, serving_config, writing
from export.modules import INDEX_KINDS, CandidateModule, QueryModule, RankerModule, index_module, require_scann
from export.specs import InputSpecs

KINDS = ("query", "candidate", "index", "ranker")
MANIFEST = "export.json"


@dataclasses.dataclass
class ExportResult:
    """What an export wrote.

    Attributes:
        version: The version written for every model.
        paths: kind ("query", ...) -> the version folder.
        config_path: The models.config path.
        skipped: kind -> why it was not exported (e.g. no ranking head).
    """

    version: int
    paths: dict
    config_path: str
    skipped: dict


def export_run(run: Union[str, RunResult], base: str, version: Optional[int] = None,
               overwrite: bool = False, index: str = "brute_force", name: Optional[str] = None,
               serving_base: Optional[str] = None, promote: bool = False,
               verbose: int = 1) -> ExportResult:
    """Writes ``base/<name>_<kind>/<version>/`` for each kind, then ``base/models.config``.

    Args:
        run: A run directory (``python -m afetler_tf.fit --out``) or a RunResult.
        base: The models folder TF Serving reads.
        version: Version number; default one more than any existing.
        overwrite: Replace an existing version instead of refusing.
        index: "brute_force" (stock TF Serving) or "scann" (needs ScaNN ops).
        name: Model name prefix; default the run's model ("afetler").
        serving_base: ``base`` as the server sees it (models.config paths);
            default the absolute path of ``base``.
        promote: Label the new version ``stable`` at once (for a server
            started after the export); default: an existing ``stable`` stays
            and the new version is loaded beside it (serving_config).
        verbose: Print one line per written model.

    Raises:
        ValueError: A run without towers, a bad index kind or version.
        ImportError: ``index="scann"`` without scann.
        FileExistsError: The version exists and ``overwrite`` is False, or
            another export is publishing into ``base`` right now.
    """
    if index not in INDEX_KINDS:
        raise ValueError(f"index must be one of {INDEX_KINDS}, got {index!r}")
    if index == "scann":
        require_scann()
    result = load_run(run) if isinstance(run, str) else run
    model = _check_model(result)
    name = name or result.config.model
    kinds, skipped = _kinds(model)
    dirs = {kind: os.path.join(base, f"{name}_{kind}") for kind in kinds}
    layout.recover(base)  # a set a killed export left half-published: rolled back or finished
    for folder in dirs.values():
        layout.clean_stale(folder)
    version = version if version is not None else layout.next_version(dirs.values())
    layout.check_free(dirs.values(), version, overwrite)
    warm_up(result)
    inputs = InputSpecs.from_model(model)
    about = {"model": result.config.model, "run": str(run) if isinstance(run, str) else None,
             "version": version, "index": index, "history_length": inputs.history_length}
    staged = {}
    try:
        for kind in kinds:  # stage every model before publishing any
            module = _module(kind, result, inputs, index)
            write = functools.partial(_save, module, {**about, "name": f"{name}_{kind}", "kind": kind})
            staged[kind] = layout.stage(dirs[kind], version, write)
        # All four or none (layout.publish_set); models.config is the set's last write.
        config = functools.partial(serving_config.render_update, base, list(dirs.values()), version,
                                   promote, serving_base)
        published = layout.publish_set(base, {dirs[k]: tmp for k, tmp in staged.items()}, version,
                                       overwrite, config=config)
        assert len(published) == len(staged)
        paths = {kind: os.path.join(dirs[kind], str(version)) for kind in staged}
    finally:
        layout.discard(staged.values())  # whatever was not published
    config_path = os.path.join(base, serving_config.CONFIG_NAME)
    if verbose:
        print("".join(f"wrote {path}\n" for path in paths.values()), end="", flush=True)
        print(f"wrote {config_path}" + "".join(f"\nskipped {k}: {why}" for k, why in skipped.items()))
    return ExportResult(version, paths, config_path, skipped)


def _check_model(result: RunResult):
    model = result.model
    network = getattr(model, "network", None)
    if network is None or not hasattr(network, "query_tower"):
        raise ValueError(f"A {result.config.model!r} run has no query/candidate towers to export; "
                         f"export an afetler or two_tower run.")
    return model


def _kinds(model) -> tuple[list, dict]:
    if model.network.ranking_head is None:
        return ["query", "candidate", "index"], {"ranker": "the model has no ranking head "
                                                            "(afetler.ranking_head is off, or the "
                                                            "data has no ratings)"}
    return list(KINDS), {}


def warm_up(result: RunResult) -> None:
    """Calls every part once, eagerly: creates (and restores) deferred weights."""
    model, row = result.model, result.split.train.iloc[0]
    model.user_vectors([row["user_id"]])
    model.item_vectors([row["item_id"]])
    if model.network.ranking_head is not None:
        model.score([row["user_id"]], [row["item_id"]])


def catalogue(result: RunResult) -> tuple[np.ndarray, np.ndarray]:
    """All items of the data (trained or not): ids (n,) and p_v (n, d)."""
    ids = result.data.items["item_id"].to_numpy(object).astype(str)
    return ids, np.asarray(result.model.item_vectors(ids), np.float32)


def _module(kind: str, result: RunResult, inputs: InputSpecs, index: str) -> tf.Module:
    network = result.model.network
    encoder = getattr(result.model, "candidate_encoder", network.candidate_tower)  # + NewItemGAN
    if kind == "query":  # the retrieval vectors (+ the item-item channel's part)
        return QueryModule(result.model.query_encoder, inputs)
    if kind == "candidate":
        return CandidateModule(result.model.retrieval_encoder, inputs)
    if kind == "ranker":
        return RankerModule(network, inputs, candidate_tower=encoder)
    ids, vectors = catalogue(result)
    return index_module(result.model.query_encoder, inputs, index, ids, vectors)


def _without_layer_traces():
    """Skips tf_keras' tracing of every layer's call (3-4x faster, half the size).

    The signatures are the module's own tf.functions; the per-layer traces
    would only serve reviving the Keras objects, which serving never does.
    """
    try:
        from tf_keras.src.saving.legacy.saved_model.utils import keras_option_scope
    except ImportError:  # another tf_keras layout: save with the traces
        return contextlib.nullcontext()
    return keras_option_scope(save_traces=False, in_tf_saved_model_scope=False)


def save_module(module: tf.Module, path: str) -> tf.types.experimental.ConcreteFunction:
    """``tf.saved_model.save`` with ``serve`` as ``serving_default``; returns it."""
    serve = module.serve.get_concrete_function()
    signatures = {"serving_default": serve}
    if hasattr(module, "serve_exclude"):  # the index's second signature
        signatures["exclude"] = module.serve_exclude.get_concrete_function()
    with _without_layer_traces():
        tf.saved_model.save(module, path, signatures=signatures)
    return serve


def _save(module: tf.Module, about: dict, path: str) -> None:
    serve = save_module(module, path)
    inputs, outputs = module.serve.input_signature[0], serve.structured_outputs
    about = dict(about, created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                 tensorflow=tf.__version__,
                 inputs={k: _describe(s) for k, s in sorted(inputs.items())},
                 outputs={k: _describe(t) for k, t in sorted(outputs.items())})
    writing.write_json(os.path.join(path, MANIFEST), about)  # 0644 under umask 022


def _describe(tensor) -> list:
    """[dtype, shape] with None for unknown sizes (or an unknown rank)."""
    return [tensor.dtype.name, None if tensor.shape.rank is None else tensor.shape.as_list()]


def read_manifest(version_dir: str) -> dict:
    """The ``export.json`` of a version folder."""
    with open(os.path.join(version_dir, MANIFEST), encoding="utf-8") as f:
        return json.load(f)
