"""Exports of a tiny AFETLER run, answered by a fresh process as TF Serving would.

One subprocess (``python -m export.local_serving --batch``) loads every
export with plain ``tf.saved_model.load`` (neither afetler_tf nor TFRS
imported), decodes REST bodies with the signatures' dtypes, and answers;
the answers must equal the in-memory model's (atol 1e-5).
"""

import json
import os

import numpy as np
import pytest
from test_export_support import python, tiny_result

from afetler_tf.data import user_histories
from afetler_tf.features import MISSING
from export import rest
from export.exporter import export_run, read_manifest

USERS, ITEMS = ["u0", "u1", "nobody"], ["i0", "i5", "never-seen"]


def _scann_installed() -> bool:
    try:
        import scann  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def result(tmp_path_factory, tiny_data):
    return tiny_result(tmp_path_factory, tiny_data)


@pytest.fixture(scope="module")
def exported(result, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("models"))
    out = {"brute_force": export_run(result, base, verbose=0)}
    if _scann_installed():
        out["scann"] = export_run(result, str(tmp_path_factory.mktemp("models_scann")), index="scann",
                                  verbose=0)
    return out


def user_inputs(result, users, length=None) -> dict:
    """Profile + history, most recent first: the whole training history by
    default (what the API reads: MCAU its latest ``history_length``, the
    item-item channel all of it)."""
    features = result.model.space.user_features(users)
    longest = int(result.split.train.groupby("user_id").size().max())
    hist = user_histories(result.split.train, users, max_len=length or longest)
    return dict(features, history_item_ids=hist["history_item_ids"], history_ratings=hist["history_ratings"])


def seen(result, user) -> set:
    return set(result.split.train.loc[result.split.train.user_id == user, "item_id"])


def requests(result, exported) -> dict:
    """name -> (model folder, {"body": ...} or {"tensors": ...})."""
    paths = exported["brute_force"].paths
    users, items = user_inputs(result, USERS), result.model.space.item_features(ITEMS)
    nobody = dict(rest.instances(user_inputs(result, ["nobody"]))[0], age=float("nan"),
                  history_item_ids=[], history_ratings=[])
    long = user_inputs(result, ["u0"])  # the whole history, longer than the cap of 8
    assert long["history_item_ids"].shape[1] > result.config.data.history_length
    index = rest.columns({**users, "k": 5})
    no_exclusion = dict(index, exclude_item_ids=[[""]] * len(USERS))
    out = {
        "query": (paths["query"], {"body": {"instances": rest.instances(users)}}),
        "candidate": (paths["candidate"], {"body": {"instances": rest.instances(items)}}),
        "index": (paths["index"], {"body": {"inputs": index}}),
        "ranker": (paths["ranker"], {"body": {"instances": rest.instances({**users, **items})}}),
        "nan_and_empty_history": (paths["query"], {"body": {"instances": [nobody]}}),
        "long_history": (paths["query"], {"body": {"instances": rest.instances(long)}}),
        "k_above_catalogue": (paths["index"], {"body": {"inputs": dict(index, k=1000)}}),
        "index_exclude_nothing": (paths["index"], {"body": {"signature_name": "exclude",
                                                            "inputs": no_exclusion}}),
        "index_exclude_given": (paths["index"], {"body": {"signature_name": "exclude", "inputs": dict(
            index, exclude_item_ids=[["i0", "i1", ""], ["i2", "", ""], ["", "", ""]])}}),
        "k_zero": (paths["index"], {"body": {"inputs": dict(index, k=0)}}),
        "missing_k": (paths["index"], {"body": {"inputs": {n: v for n, v in index.items() if n != "k"}}}),
        "missing_feature": (paths["query"], {"body": {"instances": [
            {n: v for n, v in row.items() if n != "age"} for row in rest.instances(users)]}}),
        "wrong_dtype": (paths["query"], {"body": {"instances": [
            dict(row, age="old") for row in rest.instances(users)]}}),
        "tensors_missing": (paths["query"], {"tensors": {n: v for n, v in rest.columns(users).items()
                                                         if n != "age"}}),
        "tensors_wrong_dtype": (paths["query"], {"tensors": dict(rest.columns(users), age=["old"] * 3)}),
    }
    if "scann" in exported:
        out["scann_index"] = (exported["scann"].paths["index"], {"body": {"inputs": index}})
    return out


@pytest.fixture(scope="module")
def answers(result, exported, tmp_path_factory):
    named = requests(result, exported)
    folder = tmp_path_factory.mktemp("serving")
    batch = [dict(request, model=model) for model, request in named.values()]
    (folder / "batch.json").write_text(json.dumps(batch))
    done = python(["-m", "export.local_serving", "--batch", str(folder / "batch.json"),
                   "--out", str(folder / "answers.json")])
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads((folder / "answers.json").read_text())
    return dict(zip(named, answer["responses"]), imported=answer["imported"])


def test_the_fresh_process_imported_neither_afetler_tf_nor_tfrs(answers):
    assert "tensorflow" in answers["imported"]
    assert "afetler_tf" not in answers["imported"]
    assert "tensorflow_recommenders" not in answers["imported"]


def test_towers_answer_like_the_in_memory_model(answers, result):
    model = result.model
    np.testing.assert_allclose(answers["query"]["predictions"], model.user_vectors(USERS), atol=1e-5)
    np.testing.assert_allclose(answers["candidate"]["predictions"], model.item_vectors(ITEMS), atol=1e-5)


def _expected_top(result, exclude: list, k: int):
    ids = result.data.items["item_id"].to_numpy(object).astype(str)
    scores = result.model.score_all(USERS, ids)  # (3, n)
    masked = np.where([np.isin(ids, list(e)) for e in exclude], -np.inf, scores)
    top = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    return ids, scores, np.take_along_axis(masked, top, 1)


def test_index_returns_the_in_memory_top_k_without_the_users_history(answers, result):
    history = [seen(result, u) for u in USERS]
    ids, scores, expected = _expected_top(result, history, 5)
    out = answers["index"]["outputs"]
    np.testing.assert_allclose(out["scores"], expected, atol=1e-5)
    column = {item: j for j, item in enumerate(ids)}  # each id comes with its own score (ties aside)
    own = [[scores[u, column[item]] for item in row] for u, row in enumerate(out["item_ids"])]
    np.testing.assert_allclose(own, out["scores"], atol=1e-5)
    assert not any(set(row) & h for row, h in zip(out["item_ids"], history))
    # k above what is left: every row gets the width of the row with the fewest left
    left = min(len(ids) - len(h & set(ids)) for h in history)
    assert np.shape(answers["k_above_catalogue"]["outputs"]["item_ids"]) == (3, left)


def test_the_exclude_signature_excludes_exactly_the_ids_given(answers, result):
    _, _, expected = _expected_top(result, [set(), set(), set()], 5)
    np.testing.assert_allclose(answers["index_exclude_nothing"]["outputs"]["scores"], expected, atol=1e-5)
    given = [{"i0", "i1"}, {"i2"}, set()]
    _, _, expected = _expected_top(result, given, 5)
    out = answers["index_exclude_given"]["outputs"]
    np.testing.assert_allclose(out["scores"], expected, atol=1e-5)
    assert not any(set(row) & g for row, g in zip(out["item_ids"], given))


def test_ranker_answers_rating_and_score(answers, result):
    model = result.model
    rows = answers["ranker"]["predictions"]
    np.testing.assert_allclose([r["rating"] for r in rows], model.score(USERS, ITEMS), atol=1e-5)
    dots = np.sum(model.user_vectors(USERS) * model.item_vectors(ITEMS), axis=1)
    np.testing.assert_allclose([r["score"] for r in rows], dots, atol=1e-5)


def test_unknown_ids_nan_and_empty_or_long_histories(answers, result):
    model = result.model
    assert result.model.space.user_features(["nobody"])["age"][0] == np.float32(MISSING)
    np.testing.assert_allclose(answers["nan_and_empty_history"]["predictions"],
                               model.user_vectors(["nobody"]), atol=1e-5)
    np.testing.assert_allclose(answers["long_history"]["predictions"], model.user_vectors(["u0"]),
                               atol=1e-5)  # whole history: MCAU cuts it to the 8 most recent


@pytest.mark.parametrize("name, words", [
    ("missing_feature", ["keys must be equal to", "age"]),
    ("wrong_dtype", ["key: age", "is not of expected type: float"]),
    ("missing_k", ["Missing named input: k"]),
    ("k_zero", ["k must be >= 1"]),
    ("tensors_missing", ["Missing but required: {age}"]),
    ("tensors_wrong_dtype", ["expected to be a float tensor but is a string tensor"])])
def test_bad_requests_get_clear_errors(answers, name, words):
    assert "error" in answers[name], answers[name]
    for word in words:
        assert word in answers[name]["error"]


def test_scann_index_finds_the_brute_force_top_k(answers):
    if "scann_index" not in answers:
        pytest.skip("scann is not installed (optional extra)")
    exact, found = answers["index"]["outputs"], answers["scann_index"]["outputs"]
    assert [set(a) == set(b) for a, b in zip(exact["item_ids"], found["item_ids"])] == [True] * 3


def test_manifests_and_models_config(exported, result):
    from export import serving_config

    ex = exported["brute_force"]
    assert ex.version == 1 and ex.skipped == {}
    query = read_manifest(ex.paths["query"])
    assert query["inputs"]["history_item_ids"] == ["string", [None, None]]
    width = 8 + result.model.network.item_item.rank + 1  # [p_u / rho ‖ s q~_u ‖ beta] (item-item channel)
    assert query["outputs"] == {"embedding": ["float32", [None, width]]}
    assert set(read_manifest(ex.paths["index"])["inputs"]) == set(query["inputs"]) | {"k"}
    with open(ex.config_path) as f:
        config = serving_config.parse(f.read())
    names = [c.name for c in config.model_config_list.config]
    assert names == ["afetler_query", "afetler_candidate", "afetler_index", "afetler_ranker"]
    for entry in config.model_config_list.config:
        assert entry.base_path == os.path.dirname(os.path.abspath(ex.paths[entry.name.split("_")[1]]))
        assert dict(entry.version_labels) == {"stable": 1}
        assert list(entry.model_version_policy.specific.versions) == [1]


def test_a_two_tower_run_exports_without_history_inputs(tiny_data, tiny_split, tmp_path):
    import tensorflow as tf
    from test_export_support import tiny_config

    from afetler_tf.models import build_model
    from afetler_tf.runs.training_run import RunResult

    config = tiny_config("unused", model="two_tower")
    model = build_model(config)
    model.fit(tiny_data, tiny_split, verbose=0)
    ex = export_run(RunResult(config, tiny_data, tiny_split, model, {}, {}, 0.0, 0.0), str(tmp_path),
                    verbose=0)
    assert sorted(os.listdir(tmp_path)) == ["models.config", "two_tower_candidate", "two_tower_index",
                                            "two_tower_query", "two_tower_ranker"]
    signature = tf.saved_model.load(ex.paths["query"]).signatures["serving_default"]
    specs = signature.structured_input_signature[1]
    assert sorted(specs) == ["age", "gender", "occupation", "user_id"]
    features = model.space.user_features(USERS)
    out = signature(**{n: tf.constant(v, specs[n].dtype) for n, v in features.items()})["embedding"]
    np.testing.assert_allclose(out.numpy(), model.user_vectors(USERS), atol=1e-5)


def test_the_approximate_path_excludes_like_the_exact_one(result):
    """The k + E path of an approximate index (ScaNN), run here over a BruteForce
    layer, keeps the same items as exact search with the excluded ones masked."""
    import tensorflow as tf

    from export.exporter import catalogue
    from export.modules import IndexModule, build_index
    from export.specs import InputSpecs

    inputs = InputSpecs.from_model(result.model)
    ids, vectors = catalogue(result)
    encoder = result.model.query_encoder
    exact = IndexModule(encoder, None, len(ids), inputs, ids, vectors=vectors)
    approximate = IndexModule(encoder, build_index("brute_force", vectors, ids), len(ids), inputs, ids)
    features = {name: tf.constant(value) for name, value in user_inputs(result, USERS).items()}
    for k in (3, 1000):
        feed = dict(features, k=tf.constant(k, tf.int32),
                    exclude_item_ids=tf.constant([["i0", "i1", ""], ["i2", "x", ""], ["", "", ""]]))
        a, b = exact.serve_exclude(feed), approximate.serve_exclude(feed)
        assert a["item_ids"].numpy().tolist() == b["item_ids"].numpy().tolist()
        np.testing.assert_allclose(a["scores"].numpy(), b["scores"].numpy(), atol=1e-6)
        a, b = exact.serve({n: v for n, v in feed.items() if n != "exclude_item_ids"}), \
            approximate.serve({n: v for n, v in feed.items() if n != "exclude_item_ids"})
        assert a["item_ids"].numpy().tolist() == b["item_ids"].numpy().tolist()
