"""Answer TF Serving REST requests from an export, without a server.

    python -m export.local_serving --model models/afetler_index --request req.json
    python -m export.local_serving --batch requests.json --out responses.json

Loads the SavedModel with plain ``tf.saved_model.load`` (no afetler_tf, no
TFRS: the process sees what ``tensorflow_model_server`` sees), decodes each
request body with the signature's input dtypes the way TF Serving's REST API
does (``export.rest``), calls the signature, and returns the REST response
body, or ``{"error": ...}`` as the server would. A model folder serves its
highest version; a version folder serves itself.

Batch file: a JSON list of ``{"model": PATH, "body": {...}}`` (or
``"tensors"`` instead of ``"body"``: input name -> values, fed as typed
tensors the way a gRPC request arrives); the output is
``{"responses": [...], "imported": [...]}`` where ``imported`` lists the
top-level packages loaded, so a test can check that neither ``afetler_tf``
nor ``tensorflow_recommenders`` was needed.

Bad requests end in ``{"error": ...}`` (HTTP 400 for TF Serving), never in a
crash: a ``k`` that does not fit int32 ("k must be an int32 in [1, 2^31-1]"),
JSON nested more than ``rest.MAX_DEPTH`` levels ("request nested too deep"),
bad ``{"b64": ...}`` ("invalid base64 in field X"), inputs of different batch
sizes or history ids/ratings of different lengths (the signature's own check,
or for exports without it, a message naming the inputs and their shapes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Mapping, Optional

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from export import rest  # noqa: E402


def version_dir(path: str) -> str:
    """``path`` if it holds a saved_model.pb, else its highest integer sub-folder."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    found = sorted(int(n) for n in os.listdir(path) if n.isdigit()) if os.path.isdir(path) else []
    if not found:
        raise FileNotFoundError(f"{path} holds no SavedModel and no version folder.")
    return os.path.join(path, str(found[-1]))


def _needs_scann(path: str) -> bool:
    manifest = os.path.join(path, "export.json")
    if not os.path.exists(manifest):
        return False
    with open(manifest, encoding="utf-8") as f:
        about = json.load(f)
    return about.get("kind") == "index" and about.get("index") == "scann"


class LocalModel:
    """One exported model, answering like TF Serving's predict API.

    Args:
        path: A model folder (its highest version is served) or a version folder.
    """

    def __init__(self, path: str):
        self.path = version_dir(path)
        if _needs_scann(self.path):
            import scann  # noqa: F401  (the ScaNN ops the index calls)
        self._loaded = tf.saved_model.load(self.path)
        self.signatures = dict(self._loaded.signatures)

    def input_specs(self, signature: str = "serving_default") -> dict:
        """input name -> TensorSpec of a signature."""
        return dict(self._signature(signature).structured_input_signature[1])

    def _signature(self, name: str):
        if name not in self.signatures:
            raise rest.RequestError(f"Serving signature name: \"{name}\" not found in signature def")
        return self.signatures[name]

    def predict_arrays(self, arrays: Mapping, signature: str = "serving_default") -> dict:
        """Calls a signature with arrays, as gRPC tensors arrive; returns numpy outputs.

        Each array keeps the dtype its values have (``rest.dtype_of``), so a
        wrong dtype reaches the signature, which refuses it. Missing or extra
        inputs are refused first, with TF Serving's message.
        """
        specs = self.input_specs(signature)
        missing, extra = sorted(set(specs) - set(arrays)), sorted(set(arrays) - set(specs))
        if missing or extra:
            raise rest.RequestError(
                f"input size does not match signature: {len(arrays)}!={len(specs)} len({{"
                f"{','.join(sorted(arrays))}}}) != len({{{','.join(sorted(specs))}}}). Sent extra: "
                f"{{{','.join(extra)}}}. Missing but required: {{{','.join(missing)}}}.")
        feed = {name: tf.constant(_array(value), dtype=rest.dtype_of(_array(value), name))
                for name, value in arrays.items()}
        try:
            outputs = self._signature(signature)(**feed)
        except tf.errors.InvalidArgumentError as e:
            mismatch = None if "assertion failed" in _message(e) else shape_mismatch(arrays, specs)
            if mismatch:  # an export without the signature's own check: a ConcatOp error
                raise rest.RequestError(mismatch) from None
            raise
        return {name: value.numpy() for name, value in outputs.items()}

    def predict(self, body) -> dict:
        """A REST request body -> the REST response body (or ``{"error": ...}``)."""
        try:
            doc = rest.parse(body)
            signature = doc.get("signature_name") or "serving_default"
            dtypes = {n: s.dtype.name for n, s in self.input_specs(signature).items()}
            fmt, arrays = rest.decode(doc, dtypes)
            return rest.encode(self.predict_arrays(arrays, signature), fmt)
        except ERRORS as e:
            return {"error": _message(e)}

    def predict_tensors(self, arrays: Mapping, signature: str = "serving_default") -> dict:
        """Like :meth:`predict_arrays`, answering ``{"outputs": ...}`` or ``{"error": ...}``."""
        try:
            return rest.encode(self.predict_arrays(arrays, signature), "columnar")
        except ERRORS as e:
            return {"error": _message(e)}


ERRORS = (rest.RequestError, tf.errors.OpError, TypeError, ValueError, OverflowError, RecursionError)


def _message(error: Exception) -> str:
    if isinstance(error, RecursionError):
        return f"request nested too deep ({error})"
    return getattr(error, "message", None) or str(error)


def shape_mismatch(arrays: Mapping, specs: Mapping) -> Optional[str]:
    """Why the inputs cannot go together, or None: batch-first inputs (rank >= 1
    in the signature) of different batch sizes, or history ids and ratings of
    different shapes. Names every input with its shape."""
    shapes = {name: list(np.shape(value)) for name, value in sorted(arrays.items())}
    batched = {name: shape for name, shape in shapes.items()
               if name in specs and specs[name].shape.rank != 0 and shape}
    if len({shape[0] for shape in batched.values()}) > 1:
        listed = ", ".join(f"{name} {shape}" for name, shape in batched.items())
        return f"Inputs must share one batch size (dim 0), got: {listed}"
    ids, ratings = shapes.get("history_item_ids"), shapes.get("history_ratings")
    if ids is not None and ratings is not None and ids != ratings:
        return (f"history_item_ids and history_ratings must have one shape (batch, L), got: "
                f"history_item_ids {ids}, history_ratings {ratings}")
    return None


def _array(value) -> np.ndarray:
    array = np.asarray(value)
    return array.astype(object) if array.dtype.kind == "U" else array


def run_batch(requests: list) -> dict:
    """Answers a list of ``{"model", "body"}`` (REST) or ``{"model", "tensors"}``
    (input name -> values, sent as gRPC would); loads each model once."""
    models: dict = {}
    responses = []
    for request in requests:
        if request["model"] not in models:
            models[request["model"]] = LocalModel(request["model"])
        model = models[request["model"]]
        responses.append(model.predict(request["body"]) if "body" in request
                         else model.predict_tensors(request["tensors"]))
    imported = sorted({name.split(".")[0] for name in sys.modules})
    return {"responses": responses, "imported": imported}


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export.local_serving", description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model folder (highest version) or version folder")
    p.add_argument("--request", help="request JSON file ('-' = stdin)")
    p.add_argument("--batch", help="JSON list of {model, body}")
    p.add_argument("--out", help="write the answer here instead of stdout")
    args = p.parse_args(argv)
    if args.batch:
        with open(args.batch, encoding="utf-8") as f:
            try:
                requests = json.load(f)
            except RecursionError:
                p.error(f"{args.batch}: nested too deep")
        answer = run_batch(requests)
    elif args.model and args.request:
        if args.request == "-":
            text = sys.stdin.read()
        else:
            with open(args.request, encoding="utf-8") as f:
                text = f.read()
        answer = LocalModel(args.model).predict(text)
    else:
        p.error("give --model and --request, or --batch")
    text = json.dumps(answer, indent=1, default=lambda v: np.asarray(v).tolist())
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        print(text)
    return 1 if "error" in answer else 0


if __name__ == "__main__":
    sys.exit(main())
