"""The real MovieLens-100k (downloaded once into the cache dir, then read from it)."""

import time

import numpy as np
import pytest

from afetler_tf.data import load_dataset, make_histories, make_split

pytestmark = pytest.mark.movielens

GENRES = {"unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
          "Thriller", "War", "Western"}


@pytest.fixture(scope="module")
def movielens():
    return load_dataset("movielens-100k")


def test_counts(movielens):
    inter = movielens.interactions
    assert len(inter) == 100_000
    assert inter["user_id"].nunique() == 943 and len(movielens.users) == 943
    assert inter["item_id"].nunique() == 1682 and len(movielens.items) == 1682
    assert movielens.report == []


def test_ratings_and_types(movielens):
    inter = movielens.interactions
    assert movielens.rating_range == (1.0, 5.0)
    assert set(inter["rating"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert inter["timestamp"].dtype == np.int64 and inter["item_id"].dtype == object
    assert movielens.users["age"].dtype == np.int64
    assert set(movielens.users.columns) >= {"user_id", "age", "gender", "occupation", "zip"}


def test_genres_and_titles(movielens):
    items = movielens.items.set_index("item_id")
    assert items.loc["1", "title"] == "Toy Story" and items.loc["1", "year"] == 1995
    assert items.loc["1", "categories"] == ["Animation", "Children's", "Comedy"]
    seen = {g for cats in items["categories"] for g in cats}
    assert seen == GENRES
    assert (items["category"] == items["categories"].map(lambda c: c[0] if c else "")).all()
    assert items["year"].notna().mean() > 0.99


def test_loading_from_cache_is_fast(movielens):
    start = time.perf_counter()
    load_dataset("movielens-100k")
    assert time.perf_counter() - start < 5.0


def test_splits_sizes(movielens):
    assert [len(make_split(movielens, "random").test), len(make_split(movielens, "temporal").test)] == \
        [20_000, 20_000]
    cold = make_split(movielens, "cold-items")
    assert len(cold.cold_items) == round(0.2 * 1682)
    assert not set(cold.cold_items) & set(cold.train["item_id"])


def test_histories_are_fast_on_the_full_train_set(movielens):
    split = make_split(movielens, "random")
    start = time.perf_counter()
    hist = make_histories(split.train, split.train, max_len=50)
    elapsed = time.perf_counter() - start
    assert hist["history_item_ids"].shape == (72_000, 50)
    assert elapsed < 3.0
