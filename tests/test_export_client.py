"""REST decoding/encoding as TF Serving does it, and the client's requests.

No TF Serving here: the client is checked by the requests it builds, and
against tiny stand-in servers on 127.0.0.1 (one request each).
"""

import http.server
import json
import threading
from concurrent import futures

import numpy as np
import pytest

from export import client, rest

INPUTS = {"user_id": "string", "age": "float32", "history_item_ids": "string", "k": "int32"}
ROW_INPUTS = {n: t for n, t in INPUTS.items() if n != "k"}


def test_row_format_stacks_instances():
    body = {"instances": [{"user_id": "u1", "age": 31, "history_item_ids": ["a", ""]},
                          {"user_id": "u2", "age": float("nan"), "history_item_ids": ["b", "c"]}]}
    fmt, arrays = rest.decode(json.dumps(body), ROW_INPUTS)  # NaN travels as a JSON token
    assert fmt == "row"
    assert arrays["user_id"].tolist() == [b"u1", b"u2"]
    assert arrays["age"].dtype == np.float32 and arrays["age"][0] == 31 and np.isnan(arrays["age"][1])
    assert arrays["history_item_ids"].shape == (2, 2)


def test_columnar_format_takes_scalars_and_ignores_extra_keys():
    body = {"inputs": {"user_id": ["u1"], "age": [31.0], "history_item_ids": [["a"]], "k": 10,
                       "unused": 1}}
    fmt, arrays = rest.decode(body, INPUTS)
    assert fmt == "columnar" and arrays["k"].shape == () and arrays["k"].dtype == np.int32
    assert "unused" not in arrays


@pytest.mark.parametrize("body, message", [
    ({"instances": [{"user_id": "u1", "age": 3.0}]}, "keys must be equal to: age,history_item_ids,user_id"),
    ({"instances": [{"user_id": 7, "age": 3.0, "history_item_ids": ["a"]}]},
     "key: user_id of 'instances' list. Error: JSON Value: 7 Type: Number is not of expected type: string"),
    ({"instances": [{"user_id": "u", "age": True, "history_item_ids": ["a"]}]},
     "is not of expected type: float"),
    ({"instances": [{"user_id": "u", "age": 1.0, "history_item_ids": ["a"]},
                    {"user_id": "v", "age": 1.0, "history_item_ids": ["a", "b"]}]},
     "Expecting shape [1] but got: [2]"),
    ({"instances": [{"user_id": "u", "age": 1.0, "history_item_ids": [["a"], "b"]}]}, "incorrect level"),
    ({"instances": []}, "No values in 'instances' array"),
    ({"instances": ["u1"]}, "instances is a plain list"),
    ({"inputs": {"user_id": ["u"], "age": [1.0], "history_item_ids": [["a"]]}}, "Missing named input: k"),
    ({"inputs": {"user_id": ["u"], "age": [1.0], "history_item_ids": [["a"]], "k": 2.5}},
     "is not of expected type: int32"),
    ({"inputs": {}, "instances": []}, "only one of 'inputs' or 'instances'"),
    ({"signature_name": "serving_default"}, "Missing 'inputs' or 'instances' key")])
def test_bad_requests_get_tf_serving_errors(body, message):
    inputs = ROW_INPUTS if "instances" in body else INPUTS
    with pytest.raises(rest.RequestError) as error:
        rest.decode(body, inputs)
    assert message in str(error.value)


def test_b64_strings_and_responses():
    _, arrays = rest.decode({"instances": [{"b64": "aGVsbG8="}]}, {"user_id": "string"})
    assert arrays["user_id"].tolist() == [b"hello"]
    outputs = {"item_ids": np.array([[b"i1", b"i2"]], object), "scores": np.array([[0.5, 0.25]], np.float32)}
    assert rest.encode(outputs, "row") == {"predictions": [{"item_ids": ["i1", "i2"], "scores": [0.5, 0.25]}]}
    assert rest.encode(outputs, "columnar") == {
        "outputs": {"item_ids": [["i1", "i2"]], "scores": [[0.5, 0.25]]}}
    assert rest.encode({"embedding": np.ones((1, 2))}, "row") == {"predictions": [[1.0, 1.0]]}


def test_rest_urls_and_bodies():
    assert client.rest_url("afetler_index") == "http://localhost:8501/v1/models/afetler_index:predict"
    assert client.rest_url("m", host="h", port=1, version=3) == "http://h:1/v1/models/m/versions/3:predict"
    assert client.rest_url("m", label="stable", verb="") == "http://localhost:8501/v1/models/m/labels/stable"
    with pytest.raises(ValueError):
        client.rest_url("m", version=1, label="stable")
    features = {"user_id": np.array(["u1", "u2"], object), "age": np.array([31.0, np.nan], np.float32),
                "history_item_ids": [["a", ""], ["b", "c"]]}
    row = client.rest_body(features)
    assert row["instances"][0] == {"user_id": "u1", "age": 31.0, "history_item_ids": ["a", ""]}
    column = client.rest_body(features, signature="serving_default", k=10)
    assert column["signature_name"] == "serving_default" and column["inputs"]["k"] == 10
    for body in (row, column):  # what the client sends, TF Serving decodes
        _, arrays = rest.decode(json.dumps(body), INPUTS if "inputs" in body else ROW_INPUTS)
        assert arrays["history_item_ids"].shape == (2, 2)
    with pytest.raises(ValueError, match="columnar"):
        client.rest_body(features, columnar=False, k=10)


class _Stub(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802  (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status, answer = (200, {"outputs": {"echo": body["inputs"]["k"], "path": self.path}}) \
            if body["inputs"].get("k", 0) > 0 else (400, {"error": "k must be >= 1"})
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.mark.timeout(30)
def test_rest_predict_posts_json_and_raises_server_errors():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = client.rest_url("afetler_index", host="127.0.0.1", port=server.server_port, label="stable")
        answer = client.rest_predict(url, client.rest_body({"user_id": ["u1"]}, k=3), timeout=5)
        assert answer["outputs"] == {"echo": 3, "path": "/v1/models/afetler_index/labels/stable:predict"}
        with pytest.raises(client.ServingError, match="HTTP 400: k must be >= 1"):
            client.rest_predict(url, client.rest_body({"user_id": ["u1"]}, k=0), timeout=5)
    finally:
        server.shutdown()
        server.server_close()


def test_grpc_request_holds_typed_tensors():
    import tensorflow as tf

    request = client.grpc_request("afetler_index", {"user_id": ["u1", "u2"], "age": [31.0, 40.0],
                                                    "history_item_ids": [["a", ""], ["b", "c"]], "k": 10},
                                  label="stable")
    assert request.model_spec.name == "afetler_index" and request.model_spec.version_label == "stable"
    assert request.model_spec.signature_name == "serving_default"
    tensors = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
    assert tensors["user_id"].tolist() == [b"u1", b"u2"] and tensors["age"].dtype == np.float32
    assert tensors["history_item_ids"].shape == (2, 2)
    assert tensors["k"].dtype == np.int32 and tensors["k"].shape == ()
    assert client.grpc_request("m", {"k": 1}, version=4).model_spec.version.value == 4
    with pytest.raises(ValueError):
        client.grpc_request("m", {"k": 1}, version=4, label="stable")


@pytest.mark.timeout(30)
def test_grpc_predict_talks_to_a_prediction_service():
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    class Echo(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):  # noqa: N802  (the proto's name)
            if "k" not in request.inputs:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Missing but required: {k}")
            response = predict_pb2.PredictResponse()
            response.outputs["scores"].CopyFrom(client.tensor_proto(np.ones((1, 2), np.float32)))
            response.outputs["name"].CopyFrom(client.tensor_proto([request.model_spec.name]))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Echo(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        outputs = client.grpc_predict(f"127.0.0.1:{port}", client.grpc_request("afetler_index", {"k": 2}))
        assert outputs["scores"].shape == (1, 2) and outputs["name"].tolist() == [b"afetler_index"]
        with pytest.raises(client.ServingError, match="INVALID_ARGUMENT: Missing but required"):
            client.grpc_predict(f"127.0.0.1:{port}", client.grpc_request("m", {"user_id": ["u"]}), timeout=5)
    finally:
        server.stop(grace=None)
