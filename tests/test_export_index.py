"""The exported index's serving path, in memory: one look-up of the history
(``export.modules.HistoryLookup``) for MCAU, the item-item channel and the
exclusion. It must give what the path it replaces gives (the ids looked up
by every layer on its own; numpy's stable sort over the whole catalogue)."""

import numpy as np
import pytest
import tensorflow as tf

from afetler_tf.data import user_histories
from export.exporter import catalogue
from export.modules import HistoryLookup, IndexModule, QueryModule
from export.specs import InputSpecs
from test_export_support import tiny_result

USERS = [f"u{u}" for u in range(12)] + ["nobody"]


@pytest.fixture(scope="module")
def result(tmp_path_factory, tiny_data):
    return tiny_result(tmp_path_factory, tiny_data)


def _features(result, users, extra=()) -> dict:
    """Profile + whole training history (most recent first), with ``extra``
    ids (unknown, padding, repeats) put in front of every history."""
    features = result.model.space.user_features(users)
    longest = int(result.split.train.groupby("user_id").size().max())
    hist = user_histories(result.split.train, users, max_len=longest)
    ids, ratings = hist["history_item_ids"], hist["history_ratings"]
    if extra:
        ids = np.concatenate([np.tile(np.array(extra, object), (len(users), 1)), ids], axis=1)
        ratings = np.concatenate([np.full((len(users), len(extra)), 4.0, np.float32), ratings], axis=1)
    features.update(history_item_ids=ids, history_ratings=ratings)
    return {name: tf.constant(value) for name, value in features.items()}


def test_one_look_up_gives_each_id_its_position_and_its_row(result):
    ids, _ = catalogue(result)
    encoder = result.model.query_encoder
    lookup = HistoryLookup(encoder, ids)
    request = tf.constant([[ids[3], "", "foreign", ids[0]], [ids[-1], ids[-1], "", ""]])
    positions, rows = (t.numpy() for t in lookup.lookup(request))
    n = len(ids)
    assert positions.tolist() == [[3, n, n, 0], [n - 1, n - 1, n, n]]  # n: padding or not an item
    # The rows MCAU's and the channel's own look-ups give ("" and unknown ids: 0, the OOV row).
    mcau = result.model.network.query_tower.history.item_features.id_lookup
    np.testing.assert_array_equal(rows, mcau(request).numpy())
    np.testing.assert_array_equal(rows, encoder.channel.item_lookup(request).numpy())
    with pytest.raises(ValueError, match="padding"):
        HistoryLookup(encoder, list(ids) + [""])


@pytest.mark.parametrize("extra", [(), ("foreign", "", "i3", "i3")])
def test_the_looked_up_history_encodes_like_the_ids(result, extra):
    """p_u (with the channel's part) from the rows of one look-up equals the
    towers' own look-ups of the ids: MCAU's latest 8 and the channel's whole history."""
    encoder, inputs = result.model.query_encoder, InputSpecs.from_model(result.model)
    ids, _ = catalogue(result)
    for features in (_features(result, USERS, extra),
                     dict(_features(result, USERS[:2]), history_item_ids=tf.zeros([2, 0], tf.string),
                          history_ratings=tf.zeros([2, 0]))):  # L = 0
        prepared, whole, cut = inputs.prepare_with_history(features)
        own = encoder(prepared).numpy()  # every layer looks the strings up itself
        for lookup in (HistoryLookup(encoder, ids), HistoryLookup(encoder)):  # index, query model
            served = encoder(lookup.with_rows(prepared, lookup.lookup(whole)[1], cut)).numpy()
            np.testing.assert_array_equal(served, own)  # the same ops on the same values
        module = QueryModule(encoder, inputs).serve(features)["embedding"].numpy()  # a graph: float
        np.testing.assert_allclose(module, own, rtol=1e-6, atol=1e-6)  # rounding of fused ops aside


def _expected(p_u, vectors, ids, excluded, k):
    scores = p_u @ vectors.T
    masked = np.where([np.isin(ids, list(e)) for e in excluded], -np.inf, scores)
    top = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    left = min(int(np.isfinite(row).sum()) for row in masked)
    return ids[top[:, :left]], np.take_along_axis(masked, top, 1)[:, :left]


def test_a_large_catalogue_excludes_and_ranks_like_a_stable_sort(result):
    """Exact search over the run's items + 3000 random ones: the top k of
    numpy's stable sort with the history (or the given ids) at -inf, for k
    small, and for k above what is left."""
    encoder, inputs = result.model.query_encoder, InputSpecs.from_model(result.model)
    ids, vectors = catalogue(result)
    rng = np.random.default_rng(0)
    extra = rng.standard_normal((3000, vectors.shape[1])).astype(np.float32)
    ids = np.concatenate([ids, [f"s{j}" for j in range(len(extra))]]).astype(object)
    vectors = np.concatenate([vectors, extra / np.linalg.norm(extra, axis=1, keepdims=True)])
    module = IndexModule(encoder, None, len(ids), inputs, ids, vectors=vectors)
    features = _features(result, USERS, ("foreign", "", "s7", "i3", "i3"))
    p_u = encoder(inputs.prepare(features)).numpy()
    order = np.argsort(ids.astype(str))
    p_u_scores = p_u @ vectors.T
    history = [set(row) - {""} for row in features["history_item_ids"].numpy().astype(str)]
    given = [{"s1", "i0", "i0"}] + [set()] * (len(USERS) - 1)
    exclude = tf.constant([["s1", "i0", "i0"]] + [["", "", ""]] * (len(USERS) - 1))
    for k in (10, 200, len(ids)):
        for out, excluded in ((module.serve(dict(features, k=tf.constant(k))), history),
                              (module.serve_exclude(dict(features, k=tf.constant(k),
                                                         exclude_item_ids=exclude)), given)):
            top, scores = _expected(p_u, vectors, ids.astype(str), excluded, k)
            found = out["item_ids"].numpy().astype(str)
            assert found.shape == top.shape
            np.testing.assert_allclose(out["scores"].numpy(), scores, atol=1e-5)
            # Each id comes with its own score (order within a float rounding of a tie aside),
            # and none is excluded.
            own = p_u_scores[np.arange(len(found))[:, None],
                             order[np.searchsorted(ids.astype(str), found, sorter=order)]]
            np.testing.assert_allclose(out["scores"].numpy(), own, atol=1e-5)
            assert not any(set(row) & e for row, e in zip(found.tolist(), excluded))
            assert found[:, :5].tolist() == top[:, :5].tolist()  # the best are well apart
    # One row answers as its row of the batch does.
    one = module.serve(dict({n: t[:1] for n, t in features.items()}, k=tf.constant(10)))
    batch = module.serve(dict(features, k=tf.constant(10)))
    assert one["item_ids"].numpy().tolist() == batch["item_ids"].numpy()[:1].tolist()
