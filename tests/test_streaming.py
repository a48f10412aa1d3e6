"""Streamed input: sharded readers, the scan pass, bad records, fit --stream."""

import json
import os

import pandas as pd
import pytest

from afetler_tf import fit
from afetler_tf.data import streaming, synthetic
from afetler_tf.data.errors import DataError

TINY = ["--epochs", "1", "--set", "train.batch_size=128", "--set", "tower.embedding_dim=8",
        "--set", "tower.tower_units=[16,8]", "--set", "tower.ranking_units=[16]"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """The same 3000-record synthetic log in each shard format."""
    root = tmp_path_factory.mktemp("logs")
    for fmt in streaming.FORMATS:
        synthetic.generate(str(root / fmt), 3000, 300, 100, categories=5, shards=3, fmt=fmt)
    return root


@pytest.mark.parametrize("fmt", streaming.FORMATS)
def test_every_format_scans_to_the_same_vocabularies(shards, fmt):
    files, found = streaming.shard_files(str(shards / fmt))
    assert found == fmt and len(files) == 3
    scan = streaming.scan(files, fmt, validation_buckets=100)
    reference = streaming.scan(*streaming.shard_files(str(shards / "csv")), 100)
    assert scan.records == 3000 and scan.bad == 0 and scan.train + scan.validation == 3000
    assert 0.05 < scan.validation / 3000 < 0.15  # a 10% hash split
    assert scan.item_counts == reference.item_counts and scan.user_ids == reference.user_ids
    frame = pd.concat(pd.read_csv(f) for f in streaming.shard_files(str(shards / "csv"))[0])
    assert scan.rating_sum == pytest.approx(frame["rating"].sum() * scan.rated / 3000, rel=0.1)


def _bad_log(tmp_path, line_text):
    folder = tmp_path / "bad"
    synthetic.generate(str(folder), 600, 50, 30, categories=5, shards=2)
    path = folder / "interactions" / "part-00001.csv"
    lines = path.read_text().splitlines()
    lines[4] = line_text  # line 5 of the file (header = line 1)
    path.write_text("\n".join(lines) + "\n")
    return folder, str(path)


@pytest.mark.parametrize("line_text, problem", [
    ("u1,i2,abc,1600000000", "rating is not a number"),
    ("u1,i2,5.0", "wrong number of fields"),
    (",i2,5.0,1600000000", "empty user_id or item_id"),
    ("u1,i2,5.0,yesterday", "timestamp is not an integer"),
])
def test_a_bad_record_is_reported_with_file_and_line(tmp_path, line_text, problem):
    folder, path = _bad_log(tmp_path, line_text)
    files, fmt = streaming.shard_files(str(folder))
    with pytest.raises(DataError, match=f"part-00001.csv, line 5: {problem}.*--skip-bad-records"):
        streaming.scan(files, fmt, 100)
    scan = streaming.scan(files, fmt, 100, skip_bad=True)
    assert scan.bad == 1 and scan.records == 600
    assert scan.bad_examples == [f"{path}, line 5: {problem}."]


def test_rating_outside_the_declared_range(tmp_path):
    folder, _ = _bad_log(tmp_path, "u1,i2,9,1600000000")
    files, fmt = streaming.shard_files(str(folder))
    with pytest.raises(DataError, match="line 5: rating outside the declared range"):
        streaming.scan(files, fmt, 100, rating_range=(1.0, 5.0))


def test_fit_stream_trains_stops_on_bad_records_or_skips_them(tmp_path, capsys):
    folder, path = _bad_log(tmp_path, "u1,i2,abc,1600000000")
    args = ["--stream", "--data", str(folder), *TINY, "--quiet"]
    assert fit.main([*args, "--out", str(tmp_path / "stop")]) == 2
    assert f"{path}, line 5: rating is not a number" in capsys.readouterr().err
    out = tmp_path / "skip"
    assert fit.main([*args, "--out", str(out), "--skip-bad-records"]) == 0
    assert "(1 bad skipped)" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())["stream"]
    assert metrics["total_loss"] > 0 and metrics["rating_loss"] > 0
    assert json.loads((out / "scan.json").read_text())["bad"] == 1
    assert os.path.exists(out / "vocab" / "items.tsv")
    assert json.loads((out / "run_state.json").read_text())["status"] == "finished"


def test_no_shards_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="interactions/ holds no shards"):
        streaming.shard_files(str(tmp_path))


def test_fit_stream_rejects_other_models(tmp_path, capsys):
    assert fit.main(["--stream", "--model", "mf", "--data", str(tmp_path), "--out",
                     str(tmp_path / "run")]) == 2
    assert "--stream trains the AFETLER network" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # a failed start leaves no run behind


def test_fit_stream_with_lazy_adam(shards, tmp_path):
    out = tmp_path / "lazy"
    assert fit.main(["--stream", "--data", str(shards / "csv"), *TINY, "--set", "train.optimizer=lazy_adam",
                     "--quiet", "--out", str(out)]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["train"]["optimizer"] == "lazy_adam"
    assert saved["afetler"]["negatives"] == "batch"  # the run trained with the in-batch softmax
    metrics = json.loads((out / "metrics.json").read_text())["stream"]
    assert 0 < metrics["total_loss"] < float("inf")


def test_the_streamed_path_uses_the_in_batch_softmax():
    """Large catalogues: never every item through the item tower each step (a
    streamed run's saved config is checked in test_fit_stream_with_lazy_adam)."""
    from afetler_tf.config import Config
    from afetler_tf.presets import STREAMED as STREAM_COMPONENTS
    assert Config().afetler.negatives == "catalogue"
    assert Config().replace(afetler=STREAM_COMPONENTS).afetler.negatives == "batch"
