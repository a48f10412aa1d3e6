"""A small TF Serving client: gRPC (tensorflow-serving-api) and REST (urllib).

    from export import client
    features = {"user_id": ["42"], "gender": ["M"], "occupation": ["writer"], "zip": ["55105"],
                "age": [31.0], "history_item_ids": [["50", "181", ""]],
                "history_ratings": [[5.0, 4.0, 0.0]]}

    # REST (port 8501): the index takes k, so it needs the columnar format
    url = client.rest_url("afetler_index", label="stable")
    top = client.rest_predict(url, client.rest_body(features, k=10))["outputs"]

    # gRPC (port 8500)
    request = client.grpc_request("afetler_index", {**features, "k": 10}, label="stable")
    top = client.grpc_predict("localhost:8500", request)   # {"item_ids": ..., "scores": ...}

Values become tensors by kind (``rest.KIND_DTYPES``): strings -> DT_STRING,
floats -> DT_FLOAT, integers -> DT_INT32 (``k``), so plain lists work; an integer
that does not fit int32 is refused here (``rest.RequestError``, a ValueError:
"k must be an int32 in [1, 2^31-1], got ...") instead of wrapping (2^40 -> 0). gRPC needs the
``serving`` extra (``pip install tensorflow-serving-api==2.20.*``); REST
needs nothing beyond the standard library and NumPy.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Mapping, Optional

import numpy as np

from export import rest

# tensorflow-serving-api imports TensorFlow; keep afetler_tf importable after it.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


class ServingError(RuntimeError):
    """The server answered with an error (message and HTTP status)."""

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(message if status is None else f"HTTP {status}: {message}")
        self.status = status


def rest_url(model: str, host: str = "localhost", port: int = 8501, version: Optional[int] = None,
             label: Optional[str] = None, verb: str = "predict") -> str:
    """``http://HOST:PORT/v1/models/MODEL[/versions/N | /labels/L]:VERB``."""
    if version is not None and label:
        raise ValueError("Give a version or a label, not both.")
    path = f"/v1/models/{model}"
    if version is not None:
        path += f"/versions/{int(version)}"
    elif label:
        path += f"/labels/{label}"
    return f"http://{host}:{port}{path}" + (f":{verb}" if verb else "")


def rest_body(features: Mapping, signature: Optional[str] = None, columnar: Optional[bool] = None,
              **scalars) -> dict:
    """A predict body: row ``instances``, or columnar ``inputs`` when scalars such as k are given.

    Args:
        features: input name -> per-example values (batch first).
        signature: Signature name (default: the server's serving_default).
        columnar: Force the format; default columnar exactly when ``scalars``.
        **scalars: Scalar inputs (``k=10``), only possible in columnar format.
    """
    columnar = bool(scalars) if columnar is None else columnar
    for name, value in {**features, **scalars}.items():
        if np.asarray(value).dtype.kind in "iuO":
            rest.check_ints(name, value, "int32")  # ints go as DT_INT32: refuse what would wrap
    if scalars and not columnar:
        raise ValueError(f"Scalar inputs {sorted(scalars)} need the columnar format.")
    body = {"signature_name": signature} if signature else {}
    if columnar:
        body["inputs"] = rest.columns({**features, **scalars})
    else:
        body["instances"] = rest.instances({k: np.asarray(v) for k, v in features.items()})
    return body


def rest_predict(url: str, body: Mapping, timeout: float = 10.0) -> dict:
    """POSTs ``body`` as JSON; returns the decoded response.

    Raises:
        ServingError: An HTTP error, with the server's ``error`` message.
    """
    data = json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        text = e.read().decode("utf-8", "replace")
        try:
            message = json.loads(text).get("error", text)
        except ValueError:
            message = text
        raise ServingError(message, e.code) from None


def _tf():
    import tensorflow as tf
    return tf


def tensor_proto(value, name: Optional[str] = None):
    """A TensorProto for ``value`` with the dtype its kind maps to (``rest.dtype_of``).

    Raises:
        ValueError: Integers outside int32 (``rest.RequestError``, naming ``name``).
    """
    array = np.asarray(value)
    dtype = rest.dtype_of(array, name)
    if array.dtype.kind == "O" and dtype == "int32":
        array = array.astype(np.int64)
    return _tf().make_tensor_proto(array, dtype=dtype)


def grpc_request(model: str, inputs: Mapping, signature: str = "serving_default",
                 version: Optional[int] = None, label: Optional[str] = None):
    """A ``PredictRequest`` for ``model`` with one tensor per input."""
    from tensorflow_serving.apis import predict_pb2

    if version is not None and label:
        raise ValueError("Give a version or a label, not both.")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = int(version)
    elif label:
        request.model_spec.version_label = label
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tensor_proto(value, name))
    return request


def response_outputs(response) -> dict:
    """A ``PredictResponse``'s outputs as numpy arrays (strings as bytes)."""
    tf = _tf()
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def grpc_predict(target: str, request, timeout: float = 10.0) -> dict:
    """Sends ``request`` to ``target`` ("host:8500"); returns the outputs.

    Raises:
        ServingError: The server's status details (e.g. a missing input).
    """
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            return response_outputs(stub.Predict(request, timeout=timeout))
        except grpc.RpcError as e:
            raise ServingError(f"{e.code().name}: {e.details()}") from None
