"""The TFRS tower models: base two-tower and AFETLER, on tiny synthetic data."""

import warnings

import numpy as np
import pytest
import tensorflow as tf

from afetler_tf.config import Config
from afetler_tf.models import build_model
from afetler_tf.models.negative_bank import NegativeBank


def tiny_config(model, **afetler):
    config = Config(model=model).replace(
        train={"epochs": 3, "batch_size": 64, "learning_rate": 0.01, "patience": 3},
        tower={"embedding_dim": 8, "tower_units": [16, 8], "ranking_units": [16]})
    return config.replace(afetler=afetler) if afetler else config


@pytest.fixture(scope="module")
def trained(tiny_data, tiny_split):
    models = {}
    for name in ("two_tower", "afetler"):
        model = build_model(tiny_config(name))
        history = model.fit(tiny_data, tiny_split, verbose=0)
        models[name] = (model, history)
    return models


@pytest.mark.parametrize("name", ["two_tower", "afetler"])
def test_trains_and_scores_with_the_right_shapes(trained, tiny_split, name):
    model, history = trained[name]
    assert history["best_epoch"] >= 1 and np.isfinite(history["loss"]).all()
    users, items = ["u0", "u1", "u2"], ["i0", "i1", "i2", "i3"]
    assert model.score_all(users, items).shape == (3, 4)
    scores = model.score(tiny_split.test.user_id[:5], tiny_split.test.item_id[:5])
    assert scores.shape == (5,) and np.isfinite(scores).all()


@pytest.mark.parametrize("name", ["two_tower", "afetler"])
def test_unknown_user_and_item_are_answered(trained, name):
    model, _ = trained[name]
    scores = model.score(["nobody", "u0"], ["i0", "never-seen"])
    assert np.isfinite(scores).all()
    assert np.isfinite(model.score_all(["nobody"], ["never-seen", "i0"])).all()


def test_afetler_reports_each_loss_term(trained):
    _, history = trained["afetler"]
    for name in ("retrieval", "rating", "mimic", "attention", "category_alignment"):
        assert f"{name}_loss" in history


def test_afetler_learns_the_planted_preference(tiny_data, tiny_split):
    config = tiny_config("afetler")
    config = config.replace(train={"epochs": 25, "patience": 25})
    model = build_model(config)
    model.fit(tiny_data, tiny_split, verbose=0)
    items = tiny_data.items.item_id.tolist()
    scores = model.score_all([f"u{u}" for u in range(8)], items)
    # Users u with u % 4 == c like category c, i.e. items j with j % 4 == c.
    own = np.array([[int(i[1:]) % 4 == u % 4 for i in items] for u in range(8)])
    assert scores[own].mean() > scores[~own].mean() + 0.1


@pytest.mark.parametrize("name", ["two_tower", "afetler"])
def test_save_and_load_give_the_same_scores(trained, tiny_data, tiny_split, tmp_path, name):
    model, _ = trained[name]
    model.save(str(tmp_path))
    clone = build_model(model.config)
    clone.load(str(tmp_path), tiny_data, tiny_split)
    users, items = ["u0", "u3"], ["i0", "i5", "i7"]
    np.testing.assert_allclose(clone.score_all(users, items), model.score_all(users, items), atol=1e-5)
    np.testing.assert_allclose(clone.score(users, items[:2]), model.score(users, items[:2]), atol=1e-5)


@pytest.mark.parametrize("switch", [
    {"fusion": False}, {"mcau": False}, {"ranking_head": False}, {"target_attention": False},
    {"target_attention_stage": "ranking"},
    {"fusion_mode": "concat", "channels": "category", "num_heads": 2},
    {"negatives": "batch", "negative_bank": 128}, {"negatives": "batch", "temperature": None},
    {"fusion": False, "mcau": False, "ranking_head": False, "category_alignment_weight": 0.0}])
def test_every_component_can_be_switched(tiny_data, tiny_split, switch):
    config = tiny_config("afetler", **switch).replace(train={"epochs": 1})
    model = build_model(config)
    model.fit(tiny_data, tiny_split, verbose=0)
    assert model.predicts_ratings == config.afetler.ranking_head
    assert np.isfinite(model.score(["u0", "nobody"], ["i1", "i2"])).all()


@pytest.mark.parametrize("stage", ["ranking", "joint"])
def test_target_attention_trains_in_the_stages_its_setting_names(tiny_data, tiny_split, stage):
    """afetler.target_attention_stage="ranking": a joint training step leaves
    the target-aware MCAU as it is (the head reads a zero output) while the
    query tower's MCAU moves; a ranking-stage step moves it. "joint": the
    joint step moves it too."""
    from afetler_tf import training

    config = tiny_config("afetler", target_attention_stage=stage).replace(train={"epochs": 1})
    model = build_model(config)
    model.fit(tiny_data, tiny_split, verbose=0, skip_stages=("item_item", "ranking", "gan", "taste", "rating_blend"))
    net = model.network
    batch = next(iter(training.make_dataset(model.examples(tiny_split.train, model.sampling_probabilities),
                                            None, 64)))

    def weights(layer):
        return [w.numpy().copy() for w in layer.mcau.trainable_weights]

    def moved(before, layer):
        return any(not np.allclose(a, b) for a, b in zip(before, weights(layer)))
    target, query = weights(net.target_attention), weights(net.query_tower.history)
    net.train_step(batch)
    assert moved(query, net.query_tower.history)
    assert moved(target, net.target_attention) == (stage == "joint")
    net.stage = "ranking"
    net.compile(optimizer=tf.keras.optimizers.Adam(0.01))  # each stage compiles its own, as fit_model does
    target = weights(net.target_attention)
    net.train_step(batch)
    assert moved(target, net.target_attention)


def test_implicit_data_gets_no_ranking_head(tiny_data, tiny_split):
    """Without ratings there is nothing to train a ranker on: no ranking head
    (nor target attention) is built, scores are the retrieval scores and are
    not called ratings."""
    import dataclasses

    data = dataclasses.replace(tiny_data, interactions=tiny_data.interactions.assign(rating=np.nan),
                               rating_range=None)
    split = dataclasses.replace(tiny_split, **{part: getattr(tiny_split, part).assign(rating=np.nan)
                                               for part in ("train", "validation", "test")})
    model = build_model(tiny_config("afetler").replace(train={"epochs": 1}))
    history = model.fit(data, split, verbose=0)
    assert model.network.ranking_head is None and model.network.target_attention is None
    assert not model.predicts_ratings and history["rating_loss"] == [0.0]  # no rating term
    users, items = ["u0", "u1"], ["i1", "i2"]
    np.testing.assert_allclose(model.score(users, items),
                               np.diag(model.score_all(users, items)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no ratings"):
        model.explain("u0", ["i1"])


def test_catalogue_softmax_is_the_full_softmax_over_training_items(tiny_data, tiny_split):
    model = build_model(tiny_config("afetler", negatives="catalogue").replace(train={"epochs": 1}))
    model.fit(tiny_data, tiny_split, verbose=0)
    net, space = model.network, model.space
    frame = tiny_split.train.head(4).copy()
    frame.loc[frame.index[3], "item_id"] = "never-seen"  # left out of the mean, not an error
    feats = model.examples(frame, model.sampling_probabilities)
    p_u = net.query_tower(feats).numpy()
    p_all = net.candidate_tower(space.item_features(space.item_ids)).numpy()
    logits = p_u @ p_all.T / model.config.retrieval_temperature
    rows = [space.item_ids.index(i) for i in frame.item_id[:3]]
    expected = np.mean([np.log(np.exp(logits[r]).sum()) - logits[r, c] for r, c in enumerate(rows)])
    got = float(net.retrieval.loss(feats, net.query_tower(feats), tf.constant(p_all), net.candidate_tower))
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_batch_candidates_are_rows_of_the_catalogue(tiny_data, tiny_split):
    """The joint stage reads the batch's p_v (and augmented a_v) off the catalogue pass
    instead of a second tower pass: equal to the tower's own output, also for a batch
    holding an item outside the vocabulary (which runs the tower)."""
    model = build_model(tiny_config("afetler", negatives="catalogue").replace(train={"epochs": 1}))
    model.fit(tiny_data, tiny_split, verbose=0)
    net = model.network
    catalogue = net.candidate_tower.forward(net.retrieval.catalogue)
    frame = tiny_split.train.head(6).copy()
    for batch in (frame, frame.assign(item_id=["never-seen"] + list(frame.item_id[1:]))):
        feats = model.examples(batch, model.sampling_probabilities)
        got = net.retrieval.candidates(feats, catalogue, net.candidate_tower, training=False)
        expected = net.candidate_tower.forward(feats)
        assert set(got) == {"p", "a"}
        for key in got:
            np.testing.assert_allclose(got[key].numpy(), expected[key].numpy(), atol=1e-5)


def test_the_base_keeps_its_own_retrieval_settings():
    """AFETLER's catalogue softmax and temperature never leak into the base two-tower."""
    config = Config().replace(tower={"temperature": 0.07})
    base = build_model(config.replace(model="two_tower"))
    with pytest.warns(UserWarning, match="tower.temperature=0.07 is the base two-tower's"):
        afetler = build_model(config)
    assert base.config.afetler.negatives == "batch" and base.config.retrieval_temperature == 0.07
    assert afetler.config.afetler.negatives == "catalogue"
    assert afetler.config.retrieval_temperature == config.afetler.temperature == 0.1
    assert config.replace(afetler={"temperature": None}).retrieval_temperature == 0.07


def test_catalogue_softmax_refuses_a_catalogue_too_large(tiny_data, tiny_split, monkeypatch):
    from afetler_tf.models import objectives
    monkeypatch.setattr(objectives, "CATALOGUE_SOFTMAX_LIMIT", 5)
    with pytest.raises(ValueError, match="--set afetler.negatives=batch"):
        build_model(tiny_config("afetler").replace(train={"epochs": 1})).fit(
            tiny_data, tiny_split, verbose=0)


def test_afetler_warns_that_tower_temperature_is_not_its_own():
    with pytest.warns(UserWarning, match="AFETLER uses afetler.temperature=0.1"):
        build_model(Config().replace(tower={"temperature": 0.2}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_model(Config(model="two_tower").replace(tower={"temperature": 0.2}))
        build_model(Config().replace(tower={"temperature": 0.2}, afetler={"temperature": None}))


def test_catalogue_softmax_refuses_a_negative_bank():
    with pytest.raises(ValueError, match="negative_bank.*catalogue"):
        Config().replace(afetler={"negatives": "catalogue", "negative_bank": 64})
    with pytest.raises(ValueError, match="afetler.negatives must be one of batch, catalogue"):
        Config().replace(afetler={"negatives": "all"})


def test_explain_lists_history_items_and_channels(trained):
    model, _ = trained["afetler"]
    explained = model.explain("u0", ["i0", "i4"])
    assert [e["item_id"] for e in explained] == ["i0", "i4"]
    for entry in explained:
        assert 0 < len(entry["history"]) <= 3
        weights = [w for _, _, w in entry["history"]]
        assert weights == sorted(weights, reverse=True) and all(w >= 0 for w in weights)
        assert {c for _, c, _ in entry["history"]} <= {"liked", "neutral", "disliked"}
    assert model.explain("nobody", ["i0"])[0]["history"] == []


def test_negative_bank_is_fifo():
    bank = NegativeBank(size=3, dim=2)
    assert bank.read()[0].shape == (0, 2)
    bank.write(np.ones((2, 2), np.float32), np.array(["a", "b"]), np.array([0.1, 0.2], np.float32))
    bank.write(2 * np.ones((2, 2), np.float32), np.array(["c", "d"]), np.array([0.3, 0.4], np.float32))
    vectors, ids, _ = bank.read()
    assert vectors.shape == (3, 2)
    assert sorted(ids.numpy().astype(str)) == ["b", "c", "d"]  # "a" was the oldest


def test_the_ranking_stage_reads_the_frozen_towers_outputs(tiny_data, tiny_split):
    """The ranking stage's examples carry p_u and p_v computed once (the towers are
    frozen): its loss is the one computed through the towers."""
    model = build_model(tiny_config("afetler").replace(train={"epochs": 1}))
    model.fit(tiny_data, tiny_split, verbose=0)
    net = model.network
    feats = model.examples(tiny_split.train.head(16), model.sampling_probabilities)
    net.stage = "ranking"
    try:
        through_towers = float(net.compute_loss(feats))
        frozen = model._with_frozen_towers(feats)
        np.testing.assert_allclose(frozen["frozen_p_u"], net.query_tower(feats).numpy(), atol=1e-6)
        assert float(net.compute_loss(frozen)) == pytest.approx(through_towers, rel=1e-5)
    finally:
        net.stage = "joint"


def test_examples_carry_the_history_rows_and_they_give_what_the_ids_give(trained, tiny_split):
    """Training examples hold the history's rows in the item lookup, hashed once
    (Afetler._history_rows); the loss and the scores read through them equal
    those read through the id strings."""
    from afetler_tf.layers.towers import HISTORY_INDEX
    model, _ = trained["afetler"]
    net = model.network
    feats = model.examples(tiny_split.train.head(64), model.sampling_probabilities)
    lookup = net.query_tower.history.item_features.id_lookup
    np.testing.assert_array_equal(feats[HISTORY_INDEX], lookup(feats["history_item_ids"]).numpy())
    assert feats[HISTORY_INDEX].dtype == np.int32 and (feats[HISTORY_INDEX] > 0).any()
    strings = {k: v for k, v in feats.items() if k != HISTORY_INDEX}
    assert float(net.compute_loss(feats)) == pytest.approx(float(net.compute_loss(strings)), rel=1e-6)
    np.testing.assert_allclose(net.rate_pairs(feats).numpy(), net.rate_pairs(strings).numpy(), atol=1e-6)


def test_a_fit_can_skip_named_stages(tiny_data, tiny_split):
    model = build_model(tiny_config("afetler").replace(train={"epochs": 1}))
    history = model.fit(tiny_data, tiny_split, verbose=0, skip_stages=("ranking", "taste"))
    assert "loss" in history and "item_item" in history
    assert not any(key.startswith(("ranking/", "taste/")) for key in history)
    assert np.isfinite(model.score_all(["u0"], tiny_split.train["item_id"].unique()[:5])).all()
    with pytest.raises(ValueError, match="No stage named"):
        build_model(tiny_config("afetler")).fit(tiny_data, tiny_split, verbose=0, skip_stages=("rank",))


def test_id_codes_are_equal_exactly_where_the_ids_are():
    from afetler_tf.models.objectives import id_codes
    ids = tf.constant(["b", "a", "b", "c", "a"])
    codes = id_codes(ids).numpy()
    np.testing.assert_array_equal(codes[:, None] == codes[None, :],
                                  ids.numpy()[:, None] == ids.numpy()[None, :])
    assert codes.dtype == np.int32


def test_in_batch_softmax_on_id_codes_equals_the_string_ids_loss():
    """The accidental hits removed on the codes are those TFRS removes on the strings
    (hand-made batch: items "x" and "y" each twice)."""
    import tensorflow_recommenders as tfrs
    from afetler_tf.models.objectives import InBatchSoftmax
    rng = np.random.default_rng(0)
    p_u, p_v = (tf.constant(rng.normal(size=(4, 3)), tf.float32) for _ in range(2))
    features = {"item_id": tf.constant(["x", "y", "x", "y"]),
                "sampling_probability": tf.constant([0.2, 0.1, 0.2, 0.1])}
    loss = tf.keras.losses.CategoricalCrossentropy(from_logits=True,
                                                   reduction=tf.keras.losses.Reduction.NONE)
    reference = tfrs.tasks.Retrieval(loss=loss, temperature=0.5, remove_accidental_hits=True)
    expected = tf.reduce_mean(reference(p_u, p_v, compute_metrics=False, candidate_ids=features["item_id"],
                                        candidate_sampling_probability=features["sampling_probability"]))
    without = tfrs.tasks.Retrieval(loss=loss, temperature=0.5)
    kept = tf.reduce_mean(without(p_u, p_v, compute_metrics=False,
                                  candidate_sampling_probability=features["sampling_probability"]))
    got = InBatchSoftmax(0.5).loss(features, p_u, p_v)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6)
    assert abs(float(kept) - float(expected)) > 1e-3  # the hits are there to remove
