"""Integration on the real MovieLens-100k: the whole pipeline, short budgets.

The figures asserted are loose floors that any working model passes and a
broken one (random scores, leaked or shuffled labels) fails; the real
figures come from ``python -m experiments main``.
"""

import pytest

from afetler_tf.config import Config
from afetler_tf.data import load_dataset
from afetler_tf.runs.training_run import run

pytestmark = pytest.mark.movielens


@pytest.fixture(scope="module")
def movielens():
    return load_dataset("movielens-100k")


def _run(movielens, model, **sections):
    return run(Config(model=model).replace(**sections), verbose=0, data=movielens)


def test_popularity_on_movielens(movielens):
    metrics = _run(movielens, "popularity").metrics
    assert metrics["T"]["counts"]["users"] > 900
    # Popularity is a real baseline here: well above random (~0.01) on protocol T.
    assert 0.15 < metrics["T"]["ndcg@10"] < 0.30


def test_mf_on_movielens_predicts_ratings(movielens):
    metrics = _run(movielens, "mf", mf={"epochs": 4}).metrics
    assert metrics["R"]["rmse"] < 0.98  # the global mean scores about 1.12
    assert metrics["R"]["roc_auc@10"] > 0.6


def test_afetler_on_movielens_beats_popularity(movielens):
    result = _run(movielens, "afetler", train={"epochs": 2, "patience": 1})
    popularity = _run(movielens, "popularity").metrics
    assert result.metrics["T"]["ndcg@10"] > popularity["T"]["ndcg@10"]
    assert result.metrics["R"]["rmse"] < 1.0
    explained = result.model.explain("42", ["50"])
    assert explained[0]["history"], "a known user's rating leans on some history items"
