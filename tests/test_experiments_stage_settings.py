"""The ranking stage's learning-rate comparison (experiments.stage_settings)."""

import json

from experiments import stage_settings


def test_the_table_gives_each_rates_mean_rmse_and_epochs_and_their_sum():
    def run(rmse, epochs):
        return {"val_rmse": rmse, "epochs": epochs}
    payload = {"runs": {
        "taste": {"1": {"candidates": {"0.001": run(0.90, 4), "0.005": run(0.88, 3)}},
                  "2": {"candidates": {"0.001": run(0.92, 6), "0.005": run(0.90, 3)}}},
        "implicit": {"1": {"candidates": {}, "skipped": "no ratings: no ranking stage"}}}}
    text = stage_settings.table(payload)
    assert "| taste (1, 2) | 0.9100 (5.0 ep) | 0.8900 (3.0 ep) |" in text
    assert "| epochs, summed | 5.0 | 3.0 |" in text
    assert "implicit" not in text


def test_a_quick_run_trains_the_ranking_stage_at_each_rate_from_one_joint_stage(tmp_path):
    assert stage_settings.main(["--quick", "--datasets", "taste", "--seeds", "1",
                                "--rates", "0.001", "0.01", "--out", str(tmp_path)]) == 0
    record = json.load(open(tmp_path / "stage_settings.json"))["runs"]["taste"]["1"]
    assert set(record["candidates"]) == {"0.001", "0.01"}
    for candidate in record["candidates"].values():
        assert 1 <= candidate["best_epoch"] <= candidate["epochs"]
        assert candidate["val_rmse"] > 0
    first = record["candidates"]["0.001"]["val_rmse_epoch_1"]
    assert first != record["candidates"]["0.01"]["val_rmse_epoch_1"]  # the rate was applied
    assert "rate 0.01" in open(tmp_path / "stage_settings.md").read()
