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

Beyond what TF Serving checks (it would crash, wrap or guess here), a
request is refused with a message naming the field (HTTP 400 style):

- nesting deeper than ``MAX_DEPTH`` levels: "request nested too deep";
- ``{"b64": ...}`` that is not valid base64: "invalid base64 in field X";
- an integer outside its dtype (int32: [-2^31, 2^31-1]; ``k``: "k must be
  an int32 in [1, 2^31-1]", TF Serving says "is not of expected type:
  int32"), or a number too large for a float; a string that is not UTF-8.

This module needs only NumPy, so a check of an export can run in a process
that has never imported afetler_tf or TFRS.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Mapping, Optional, Union

import numpy as np

NUMPY_DTYPES = {"string": object, "float32": np.float32, "float64": np.float64,
                "int32": np.int32, "int64": np.int64, "bool": np.bool_}
# The tensor dtype a client sends for each NumPy kind (gRPC): ids and text as
# strings, numbers as float32, integers (k) as int32.
KIND_DTYPES = {"O": "string", "U": "string", "S": "string", "f": "float32", "i": "int32",
               "u": "int32", "b": "bool"}


class RequestError(ValueError):
    """A request TF Serving would refuse (HTTP 400) with this message."""


MAX_DEPTH = 64  # JSON levels (objects + arrays) a request may nest; tensors need a few
K_KEY = "k"  # the index's number of results: a scalar int32 >= 1
INT_RANGES = {"int32": (-2 ** 31, 2 ** 31 - 1), "int64": (-2 ** 63, 2 ** 63 - 1)}
FLOAT_MAX = {"float32": float(np.finfo(np.float32).max), "float64": float(np.finfo(np.float64).max)}


def _bound(value: int) -> str:
    for power in (31, 63):
        if abs(value) in (2 ** power, 2 ** power - 1):
            return f"{'-' if value < 0 else ''}2^{power}{'-1' if abs(value) == 2 ** power - 1 else ''}"
    return str(value)


def int_range_message(name: Optional[str], dtype: str, value) -> str:
    """"NAME must be an int32 in [LO, HI], got VALUE" (k: [1, 2^31-1])."""
    low, high = INT_RANGES[dtype]
    if name == K_KEY:
        low = 1
    return f"{name or 'value'} must be an {dtype} in [{_bound(low)}, {_bound(high)}], got {value}"


def check_ints(name: Optional[str], values, dtype: str = "int32") -> None:
    """Refuses integer ``values`` that do not fit ``dtype`` (they would wrap silently).

    Raises:
        RequestError: naming ``name`` and the range.
    """
    array = np.asarray(values)
    if array.dtype.kind == "O":  # Python ints beyond int64
        flat = [v for v in array.reshape(-1) if isinstance(v, int) and not isinstance(v, bool)]
    elif array.dtype.kind in "iu":
        flat = array.reshape(-1)
    else:
        return
    low, high = INT_RANGES[dtype]
    for value in flat:
        if not low <= int(value) <= high:
            raise RequestError(int_range_message(name, dtype, int(value)))


SERVING_NAMES = {"float32": "float", "float64": "double"}  # TF's DataTypeString, as in its errors


def _json_type(value) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    return {dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")


def _is_b64(value) -> bool:
    return isinstance(value, dict) and list(value) == ["b64"] and isinstance(value["b64"], str)


def _scalar(value, dtype: str, name: Optional[str] = None):
    ok = {"string": isinstance(value, str) or _is_b64(value),
          "bool": isinstance(value, bool),
          "int32": isinstance(value, int) and not isinstance(value, bool),
          "int64": isinstance(value, int) and not isinstance(value, bool)}.get(
        dtype, isinstance(value, (int, float)) and not isinstance(value, bool))
    if not ok:
        raise RequestError(f"JSON Value: {json.dumps(value)} Type: {_json_type(value)} "
                           f"is not of expected type: {SERVING_NAMES.get(dtype, dtype)}")
    field = name or "value"
    if _is_b64(value):
        return _b64(value["b64"], field)
    if dtype == "string":
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise RequestError(f"invalid string in field {field}: not UTF-8 ({e.reason})") from None
    if dtype in INT_RANGES:
        low, high = INT_RANGES[dtype]
        if not low <= value <= high:
            raise RequestError(f"{int_range_message(name, dtype, value)} (JSON Value: {value} Type: "
                               f"Number is not of expected type: {dtype})")
    elif dtype in FLOAT_MAX and isinstance(value, int) and abs(value) > FLOAT_MAX["float64"]:
        raise RequestError(f"number in field {field} is too large for {SERVING_NAMES.get(dtype, dtype)}: "
                           f"{str(value)[:20]}... ({len(str(value))} digits)")
    return value


def _b64(text: str, field: str) -> bytes:
    """Standard base64 (padding optional); anything else is refused, not dropped."""
    padded = text + "=" * (-len(text) % 4)
    try:
        if len(text) % 4 == 1:
            raise binascii.Error("truncated input")
        return base64.b64decode(padded, validate=True)
    except binascii.Error as e:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise RequestError(f"invalid base64 in field {field}: {json.dumps(shown)} ({e})") from None


def _shape(value) -> list:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value, level: int, shape: list, dtype: str, out: list, name: Optional[str] = None) -> None:
    if not isinstance(value, list):
        if level != len(shape):
            raise RequestError(f"JSON Value: {json.dumps(value)} found at incorrect level: {level + 1} "
                               f"in the JSON DOM. Expected at level: {len(shape)}")
        out.append(_scalar(value, dtype, name))
        return
    if level >= len(shape):
        raise RequestError(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
    if len(value) != shape[level]:
        raise RequestError(f"Encountered list at unexpected size: {len(value)} at level: {level} "
                           f"expected size: {shape[level]}")
    for item in value:
        _fill(item, level + 1, shape, dtype, out, name)


def tensor(value, dtype: str, name: Optional[str] = None) -> np.ndarray:
    """One JSON value (scalar or nested list) -> an array of ``dtype``.

    ``name`` (the input) only goes into error messages.
    """
    if dtype not in NUMPY_DTYPES:
        raise RequestError(f"Conversion of JSON Value: {json.dumps(value)} to type: {dtype}")
    _check_depth(value, MAX_DEPTH)
    shape, flat = _shape(value), []
    _fill(value, 0, shape, dtype, flat, name)
    with np.errstate(over="ignore"):  # 1e300 as float32 is inf, as TF Serving makes it
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
                columns.setdefault(name, []).append(tensor(value, inputs[name], name))
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
        return {name: tensor(value, inputs[name], name)}
    out = {}
    for name in sorted(inputs):
        if name not in value:
            raise RequestError(f"Missing named input: {name} in 'inputs' object.")
        out[name] = tensor(value[name], inputs[name], name)
    return out


def _too_deep() -> RequestError:
    return RequestError(f"request nested too deep: more than {MAX_DEPTH} levels of JSON arrays/objects")


def _check_depth(doc, limit: int) -> None:
    """Refuses JSON nested more than ``limit`` levels (iterative: no recursion)."""
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (list, dict)):
            if depth > limit:
                raise _too_deep()
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children if isinstance(child, (list, dict)))


def parse(body: Union[str, bytes, Mapping]) -> dict:
    """A request body (JSON text, NaN/Infinity allowed) as a dict.

    Raises:
        RequestError: Not JSON, not an object, or nested deeper than ``MAX_DEPTH``.
    """
    if isinstance(body, (str, bytes)):
        try:
            doc = json.loads(body)
        except RecursionError:
            raise _too_deep() from None
        except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
            raise RequestError(f"JSON Parse error: {e}") from None
    else:
        doc = body
    _check_depth(doc, MAX_DEPTH)
    if not isinstance(doc, dict):
        raise RequestError(f"JSON Value: {json.dumps(doc)[:200]} Is not object")
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


def dtype_of(values, name: Optional[str] = None) -> str:
    """The tensor dtype name a client sends for ``values`` (KIND_DTYPES).

    Raises:
        ValueError: A dtype that cannot be sent.
        RequestError: Integers outside int32 (they would wrap: 2^40 -> 0),
            naming ``name``.
    """
    kind = np.asarray(values).dtype.kind
    if kind == "O" and _all_ints(values):
        kind = "i"  # Python ints too large for int64
    if kind not in KIND_DTYPES:
        raise ValueError(f"Cannot send values of dtype {np.asarray(values).dtype}.")
    if KIND_DTYPES[kind] == "int32":
        check_ints(name, values, "int32")
    return KIND_DTYPES[kind]


def _all_ints(values) -> bool:
    flat = np.asarray(values).reshape(-1)
    return flat.size > 0 and all(isinstance(v, int) and not isinstance(v, bool) for v in flat)


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
