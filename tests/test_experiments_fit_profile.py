"""The whole-fit profile (experiments.fit_profile): its arithmetic on hand-made
events, and its instrumentation on a tiny real fit."""

import pytest

from experiments.fit_profile import Events, breakdown, instrumented, table


def _events(items):
    events = Events()
    for item in items:
        events.add(*item)
    return events


def test_each_stage_is_split_into_epochs_validation_checkpoints_and_the_rest():
    events = _events([
        ("stage", "joint", 10.0, 40.0),
        ("trace", "train_function", 11.0, 14.0),  # inside the first epoch: overlaps it
        ("epoch", "1", 10.5, 20.5), ("validation", "", 20.5, 21.5), ("checkpoint", "", 21.5, 22.0),
        ("epoch", "2", 22.0, 28.0), ("validation", "", 28.0, 29.0), ("checkpoint", "", 29.0, 29.5),
        ("epoch", "3", 29.5, 33.5), ("validation", "", 33.5, 34.5), ("checkpoint", "", 34.5, 35.0),
        ("stage", "taste", 40.0, 43.0), ("trace", "lambda", 41.0, 41.5),
        ("trace", "evaluate", 45.0, 45.25),
    ])
    result = breakdown(events, start=2.0, end=50.0)
    joint = result["stages"]["joint"]
    assert joint["epochs"] == 3 and joint["epoch_seconds"] == 20.0  # 10 + 6 + 4
    assert joint["steady_epoch"] == 5.0  # the median of the epochs after the first
    assert joint["first_epoch_excess"] == 5.0
    assert (joint["validation"], joint["checkpoints"]) == (3.0, 1.5)
    assert joint["other"] == pytest.approx(30.0 - 20.0 - 3.0 - 1.5)  # set-up and the stage's tail
    assert (joint["tracing"], joint["traces"]) == (3.0, 1)
    taste = result["stages"]["taste"]
    assert taste["epochs"] == 0 and taste["steady_epoch"] is None and taste["other"] == 3.0
    assert (result["before_stages"], result["after_stages"], result["total"]) == (8.0, 7.0, 48.0)
    assert result["tracing_after"] == 0.25
    text = table(dict(result, seed=1, reference_fit=4.0, cpus=2, load_average_at_start=0.5,
                      metrics={"ndcg@10": 0.44, "rmse": 0.9}))
    assert "48.0 s from data loading" in text and "12.0x the reference's whole fit" in text
    assert "| stage joint | 30.0 | 3 | 20.0 | 5.0 | 5.0 | 3.0 | 1.5 | 5.5 | 3.0 (1) |" in text
    assert "| stage taste | 3.0 |  | 0.0 | – | – | 0.0 | 0.0 | 3.0 | 0.5 (1) |" in text
    assert "Epochs at their steady cost: 15.0 s of 48.0 s (31%)" in text  # 5 s x 3 epochs


def test_a_profile_without_stages_is_refused():
    with pytest.raises(RuntimeError, match="no AFETLER stage"):
        breakdown(_events([("epoch", "1", 0.0, 1.0)]), 0.0, 2.0)


def test_the_instrumentation_records_a_real_fit_and_restores_what_it_wrapped(tiny_data, tiny_split, tmp_path):
    import tensorflow as tf

    from afetler_tf.config import Config
    from afetler_tf.models import build_model
    from afetler_tf.models.afetler import Afetler
    from afetler_tf.training import checkpoints, validation
    config = Config(model="afetler").replace(
        train={"epochs": 2, "batch_size": 64, "learning_rate": 0.01, "patience": 2},
        tower={"embedding_dim": 8, "tower_units": [16, 8], "ranking_units": [16]},
        gan={"enabled": False})
    before = (tf.keras.Model.fit, Afetler.stages, validation.ValidationRanking.on_epoch_end,
              checkpoints.StageCheckpoint.end_epoch)
    events = Events()
    with instrumented(events):
        build_model(config).fit(tiny_data, tiny_split, verbose=0, checkpoint_dir=str(tmp_path))
    assert before == (tf.keras.Model.fit, Afetler.stages, validation.ValidationRanking.on_epoch_end,
                      checkpoints.StageCheckpoint.end_epoch)
    kinds = {}
    for kind, label, start, end in events.items:
        assert end >= start
        kinds.setdefault(kind, []).append(label)
    assert kinds["stage"][:2] == ["joint", "item_item"] and "ranking" in kinds["stage"]
    assert kinds["epoch"][:2] == ["1", "2"]  # the joint stage's two epochs
    assert len(kinds["validation"]) == 2  # ValidationRanking after each joint epoch
    assert len(kinds["checkpoint"]) == len(kinds["epoch"])  # every epoch of every stage
    assert any("train_function" in label for label in kinds["trace"])
    result = breakdown(events, min(s for _, _, s, _ in events.items),
                       max(e for _, _, _, e in events.items))
    assert result["stages"]["joint"]["epochs"] == 2 and result["stages"]["joint"]["tracing"] > 0
