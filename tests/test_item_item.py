"""EASE (models.ease), iALS (models.ials) and AFETLER's item-item channel (layers.item_item,
models.item_item_fitting)."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from afetler_tf.config import Config
from afetler_tf.layers.item_item import PRIOR_WEIGHTS, ItemItemChannel
from afetler_tf.models import build_model, ease, ials, item_item_fitting

X = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]], float)  # 4 users x 3 items


def test_ease_two_items_by_hand():
    """Two items: column 2 regressed on item 1 alone, B_12 = G_12 / (G_11 + lambda)."""
    x = np.array([[1, 1], [1, 0], [0, 1], [1, 1]], float)  # G = [[3, 2], [2, 3]]
    b = ease.ease_weights(x, penalty=2.0)
    np.testing.assert_allclose(b, [[0.0, 2 / 5], [2 / 5, 0.0]])


def test_ease_columns_are_ridge_fits_without_the_item_itself():
    lam = 1.5
    b = ease.ease_weights(X, lam)
    for j in range(3):
        others = [i for i in range(3) if i != j]
        a = X[:, others]
        expected = np.linalg.solve(a.T @ a + lam * np.eye(2), a.T @ X[:, j])
        np.testing.assert_allclose(b[others, j], expected, atol=1e-12)
        assert b[j, j] == 0.0


def test_ease_on_more_items_than_one_block_of_the_symmetric_inverse():
    # 1,100 items: the Cholesky inverse fills its lower triangle in blocks of 1,024 rows
    rng = np.random.default_rng(3)
    x = (rng.random((300, 1100)) < 0.03).astype(float)
    p = np.linalg.inv(x.T @ x + 4.0 * np.eye(1100))
    expected = -p / np.diag(p)[None, :]
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(ease.ease_weights(x, 4.0), expected, atol=1e-12)
    np.testing.assert_array_equal(ease.gram(x), x.T @ x)


def test_ease_refuses_bad_penalty_and_low_rank_bad_rank():
    with pytest.raises(ValueError, match="penalty > 0"):
        ease.ease_weights(X, 0.0)
    with pytest.raises(ValueError, match=r"rank must be in \[1, 3\]"):
        ease.low_rank(np.eye(3), 4)


def test_low_rank_is_the_truncated_svd():
    b = ease.ease_weights(X, 1.0)
    w, v = ease.low_rank(b, 3)
    np.testing.assert_allclose(w @ v.T, b, atol=1e-12)  # full rank: exact
    w, v = ease.low_rank(b, 1)
    s = np.linalg.svd(b, compute_uv=False)
    assert np.linalg.norm(b - w @ v.T) == pytest.approx(np.sqrt(np.sum(s[1:] ** 2)))


def test_low_rank_of_a_large_matrix_takes_the_top_singular_triplets():
    # rank < half the spectrum: the Lanczos path, on float32 (to about 1e-6 of the largest
    # singular value); same product as the full SVD's truncation
    rng = np.random.default_rng(0)
    b = rng.normal(size=(120, 120)) @ np.diag(0.9 ** np.arange(120)) @ rng.normal(size=(120, 120))
    u, s, vt = np.linalg.svd(b)
    w, v = ease.low_rank(b, 10)
    assert w.shape == v.shape == (120, 10) and w.dtype == v.dtype == np.float64
    tolerance = 1e-5 * s[0]  # the 10th and 11th singular values differ by 10%
    np.testing.assert_allclose(np.linalg.norm(w, axis=0), s[:10], atol=tolerance)  # in descending order
    np.testing.assert_allclose(w @ v.T, (u[:, :10] * s[:10]) @ vt[:10], atol=tolerance)
    w2, v2 = ease.low_rank(b, 10)
    np.testing.assert_array_equal(w @ v.T, w2 @ v2.T)  # the same every run


def _ials_objective(p, x, y, regularization, alpha):
    c = 1.0 + alpha * p
    return float(np.sum(c * (p - x @ y.T) ** 2) + regularization * (np.sum(x ** 2) + np.sum(y ** 2)))


def test_an_ials_step_solves_each_users_weighted_ridge_by_hand():
    """x_u = (Y^T C_u Y + lambda I)^-1 Y^T C_u p_u with C_u = diag(1 + alpha p_u): the
    textbook dense form, per user, against the sparse batched conjugate-gradient step,
    which solves a k = 2 system exactly in 2 steps from any start and leaves the
    solution where it is; 1 step from zero is not yet there."""
    from scipy import sparse
    rng = np.random.default_rng(0)
    y = rng.normal(size=(3, 2))
    lam, alpha = 0.7, 4.0
    expected = np.stack([np.linalg.solve(y.T @ np.diag(1.0 + alpha * p_u) @ y + lam * np.eye(2),
                                         y.T @ np.diag(1.0 + alpha * p_u) @ p_u) for p_u in X])
    pairs = sparse.csr_matrix(X)
    for start in (np.zeros((4, 2)), rng.normal(size=(4, 2))):
        np.testing.assert_allclose(ials._cg_step(pairs, start, y, lam, alpha, 2), expected, atol=1e-10)
    np.testing.assert_allclose(ials._cg_step(pairs, expected, y, lam, alpha, 3), expected, atol=1e-10)
    one = ials._cg_step(pairs, np.zeros((4, 2)), y, lam, alpha, 1)
    assert np.abs(one - expected)[X.sum(axis=1) > 0].max() > 1e-3


def test_ials_steps_lower_the_objective_and_repeats_count_once():
    rows, cols = np.nonzero(X)
    objectives = []
    for iterations in (1, 2, 5, 20):
        x, y = ials.als_factors(rows, cols, X.shape, 2, 0.5, 3.0, iterations, seed=1)
        assert x.shape == (4, 2) and y.shape == (3, 2)
        objectives.append(_ials_objective(X, x, y, 0.5, 3.0))
    assert all(a >= b - 1e-12 for a, b in zip(objectives, objectives[1:]))
    assert objectives[-1] < objectives[0]
    twice = ials.als_factors(np.r_[rows, rows], np.r_[cols, cols], X.shape, 2, 0.5, 3.0, 20, seed=1)
    np.testing.assert_allclose(twice[1], y, atol=1e-12)
    # a column without pairs gets zero factors
    x, y = ials.als_factors(rows, cols, (4, 4), 2, 0.5, 3.0, 3, seed=1)
    np.testing.assert_array_equal(y[3], 0.0)


def test_ials_refuses_bad_settings_and_pairs_outside_the_matrix():
    with pytest.raises(ValueError, match="regularization > 0"):
        ials.als_factors([0], [0], (1, 1), 2, 0.0, 1.0, 1)
    with pytest.raises(ValueError, match="factors, iterations and cg_steps > 0"):
        ials.als_factors([0], [0], (1, 1), 0, 1.0, 1.0, 1)
    with pytest.raises(ValueError, match="factors, iterations and cg_steps > 0"):
        ials.als_factors([0], [0], (1, 1), 2, 1.0, 1.0, 1, cg_steps=0)
    with pytest.raises(ValueError, match="must lie in a 1 x 1 matrix"):
        ials.als_factors([0], [1], (1, 1), 2, 1.0, 1.0, 1)
    with pytest.raises(ValueError, match="ridge must be > 0"):
        ials.linear_fold_in(np.eye(2), 0.0)


def test_the_linear_fold_in_by_hand():
    """Y^T Y + I = [[3, 1], [1, 6]], its inverse [[6, -1], [-1, 3]] / 17."""
    y = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    np.testing.assert_allclose(ials.linear_fold_in(y, 1.0),
                               np.array([[6, -1], [-2, 6], [5, 2]]) / 17, atol=1e-12)


def test_channel_factors_are_eases_b_or_ials_folded_in_and_padded():
    config = Config(model="afetler").replace(ials={"factors": 2, "iterations": 4, "fold_in_ridge": 0.5})
    w, v = item_item_fitting.channel_factors("ease", X, config, 3)
    np.testing.assert_allclose(w @ v.T, ease.ease_weights(X, config.ease.penalty), atol=1e-12)
    w, v = item_item_fitting.channel_factors("ials", X, config, 3, seed=2)
    rows, cols = np.nonzero(X)
    _, y = ials.als_factors(rows, cols, X.shape, 2, config.ials.regularization, config.ials.alpha, 4, 2)
    assert w.shape == v.shape == (3, 3)
    np.testing.assert_array_equal(v[:, 2], 0.0)  # k = 2 of the channel's 3 columns
    np.testing.assert_allclose(v[:, :2], y, atol=1e-12)
    np.testing.assert_allclose(w[:, :2], ials.linear_fold_in(y, 0.5), atol=1e-12)
    w, v = item_item_fitting.channel_factors("ials", X, config.replace(ials={"factors": 8}), 3)
    assert w.shape == v.shape == (3, 3)  # k capped at the channel's rank
    with pytest.raises(ValueError, match="unknown item-item model"):
        item_item_fitting.channel_factors("svd", X, config, 3)


def test_interaction_matrix_counts_repeats_once_and_leaves_unknown_ids_out():
    frame = pd.DataFrame({"user_id": ["a", "a", "b", "zz"], "item_id": ["1", "1", "2", "1"]})
    x = ease.interaction_matrix(frame, pd.Index(["a", "b"]), pd.Index(["1", "2", "3"]))
    np.testing.assert_array_equal(x, [[1, 0, 0], [0, 1, 0]])


def test_ease_recommender_scores_x_b_and_reloads(tiny_data, tiny_split, tmp_path):
    model = build_model(Config(model="ease").replace(ease={"penalty": 3.0}))
    model.fit(tiny_data, tiny_split, verbose=0)
    train = tiny_split.train
    users = sorted(train.user_id.unique())[:3]
    items = sorted(train.item_id.unique())
    x = ease.interaction_matrix(train, pd.Index(sorted(train.user_id.unique())), pd.Index(items))
    b = ease.ease_weights(x, 3.0)
    expected = x[:3] @ b
    np.testing.assert_allclose(model.score_all(users, items), expected, atol=1e-9)
    np.testing.assert_allclose(model.score([users[1]], [items[4]]), [expected[1, 4]], atol=1e-9)
    assert not model.score_all(["nobody"], items).any()
    assert not model.score_all(users, ["no-such-item"]).any()
    model.save(str(tmp_path))
    again = build_model(Config(model="ease"))
    again.load(str(tmp_path), tiny_data, tiny_split)
    np.testing.assert_allclose(again.score_all(users, items), expected, atol=1e-9)


def test_the_channel_by_hand():
    """query = [p_u / rho ‖ s q~_u ‖ beta], candidate = [p_v ‖ v_v ‖ pi_v], rho = sqrt(p^T M p)."""
    channel = ItemItemChannel(["u"], ["i", "j"], rank=1, dim=2)
    p_u = tf.constant([[1.0, 0.0]])
    np.testing.assert_allclose(channel.query(p_u, tf.constant(["u"])), [[1.0, 0.0, 0.0, 0.0]])  # neutral
    channel.assign(user_table=[[3.0]], item_table=[[2.0], [-1.0]], history_table=[[0.0], [0.0]],
                   moment=np.diag([4.0, 1.0]), share=0.5)
    np.testing.assert_allclose(channel.query(p_u, tf.constant(["u"])), [[0.5, 0.0, 1.5, 0.0]])
    np.testing.assert_allclose(channel.candidate(tf.constant([[1.0, 1.0]]), tf.constant(["i"])),
                               [[1.0, 1.0, 2.0, 0.0]])
    score = channel((p_u, tf.constant(["u"]), tf.constant([[1.0, 1.0]]), tf.constant(["i"])))
    assert float(score[0]) == pytest.approx(0.5 + 0.5 * 3.0 * 2.0)
    # The popularity prior: + beta * pi_v.
    channel.set_prior([0.5, 2.0], share=0.3)
    np.testing.assert_allclose(channel.query(p_u, tf.constant(["u"])), [[0.5, 0.0, 1.5, 0.3]])
    np.testing.assert_allclose(channel.candidate(tf.constant([[1.0, 1.0]]), tf.constant(["j"])),
                               [[1.0, 1.0, -1.0, 2.0]])
    score = channel((p_u, tf.constant(["u"]), tf.constant([[1.0, 1.0]]), tf.constant(["i"])))
    assert float(score[0]) == pytest.approx(0.5 + 0.5 * 3.0 * 2.0 + 0.3 * 0.5)
    # Unknown ids: no item-item score and no prior (row 0 stays zero).
    np.testing.assert_allclose(channel.query(p_u, tf.constant(["new"])), [[0.5, 0.0, 0.0, 0.3]])
    np.testing.assert_allclose(channel.candidate(tf.constant([[1.0, 1.0]]), tf.constant(["new"])),
                               [[1.0, 1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="prior share must be >= 0"):
        channel.set_prior(share=-1.0)
    with pytest.raises(ValueError, match=r"prior must have shape \(2,\)"):
        channel.set_prior([1.0])


def test_the_popularity_prior_by_hand():
    """pi_v = log(1 + n_v) / std over the items of log(1 + n_v); an item never seen: 0."""
    train = pd.DataFrame({"item_id": ["a", "a", "a", "b"]})
    logs = np.log1p([3.0, 1.0, 0.0])
    np.testing.assert_allclose(item_item_fitting.popularity_prior(train, pd.Index(["a", "b", "c"])),
                               logs / logs.std())
    assert not item_item_fitting.popularity_prior(train.iloc[:1], pd.Index(["a"])).any()  # no spread


def test_the_channel_reads_q_u_from_the_history_by_hand():
    """q_u = x_u W (each known item once; padding and unknown ids add nothing),
    q~_u = q_u / sqrt(q_u^T N q_u) with N = mean over items of v_v v_v^T."""
    channel = ItemItemChannel(["u"], ["i", "j"], rank=1, dim=2)
    channel.assign(user_table=[[0.0]], item_table=[[2.0], [-1.0]], history_table=[[1.0], [3.0]],
                   moment=np.diag([4.0, 1.0]), share=0.5)
    p_u = tf.constant([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    history = tf.constant([["i", "j", ""], ["j", "j", "new"], ["", "", ""]])
    # N = (2^2 + (-1)^2) / 2 = 2.5; rows: q = 1 + 3 = 4, q = 3 (repeats count once), q = 0.
    expected_q = [4.0 / np.sqrt(16 * 2.5), 3.0 / np.sqrt(9 * 2.5), 0.0]
    out = channel.query_from_history(p_u, history).numpy()
    np.testing.assert_allclose(out[:, :2], [[0.5, 0.0]] * 3)
    np.testing.assert_allclose(out[:, 2], 0.5 * np.array(expected_q), rtol=1e-6)
    np.testing.assert_allclose(out[:, 3], 0.0)  # beta, 0 until set
    # Any history length, and the same as the fitted table for the same history.
    assert channel.query_from_history(p_u[:1], tf.constant([["j"]])).shape == (1, 4)


def test_binary_counts_by_hand():
    """1 where a row holds the value (repeats once), values >= size left out, int32 or int64."""
    from afetler_tf.layers.item_item import binary_counts

    values = [[0, 2, 2, 5, 7], [1, 1, 1, 1, 1]]
    expected = [[1, 0, 1, 0, 0, 1], [0, 1, 0, 0, 0, 0]]
    for dtype in (tf.int32, tf.int64):
        out = binary_counts(tf.constant(values, dtype), 6)
        assert out.dtype == tf.float32
        np.testing.assert_array_equal(out.numpy(), expected)
    assert binary_counts(tf.zeros([2, 0], tf.int64), 3).numpy().tolist() == [[0, 0, 0]] * 2
    # What query_from_history used before: tf.math.bincount with a fixed size.
    rows = tf.constant([[3, 0, 3, 1], [2, 2, 0, 0]])
    np.testing.assert_array_equal(binary_counts(rows, 4).numpy(), tf.math.bincount(
        rows, minlength=4, maxlength=4, binary_output=True, axis=-1, dtype=tf.float32).numpy())


def test_the_query_encoder_reads_the_whole_history_like_the_fitted_table(trained, tiny_split):
    model, _ = trained
    users = list(tiny_split.train.user_id.unique()[:6])
    features = model._user_features(users)
    assert features[item_item_fitting.HISTORY].shape[1] == tiny_split.train.groupby("user_id").size()[users].max()
    from_history = model.query_encoder(features).numpy()
    features.pop(item_item_fitting.HISTORY)
    from_table = model.query_encoder(features).numpy()
    np.testing.assert_allclose(from_history, from_table, atol=1e-5)


def test_the_channel_validates_and_serializes():
    with pytest.raises(ValueError, match="rank and dim"):
        ItemItemChannel(["u"], ["i"], rank=0, dim=2)
    channel = ItemItemChannel(["u", "w"], ["i"], rank=2, dim=3, name="ch")
    with pytest.raises(ValueError, match=r"user_table must have shape \(2, 2\)"):
        channel.assign(np.zeros((3, 2)), np.zeros((1, 2)), np.zeros((1, 2)), np.eye(3), 0.1)
    with pytest.raises(ValueError, match="share must be >= 0"):
        channel.set_share(-0.1)
    clone = ItemItemChannel.from_config(channel.get_config())
    assert (clone.user_vocabulary, clone.item_vocabulary, clone.rank, clone.dim) == (
        ["u", "w"], ["i"], 2, 3)
    assert not channel.trainable_weights


def test_normalised_queries_have_unit_rms_scores():
    rng = np.random.default_rng(0)
    q, v = rng.normal(size=(5, 3)), rng.normal(size=(7, 3))
    q[2] = 0.0
    out = item_item_fitting.normalised_queries(q, v)
    rms = np.sqrt(np.mean((out @ v.T) ** 2, axis=1))
    np.testing.assert_allclose(rms[[0, 1, 3, 4]], 1.0)
    assert not out[2].any()


def tiny_config(**afetler):
    return Config(model="afetler").replace(
        train={"epochs": 2, "batch_size": 64, "learning_rate": 0.01, "patience": 2},
        tower={"embedding_dim": 8, "tower_units": [16, 8], "ranking_units": [16]},
        afetler={"user_taste": False, **afetler})


@pytest.fixture(scope="module")
def trained(tiny_data, tiny_split):
    model = build_model(tiny_config())
    return model, model.fit(tiny_data, tiny_split, verbose=0)


def test_fit_sets_the_channel_and_picks_the_best_validation_share(trained, tiny_data, tiny_split):
    from afetler_tf import training
    model, history = trained
    channel, fitted = model.network.item_item, history["item_item"]
    # the fit times each stage it ran (what `experiments speed` reads), in the fit's order
    assert list(history["stage_seconds"])[:3] == ["joint", "item_item", "ranking"]
    assert all(seconds > 0 for seconds in history["stage_seconds"].values())
    n_items = len(model.space.item_ids)
    assert channel.rank == min(64, n_items)  # capped at the catalogue
    scores = {float(s): v for s, v in fitted["val_ndcg@10"].items()}
    assert set(scores) == set(item_item_fitting.SHARES)
    assert fitted["share"] == max(scores, key=lambda s: (round(scores[s], 6), -s))
    assert float(channel.share.numpy()) == pytest.approx(fitted["share"])
    assert training.validation_ndcg(model, tiny_data, tiny_split) == pytest.approx(
        fitted["prior_val_ndcg@10"][str(fitted["prior_share"])], abs=1e-6)
    # "auto": EASE and iALS both scored, the better validation figure's fit kept (ties: EASE).
    assert set(fitted["models"]) == {"ease", "ials"}
    assert fitted["models"][fitted["model"]] == scores[fitted["share"]]
    assert fitted["model"] == max(["ease", "ials"], key=lambda k: (round(fitted["models"][k], 6),
                                                                   k == "ease"))
    # The tables are the kept fit's: <q_u, v_v> of a user is x_u W V^T, up to the user's scale
    # (EASE at rank = n_items: the full B).
    items = pd.Index(channel.item_vocabulary)
    users = pd.Index(channel.user_vocabulary)
    x = ease.interaction_matrix(tiny_split.train, users, items)
    w, v = item_item_fitting.channel_factors(fitted["model"], x, model.config, channel.rank,
                                             model.config.train.seed)
    scores_ii = channel.user_table.numpy()[1:] @ channel.item_table.numpy()[1:].T
    exact = x @ w @ v.T
    for row in range(3):
        ratio = scores_ii[row] / exact[row]
        assert np.allclose(ratio, ratio[0], rtol=1e-3)
    # The popularity prior: pi_v of the training counts, beta the best validation figure at s.
    np.testing.assert_allclose(channel.prior_table.numpy()[1:],
                               item_item_fitting.popularity_prior(tiny_split.train, items), rtol=1e-6)
    priors = {float(b): v for b, v in fitted["prior_val_ndcg@10"].items()}
    assert set(priors) == set(item_item_fitting.PRIOR_SHARES)
    assert priors[0.0] == scores[fitted["share"]]
    assert fitted["prior_share"] == max(priors, key=lambda b: (round(priors[b], 6), -b))
    assert float(channel.prior_share.numpy()) == pytest.approx(fitted["prior_share"])
    # Retrieval vectors are [p_u / rho ‖ s q~_u ‖ beta] and [p_v ‖ v_v ‖ pi_v].
    d = model.config.tower.tower_units[-1]
    u, i = model.user_vectors(["u0"]), model.item_vectors([items[0]])
    assert u.shape == i.shape == (1, d + channel.rank + 1)
    np.testing.assert_allclose(i[0, :d], model.network.candidate_tower(
        model.space.item_features([items[0]])).numpy()[0], atol=1e-6)
    assert model.tower_user_vectors(["u0"]).shape == (1, d)


def test_the_share_search_scores_each_share_as_the_model_would(trained, tiny_data, tiny_split):
    """The search forms <p_u / rho, p_v> + s <q~_u, v_v> from one pass of the encoders:
    each recorded figure is the model's own validation NDCG@10 at that share."""
    from afetler_tf import training
    model, history = trained
    channel, fitted = model.network.item_item, history["item_item"]
    # the fit times each stage it ran (what `experiments speed` reads), in the fit's order
    assert list(history["stage_seconds"])[:3] == ["joint", "item_item", "ranking"]
    assert all(seconds > 0 for seconds in history["stage_seconds"].values())
    try:
        channel.set_prior(share=0.0)  # the share search ran with beta = 0
        for share, recorded in fitted["val_ndcg@10"].items():
            channel.set_share(float(share))
            assert training.validation_ndcg(model, tiny_data, tiny_split) == pytest.approx(
                recorded, abs=1e-6)
        channel.set_share(fitted["share"])
        for beta, recorded in fitted["prior_val_ndcg@10"].items():  # then beta, at the chosen s
            channel.set_prior(share=float(beta))
            assert training.validation_ndcg(model, tiny_data, tiny_split) == pytest.approx(
                recorded, abs=1e-6)
    finally:
        channel.set_share(fitted["share"])
        channel.set_prior(share=fitted["prior_share"])


def test_the_history_log_is_the_training_part_then_what_was_revealed(trained, tiny_split):
    model, _ = trained
    pd.testing.assert_frame_equal(model.history_log.reset_index(drop=True),
                                  tiny_split.train[model.history_log.columns].reset_index(drop=True))


def test_growing_histories_refresh_the_users_rows(trained, tiny_split):
    model, _ = trained
    channel = model.network.item_item
    before = channel.user_table.numpy().copy()
    source = model._history_source
    try:
        model.add_history(tiny_split.validation)
        after = channel.user_table.numpy()
        expected = item_item_fitting.user_rows(channel, pd.concat([tiny_split.train, tiny_split.validation]))
        np.testing.assert_allclose(after[1:], expected, atol=1e-5)
        assert not np.allclose(after, before)
    finally:
        model._set_history(source)  # the history index is rebuilt from it, not kept stale
        channel.user_table.assign(before)


def test_the_channel_is_a_switch_and_the_base_has_none(tiny_data, tiny_split):
    off = build_model(tiny_config(item_item=False))
    off._prepare(tiny_data, tiny_split)
    assert off.network.item_item is None and off.query_encoder is off.network.query_tower
    base = build_model(Config(model="two_tower"))
    base._prepare(tiny_data, tiny_split)
    assert base.network.item_item is None


def test_a_catalogue_above_the_channels_limit_is_refused_with_the_switch_named(tiny_data, tiny_split,
                                                                            monkeypatch):
    monkeypatch.setattr(ease, "MAX_ITEMS", 5)
    model = build_model(tiny_config())
    with pytest.raises(ValueError, match="above 5 items switch it off: --set afetler.item_item=false"):
        model._prepare(tiny_data, tiny_split)


def test_the_saved_model_keeps_the_channel(trained, tiny_data, tiny_split, tmp_path):
    model, _ = trained
    model.save(str(tmp_path))
    again = build_model(tiny_config())
    again.load(str(tmp_path), tiny_data, tiny_split)
    users, items = ["u0", "u1"], list(again.space.item_ids[:5])
    np.testing.assert_allclose(again.score_all(users, items), model.score_all(users, items), atol=1e-5)
    for name in ("share", "prior_share"):
        assert float(getattr(again.network.item_item, name).numpy()) == pytest.approx(
            float(getattr(model.network.item_item, name).numpy()))


def test_a_run_saved_before_the_popularity_prior_loads_with_it_off(trained, tiny_data, tiny_split,
                                                                    tmp_path):
    """Weights written without the prior's two variables restore; beta stays 0,
    so the run scores as it was fitted. Any other missing weight is refused."""
    model, _ = trained
    channel = model.network.item_item
    beta, prior = float(channel.prior_share.numpy()), channel.prior_table.numpy().copy()
    try:
        channel.set_prior(np.zeros(len(channel.item_vocabulary)), share=0.0)
        expected = model.score_all(["u0", "u1"], list(model.space.item_ids[:5]))
        # The layer as it was before the prior: its two weights left out of the
        # checkpoint's object graph (TensorFlow's Trackable bookkeeping) while saving.
        deps = list(channel._self_unconditional_checkpoint_dependencies)
        names = dict(channel._self_unconditional_dependency_names)
        channel._self_unconditional_checkpoint_dependencies[:] = [d for d in deps if d.name not in PRIOR_WEIGHTS]
        for name in PRIOR_WEIGHTS:
            channel._self_unconditional_dependency_names.pop(name)
        try:
            model.save(str(tmp_path))
        finally:
            channel._self_unconditional_checkpoint_dependencies[:] = deps
            channel._self_unconditional_dependency_names.update(names)
    finally:
        channel.set_prior(prior[1:], share=beta)
    saved = [name for name, _ in tf.train.list_variables(str(tmp_path / "weights"))]
    assert any("item_table" in n for n in saved) and not any("prior" in n for n in saved)
    again = build_model(tiny_config())
    again.load(str(tmp_path), tiny_data, tiny_split)
    assert float(again.network.item_item.prior_share.numpy()) == 0.0
    np.testing.assert_allclose(again.score_all(["u0", "u1"], list(again.space.item_ids[:5])), expected,
                               atol=1e-5)


def test_the_report_line_reads_what_the_runs_recorded():
    from experiments import benchmark_report
    fit = {"rank": 64, "penalty": 500.0}
    runs = [{"item_item": dict(fit, share=0.3, **{"val_ndcg@10": {"0.0": 0.19, "0.3": 0.21}})},
            {"item_item": dict(fit, share=0.1, **{"val_ndcg@10": {"0.0": 0.20, "0.1": 0.20}})},
            {"item_item": {}}]  # a run without the channel: skipped
    line = benchmark_report.item_item_line(runs)
    assert "2 seeds" in line and "fitted by EASE (penalty 500) on 2 of 2 seeds" in line
    assert "s = 0.3, 0.1" in line and "0.1950 with the towers alone, 0.2050 with the channel" in line
    settings = {"factors": 16, "regularization": 10.0, "alpha": 10.0, "fold_in_ridge": 100.0}
    runs[1]["item_item"].update(model="ials", ials=settings)
    line = benchmark_report.item_item_line(runs)
    assert ("fitted by EASE (penalty 500) on 1 of 2 seeds; iALS (16 factors, regularization 10, alpha 10, "
            "fold-in ridge 100) on 1 of 2 seeds, added") in line
    assert benchmark_report.item_item_line([{}]) == ""


def test_the_targets_line_names_ease_alone():
    from experiments import benchmark_report

    def run(label, ndcg, p10):
        return {"label": label, "metrics": {"R": {c: 0.5 for c in ("mse", "mae", "rmse", "accuracy@10",
                                                                    "precision@10", "roc_auc@10")},
                                            "T": {"ndcg@10": ndcg, "precision@10": p10}}}
    groups = {"two_tower": [run("two_tower", 0.40, 0.33)], "afetler": [run("afetler", 0.44, 0.36)],
              "ease": [run("ease", 0.43, 0.35), run("ease", 0.44, 0.36)]}
    line = benchmark_report.afetler_targets(groups)
    assert ("EASE alone (one of the two fits of AFETLER's item-item channel): NDCG@10 0.4350, "
            "P@10 0.3550.") in line
    assert "+10.0% NDCG@10 over the two-tower base 0.4000" in line


@pytest.mark.parametrize("kind", ["ease", "ials"])
def test_a_named_item_item_model_is_the_only_one_fitted(trained, tiny_data, tiny_split, kind):
    model, history = trained
    config, channel = model.config, model.network.item_item
    model.config = config.replace(afetler={"item_item_model": kind})
    try:
        fitted = item_item_fitting.fit_item_item(model, tiny_data, tiny_split, verbose=0)
        assert fitted["model"] == kind and list(fitted["models"]) == [kind]
        x = ease.interaction_matrix(tiny_split.train, pd.Index(channel.user_vocabulary),
                                    pd.Index(channel.item_vocabulary))
        w, v = item_item_fitting.channel_factors(kind, x, config, channel.rank, config.train.seed)
        np.testing.assert_allclose(channel.item_table.numpy()[1:], v, atol=1e-6)
        np.testing.assert_allclose(channel.history_table.numpy()[1:], w, atol=1e-6)
    finally:
        model.config = config
        item_item_fitting.fit_item_item(model, tiny_data, tiny_split, verbose=0)  # as fitted
    assert float(channel.share.numpy()) == pytest.approx(history["item_item"]["share"])


def test_fitting_the_channel_says_what_runs_before_the_long_part(trained, tiny_data, tiny_split, capsys):
    model, history = trained
    refit = item_item_fitting.fit_item_item(model, tiny_data, tiny_split, verbose=1)
    assert refit["share"] == history["item_item"]["share"]  # closed form: the same channel again
    lines = capsys.readouterr().out.splitlines()
    n_items = len(model.network.item_item.item_vocabulary)
    assert lines[0].startswith(f"item-item channel: EASE and iALS over {n_items:,} items, rank")
    assert lines[-2].startswith(f"item-item channel: {item_item_fitting.KIND_NAMES[refit['model']]}, rank")
    assert lines[-1].startswith("popularity prior: beta")
