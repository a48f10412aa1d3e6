"""A shop's own logs, end to end, as a new user runs them (README "Deploy").

fit ``--split none`` (AFETLER, defaults) with a relative ``--data`` -> the data
folder deleted -> from another working directory: ``add_items`` for new
products, ``python -m export``, then a fresh process with plain TensorFlow
serves the SavedModels: top-k for a known user (equal to the Python API's, no
seen item), a new user with a history, an unknown user with none, and a new
item through the ranker (rated logs; an implicit log exports no ranker).
Rated and implicit logs.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from shop_log import write_new_items, write_shop_log

HERE = os.path.dirname(os.path.abspath(__file__))
K = 10


def _run(args, cwd):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module", params=["rated", "implicit"])
def deployed(request, tmp_path_factory):
    """Fit, delete the data, add items and export from elsewhere; the API's view."""
    rated = request.param == "rated"
    root = tmp_path_factory.mktemp(f"shop_{request.param}")
    shop_dir, other = root / "shop_dir", root / "elsewhere"
    shop_dir.mkdir()
    other.mkdir()
    write_shop_log(str(shop_dir / "logs"), rated=rated)
    _run(["-m", "afetler_tf.fit", "--data", "logs", "--split", "none", "--out", "runs/shop",
          "--quiet"], cwd=shop_dir)
    shutil.rmtree(shop_dir / "logs")  # the run must not need its data any more
    run = os.path.relpath(shop_dir / "runs" / "shop", other)
    write_new_items(str(other / "new_products.csv"))
    _run(["-m", "afetler_tf.add_items", "--run", run, "--items", "new_products.csv"], cwd=other)
    _run(["-m", "export", "--run", run, "--base", "models"], cwd=other)

    import afetler_tf as af
    result = af.load_run(str(shop_dir / "runs" / "shop"))
    return {"rated": rated, "result": result, "models": other / "models", "cwd": other}


def _serve(deployed, requests):
    """Answers ``requests`` in a fresh process that imports TensorFlow only."""
    cwd = deployed["cwd"]
    with open(cwd / "requests.json", "w", encoding="utf-8") as f:
        json.dump(requests, f, ensure_ascii=False)
    _run([os.path.join(HERE, "serve_plain_tf.py"), "requests.json", "answers.json"], cwd=cwd)
    with open(cwd / "answers.json", encoding="utf-8") as f:
        answers = json.load(f)
    assert answers["afetler_tf_imported"] is False
    return answers["answers"]


def _user_inputs(result, user_id, history: pd.DataFrame) -> dict:
    """A request's user features and whole history (most recent first)."""
    users = result.data.users.set_index("user_id")
    city = users["city"].get(user_id, "")
    history = history.sort_values("timestamp", ascending=False, kind="stable")
    ratings = history["rating"].fillna(0.0).astype(float).tolist()
    return {"user_id": [user_id], "city": [city], "history_item_ids": [history["item_id"].tolist()],
            "history_ratings": [ratings]}


def _version(deployed, kind) -> str:
    return str(deployed["models"] / f"afetler_{kind}" / "1")


def _api_top(result, user_id) -> list:
    from afetler_tf.recommend import recommend
    return recommend(result.model, result.data, result.split, user_id, k=K)["item_id"].tolist()


def test_served_top_k_matches_the_api_and_skips_seen_items(deployed):
    result = deployed["result"]
    log = pd.concat([result.split.train, result.split.validation])
    users = list(pd.unique(log["user_id"]))[:5]
    requests = [{"model": _version(deployed, "index"),
                 "inputs": {**_user_inputs(result, u, log[log.user_id == u]), "k": K}} for u in users]
    for user, answer in zip(users, _serve(deployed, requests)):
        served = answer["item_ids"][0]
        seen = set(log.loc[log.user_id == user, "item_id"])
        assert len(served) == K and not seen & set(served)
        assert served == _api_top(result, user)


def test_new_user_with_history_and_unknown_user_without(deployed):
    result = deployed["result"]
    catalogue = result.data.items["item_id"].tolist()
    history = pd.DataFrame({"user_id": "yeni müşteri", "item_id": catalogue[:3],
                            "rating": [5.0, 4.0, 5.0] if deployed["rated"] else np.nan,
                            "timestamp": [3, 2, 1]})
    with_history = {**_user_inputs(result, "yeni müşteri", history), "k": K}
    without = {"user_id": ["kimse"], "city": [""], "history_item_ids": [[]], "history_ratings": [[]],
               "k": K}
    new, unknown = _serve(deployed, [{"model": _version(deployed, "index"), "inputs": with_history},
                                     {"model": _version(deployed, "index"), "inputs": without}])
    assert len(new["item_ids"][0]) == K and not set(catalogue[:3]) & set(new["item_ids"][0])
    assert len(unknown["item_ids"][0]) == K and np.all(np.isfinite(unknown["scores"][0]))
    # The API scores a new user from the same history: the same list.
    model = result.model
    model.add_history(history)
    scores = model.score_all(["yeni müşteri"], catalogue)[0]
    order = [catalogue[j] for j in np.argsort(-scores, kind="stable") if catalogue[j] not in catalogue[:3]]
    assert new["item_ids"][0] == order[:K]


def test_an_implicit_log_exports_no_ranker(deployed):
    if deployed["rated"]:
        pytest.skip("rated data: the ranker is exported (test_new_item_through_the_ranker)")
    assert not deployed["result"].model.predicts_ratings
    assert sorted(p.name for p in deployed["models"].iterdir() if p.is_dir()) == [
        "afetler_candidate", "afetler_index", "afetler_query"]


def test_new_item_through_the_ranker(deployed):
    result = deployed["result"]
    if not deployed["rated"]:
        pytest.skip("implicit data: no ratings, no ranking head (test_an_implicit_log_exports_no_ranker)")
    added = result.data.items[result.data.items["item_id"].isin(["ürün 1000", "ürün 1001", "ürün 1002"])]
    assert len(added) == 3  # add_items stored them in the run
    item = added.iloc[0]
    user = result.split.train["user_id"].iloc[0]
    log = pd.concat([result.split.train, result.split.validation])
    inputs = {**_user_inputs(result, user, log[log.user_id == user]), "item_id": [item["item_id"]],
              "categories": ["|".join(item["categories"])], "title": [item["title"]],
              "price": [float(item["price"])], "year": [float("nan")]}  # no year: NaN = missing
    (answer,) = _serve(deployed, [{"model": _version(deployed, "ranker"), "inputs": inputs}])
    expected = result.model.score([user], [item["item_id"]])[0]
    assert np.isfinite(answer["rating"][0])
    assert abs(answer["rating"][0] - expected) < 1e-4
