"""TF Serving's REST predict JSON, decoded and encoded as the server does it.

The rules follow tensorflow_serving/util/json_tensor.cc:

- Row format, ``{"instances": [{name: value, ...}, ...]}``: every instance
  names every input exactly once; each input's values have one shape across
  instances and are stacked into a (batch, ...) tensor.
- Columnar format, ``{"inputs": {name: value, ...}}``: each input is its own
  (possibly scalar) tensor; missing inputs are errors, extra keys ignored.
- Values must match the signature's dtype: strings for DT_STRING (or
  ``{"b64": ...}``), numbers for floats (NaN and Infinity allowed), integers
  for ints.
- Responses: row requests get ``{"predictions": [...]}`` (one object per
  example when there are several outputs); columnar ones get
  ``{"outputs": {...}}``.

This module needs only NumPy, so a check of an export can run in a process
that has never imported afetler_tf or TFRS.
"""

from __future__ import annotations

import base64
import json
from typing import Mapping, Union

import numpy as np

NUMPY_DTYPES = {"string": object, "float32": np.float32, "float64": np.float64,
                "int32": np.int32, "int64": np.int64, "bool": np.bool_}
# The tensor dtype a client sends for each NumPy kind (gRPC): ids and text as
# strings, numbers as float32, integers (k) as int32.
KIND_DTYPES = {"O": "string", "U": "string", "S": "string", "f": "float32", "i": "int32",
               "u": "int32", "b": "bool"}


class RequestError(ValueError):
    """A request TF Serving would refuse (HTTP 400) with this message."""


SERVING_NAMES = {"float32": "float", "float64": "double"}  # TF's DataTypeString, as in its errors


def _json_type(value) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    return {dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")


def _is_b64(value) -> bool:
    return isinstance(value, dict) and list(value) == ["b64"] and isinstance(value["b64"], str)


def _scalar(value, dtype: str):
    ok = {"string": isinstance(value, str) or _is_b64(value),
          "bool": isinstance(value, bool),
          "int32": isinstance(value, int) and not isinstance(value, bool),
          "int64": isinstance(value, int) and not isinstance(value, bool)}.get(
        dtype, isinstance(value, (int, float)) and not isinstance(value, bool))
    if not ok:
        raise RequestError(f"JSON Value: {json.dumps(value)} Type: {_json_type(value)} "
                           f"is not of expected type: {SERVING_NAMES.get(dtype, dtype)}")
    if _is_b64(value):
        return base64.b64decode(value["b64"])
    return value.encode("utf-8") if dtype == "string" else value


def _shape(value) -> list:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value, level: int, shape: list, dtype: str, out: list) -> None:
    if not isinstance(value, list):
        if level != len(shape):
            raise RequestError(f"JSON Value: {json.dumps(value)} found at incorrect level: {level + 1} "
                               f"in the JSON DOM. Expected at level: {len(shape)}")
        out.append(_scalar(value, dtype))
        return
    if level >= len(shape):
        raise RequestError(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
    if len(value) != shape[level]:
        raise RequestError(f"Encountered list at unexpected size: {len(value)} at level: {level} "
                           f"expected size: {shape[level]}")
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


def tensor(value, dtype: str) -> np.ndarray:
    """One JSON value (scalar or nested list) -> an array of ``dtype``."""
    if dtype not in NUMPY_DTYPES:
        raise RequestError(f"Conversion of JSON Value: {json.dumps(value)} to type: {dtype}")
    shape, flat = _shape(value), []
    _fill(value, 0, shape, dtype, flat)
    return np.array(flat, dtype=NUMPY_DTYPES[dtype]).reshape(shape)


def _rows(instances, inputs: Mapping[str, str]) -> dict:
    if not isinstance(instances, list):
        raise RequestError("Excepting 'instances' to be an list/array")
    if not instances:
        raise RequestError("No values in 'instances' array")
    objects = isinstance(instances[0], dict) and not _is_b64(instances[0])
    if not objects and len(inputs) > 1:
        raise RequestError("instances is a plain list, but expecting list of objects as multiple "
                           "input tensors required as per tensorinfo_map")
    columns: dict = {}
    for i, element in enumerate(instances):
        item = element if objects else {next(iter(inputs)): element}
        if objects and not (isinstance(element, dict) and not _is_b64(element)):
            raise RequestError(f"Expecting object but got list at item {i} of input list")
        for name, value in item.items():
            try:
                if name not in inputs:
                    raise RequestError(f"JSON object: does not have named input: {name}")
                columns.setdefault(name, []).append(tensor(value, inputs[name]))
                if columns[name][-1].shape != columns[name][0].shape:
                    raise RequestError(f"Expecting shape {list(columns[name][0].shape)} but got: "
                                       f"{list(columns[name][-1].shape)}")
            except RequestError as e:
                raise RequestError(f"Failed to process element: {i} key: {name} of 'instances' list. "
                                   f"Error: {e}") from None
        if set(item) != set(inputs):
            raise RequestError(f"Failed to process element: {i} of 'instances' list. JSON object: "
                               f"{json.dumps(element)} keys must be equal to: {','.join(sorted(inputs))}")
    return {name: np.stack(values) for name, values in columns.items()}


def _columns(value, inputs: Mapping[str, str]) -> dict:
    if not isinstance(value, dict) or _is_b64(value):
        if len(inputs) > 1:
            raise RequestError("inputs is a plain value/list, but expecting an object as multiple "
                               "input tensors required as per tensorinfo_map")
        name = next(iter(inputs))
        return {name: tensor(value, inputs[name])}
    out = {}
    for name in sorted(inputs):
        if name not in value:
            raise RequestError(f"Missing named input: {name} in 'inputs' object.")
        out[name] = tensor(value[name], inputs[name])
    return out


def parse(body: Union[str, bytes, Mapping]) -> dict:
    """A request body (JSON text, NaN/Infinity allowed) as a dict."""
    doc = json.loads(body) if isinstance(body, (str, bytes)) else body
    if not isinstance(doc, dict):
        raise RequestError(f"JSON Value: {json.dumps(doc)} Is not object")
    return doc


def decode(body: Union[str, bytes, Mapping], inputs: Mapping[str, str]) -> tuple[str, dict]:
    """Decodes a predict request against a signature's inputs.

    Args:
        body: The request JSON (text or already parsed).
        inputs: input name -> dtype name ("string", "float32", "int32", ...).

    Returns:
        ("row" or "columnar", input name -> numpy array).

    Raises:
        RequestError: What TF Serving would answer with HTTP 400.
    """
    doc = parse(body)
    if "instances" in doc and "inputs" in doc:
        raise RequestError("Not formatted correctly expecting only one of 'inputs' or 'instances' "
                           "keys to exist")
    if "instances" in doc:
        return "row", _rows(doc["instances"], inputs)
    if "inputs" in doc:
        return "columnar", _columns(doc["inputs"], inputs)
    raise RequestError("Missing 'inputs' or 'instances' key")


def _plain(value: np.ndarray):
    value = np.asarray(value)
    if value.dtype.kind in "OSU":
        flat = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in value.reshape(-1)]
        return np.array(flat, dtype=object).reshape(value.shape).tolist()
    return value.tolist()


def encode(outputs: Mapping[str, np.ndarray], fmt: str) -> dict:
    """A predict response body for ``outputs`` in the request's format."""
    names = sorted(outputs)
    if fmt == "columnar":
        if len(names) == 1:
            return {"outputs": _plain(outputs[names[0]])}
        return {"outputs": {name: _plain(outputs[name]) for name in names}}
    if len(names) == 1:
        return {"predictions": _plain(outputs[names[0]])}
    batch = {len(np.asarray(outputs[name])) for name in names}
    if len(batch) != 1:
        raise RequestError("Output tensors do not share a batch size; use the columnar format")
    columns = {name: _plain(outputs[name]) for name in names}
    return {"predictions": [{name: columns[name][i] for name in names} for i in range(batch.pop())]}


def dtype_of(values) -> str:
    """The tensor dtype name a client sends for ``values`` (KIND_DTYPES)."""
    kind = np.asarray(values).dtype.kind
    if kind not in KIND_DTYPES:
        raise ValueError(f"Cannot send values of dtype {np.asarray(values).dtype}.")
    return KIND_DTYPES[kind]


def instances(features: Mapping[str, np.ndarray]) -> list:
    """Feature arrays (batch, ...) -> row-format ``instances`` (JSON-ready)."""
    columns = {name: _plain(values) for name, values in features.items()}
    n = {len(v) for v in columns.values()}
    if len(n) != 1:
        raise ValueError(f"Features have different batch sizes: {sorted(n)}")
    return [{name: columns[name][i] for name in columns} for i in range(n.pop())]


def columns(features: Mapping) -> dict:
    """Feature arrays (or scalars such as k) -> columnar ``inputs`` (JSON-ready)."""
    return {name: _plain(values) for name, values in features.items()}
