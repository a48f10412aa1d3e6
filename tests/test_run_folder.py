"""Split "none" for every model, and the run folder as a self-contained artefact."""

import os
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from afetler_tf.config import MODELS, Config
from afetler_tf.data import make_split
from afetler_tf.runs import stored_data as run_data
from afetler_tf.runs.training_run import load_run, run
from conftest import write_shop

SMALL = dict(train={"epochs": 2, "batch_size": 64, "learning_rate": 0.01},
             tower={"embedding_dim": 8, "tower_units": [16, 8], "ranking_units": [16]},
             mf={"epochs": 2}, deepfm={"epochs": 2},
             gan={"epochs": 2, "batch_size": 64, "hidden_units": [16], "embedding_dim": 8})


def small_config(model: str, source: str, split: str = "none") -> Config:
    return Config(model=model).replace(data={"source": source, "split": split}, **SMALL)


@pytest.mark.parametrize("model", MODELS)
def test_every_model_fits_a_none_split_and_reports_validation_scores(model, tiny_data):
    result = run(small_config(model, "synthetic"), data=tiny_data, verbose=0)
    assert result.split.kind == "none" and result.split.test.empty
    assert not result.split.validation.empty  # the carve-out that drives early stopping
    assert set(result.metrics) <= {"R_validation", "T_validation"}
    assert 0.0 <= result.metrics["T_validation"]["ndcg@10"] <= 1.0


def test_a_none_split_early_stops_on_its_validation_ranking(tiny_data):
    config = small_config("afetler", "synthetic").replace(train={"epochs": 3})
    result = run(config, data=tiny_data, verbose=0)
    assert len(result.history["val_ndcg@10"]) == 3  # validation NDCG@10 every epoch


@pytest.fixture(scope="module")
def saved_run(tiny_data, tmp_path_factory):
    """An afetler run trained with a relative --data, whose data folder is then deleted."""
    base = tmp_path_factory.mktemp("self_contained")
    (base / "data").mkdir()
    write_shop(base / "data", tiny_data)
    cwd = os.getcwd()
    os.chdir(base)
    try:
        result = run(small_config("afetler", "data", split="random"), out_dir="run", verbose=0)
    finally:
        os.chdir(cwd)
    users, items = list(result.split.train.user_id.unique()[:5]), list(result.data.items.item_id)
    expected = {"score_all": result.model.score_all(users, items),
                "score": result.model.score(users, items[:5]), "users": users, "items": items,
                "split": result.split}
    shutil.rmtree(base / "data")
    return base / "run", expected


def test_a_run_loads_from_another_directory_after_its_data_was_deleted(saved_run, tmp_path, monkeypatch):
    run_dir, expected = saved_run
    monkeypatch.chdir(tmp_path)
    result = load_run(os.path.relpath(run_dir, tmp_path))
    np.testing.assert_allclose(result.model.score_all(expected["users"], expected["items"]),
                               expected["score_all"], atol=1e-5)
    np.testing.assert_allclose(result.model.score(expected["users"], expected["items"][:5]),
                               expected["score"], atol=1e-5)
    for part in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(getattr(result.split, part), getattr(expected["split"], part))


def test_a_changed_table_in_the_run_folder_is_named(saved_run, tmp_path):
    run_dir, _ = saved_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    items = pd.read_parquet(copy / "data" / "items.parquet")
    items.loc[0, "item_id"] = "renamed"
    items.to_parquet(copy / "data" / "items.parquet", index=False)
    with pytest.raises(ValueError, match=r"items\.parquet does not match the fingerprint"):
        load_run(str(copy))


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_damaged_weights_give_a_clear_error(saved_run, tmp_path, damage):
    run_dir, _ = saved_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    weights = copy / "weights"
    if damage == "deleted":
        shutil.rmtree(weights)
        with pytest.raises(FileNotFoundError, match="weights is missing"):
            load_run(str(copy))
    else:
        data = [p for p in weights.iterdir() if ".data-" in p.name][0]
        data.write_bytes(data.read_bytes()[:100])
        with pytest.raises(ValueError, match="saved weights cannot be read"):
            load_run(str(copy))


def test_weights_of_another_layout_are_refused_by_name(saved_run, tmp_path):
    """Saved weights without values for some of the network's weights (a run of an earlier
    layout) are refused, naming them, instead of leaving those weights at their defaults."""
    import tensorflow as tf
    run_dir, _ = saved_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    net = load_run(str(copy)).model.network
    shutil.rmtree(copy / "weights")
    tf.train.Checkpoint(query_tower=net.query_tower, candidate_tower=net.candidate_tower).write(
        str(copy / "weights" / "weights"))
    with pytest.raises(ValueError, match=r"do not fit this version's network \(no saved value for \d+ "
                                         r"of its weights, e\.g\. \w+.*--overwrite"):
        load_run(str(copy))


def test_history_of_items_the_run_does_not_know_is_refused(saved_run):
    run_dir, expected = saved_run
    model = load_run(str(run_dir)).model
    unknown = pd.DataFrame({"user_id": ["u1"], "item_id": ["not an item"], "rating": [4.0],
                            "timestamp": [2_000_000]})
    with pytest.raises(ValueError, match=r"not in this model's catalogue, e.g. \['not an item'\]"):
        model.add_history(unknown)


def test_a_run_without_stored_data_is_reloaded_from_its_source_with_a_warning(tiny_data, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    write_shop(folder, tiny_data)
    result = run(small_config("mf", str(folder), split="random"), out_dir=str(tmp_path / "run"),
                 verbose=0)
    shutil.rmtree(tmp_path / "run" / run_data.FOLDER)  # as written before runs stored their data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = load_run(str(tmp_path / "run"))
    assert any("predates self-contained runs" in str(w.message) for w in caught)
    np.testing.assert_allclose(again.model.score(["u1"], ["i1"]), result.model.score(["u1"], ["i1"]))


def test_stored_tables_round_trip_exactly(tiny_data, tmp_path):
    split = make_split(tiny_data, "temporal", seed=3)
    run_data.write(str(tmp_path), tiny_data, split)
    data, again = run_data.read(str(tmp_path))
    pd.testing.assert_frame_equal(data.items, tiny_data.items)
    pd.testing.assert_frame_equal(data.users, tiny_data.users)
    assert again.kind == "temporal" and again.seed == 3
    pd.testing.assert_frame_equal(again.train, split.train)
    assert data.rating_range == tiny_data.rating_range


def test_atomic_writes_get_the_modes_of_a_new_file(tmp_path):
    from afetler_tf import files

    old = os.umask(0o022)
    try:
        path = files.write_json(str(tmp_path / "metrics.json"), {"a": 1})
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o644  # mkstemp alone would give 0600
