"""Tests of the baselines: popularity, matrix factorisation, DeepFM.

Tiny synthetic data built here: ratings from a planted rank-2 matrix, users with
MovieLens-like attributes, items with categories and a year.
"""

import afetler_tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow)

import numpy as np
import pandas as pd
import pytest

from afetler_tf.config import Config
from afetler_tf.data.schema import Dataset, Split
from afetler_tf.models.deepfm import DeepFM
from afetler_tf.models.mf import MatrixFactorization
from afetler_tf.models.popularity import PopularityRecommender

N_USERS, N_ITEMS = 60, 50


def _planted_data(seed: int = 0) -> Dataset:
    """Ratings 3 + U Vᵀ (rank 2) + small noise, clipped to [1, 5], 60% observed."""
    rng = np.random.default_rng(seed)
    u = rng.normal(0, 0.9, (N_USERS, 2))
    v = rng.normal(0, 0.9, (N_ITEMS, 2))
    full = np.clip(3 + u @ v.T + rng.normal(0, 0.1, (N_USERS, N_ITEMS)), 1, 5)
    users, items = np.nonzero(rng.random((N_USERS, N_ITEMS)) < 0.6)
    interactions = pd.DataFrame({
        "user_id": [f"u{i}" for i in users], "item_id": [f"i{j}" for j in items],
        "rating": full[users, items], "timestamp": np.arange(len(users), dtype="int64")})
    user_table = pd.DataFrame({
        "user_id": [f"u{i}" for i in range(N_USERS)], "age": rng.integers(15, 70, N_USERS),
        "gender": rng.choice(["M", "F"], N_USERS), "occupation": rng.choice(["a", "b", "c"], N_USERS),
        "zip": [f"{z:05d}" for z in rng.integers(0, 99999, N_USERS)]})
    genres = [["Drama"], ["Comedy", "Drama"], []]
    cats = [genres[j % 3] for j in range(N_ITEMS)]
    item_table = pd.DataFrame({
        "item_id": [f"i{j}" for j in range(N_ITEMS)], "title": "t",
        "year": [np.nan if j == 0 else 1950.0 + j for j in range(N_ITEMS)],
        "categories": cats, "category": [c[0] if c else "" for c in cats]})
    return Dataset("planted", interactions, user_table, item_table)


def _split(data: Dataset) -> Split:
    order = np.random.default_rng(42).permutation(len(data.interactions))
    frame = data.interactions.iloc[order].reset_index(drop=True)
    n_test, n_val = len(frame) // 5, len(frame) // 10
    return Split("random", 42, frame.iloc[n_test + n_val:], frame.iloc[n_test:n_test + n_val],
                 frame.iloc[:n_test])


@pytest.fixture(scope="module")
def planted():
    data = _planted_data()
    return data, _split(data)


def _config(model: str) -> Config:
    cfg = Config(model=model)
    return cfg.replace(mf={"epochs": 40, "patience": 5, "batch_size": 64, "learning_rate": 0.02},
                       deepfm={"epochs": 4, "batch_size": 64, "learning_rate": 0.005})


def _rmse(model, frame: pd.DataFrame) -> float:
    pred = model.score(frame["user_id"].to_numpy(object), frame["item_id"].to_numpy(object))
    return float(np.sqrt(np.mean((pred - frame["rating"].to_numpy()) ** 2)))


@pytest.fixture(scope="module")
def trained(planted):
    data, split = planted
    models = {}
    for cls in (PopularityRecommender, MatrixFactorization, DeepFM):
        model = cls(_config(cls.name))
        model.fit(data, split, verbose=0)
        models[cls.name] = model
    return models


def _tiny_popularity_split(items: list[str]) -> Split:
    train = pd.DataFrame({"user_id": [f"u{k}" for k in range(len(items))], "item_id": items,
                          "rating": 3.0, "timestamp": 0})
    return Split("random", 42, train, train.iloc[:0], train.iloc[:0])


def test_popularity_counts_and_tie_break():
    split = _tiny_popularity_split(["10", "9", "3", "10", "9", "2", "10"])  # 10:3 9:2 3:1 2:1
    model = PopularityRecommender(Config(model="popularity"))
    model.fit(None, split, verbose=0)
    scores = model.score(["a"] * 5, ["2", "3", "9", "10", "new"])
    assert list(np.argsort(-scores)) == [3, 2, 0, 1, 4]  # 10, 9, then 2 before 3 (id order)
    assert np.floor(scores).tolist() == [1, 1, 2, 3, 0]
    assert model.score_all(["a", "b"], ["9", "10"]).shape == (2, 2)


@pytest.mark.parametrize("name", ["popularity", "mf", "deepfm"])
def test_scores_are_finite_with_the_right_shapes(trained, planted, name):
    data, split = planted
    model = trained[name]
    users, items = data.users["user_id"].to_numpy(object), data.items["item_id"].to_numpy(object)
    assert model.score(split.test["user_id"], split.test["item_id"]).shape == (len(split.test),)
    matrix = model.score_all(users[:7], items)
    assert matrix.shape == (7, N_ITEMS) and np.isfinite(matrix).all()


@pytest.mark.parametrize("name", ["mf", "deepfm"])
def test_score_all_matches_pairwise_scores(trained, planted, name):
    data, _ = planted
    users, items = data.users["user_id"].to_numpy(object)[:5], data.items["item_id"].to_numpy(object)
    matrix = trained[name].score_all(users, items)
    pairs = trained[name].score(np.repeat(users, len(items)), np.tile(items, len(users)))
    np.testing.assert_allclose(matrix.reshape(-1), pairs, rtol=1e-5, atol=1e-5)


def test_mf_learns_the_planted_low_rank_matrix(trained, planted):
    _, split = planted
    baseline = float(np.sqrt(np.mean((split.test["rating"] - split.train["rating"].mean()) ** 2)))
    assert _rmse(trained["mf"], split.test) < 0.6 * baseline


def test_deepfm_beats_the_global_mean(trained, planted):
    _, split = planted
    baseline = float(np.sqrt(np.mean((split.test["rating"] - split.train["rating"].mean()) ** 2)))
    assert _rmse(trained["deepfm"], split.test) < baseline


@pytest.mark.parametrize("name", ["popularity", "mf", "deepfm"])
def test_unknown_ids_are_answered(trained, name):
    scores = trained[name].score(["u0", "nobody", "nobody"], ["nothing", "i1", "nothing"])
    matrix = trained[name].score_all(["nobody", "u1"], ["nothing", "i2"])
    assert np.isfinite(scores).all() and np.isfinite(matrix).all()


@pytest.mark.parametrize("name", ["popularity", "mf", "deepfm"])
def test_save_and_load_give_identical_scores(trained, planted, tmp_path, name):
    data, split = planted
    trained[name].save(str(tmp_path))
    restored = type(trained[name])(Config(model=name))
    restored.load(str(tmp_path), data, split)
    users, items = split.test["user_id"], split.test["item_id"]
    np.testing.assert_array_equal(restored.score(users, items), trained[name].score(users, items))
    all_users = data.users["user_id"].to_numpy(object)
    np.testing.assert_array_equal(restored.score_all(all_users, ["i1", "i2", "new"]),
                                  trained[name].score_all(all_users, ["i1", "i2", "new"]))


def test_unfitted_model_says_what_to_do():
    with pytest.raises(RuntimeError, match="fit"):
        MatrixFactorization(Config(model="mf")).score(["u"], ["i"])


def test_mf_refit_on_train_and_validation_keeps_the_chosen_epochs(planted):
    data, split = planted
    cfg = _config("mf").replace(mf={"epochs": 6, "batch_size": 64, "learning_rate": 0.02,
                                    "refit_full": True})
    model = MatrixFactorization(cfg)
    history = model.fit(data, split, verbose=0)
    assert len(history["refit"]["loss"]) == history["best_epoch"]
    assert set(split.validation["user_id"]) <= set(model.net.user_lookup.get_vocabulary())


def test_mf_steps_per_execution_changes_no_update(planted, monkeypatch):
    """Several train steps per call (training.SMALL_MODEL_STEPS_PER_EXECUTION) only save
    Python calls: one step per call gives the same history and tables."""
    from afetler_tf import training
    data, split = planted
    cfg = _config("mf").replace(mf={"epochs": 3, "patience": 3, "batch_size": 64})
    fitted = []
    for steps in (1, 7):  # 7 does not divide an epoch's steps: the last call runs fewer
        monkeypatch.setattr(training, "SMALL_MODEL_STEPS_PER_EXECUTION", steps)
        model = MatrixFactorization(cfg)
        fitted.append((model.fit(data, split, verbose=0), model.net.get_weights()))
        assert int(model.net._steps_per_execution.numpy()) == steps
    (one, one_weights), (several, several_weights) = fitted
    np.testing.assert_allclose(several["val_rmse"], one["val_rmse"], rtol=1e-5)
    for a, b in zip(one_weights, several_weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
