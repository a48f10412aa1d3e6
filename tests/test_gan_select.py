"""``python -m experiments gan_select``: the GAN's settings chosen on validation data only."""

import dataclasses

import numpy as np

from afetler_tf.config import Config
from afetler_tf.data.schema import Split
from afetler_tf.runs import training_run as pipeline
from experiments import gan_select, render


class NoTest(Split):
    def __getattribute__(self, name):
        if name == "test":
            raise AssertionError("gan_select read the split's test part")
        return super().__getattribute__(name)


def test_select_scores_every_grid_point_by_the_gans_validation_loss(tiny_data, monkeypatch):
    config = Config(model="afetler").replace(
        data={"split": "cold-items", "seed": 1}, train={"epochs": 2, "batch_size": 64, "patience": 2},
        tower={"embedding_dim": 8, "tower_units": [16, 8], "ranking_units": [16]},
        gan={"epochs": 2, "patience": 2, "batch_size": 64, "hidden_units": [16], "embedding_dim": 8})
    prepare = pipeline.prepare

    def without_test(*args, **kwargs):  # the split's test part (the cold items) must stay unread
        data, split = prepare(*args, **kwargs)
        return data, NoTest(**{f.name: getattr(split, f.name) for f in dataclasses.fields(split)})
    monkeypatch.setattr(pipeline, "prepare", without_test)
    payload = gan_select.select(grid={"g_learning_rate": (1e-3, 1e-2), "dropout": (0.0,)},
                                config=config, data=tiny_data, verbose=0)
    rows = payload["rows"]
    assert [r["g_learning_rate"] for r in rows] == [1e-3, 1e-2]
    assert all(r["criterion"] == "val_retrieval_loss" and np.isfinite(r["loss"]) for r in rows)
    assert all(np.isfinite([r["cold_rmse"], r["cold_rmse_no_content_bias"], r["own_id_rmse"]]).all()
               and r["cold_interactions"] > 0 for r in rows)
    assert payload["best"] == min(rows, key=lambda r: r["loss"])
    text = gan_select.render(payload)
    assert text.startswith("## ") and text.count("**") == 4  # the winner's loss, and "not the winner"
    assert "not the winner" in text  # the grid above holds no default


def test_the_section_is_appended_after_tuning():
    assert render.SECTION_ORDER.index("gan_select") < render.SECTION_ORDER.index("export")


def test_render_rewrites_the_section_from_the_stored_selection(tmp_path):
    from afetler_tf.config import GanConfig
    from afetler_tf.files import read_json, write_json
    defaults = GanConfig()
    row = {"g_learning_rate": defaults.g_learning_rate, "dropout": defaults.dropout,
           "criterion": "val_retrieval_loss", "loss": 1.0, "val_similarity_loss": 0.1, "best_epoch": 1,
           "epochs": 2, "seconds": 1.0, "own_id_rmse": 0.9, "cold_interactions": 10, "cold_rmse": 1.0,
           "cold_rmse_no_content_bias": 1.1}
    payload = {"rows": [row], "best": row, "grid": {"g_learning_rate": [defaults.g_learning_rate],
                                                      "dropout": [defaults.dropout]},
               "data": "movielens-100k", "seed": 1, "main_fit_seconds": 60.0, "wall_seconds": 120.0,
               "machine": {"cpus": 2}}
    write_json(str(tmp_path / "gan_select.json"), payload)
    assert gan_select.main(["--render", "--dir", str(tmp_path)]) == 0
    text = (tmp_path / "gan_select.md").read_text()
    stored = gan_select.render(read_json(str(tmp_path / "gan_select.json")))
    assert text == stored and "not the winner" not in text and "1.0000" in text
