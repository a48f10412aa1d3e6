"""Robustness of served requests: bad requests and mismatched inputs.

- REST decoding refuses what would crash or be misread (huge k, deep JSON,
  bad base64) with a message naming the field.
- Inputs of different batch sizes or history lengths fail with the
  signature's own check (or, for exports without it, local_serving's).

Publishing (kills, rollback, file modes): tests/test_export_publish.py.
"""

import json
import os

import numpy as np
import pytest

from export import client, rest

# -- requests -----------------------------------------------------------------------------------

INDEX_INPUTS = {"user_id": "string", "age": "float32", "history_item_ids": "string",
                "history_ratings": "float32", "k": "int32"}
OK_INPUTS = {"user_id": ["u1", "u2"], "age": [31.0, 40.0], "history_item_ids": [["a", ""], ["b", "c"]],
             "history_ratings": [[5.0, 0.0], [4.0, 3.0]], "k": 2}


@pytest.mark.parametrize("k", [2 ** 40, -2 ** 40, 2 ** 31, 2 ** 70])
def test_k_outside_int32_is_a_clear_error(k):
    with pytest.raises(rest.RequestError, match=r"k must be an int32 in \[1, 2\^31-1\], got "):
        rest.decode({"inputs": dict(OK_INPUTS, k=k)}, INDEX_INPUTS)
    with pytest.raises(ValueError, match=r"k must be an int32 in \[1, 2\^31-1\]"):
        rest.dtype_of(np.asarray(k) if abs(k) < 2 ** 63 else k, "k")  # gRPC: no silent wrap to 0
    with pytest.raises(ValueError, match=r"k must be an int32"):
        client.rest_body({"user_id": ["u"]}, k=k)


def test_other_numbers_out_of_range_name_their_field():
    with pytest.raises(rest.RequestError, match=r"n must be an int32 in \[-2\^31, 2\^31-1\]"):
        rest.decode({"inputs": {"n": [1, 2 ** 33]}}, {"n": "int32"})
    with pytest.raises(rest.RequestError, match="number in field age is too large for float"):
        rest.decode({"instances": [{"age": 10 ** 400}]}, {"age": "float32"})
    _, arrays = rest.decode({"inputs": {"age": [1e300, 2 ** 40]}}, {"age": "float32"})
    assert np.isinf(arrays["age"][0]) and arrays["age"][1] == 2 ** 40  # as TF Serving casts


def test_deep_json_is_refused_not_a_recursion_error():
    deep = "[" * 5000 + "]" * 5000
    for body in ('{"inputs": {"k": %s}}' % deep, deep):
        with pytest.raises(rest.RequestError, match="request nested too deep"):
            rest.decode(body, INDEX_INPUTS)
    nested = current = []
    for _ in range(200):  # already parsed (a dict body)
        current.append([])
        current = current[0]
    with pytest.raises(rest.RequestError, match="request nested too deep"):
        rest.decode({"inputs": dict(OK_INPUTS, user_id=nested)}, INDEX_INPUTS)
    rest.decode({"inputs": OK_INPUTS}, INDEX_INPUTS)  # normal depth passes


@pytest.mark.parametrize("text", ["!!!", "aGVsbG8=x", "a", "aGVs bG8="])
def test_invalid_base64_names_the_field(text):
    with pytest.raises(rest.RequestError, match="invalid base64 in field user_id"):
        rest.decode({"instances": [{"user_id": {"b64": text}, "age": 1.0}]},
                    {"user_id": "string", "age": "float32"})
    with pytest.raises(rest.RequestError, match="invalid base64 in field user_id"):
        rest.decode({"inputs": {"user_id": [{"b64": text}]}}, {"user_id": "string"})


def test_valid_base64_with_or_without_padding():
    for text in ("aGVsbG8=", "aGVsbG8", ""):
        _, arrays = rest.decode({"inputs": {"user_id": [{"b64": text}]}}, {"user_id": "string"})
        assert arrays["user_id"].tolist() == [b"hello" if text else b""]


def test_bad_json_and_bad_strings_are_request_errors():
    with pytest.raises(rest.RequestError, match="JSON Parse error"):
        rest.decode('{"inputs": ', INDEX_INPUTS)
    with pytest.raises(rest.RequestError, match="invalid string in field user_id"):
        rest.decode({"inputs": {"user_id": ["\ud800"]}}, {"user_id": "string"})


# -- mismatched inputs, in the signature and in local_serving -----------------------------------

def _tiny_saved_model(folder, checked=True):
    """A SavedModel with the index's inputs whose serve concatenates them (as the towers do)."""
    import tensorflow as tf

    from export.specs import InputSpecs

    specs = InputSpecs(user={"user_id": tf.TensorSpec([None], tf.string, name="user_id"),
                             "age": tf.TensorSpec([None], tf.float32, name="age")},
                       item={}, history={
                           "history_item_ids": tf.TensorSpec([None, None], tf.string, name="history_item_ids"),
                           "history_ratings": tf.TensorSpec([None, None], tf.float32, name="history_ratings")},
                       history_length=4)

    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.serve = tf.function(self._serve, input_signature=[specs.index])

        def _serve(self, features):
            f = specs.prepare(features) if checked else features
            n = tf.cast(tf.strings.length(f["history_item_ids"]), tf.float32)
            weighted = n * f["history_ratings"]  # (batch, L): needs one shape
            joined = tf.concat([f["age"][:, None], weighted,
                                tf.cast(tf.strings.length(f["user_id"]), tf.float32)[:, None]], 1)
            return {"scores": tf.math.top_k(joined, k=tf.minimum(features["k"], tf.shape(joined)[1]))[0]}

    module = Module()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve.get_concrete_function()})
    return str(folder)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("robust_models")
    return {"checked": _tiny_saved_model(root / "checked" / "1"),
            "unchecked": _tiny_saved_model(root / "unchecked" / "1", checked=False)}


MISMATCHED = {
    "batch": dict(OK_INPUTS, history_item_ids=[["a"], ["b"], ["c"]], history_ratings=[[1.0], [2.0], [3.0]]),
    "length": dict(OK_INPUTS, history_ratings=[[5.0, 0.0, 1.0], [4.0, 3.0, 1.0]]),
}


def test_the_signature_itself_refuses_mismatched_inputs(tiny_models):
    import tensorflow as tf

    serve = tf.saved_model.load(tiny_models["checked"]).signatures["serving_default"]
    typed = {n: tf.constant(v, dtype=rest.dtype_of(np.asarray(v), n)) for n, v in OK_INPUTS.items()}
    assert tuple(serve(**typed)["scores"].shape) == (2, 2)
    for case, words in (("batch", ["Inputs must share one batch size", "[user_id] [2]",
                                   "[history_item_ids] [3 1]"]),
                        ("length", ["history_item_ids and history_ratings must have one shape",
                                    "[history_item_ids] [2 2]", "[history_ratings] [2 3]"])):
        feed = {n: tf.constant(v, dtype=rest.dtype_of(np.asarray(v), n)) for n, v in MISMATCHED[case].items()}
        with pytest.raises(tf.errors.InvalidArgumentError) as error:
            serve(**feed)
        for word in words:
            assert word in error.value.message, error.value.message
        assert "ConcatOp" not in error.value.message


def test_local_serving_answers_clear_errors(tiny_models):
    from export.local_serving import LocalModel

    for kind in ("checked", "unchecked"):  # unchecked: an export made before the signature checked
        model = LocalModel(os.path.dirname(tiny_models[kind]))
        assert np.shape(model.predict({"inputs": OK_INPUTS})["outputs"]) == (2, 2)
        batch = model.predict({"inputs": MISMATCHED["batch"]})["error"]
        assert "Inputs must share one batch size" in batch and "user_id" in batch and "history_item_ids" in batch
        assert "ConcatOp" not in batch
        length = model.predict({"inputs": MISMATCHED["length"]})["error"]
        assert "history_item_ids and history_ratings must have one shape" in length and "ConcatOp" not in length
        if kind == "unchecked":
            assert "history_item_ids [2, 2], history_ratings [2, 3]" in length
        tensors = model.predict_tensors(MISMATCHED["batch"])["error"]
        assert "Inputs must share one batch size" in tensors
        assert model.predict_tensors(dict(OK_INPUTS, k=2 ** 40)) == {
            "error": "k must be an int32 in [1, 2^31-1], got 1099511627776"}


def test_local_serving_cli_never_crashes(tiny_models, tmp_path):
    from test_export_support import python

    model = tiny_models["checked"]
    batch = [{"model": model, "body": {"inputs": dict(OK_INPUTS, k=2 ** 40)}},
             {"model": model, "body": "{\"inputs\": " + "[" * 5000 + "]" * 5000 + "}"},
             {"model": model, "body": {"inputs": dict(OK_INPUTS, user_id=[{"b64": "!!!"}, "u2"])}},
             {"model": model, "body": {"inputs": MISMATCHED["batch"]}},
             {"model": model, "body": {"inputs": OK_INPUTS}},
             {"model": model, "tensors": dict(OK_INPUTS, k=2 ** 40)}]
    (tmp_path / "batch.json").write_text(json.dumps(batch))
    done = python(["-m", "export.local_serving", "--batch", str(tmp_path / "batch.json"),
                   "--out", str(tmp_path / "out.json")])
    assert done.returncode == 0, done.stderr[-3000:]
    answers = json.loads((tmp_path / "out.json").read_text())["responses"]
    assert answers[0]["error"].startswith("k must be an int32 in [1, 2^31-1], got 1099511627776")
    assert answers[1]["error"].startswith("request nested too deep")
    assert answers[2]["error"].startswith("invalid base64 in field user_id")
    assert "Inputs must share one batch size" in answers[3]["error"]
    assert np.shape(answers[4]["outputs"]) == (2, 2)
    assert answers[5]["error"].startswith("k must be an int32")
    (tmp_path / "deep.json").write_text('{"inputs": ' + "[" * 5000 + "]" * 5000 + "}")
    done = python(["-m", "export.local_serving", "--model", model, "--request", str(tmp_path / "deep.json")])
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert json.loads(done.stdout)["error"].startswith("request nested too deep")
