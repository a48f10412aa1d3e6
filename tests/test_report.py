"""Results writing: atomic JSON, Markdown tables, report.md and PNG plots."""

import json
import math
import os

import numpy as np
import pytest

from afetler_tf.evaluation import report

METRICS = {
    "R": {"mse": 0.9, "mae": 0.75, "rmse": math.sqrt(0.9), "accuracy@10": 0.7, "precision@10": 0.6,
          "roc_auc@10": float("nan"), "counts": {"users": 3, "auc_users": 0}},
    "T": {"precision@10": np.float32(0.25), "ndcg@10": 0.3, "popularity_percentile": 70.0,
          "counts": {"users": 3, "users_without_relevant": 0}},
}
HISTORY = {"loss": [3.0, 2.0, 1.5], "val_loss": [3.2, 2.5, 2.4], "epochs": 3}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_higher_is_better():
    assert report.higher_is_better("ndcg@10") and report.higher_is_better("T/coverage@10")
    for name in ("mse", "R/rmse", "mae", "popularity_percentile", "val_loss"):
        assert not report.higher_is_better(name)


def test_write_metrics_json_is_atomic_and_strict(tmp_path):
    path = tmp_path / "run" / "metrics.json"
    report.write_metrics_json(str(path), METRICS)
    report.write_metrics_json(str(path), METRICS)  # overwrite in place
    assert os.listdir(path.parent) == ["metrics.json"]  # no temp file left behind
    loaded = json.loads(path.read_text())           # strict JSON: NaN -> null
    assert loaded["R"]["roc_auc@10"] is None
    assert loaded["T"]["precision@10"] == pytest.approx(0.25)
    assert loaded["T"]["counts"] == {"users": 3, "users_without_relevant": 0}


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    report.write_metrics_json(str(path), {"a": 1})

    def crash(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(report.os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        report.write_metrics_json(str(path), {"a": 2})
    assert os.listdir(tmp_path) == ["metrics.json"]      # temp file removed
    assert json.loads(path.read_text()) == {"a": 1}      # old content intact


def test_markdown_table_bolds_the_best_per_column():
    rows = {"mf": {"rmse": 0.95, "ndcg@10": 0.30, "popularity_percentile": 80.0},
            "afetler": {"rmse": 0.91, "ndcg@10": 0.38, "popularity_percentile": 60.0},
            "pop": {"rmse": float("nan"), "ndcg@10": 0.38}}
    table = report.markdown_table(rows, ["rmse", "ndcg@10", "popularity_percentile"], digits=2)
    lines = table.strip().splitlines()
    assert lines[0] == "| model | rmse | ndcg@10 | popularity_percentile |"
    assert lines[2] == "| mf | 0.95 | 0.30 | 80.00 |"
    assert lines[3] == "| afetler | **0.91** | **0.38** | **60.00** |"   # lower rmse/popularity win
    assert lines[4] == "| pop | n/a | **0.38** | n/a |"                  # ties are all bold


def test_single_row_is_not_bolded():
    assert "**" not in report.markdown_table({"mf": {"mae": 0.7}}, ["mae"])


def test_plots_are_png(tmp_path):
    bars = report.bar_chart(str(tmp_path / "bars.png"), {"a": {"x": 0.2, "y": 0.5}, "b": {"x": 0.3}},
                            ["x", "y"], "Protocol T")
    curve = report.training_curve(str(tmp_path / "curve.png"), {"retrieval": HISTORY})
    for path in (bars, curve):
        assert os.path.getsize(path) > 1000
        assert open(path, "rb").read(8) == PNG_MAGIC
    with pytest.raises(ValueError, match="per-epoch"):
        report.training_curve(str(tmp_path / "none.png"), {"epochs": 3})


def test_write_report(tmp_path):
    config = {"model": "afetler", "data": {"source": "movielens-100k", "split": "random", "seed": 42}}
    path = report.write_report(str(tmp_path), config, METRICS, HISTORY, wall_time_s=12.34)
    text = open(path).read()
    assert path == str(tmp_path / "report.md")
    assert "# afetler_tf run: afetler" in text and "Wall time: 12.3 s." in text
    assert "## Protocol R:" in text and "## Protocol T:" in text
    assert "| afetler | 0.9000 | 0.7500 |" in text and "n/a" in text  # NaN AUC shown as n/a
    assert "Counts: users 3, auc_users 0" in text
    assert "3 epoch(s); final: loss 1.5000, val_loss 2.4000." in text
    assert "Stage wall times" not in text  # a history without stage_seconds
    staged = report.write_report(str(tmp_path / "staged"), config, METRICS,
                                 dict(HISTORY, stage_seconds={"joint": 30.04, "gan": 2.5}), 1.0)
    assert "Stage wall times: joint 30.0 s, gan 2.5 s." in open(staged).read()
    assert '"source": "movielens-100k"' in text
    for image in ("metrics_R.png", "metrics_T.png", "training_curve.png"):
        assert f"]({image})" in text
        assert os.path.getsize(tmp_path / image) > 0
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_write_report_without_metrics_or_history(tmp_path):
    text = open(report.write_report(str(tmp_path), {"model": "mf"}, {}, None, 1.0)).read()
    assert "No evaluation metrics" in text and "## Training" not in text


def test_the_training_curve_has_a_panel_per_stage_with_its_loss_and_validation_figures():
    panels = report.curve_panels({"loss": [3.0, 2.0], "mimic_loss": [0.5, 0.4], "val_ndcg@10": [0.1, 0.2],
                                  "ranking/loss": [0.9], "ranking/val_rating_loss": [0.8],
                                  "ranking/retrieval_loss": [0.0], "gan/d_loss": [1.0, 1.2],
                                  "gan/val_retrieval_loss": [7.0, 7.5], "other/x": [1.0]})
    assert {stage: sorted(shown) for stage, shown in panels.items()} == {
        "training": ["loss", "val_ndcg@10"],  # the mimic term stays in history.json only
        "ranking": ["loss", "val_rating_loss"],  # the untrained retrieval term (0) is left out
        "gan": ["d_loss", "val_retrieval_loss"], "other": ["x"]}  # nothing known: all of it


def test_a_staged_training_curve_names_the_first_stage_and_keeps_the_fits_order(tmp_path):
    history = {"gan/d_loss": [1.0], "loss": [3.0, 2.0], "ranking/loss": [0.9, 0.8],
               "stage_seconds": {"joint": 1.0, "ranking": 0.5, "gan": 0.2}}
    assert list(report.curve_panels(history)) == ["joint", "ranking", "gan"]
    path = report.training_curve(str(tmp_path / "curve.png"), history)
    assert open(path, "rb").read(8) == PNG_MAGIC
