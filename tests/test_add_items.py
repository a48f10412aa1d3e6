"""``python -m afetler_tf.add_items`` end to end on a tiny run written to disk."""

import os

import numpy as np
import pandas as pd
import pytest

from afetler_tf import add_items
from afetler_tf.config import Config
from afetler_tf.runs import catalogue
from afetler_tf.runs.training_run import load_run, run


def write_folder(data, folder):
    """The synthetic Dataset as a generic CSV folder (what a shop would provide)."""
    os.makedirs(folder)
    data.interactions.to_csv(os.path.join(folder, "interactions.csv"), index=False)
    data.users.to_csv(os.path.join(folder, "users.csv"), index=False)
    items = data.items.drop(columns=["category"]).assign(categories=data.items.categories.map("|".join))
    items.to_csv(os.path.join(folder, "items.csv"), index=False)


@pytest.fixture(scope="module")
def run_dir(tiny_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("add_items")
    write_folder(tiny_data, str(base / "data"))
    config = Config(model="afetler").replace(
        data={"source": str(base / "data")},
        train={"epochs": 2, "batch_size": 64, "learning_rate": 0.01},
        tower={"embedding_dim": 8, "tower_units": [16, 8], "ranking_units": [16]},
        gan={"enabled": True, "epochs": 3, "batch_size": 64, "hidden_units": [16], "embedding_dim": 8})
    run(config, out_dir=str(base / "run"), verbose=0)
    return str(base / "run")


def write_items(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def test_a_fit_run_has_an_index_of_its_catalogue(run_dir, tiny_data):
    index = catalogue.read_index(run_dir)
    assert len(index["item_ids"]) == len(tiny_data.items) and not index["generated"].any()
    width = 8 + load_run(run_dir).model.network.item_item.rank + 1  # [p_v ‖ v_v ‖ pi_v] (item-item channel)
    assert index["vectors"].shape == (len(tiny_data.items), width) and np.isfinite(index["vectors"]).all()


def test_add_items_stores_them_and_rebuilds_the_index(run_dir, tiny_data, tmp_path, capsys):
    path = write_items(tmp_path / "new.csv", "item_id,title,year,categories\n"
                       "n1,movie comedy new,1990,Comedy\nn2,,,Horror|Drama\n")
    assert add_items.main(["--run", run_dir, "--items", path]) == 0
    assert "added 2 item(s)" in capsys.readouterr().out
    result = load_run(run_dir)
    assert {"n1", "n2"} <= set(result.data.items.item_id)
    index = catalogue.read_index(run_dir)
    rows = np.isin(index["item_ids"], ["n1", "n2"])
    assert rows.sum() == 2 and index["generated"][rows].all() and np.isfinite(index["vectors"]).all()
    np.testing.assert_allclose(index["vectors"][rows], result.model.item_vectors(["n1", "n2"]), atol=1e-5)
    # A second file adds to the first; the catalogue keeps both.
    path = write_items(tmp_path / "more.csv", "item_id,categories\nn3,Action\n")
    assert add_items.main(["--run", run_dir, "--items", path]) == 0
    assert {"n1", "n2", "n3"} <= set(load_run(run_dir).data.items.item_id)
    assert len(catalogue.read_index(run_dir)["item_ids"]) == len(tiny_data.items) + 3


@pytest.mark.parametrize("text, where", [
    ("item_id,categories\nz1,Comedy\nz2,\n", "line 3, column 'categories'"),  # no content at all
    ("item_id,categories\nz1,Nonsense\n", "line 2, column 'categories'"),  # only unknown content
    ("item_id,categories\ni0,Comedy\n", "line 2, column 'item_id'"),  # already in the catalogue
    ("item_id,year\nz1,soon\n", "line 2, column 'year'"),  # not a number
    ("id,categories\nz1,Comedy\n", "missing required column(s) 'item_id'"),
])
def test_bad_items_files_get_clear_errors(run_dir, tmp_path, capsys, text, where):
    before = catalogue.read_index(run_dir)["item_ids"]
    path = write_items(tmp_path / "bad.csv", text)
    assert add_items.main(["--run", run_dir, "--items", path]) == 2
    err = capsys.readouterr().err
    assert where in err and "bad.csv" in err
    np.testing.assert_array_equal(catalogue.read_index(run_dir)["item_ids"], before)  # untouched


def test_a_run_that_is_not_a_run_is_refused(tmp_path, capsys):
    path = write_items(tmp_path / "new.csv", "item_id,categories\nz1,Comedy\n")
    assert add_items.main(["--run", str(tmp_path), "--items", path]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_added_items_round_trip(tmp_path):
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["x", ""], "year": [1999.0, np.nan],
                          "categories": [["A", "B"], []], "category": ["A", ""]})
    catalogue.write_added(str(tmp_path), items)
    back = catalogue.read_added(str(tmp_path))
    assert back.item_id.tolist() == ["a", "b"] and back.categories.tolist() == [["A", "B"], []]
    assert back.category.tolist() == ["A", ""] and np.isnan(back.year.iat[1])
