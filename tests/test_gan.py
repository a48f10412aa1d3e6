"""NewItemGAN: the train step, planted content -> vector maps, and the new-item path of AFETLER."""

import warnings

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from afetler_tf import training
from afetler_tf.config import Config
from afetler_tf.models import build_model
from afetler_tf.models.gan import LOSS_NAMES, GanEpochLog, NewItemGAN, NewItemTower

CATS = ["A", "B", "C", "D"]


def planted_items(n, seed):
    """Items with 1-2 of 4 categories; true vector = normalised sum of per-category vectors."""
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(7).normal(size=(4, 8))
    cats = [sorted(set(rng.choice(4, rng.integers(1, 3)).tolist())) for _ in range(n)]
    truth = np.stack([basis[c].sum(0) for c in cats])
    truth /= np.linalg.norm(truth, axis=1, keepdims=True)
    return {"item_id": np.array([f"p{seed}_{i}" for i in range(n)], object),
            "categories": np.array(["|".join(CATS[j] for j in c) for c in cats], object),
            "title": np.array([""] * n, object)}, truth.astype(np.float32)


def batch_of(features, truth):
    """GAN inputs where each item's user is the item itself (p_u = p_v)."""
    n = len(truth)
    return dict(features, user_vector=truth, item_vector=truth,
                sampling_probability=np.full(n, 1.0 / n, np.float32))


def small_gan(**kwargs):
    gan = NewItemGAN(CATS, output_dim=8, hidden_units=[32], embedding_dim=8, temperature=0.2, **kwargs)
    gan.compile(g_optimizer=tf.keras.optimizers.Adam(0.01), d_optimizer=tf.keras.optimizers.Adam(0.001))
    return gan


def test_train_step_returns_every_loss():
    features, truth = planted_items(16, seed=0)
    gan = small_gan()
    logs = gan.train_step({k: tf.constant(v) for k, v in batch_of(features, truth).items()})
    assert set(logs) == set(LOSS_NAMES)
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert [m.name for m in gan.metrics] == list(LOSS_NAMES)


def test_generator_recovers_vectors_planted_in_the_categories():
    features, truth = planted_items(200, seed=1)
    # Items sharing categories share a vector here, which the in-batch retrieval
    # term (each item its own class) pulls apart: it gets a small weight.
    gan = small_gan(loss_weights=(0.05, 1.0, 0.2))
    gan.fit(training.make_dataset(batch_of(features, truth), None, 32, shuffle=True), epochs=25, verbose=0)
    new_features, new_truth = planted_items(50, seed=2)  # items never seen in training
    cos = np.sum(gan(new_features).numpy() * new_truth, axis=1)
    assert cos.mean() > 0.9, cos.mean()


def test_save_and_reload_give_the_same_vectors(tmp_path):
    features, truth = planted_items(16, seed=3)
    gan = small_gan()
    gan.fit(training.make_dataset(batch_of(features, truth), None, 8), epochs=1, verbose=0)
    gan.save_weights(str(tmp_path / "gan"))
    clone = NewItemGAN.from_config(gan.get_config())
    clone.discriminator((clone(features), features))
    clone.load_weights(str(tmp_path / "gan")).expect_partial()
    np.testing.assert_allclose(clone(features).numpy(), gan(features).numpy(), atol=1e-6)


class _Crash(tf.keras.callbacks.Callback):
    """Stands in for a kill: stops the process's fit as epoch 2 begins."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("killed")


def test_a_resumed_gan_stage_continues_exactly_where_it_stopped(tmp_path, capsys):
    features, truth = planted_items(32, seed=4)

    def run(seed, directory, callbacks=(), build=False, verbose=0):
        tf.keras.utils.set_random_seed(seed)
        gan = small_gan()
        if build:
            gan.discriminator((gan(features), features))
        history = training.fit_with_early_stopping(
            gan, training.make_dataset(batch_of(features, truth), None, 8), None, 3, 1,
            verbose=verbose, checkpoint_dir=str(tmp_path / directory), callbacks=list(callbacks),
            prefix="gan ", progress=GanEpochLog("g_loss") if verbose else None)
        return gan, history

    def state(gan):  # G, D, then both players' Adam moments and step counts
        return (gan.generator.get_weights() + gan.discriminator.get_weights()
                + [v.numpy() for v in gan.g_optimizer.variables + gan.d_optimizer.variables])

    straight, _ = run(3, "straight")
    with pytest.raises(RuntimeError, match="killed"):
        run(3, "run", [_Crash()])
    restarted, history = run(99, "run", verbose=1)  # a new process: new weights, no optimizer state
    assert history["resumed_after_epoch"] == 1 and len(history["g_loss"]) == 3
    printed = capsys.readouterr().out
    assert "gan resuming after epoch 1" in printed and "gan epoch   2  d_loss" in printed
    players = len(straight.generator.weights + straight.discriminator.weights)
    assert len(state(restarted)) == len(state(straight)) == 3 * players + 2  # + m, v, 2 iterations
    for a, b in zip(state(straight), state(restarted)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    again, rerun = run(7, "run", build=True)  # as fit_gan does, so the restore lands at once
    assert rerun == history
    for a, b in zip(state(restarted)[:players], state(again)[:players]):
        np.testing.assert_allclose(a, b)  # finished: skipped, G and D restored


def test_content_check_and_content_free_items_stay_finite():
    gan = small_gan()
    features = {"item_id": np.array(["x", "y", "z"], object),
                "categories": np.array(["A", "", "Unknown"], object), "title": np.array(["", "", ""], object)}
    assert gan.generator.has_content(features).numpy().tolist() == [True, False, False]
    assert np.isfinite(gan(features).numpy()).all()


def test_new_item_tower_picks_generator_below_min_interactions():
    def constant(value):
        return tf.keras.layers.Lambda(lambda f: tf.fill((tf.shape(f["item_id"])[0], 2), value))
    tower, generator = constant(1.0), constant(0.0)
    encoder = NewItemTower(tower, generator, {"warm": 5, "rare": 1}, min_interactions=2)
    out = encoder({"item_id": tf.constant(["warm", "rare", "unseen"])}).numpy()
    np.testing.assert_array_equal(out[:, 0], [1.0, 0.0, 0.0])


# AFETLER with its GAN stage, on the planted tiny data set (users like one category each).

def gan_config(**gan):
    """The GAN and the ranker's cold-item path; the rating blend (warm items only,
    tests/test_rating_blend.py) is off, so the ranker's terms are read alone."""
    return Config(model="afetler").replace(
        train={"epochs": 15, "batch_size": 64, "learning_rate": 0.01, "patience": 15},
        tower={"embedding_dim": 8, "tower_units": [16, 8], "ranking_units": [16]},
        afetler={"rating_blend": False},
        gan=dict({"enabled": True, "epochs": 40, "patience": 40, "batch_size": 64, "hidden_units": [32],
                  "embedding_dim": 8, "g_learning_rate": 0.005}, **gan))


@pytest.fixture(scope="module")
def trained(tiny_data, tiny_split):
    model = build_model(gan_config())
    history = model.fit(tiny_data, tiny_split, verbose=0)
    return model, history


def new_items(prefix="new"):
    return pd.DataFrame({"item_id": [f"{prefix}_{c}" for c in ["Action", "Comedy", "Drama", "Horror"]],
                         "title": [""] * 4, "year": [np.nan] * 4,
                         "categories": [[c] for c in ["Action", "Comedy", "Drama", "Horror"]],
                         "category": ["Action", "Comedy", "Drama", "Horror"]})


def test_fit_runs_the_gan_stage(trained):
    model, history = trained
    assert model.gan is not None and history["gan/best_epoch"] >= 1
    assert np.isfinite(history["gan/g_loss"]).all() and np.isfinite(history["gan/d_loss"]).all()


def test_brand_new_items_go_to_the_users_of_their_category(trained):
    model, _ = trained
    model.add_items(new_items())
    scores = model.score_all([f"u{u}" for u in range(40)], list(new_items().item_id))  # (40, 4)
    hits = np.mean(scores.argmax(axis=1) == np.arange(40) % 4)
    assert hits >= 0.75, hits


def test_unseen_items_are_embedded_by_the_generator_in_both_paths(trained):
    model, _ = trained
    model.add_items(new_items("fresh"))
    vectors = model.item_vectors(["fresh_Comedy", "i0"])
    generated = model.gan(model.space.item_features(["fresh_Comedy"])).numpy()
    d = generated.shape[1]  # then the item-item channel's part and its prior: zero for an item never trained
    np.testing.assert_allclose(vectors[0, :d], generated[0], atol=1e-6)
    assert vectors.shape[1] == d + model.network.item_item.rank + 1 and not vectors[0, d:].any()
    assert model.candidate_encoder.uses_generator(np.array(["fresh_Comedy", "i0"])).numpy().tolist() \
        == [True, False]
    assert np.isfinite(model.score(["u1", "u2"], ["fresh_Comedy", "fresh_Drama"])).all()


def test_an_item_without_any_content_is_counted_and_stays_finite(trained):
    model, _ = trained
    with pytest.warns(UserWarning, match="1 new item"):
        vectors = model.item_vectors(["ghost", "i1"])
    assert np.isfinite(vectors).all()


def test_gan_is_saved_and_restored_with_the_run(trained, tiny_data, tiny_split, tmp_path):
    model, _ = trained
    model.save(str(tmp_path))
    clone = build_model(model.config)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a restored GAN: no "no trained NewItemGAN" warning
        clone.load(str(tmp_path), tiny_data, tiny_split)
    items = ["i0", "unseen-id"]
    np.testing.assert_allclose(clone.item_vectors(items), model.item_vectors(items), atol=1e-5)
    bias = model.network.ranking_head.cold_items.content_bias
    restored = clone.network.ranking_head.cold_items.content_bias
    np.testing.assert_allclose(restored.weight.numpy(), bias.weight.numpy())  # part of the network's weights
    assert float(restored.intercept) == float(bias.intercept) != 0.0


def test_gan_off_keeps_the_tower_path(tiny_data, tiny_split):
    model = build_model(gan_config(enabled=False).replace(train={"epochs": 1}))
    history = model.fit(tiny_data, tiny_split, verbose=0)
    assert model.gan is None and not any(k.startswith("gan/") for k in history)
    with pytest.raises(ValueError, match="no trained NewItemGAN"):
        model.add_items(new_items())


def test_the_serving_candidate_tower_exports_as_a_saved_model(trained, tmp_path):
    model, _ = trained
    encoder = model.candidate_encoder
    probe = model.space.item_features(["i0", "saved-new"], items=new_items("saved").assign(
        item_id=["i0", "saved-new", "x", "y"]).iloc[:2])
    signature = {k: tf.TensorSpec([None], tf.string if v.dtype.kind in "OU" else tf.float32, name=k)
                 for k, v in probe.items()}
    module = tf.Module()
    module.encoder = encoder
    module.serve = tf.function(lambda f: {"embedding": encoder(f)}, input_signature=[signature])
    tf.saved_model.save(module, str(tmp_path / "candidate"))
    loaded = tf.saved_model.load(str(tmp_path / "candidate"))  # keep it: it owns the variables
    served = loaded.serve({k: tf.constant(v) for k, v in probe.items()})["embedding"].numpy()
    np.testing.assert_allclose(served, encoder(probe).numpy(), atol=1e-5)
    assert not np.allclose(served[1], model.network.candidate_tower(probe).numpy()[1])  # generator path


def test_the_gan_stage_fits_the_rankers_content_bias(trained, tiny_split):
    from afetler_tf.models.new_items import warm_items
    model, history = trained
    head = model.network.ranking_head
    warm = warm_items(tiny_split.train, model.config.gan.min_interactions)
    assert history["gan/content_bias_items"] == len(warm) and history["gan/content_bias_r2"] > 0
    # gamma: fitted on the held-out items' validation ratings, or left at 1 with too few.
    gamma = float(head.cold_items.interaction_scale.numpy())
    assert history["gan/interaction_scale"] == pytest.approx(gamma) and 0.0 <= gamma <= 1.0
    assert history["gan/interaction_scale_interactions"] >= 0
    # The intercept is not penalised: over the warm items, weighted by their training
    # interactions, the content bias averages the learned biases.
    counts = tiny_split.train.item_id.value_counts().reindex(warm).to_numpy()
    index = head.item_lookup(np.array(warm, object)).numpy()
    learned = head.item_bias(index).numpy()[:, 0] + head.cold_items.item_offset.numpy()[index]  # b_v + o_v
    content = head.cold_items.content_bias(model.space.item_features(warm)).numpy()
    assert np.average(content, weights=counts) == pytest.approx(np.average(learned, weights=counts), abs=1e-4)
    assert head.cold_items.routed_items(head.item_lookup(np.array(["i0", "unseen"], object))).numpy() \
        .tolist() == [False, True]


def test_the_interaction_scale_is_fitted_on_simulated_cold_items(trained, tiny_split):
    from afetler_tf.models.cold_path import fit_interaction_scale, simulated_cold
    model, _ = trained
    scale = model.network.ranking_head.cold_items.interaction_scale
    before = float(scale.numpy())
    held, rows = simulated_cold(model, tiny_split)
    assert len(rows) > 0 and set(rows.item_id.astype(str)) <= held
    fitted = fit_interaction_scale(model, tiny_split, min_interactions=1)
    assert fitted["interaction_scale_interactions"] == len(rows)
    assert fitted["interaction_scale"] == pytest.approx(float(scale.numpy())) and 0 <= fitted["interaction_scale"] <= 1
    kappa = model.network.ranking_head.cold_items.affinity_scale
    assert fitted["affinity_scale"] == pytest.approx(float(kappa.numpy())) and 0 <= fitted["affinity_scale"] <= 1
    # gamma = 1 (kappa = 0) and the best gamma alone (kappa = 0) are allowed, so the
    # fitted pair does at least as well on its own interactions.
    assert fitted["cold_rmse"] <= min(fitted["cold_rmse_unscaled"], fitted["cold_rmse_no_affinity"]) + 1e-9
    assert fitted["cold_rmse_no_affinity"] <= fitted["cold_rmse_bias_only"] + 1e-9
    fitted_kappa = float(kappa.numpy())
    with pytest.warns(UserWarning, match="left unscaled"):
        assert fit_interaction_scale(model, tiny_split, min_interactions=10 ** 6)["interaction_scale"] == 1.0
    assert float(scale.numpy()) == 1.0 and float(kappa.numpy()) == 0.0
    scale.assign(before)  # the module's other tests share the model
    kappa.assign(fitted_kappa)


def test_the_users_taste_is_a_ridge_fit_of_their_residual_ratings(trained, tiny_split):
    """t_u = (X'X + 3 I)^-1 X'e over u's rated pairs with warm items, e = rating - mu - b_u
    - (b_v + o_v) - o_u, X the items' content regressors."""
    model, history = trained
    head = model.network.ranking_head
    train = tiny_split.train
    routed = head.cold_items.routed_items(head.item_lookup(train.item_id.to_numpy(object))).numpy()
    mine = train[(train.user_id == "u0").to_numpy() & ~routed]
    u0 = int(head.user_lookup(tf.constant(["u0"])).numpy()[0])
    items = head.item_lookup(mine.item_id.to_numpy(object)).numpy()
    e = (mine.rating.to_numpy() - head.global_mean - head.user_bias(np.full(len(items), u0)).numpy()[:, 0]
         - head.item_bias(items).numpy()[:, 0] - head.cold_items.item_offset.numpy()[items]
         - head.cold_items.user_offset.numpy()[u0])
    x = head.cold_items.design(model.space.item_features(mine.item_id.to_numpy(object))).numpy()
    expected = np.linalg.solve(x.T @ x + 3.0 * np.eye(x.shape[1]), x.T @ e)
    np.testing.assert_allclose(head.cold_items.user_affinity.numpy()[u0], expected, atol=1e-4)
    assert not np.any(head.cold_items.user_affinity.numpy()[0]) and history["gan/user_affinities"] > 0


def test_offsets_are_the_damped_mean_interaction_terms(trained, tiny_split):
    """o_u: the user's mean m over warm training pairs; o_v: the item's mean of m - o_u
    (both sum / (n + 5)); m = rating - mu - b_u - b_v."""
    model, history = trained
    head, net = model.network.ranking_head, model.network
    routed = head.cold_items.routed_items(head.item_lookup(tiny_split.train.item_id.to_numpy(object)))
    train = tiny_split.train[~routed.numpy()]
    f = model.examples(train, model.sampling_probabilities)
    users, items = head.user_lookup(f["user_id"]).numpy(), head.item_lookup(f["item_id"]).numpy()
    kappa_w = float(head.taste.taste_scale.numpy())
    head.taste.taste_scale.assign(0.0)  # the offsets are fitted before the users' taste (models.taste)
    try:
        rated = net.rate(f, net.query_tower(f), net.candidate_tower(f)).numpy()[:, 0]
    finally:
        head.taste.taste_scale.assign(kappa_w)
    m = rated - head.global_mean - head.user_bias(users).numpy()[:, 0] - head.item_bias(items).numpy()[:, 0]
    o_u, o_v = head.cold_items.user_offset.numpy(), head.cold_items.item_offset.numpy()
    u0, i0 = users[f["user_id"] == "u0"][0], items[f["item_id"] == "i0"][0]
    assert o_u[u0] == pytest.approx(m[users == u0].sum() / ((users == u0).sum() + 5.0), abs=1e-4)
    rest = (m - o_u[users])[items == i0]
    assert o_v[i0] == pytest.approx(rest.sum() / (len(rest) + 5.0), abs=1e-4)
    assert o_u[0] == o_v[0] == 0.0 and history["gan/user_offsets"] == len(set(users))
    # Refitted on a run whose users' taste is in use, the offsets leave that term out.
    from afetler_tf.models.cold_path import fit_offsets
    head.taste.taste_scale.assign(0.5)
    try:
        fit_offsets(model, tiny_split)
        np.testing.assert_allclose(head.cold_items.user_offset.numpy(), o_u, atol=1e-6)
        assert float(head.taste.taste_scale.numpy()) == 0.5
    finally:
        head.taste.taste_scale.assign(kappa_w)


def test_the_gan_stage_runs_without_a_ranking_head(tiny_data, tiny_split):
    config = gan_config(epochs=2).replace(train={"epochs": 2}, afetler={"ranking_head": False})
    model = build_model(config)
    history = model.fit(tiny_data, tiny_split, verbose=0)
    assert history["gan/user_offsets"] == 0 and "gan/interaction_scale" not in history
    assert np.isfinite(model.score_all(["u0"], ["i0", "never-seen"])).all()


def test_the_exported_ranker_serves_new_items_through_their_content(trained, tmp_path):
    from export.modules import RankerModule
    from export.specs import InputSpecs
    model, _ = trained
    model.add_items(new_items("ranked"))
    users, items = ["u1", "u2", "u3"], ["ranked_Comedy", "ranked_Drama", "i0"]
    expected = model.score(users, items)
    feats = model.examples(model.pair_frame(users, items), model.sampling_probabilities)
    inputs = InputSpecs.from_model(model)
    module = RankerModule(model.network, inputs, candidate_tower=model.candidate_encoder)
    tf.saved_model.save(module, str(tmp_path / "ranker"))
    loaded = tf.saved_model.load(str(tmp_path / "ranker"))
    served = loaded.serve({k: tf.constant(feats[k]) for k in inputs.ranker})["rating"].numpy()
    np.testing.assert_allclose(served, expected, atol=1e-4)
    # Without the content bias (weights 0) the new items' ratings move; the warm one does not.
    bias = model.network.ranking_head.cold_items.content_bias
    saved = [v.numpy() for v in (bias.weight, bias.intercept)]
    try:
        bias.weight.assign(np.zeros_like(saved[0]))
        bias.intercept.assign(0.0)
        plain = model.score(users, items)
    finally:
        bias.weight.assign(saved[0])
        bias.intercept.assign(saved[1])
    assert abs(plain[2] - expected[2]) < 1e-5 and np.all(np.abs(plain[:2] - expected[:2]) > 1e-4)
