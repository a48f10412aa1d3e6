"""The ``peers`` suite: Cornac's models wrapped as scorers that afetler_tf's evaluate accepts,
settings picked on validation, the --quick suite end to end on a tiny synthetic log (JSON,
resuming) and its section rendered beside the seeds suite's rows.

Cornac (and torch, for BiVAE) are benchmark extras (``pip install .[bench]``), not
installed in CI: the module is skipped without them."""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cornac")
pytest.importorskip("torch")

from afetler_tf.config import Config  # noqa: E402
from afetler_tf.data.splits import make_split  # noqa: E402
from afetler_tf.evaluation import evaluate  # noqa: E402
from experiments import cornac_peers, peers, peers_report, synthetic_logs  # noqa: E402
from experiments.synthetic_logs import Size  # noqa: E402

TINY = Size(120, 80, 2_000)


@pytest.fixture(scope="module")
def tiny():
    data = synthetic_logs.taste(0, TINY)
    return data, make_split(data, kind="random", seed=1)


@pytest.mark.parametrize("name", list(cornac_peers.PEERS))
def test_each_peer_fits_and_scores_through_evaluate(tiny, name):
    data, split = tiny
    model = cornac_peers.PEERS[name](Config(model="popularity"), cornac_peers.QUICK[name])
    history = model.fit(data, split, verbose=0)
    assert history["params"] in model.candidates
    assert history["val_ndcg@10"] == max(t["val_ndcg"] for t in history["trials"])
    assert len(history["trials"]) == len(model.candidates)
    metrics = evaluate(model, data, split, protocols=("T",))["T"]
    assert 0.0 <= metrics["ndcg@10"] <= 1.0 and np.isfinite(metrics["precision@10"])
    users = list(split.train["user_id"].unique()[:3]) + ["nobody"]
    items = list(split.train["item_id"].unique()[:5]) + ["nothing"]
    scores = model.score_all(users, items)
    assert scores.shape == (4, 6) and np.isfinite(scores).all()
    assert (scores[-1] == 0).all() and (scores[:, -1] == 0).all()  # unknown ids score 0
    pairs = model.score(users[:3], items[:3])
    np.testing.assert_allclose(pairs, np.diag(scores[:3, :3]))


def test_ease_matches_the_closed_form_on_binary_input(tiny):
    data, split = tiny
    model = cornac_peers.EASE(Config(model="popularity"), [{"lamb": 20.0, "posB": False}])
    model.fit(data, split, verbose=0)
    users = pd.Index(sorted(split.train["user_id"].astype(str).unique()))
    items = pd.Index(sorted(split.train["item_id"].astype(str).unique()))
    x = np.zeros((len(users), len(items)))
    x[users.get_indexer(split.train["user_id"]), items.get_indexer(split.train["item_id"])] = 1.0
    p = np.linalg.inv(x.T @ x + 20.0 * np.eye(len(items)))
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    np.testing.assert_allclose(model.score_all(list(users), list(items)), x @ b, atol=1e-8)


def test_quick_suite_writes_resumes_and_renders(tiny, tmp_path):
    data, _ = tiny
    models = ["cornac_ease", "cornac_bivae"]
    payload = peers.run_suite(models, [1], str(tmp_path), quick=True, data=data)
    assert payload["ran"] == 3  # the split check and two peers
    runs = payload["runs"]
    assert set(runs) == {peers.CHECK, *models}
    record = runs["cornac_ease"]["1"]
    assert record["candidates"] == 2 and record["params"] in cornac_peers.QUICK["cornac_ease"]
    assert set(record["metrics"]) == {"T"} and record["split"]["test"] > 0
    again = peers.run_suite(models, [1], str(tmp_path), quick=True, data=data)
    assert again["ran"] == 0  # every run kept
    from experiments import render, store
    assert render.render(str(tmp_path)).count("## Public peers beside AFETLER") == 1

    check = runs[peers.CHECK]["1"]
    seeds = {"runs": [{"label": "ease", "model": "ease", "seed": 1, "metrics": check["metrics"],
                       "fit_seconds": 1.0},
                      {"label": "afetler", "model": "afetler", "seed": 1, "fit_seconds": 60.0,
                       "metrics": {"T": dict(check["metrics"]["T"], **{"ndcg@10": 0.9})}}]}
    store.write("seeds.json", seeds, str(tmp_path))
    text = peers_report.section(str(tmp_path))
    assert "| AFETLER (seeds suite) |" in text and "| EASE (Cornac; penalty on validation) |" in text
    assert "equal on every seed" in text
    assert "AFETLER against the best peer" in text


def test_registered():
    from experiments.registry import SUITES
    assert SUITES["peers"].module == "peers"
    assert peers.skip_reason("cornac_ease") is None
