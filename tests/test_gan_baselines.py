"""The cold-item baselines (random, category popularity, content-only tower) and the cold suite."""

import numpy as np
import pytest

from afetler_tf.config import Config
from afetler_tf.models import build_model
from experiments import benchmark, benchmark_report


def test_random_is_seeded_and_shaped(tiny_data, tiny_split):
    scores = []
    for _ in range(2):
        model = build_model(Config(model="random"))
        model.fit(tiny_data, tiny_split, verbose=0)
        scores.append(model.score_all(["u0", "u1"], ["i0", "i1", "i2"]))
    assert scores[0].shape == (2, 3)
    np.testing.assert_array_equal(scores[0], scores[1])


def test_category_popularity_by_hand(tiny_data, tiny_split):
    model = build_model(Config(model="category_popularity"))
    model.fit(tiny_data, tiny_split, verbose=0)
    counts = tiny_split.train.item_id.value_counts()
    cats = tiny_data.items.set_index("item_id").categories
    action = np.mean([n for i, n in counts.items() if "Action" in cats[i]])
    comedy = np.mean([n for i, n in counts.items() if "Comedy" in cats[i]])
    new = {"item_id": "brand-new", "categories": ["Action", "Comedy"]}
    model._categories[new["item_id"]] = new["categories"]
    np.testing.assert_allclose(model.score_all(["u0"], ["brand-new", "nothing"])[0],
                               [(action + comedy) / 2, 0.0])


def test_content_tower_has_no_item_id_and_answers_new_items(tiny_data, tiny_split):
    config = Config(model="content_tower").replace(
        train={"epochs": 2, "batch_size": 64}, tower={"embedding_dim": 8, "tower_units": [16, 8],
                                                      "ranking_units": [16]})
    model = build_model(config)
    model.fit(tiny_data, tiny_split, verbose=0)
    assert model.gan is None and model.config.afetler.fusion is False
    assert model.network.candidate_tower.features._use_id is False
    assert np.isfinite(model.score_all(["u0"], ["never-seen", "i0"])).all()


def test_cold_suite_plans_every_model_and_seed():
    runs = list(benchmark.suite_runs("cold", [], "movielens-100k"))
    assert len(runs) == 3 * len(benchmark_report.COLD_MODELS) == 15 and {c.data.split for _, c in runs} == {"cold-items"}
    assert {c.model for _, c in runs} == set(benchmark_report.COLD_MODELS.values())


@pytest.mark.parametrize("gan_ndcg, met", [(0.30, True), (0.20, False)])
def test_cold_targets_are_checked_from_the_runs(gan_ndcg, met):
    def runs(ndcg, rmse):
        return [{"metrics": {"C": {"ndcg@10": ndcg, "rmse": rmse}}}]
    groups = {"category popularity": runs(0.1, 1.1), "content-only tower": runs(0.25, 1.0),
              "AFETLER + NewItemGAN": runs(gan_ndcg, 0.95)}
    text = benchmark_report.cold_targets(groups)
    assert ("target >= +5%: met" in text) == met and "target <= 1.00: met" in text


def test_the_cold_path_line_averages_what_the_gan_stage_recorded():
    paths = [{"interaction_scale": 0.6, "affinity_scale": 0.4, "interaction_scale_interactions": 700,
              "cold_rmse_unscaled": 1.04, "cold_rmse_bias_only": 1.08, "cold_rmse_no_affinity": 1.03,
              "cold_rmse": 1.02},
             {"interaction_scale": 0.8, "affinity_scale": 0.6, "interaction_scale_interactions": 800,
              "cold_rmse_unscaled": 1.06, "cold_rmse_bias_only": 1.10, "cold_rmse_no_affinity": 1.05,
              "cold_rmse": 1.04}]
    text = benchmark_report.cold_path([{"cold_path": p} for p in paths] + [{}])  # a run without: skipped
    assert "gamma = 0.70 and kappa = 0.50" in text and "750 validation ratings" in text and "2 seeds" in text
    assert "gamma = 1: 1.0500" in text and "(biases and the user's offset only): 1.0900" in text
    assert "without the taste term: 1.0400" in text and "fitted scales: 1.0300" in text
    older = [{"cold_path": {k: v for k, v in p.items() if k not in ("affinity_scale", "cold_rmse_no_affinity")}}
             for p in paths]  # runs recorded before the taste term: those figures are left out
    assert "kappa" not in benchmark_report.cold_path(older).split("with gamma")[1]
    assert "taste term:" not in benchmark_report.cold_path(older)
    assert benchmark_report.cold_path([{}]) == ""


def _hand_data():
    """u1 rates a 5, b 3; u2 rates a 4, c 2. a, b: category X; c: Y."""
    import pandas as pd
    from afetler_tf.data.schema import Dataset, Split
    items = pd.DataFrame({"item_id": ["a", "b", "c", "d", "e"], "title": ["", "", "", "", ""],
                          "categories": [["X"], ["X"], ["Y"], ["Y"], []]})
    users = pd.DataFrame({"user_id": ["u1", "u2"]})
    train = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u2"], "item_id": ["a", "b", "a", "c"],
                          "rating": [5.0, 3.0, 4.0, 2.0], "timestamp": [1, 2, 3, 4]})
    data = Dataset("hand", train, users, items)
    return data, Split("random", 0, train, train.iloc[:0], train.iloc[:0])


def test_content_bias_by_hand():
    """mu 3.5; b_u1 = +0.5, b_u2 = -0.5 (no damping); item residual means a +1 (2
    ratings), b -1, c -1; content X -> weighted mean (2 - 1) / 3 = 1/3, Y -> -1;
    no category: the intercept of the minimum-norm fit, -2/9 (w_X + w0 = 1/3, w_Y + w0 = -1)."""
    from afetler_tf.models.content_bias import ContentBias
    data, split = _hand_data()
    model = ContentBias(Config(model="content_bias"), shrinkage=0.0, ridge=0.0)
    fitted = model.fit(data, split, verbose=0)
    assert fitted["items"] == 3
    np.testing.assert_allclose(model.item_bias(["a", "b", "c", "d", "e", "unknown"]),
                               [1 / 3, 1 / 3, -1, -1, -2 / 9, -2 / 9], atol=1e-6)
    np.testing.assert_allclose(model.score(["u1", "u2", "nobody"], ["d", "a", "a"]),
                               [3.5 + 0.5 - 1, 3.5 - 0.5 + 1 / 3, 3.5 + 1 / 3], atol=1e-6)
    assert model.score_all(["u1", "u2"], ["a", "c", "d"]).shape == (2, 3)


def test_content_bias_taste_by_hand(tmp_path):
    """u1 rates a (X) 5, c (Y) 1; u2 rates a 3, c 5. mu 3.5, b_u1 -0.5, b_u2 +0.5; residuals
    r - mu - b_u: u1 (2, -2), u2 (-1, 1); item means a +0.5, c -0.5; what is left: u1 (1.5, -1.5),
    u2 (-1.5, 1.5). x_a = (1, 0), x_c = (0, 1), ridge 1: t_u1 = (0.75, -0.75), t_u2 = -t_u1."""
    import dataclasses
    from afetler_tf.models.content_bias import ContentBias
    data, split = _hand_data()
    train = split.train.assign(item_id=["a", "c", "a", "c"], rating=[5.0, 1.0, 3.0, 5.0])
    data = dataclasses.replace(data, interactions=train)
    split = dataclasses.replace(split, train=train)
    model = ContentBias(Config(model="content_bias"), shrinkage=0.0, ridge=0.0, taste_ridge=1.0)
    model.fit(data, split, verbose=0)
    np.testing.assert_allclose(model._taste["u1"], [0.75, -0.75], atol=1e-6)
    # d (Y), b (X): new items rated through their content, the users' tastes included.
    expected = [3.5 - 0.5 - 0.5 - 0.75, 3.5 + 0.5 + 0.5 - 0.75, 3.5 - 0.5]
    np.testing.assert_allclose(model.score(["u1", "u2", "nobody"], ["d", "b", "d"]), expected, atol=1e-6)
    np.testing.assert_allclose(model.score_all(["u1", "u2"], ["d", "b"]),
                               [[expected[0], 3.5 - 0.5 + 0.5 + 0.75], [3.5 + 0.5 - 0.5 + 0.75, expected[1]]],
                               atol=1e-6)
    model.save(str(tmp_path))
    clone = ContentBias(Config(model="content_bias"))
    clone.load(str(tmp_path), data, split)
    np.testing.assert_allclose(clone.score(["u1", "u2"], ["d", "b"]), expected[:2], atol=1e-6)
    # An unrated row (mixed logs) changes nothing: no NaN, no pull of b's content toward 0.
    import pandas as pd
    mixed = pd.concat([train, pd.DataFrame({"user_id": ["u1"], "item_id": ["b"], "rating": [np.nan],
                                            "timestamp": [5]})], ignore_index=True)
    model.fit(dataclasses.replace(data, interactions=mixed), dataclasses.replace(split, train=mixed), verbose=0)
    np.testing.assert_allclose(model._taste["u1"], [0.75, -0.75], atol=1e-6)
    np.testing.assert_allclose(model.score(["u1", "u2", "nobody"], ["d", "b", "d"]), expected, atol=1e-6)


def test_content_bias_damps_and_reloads(tmp_path):
    from afetler_tf.models.content_bias import ContentBias
    data, split = _hand_data()
    model = build_model(Config(model="content_bias"))  # shrinkage 5: b_u1 = 1.0 / (2 + 5)
    model.fit(data, split, verbose=0)
    assert model._user_bias["u1"] == pytest.approx(1.0 / 7)
    model.save(str(tmp_path))
    clone = ContentBias(Config(model="content_bias"))
    clone.load(str(tmp_path), data, split)
    np.testing.assert_allclose(clone.score(["u1", "u2"], ["d", "e"]), model.score(["u1", "u2"], ["d", "e"]))


def test_content_bias_needs_ratings():
    import dataclasses
    data, split = _hand_data()
    implicit = dataclasses.replace(data, interactions=data.interactions.assign(rating=np.nan))
    with pytest.raises(ValueError, match="predicts ratings.*have none.*category_popularity"):
        build_model(Config(model="content_bias")).fit(implicit, split, verbose=0)


def test_the_ablation_table_puts_the_full_model_first_and_shows_changes():
    from experiments.benchmark_report import ABLATION_COLUMNS

    def run(value):
        return {"metrics": {p: {c: value for _, c in ABLATION_COLUMNS} for p in ("R", "T")}}
    groups = {"no x": [run(0.5), run(0.7)], "full": [run(0.4), run(0.4)]}  # a resumed file's order
    rows = benchmark_report.ablation_table(groups).splitlines()[2:]
    assert rows[0].startswith("| full | 0.4000 ± 0.0000 |")
    assert rows[1].startswith("| no x | 0.6000 ± 0.1000 (+0.2000) |")
