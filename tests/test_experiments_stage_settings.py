"""Later stages' settings compared on validation (experiments.stage_settings)."""

import json

from experiments import stage_settings
from experiments.stage_settings import KNOBS


def test_the_ranking_table_gives_each_values_mean_rmse_and_epochs_and_their_sum():
    def run(rmse, epochs):
        return {"val_rmse": rmse, "epochs": epochs}
    part = {"runs": {
        "taste": {"1": {"candidates": {"0.001": run(0.90, 4), "0.005": run(0.88, 3)}},
                  "2": {"candidates": {"0.001": run(0.92, 6), "0.005": run(0.90, 3)}}},
        "implicit": {"1": {"candidates": {}, "skipped": "the ranking stage does not run on this data"}}}}
    text = stage_settings.table(KNOBS["ranking"], part)
    assert "| taste (1, 2) | 0.9100 (5.0 ep) | 0.8900 (3.0 ep) |" in text
    assert "| epochs, summed | 5.0 | 3.0 |" in text
    assert "implicit" not in text


def test_the_item_item_table_gives_each_penaltys_mean_ndcg_and_share():
    part = {"runs": {"taste": {
        "1": {"candidates": {"100.0": {"val_ndcg@10": 0.20, "share": 0.2},
                             "500.0": {"val_ndcg@10": 0.30, "share": 0.4}}},
        "2": {"candidates": {"100.0": {"val_ndcg@10": 0.22, "share": 0.4},
                             "500.0": {"val_ndcg@10": 0.32, "share": 0.4}}}}}}
    text = stage_settings.table(KNOBS["item_item"], part)
    assert "| data set (seeds) | 100 | 500 |" in text
    assert "| taste (1, 2) | 0.2100 (share 0.30) | 0.3100 (share 0.40) |" in text
    assert "epochs" not in text


def test_a_quick_run_fits_the_stage_at_each_value_from_one_shared_state(tmp_path):
    assert stage_settings.main(["--stage", "ranking", "--quick", "--datasets", "taste", "--seeds", "1",
                                "--values", "0.001", "0.01", "--out", str(tmp_path)]) == 0
    assert stage_settings.main(["--stage", "item_item", "--quick", "--datasets", "taste", "--seeds", "1",
                                "--values", "10", "1000", "--out", str(tmp_path)]) == 0
    stages = json.load(open(tmp_path / "stage_settings.json"))["stages"]
    ranking = stages["ranking"]["runs"]["taste"]["1"]["candidates"]
    assert set(ranking) == {"0.001", "0.01"}
    for candidate in ranking.values():
        assert 1 <= candidate["best_epoch"] <= candidate["epochs"]
    assert ranking["0.001"]["val_rmse_epoch_1"] != ranking["0.01"]["val_rmse_epoch_1"]  # applied
    item_item = stages["item_item"]["runs"]["taste"]["1"]["candidates"]
    assert set(item_item) == {"10.0", "1000.0"}
    for candidate in item_item.values():  # the picked share's figure is at least the towers' own
        assert candidate["val_ndcg@10"] >= candidate["towers_val_ndcg@10"]
    text = open(tmp_path / "stage_settings.md").read()
    assert "`train.ranking_learning_rate` (ranking stage)" in text and "`ease.penalty`" in text
    assert "fitted by EASE after the same joint stage" in text


def test_each_knob_pins_the_channels_fit_it_is_judged_on():
    from afetler_tf.config import Config
    defaults = Config()
    assert defaults.afetler.item_item_model == "auto"
    penalty = KNOBS["item_item"].config(defaults, 250.0)
    assert (penalty.afetler.item_item_model, penalty.ease.penalty) == ("ease", 250.0)
    factors = KNOBS["ials_factors"]
    config = factors.config(defaults, factors.cast(32.0))
    assert (config.afetler.item_item_model, config.ials.factors) == ("ials", 32)
    assert isinstance(config.ials.factors, int) and KNOBS["ials_alpha"].cast(10) == 10.0
    assert KNOBS["ranking"].config(defaults, 0.002).afetler.item_item_model == "auto"


def test_knobs_of_one_stage_share_one_fit_and_knobs_of_two_stages_are_refused(tmp_path):
    import pytest
    assert stage_settings.main(["--stage", "ials_alpha", "ials_factors", "--quick", "--datasets", "taste",
                                "--seeds", "1", "--values", "1", "4", "--out", str(tmp_path)]) == 0
    stages = json.load(open(tmp_path / "stage_settings.json"))["stages"]
    alpha, factors = (stages[name]["runs"]["taste"]["1"] for name in ("ials_alpha", "ials_factors"))
    assert set(alpha["candidates"]) == {"1.0", "4.0"} and set(factors["candidates"]) == {"1", "4"}
    assert alpha["before_seconds"] == factors["before_seconds"]  # one joint fit for both
    text = open(tmp_path / "stage_settings.md").read()
    assert "### `ials.alpha` (item_item stage)" in text and "fitted by iALS" in text
    with pytest.raises(ValueError, match="knobs of different stages"):
        stage_settings.run(["ranking", "ials_alpha"], ["taste"], [1], directory=str(tmp_path), quick=True)


def test_an_integer_settings_table_reads_the_values_as_recorded():
    part = {"runs": {"taste": {"1": {"candidates": {"16": {"val_ndcg@10": 0.05, "share": 1.0},
                                                    "32": {"val_ndcg@10": 0.04, "share": 0.5}}}}}}
    text = stage_settings.table(KNOBS["ials_factors"], part)
    assert "| data set (seeds) | 16 | 32 |" in text
    assert "| taste (1) | 0.0500 (share 1.00) | 0.0400 (share 0.50) |" in text
