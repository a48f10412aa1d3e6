"""Serves exported models with plain TensorFlow, as a server without afetler_tf would.

    python tests/serve_plain_tf.py REQUESTS.json ANSWERS.json

REQUESTS.json is a list of ``{"model": VERSION_DIR, "signature": NAME,
"inputs": {name: nested list}}``; each input is converted with the dtype the
version's ``export.json`` declares. ANSWERS.json gets one ``{output: nested
list}`` per request (strings decoded as UTF-8). Only TensorFlow and the
standard library are imported: the test checks that afetler_tf never is.
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf


def main(requests_path: str, answers_path: str) -> int:
    with open(requests_path, encoding="utf-8") as f:
        requests = json.load(f)
    loaded, answers = {}, []
    for request in requests:
        path = request["model"]
        if path not in loaded:
            with open(os.path.join(path, "export.json"), encoding="utf-8") as f:
                declared = json.load(f)["inputs"]
            loaded[path] = (tf.saved_model.load(path), declared)
        model, declared = loaded[path]
        signature = model.signatures[request.get("signature", "serving_default")]
        tensors = {}
        for name, value in request["inputs"].items():
            dtype = declared.get(name, ["string"])[0] if name != "exclude_item_ids" else "string"
            if dtype == "string":
                array = np.array(value, dtype=object)
                if array.size == 0:
                    array = np.empty(array.shape, dtype=object)
                tensors[name] = tf.constant(array, dtype=tf.string, shape=array.shape)
            else:
                tensors[name] = tf.constant(value, dtype=dtype)
        outputs = signature(**tensors)
        answers.append({name: _plain(tensor.numpy()) for name, tensor in outputs.items()})
    with open(answers_path, "w", encoding="utf-8") as f:
        json.dump({"answers": answers, "afetler_tf_imported": "afetler_tf" in sys.modules}, f)
    return 0


def _plain(array: np.ndarray):
    if array.dtype == object:
        return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(array).tolist() \
            if array.size else array.tolist()
    return array.astype(float).tolist()


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
