"""Bad own-data folders: each case stops with a located error or follows a reported policy."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from afetler_tf.data import load_dataset, make_split
from conftest import load_error, write

HEADER = "user_id,item_id,rating,timestamp\n"
ROWS = "u1,i1,4,100\nu1,i2,3,200\nu2,i1,5,300\n"  # lines 2-4




def pairs(data):
    return list(zip(data.interactions["user_id"], data.interactions["item_id"]))


# --- 1. misspelt or unknown interaction columns ---------------------------------------------

@pytest.mark.parametrize("name", ["ratings", "Rating", "RATING", "rate", "Ratings"])
def test_near_miss_of_rating_is_an_error_not_implicit_data(tmp_path, name):
    write(tmp_path, "interactions.csv", f"user_id,item_id,{name},timestamp\n" + ROWS)
    err = load_error(tmp_path)
    message = str(err)
    assert "interactions.csv" in message and f"column {name!r}" in message
    assert "did you mean 'rating'?" in message and "implicit" in message
    assert (err.line, err.column) == (1, name)


def test_near_miss_of_rating_in_parquet(tmp_path):
    pd.DataFrame({"user_id": ["a"], "item_id": ["b"], "timestamp": [1], "ratings": [4.0]}).to_parquet(
        tmp_path / "interactions.parquet")
    message = str(load_error(tmp_path))
    assert "interactions.parquet" in message and "'ratings'" in message
    assert "did you mean 'rating'?" in message


@pytest.mark.parametrize("header, wrong, right", [
    ("userid,item_id,rating,timestamp", "userid", "user_id"),
    ("user_id,item,rating,timestamp", "item", "item_id"),
    ("user_id,item_id,rating,time", "time", "timestamp"),
])
def test_near_miss_of_a_required_column(tmp_path, header, wrong, right):
    write(tmp_path, "interactions.csv", header + "\n" + ROWS)
    err = load_error(tmp_path)
    message = str(err)
    assert "interactions.csv" in message and f"did you mean {right!r}?" in message
    assert f"found {wrong!r}" in message and err.column == right


def test_unknown_extra_columns_are_reported(tmp_path):
    write(tmp_path, "interactions.csv", "user_id,item_id,rating,timestamp,device,session\n"
                                        "u1,i1,4,100,ios,s1\nu2,i2,3,200,web,s2\n")
    data = load_dataset(str(tmp_path))
    assert data.interactions["rating"].tolist() == [4.0, 3.0]
    assert list(data.interactions.columns) == ["user_id", "item_id", "rating", "timestamp"]
    lines = [line for line in data.report if "unknown column" in line]
    assert len(lines) == 1 and "interactions.csv" in lines[0]
    assert "ignored 2 unknown column(s) ['device', 'session']" in lines[0]


def test_extra_column_like_a_present_known_column_is_only_reported(tmp_path):
    write(tmp_path, "interactions.csv", "user_id,item_id,rating,timestamp,time\nu1,i1,4,100,10:00\n")
    data = load_dataset(str(tmp_path))
    assert any("ignored 1 unknown column(s) ['time']" in line for line in data.report)


def test_unknown_column_without_rating_hints_at_renaming(tmp_path):
    write(tmp_path, "interactions.csv", "user_id,item_id,timestamp,score\nu1,i1,100,4\n")
    data = load_dataset(str(tmp_path))
    assert not data.has_ratings
    line = next(line for line in data.report if "unknown column" in line)
    assert "['score']" in line and "rename it to 'rating'" in line


def test_items_column_in_the_wrong_case_is_an_error(tmp_path):
    write(tmp_path, "interactions.csv", HEADER + ROWS)
    write(tmp_path, "items.csv", "item_id,Categories\ni1,A|B\ni2,C\n")
    err = load_error(tmp_path)
    assert "items.csv" in str(err) and "did you mean 'categories'?" in str(err)
    assert err.column == "Categories"


# --- 2. timestamps outside int64 seconds -------------------------------------------------------

@pytest.mark.parametrize("value", ["1e20", "-1e20", "99999999999999999999", "9.3e18"])
def test_timestamp_outside_int64_is_an_error(tmp_path, value):
    write(tmp_path, "interactions.csv", HEADER + ROWS + f"u2,i2,3,{value}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no numpy cast warning any more
        err = load_error(tmp_path)
    message = str(err)
    assert "interactions.csv, line 5, column 'timestamp'" in message and repr(value) in message
    assert "out of range" in message and "seconds" in message
    assert (err.line, err.column) == (5, "timestamp")


def test_unparsable_date_is_an_error(tmp_path):
    write(tmp_path, "interactions.csv", HEADER + ROWS + "u2,i2,3,2024-13-45\n")
    err = load_error(tmp_path)
    assert "line 5, column 'timestamp'" in str(err) and "unparsable" in str(err)


def test_large_valid_timestamps_still_load(tmp_path):
    write(tmp_path, "interactions.csv", HEADER + "u1,i1,4,1700000000000\nu2,i1,4,-100\n")
    assert load_dataset(str(tmp_path)).interactions["timestamp"].tolist() == [1700000000000, -100]


# --- 3. rows with more fields than the header ---------------------------------------------------

def test_first_row_with_an_extra_field(tmp_path):
    write(tmp_path, "interactions.csv", HEADER + "u1,i1,4,100,x\nu1,i2,3,200\n")
    err = load_error(tmp_path)
    message = str(err)
    assert "interactions.csv, line 2" in message and "5 ','-separated fields" in message
    assert "header has 4" in message and "['x']" in message and "double quotes" in message
    assert err.line == 2


def test_every_row_with_an_extra_field(tmp_path):
    write(tmp_path, "interactions.csv", HEADER + "u1,i1,4,100,x\nu1,i2,3,200,y\n")
    assert load_error(tmp_path).line == 2


def test_later_row_with_an_extra_field(tmp_path):
    write(tmp_path, "interactions.csv", HEADER + ROWS + "u2,i2,3,400,extra\n")
    err = load_error(tmp_path)
    assert "interactions.csv, line 5" in str(err) and err.line == 5


def test_trailing_separator_gets_its_own_hint(tmp_path):
    write(tmp_path, "interactions.csv", HEADER + "u1,i1,4,100,\n")
    message = str(load_error(tmp_path))
    assert "line 2" in message and "Remove the trailing ','" in message


def test_unquoted_categories_in_items(tmp_path):
    write(tmp_path, "interactions.csv", HEADER + ROWS)
    write(tmp_path, "items.csv", "item_id,title,categories\ni1,Lamp,Home\ni2,Film,Action,Comedy\n")
    err = load_error(tmp_path)
    message = str(err)
    assert "items.csv, line 3" in message and "['Comedy']" in message
    assert "double quotes" in message and "'|'" in message and "Action|Comedy" in message
    assert err.line == 3 and err.path.endswith("items.csv")


def test_quoted_or_piped_categories_load(tmp_path):
    write(tmp_path, "interactions.csv", HEADER + ROWS)
    write(tmp_path, "items.csv", 'item_id,title,categories\ni1,"Lamp, big",Action|Comedy\n'
                                 'i2,Film,"Drama,Noir"\n')
    items = load_dataset(str(tmp_path)).items.set_index("item_id")
    assert items.loc["i1", "title"] == "Lamp, big"
    assert items.loc["i1", "categories"] == ["Action", "Comedy"]
    assert items.loc["i2", "categories"] == ["Drama,Noir"]


def test_extra_field_in_users(tmp_path):
    write(tmp_path, "interactions.csv", HEADER + ROWS)
    write(tmp_path, "users.csv", "user_id,country\nu1,TR\nu2,DE,x\n")
    err = load_error(tmp_path)
    assert "users.csv, line 3" in str(err) and "['x']" in str(err) and err.line == 3


def test_quoted_line_break_keeps_line_numbers_right(tmp_path):
    write(tmp_path, "interactions.csv", HEADER + '"u\n1",i1,4,100\nu2,i2,x,5\n')
    err = load_error(tmp_path)
    assert "line 4, column 'rating'" in str(err) and err.line == 4


def test_grouplens_row_with_an_extra_field(tmp_path):
    write(tmp_path, "u.data", "1\t1\t5\t874965758\n1\t2\t3\t876893171\t9\n")
    write(tmp_path, "u.item", "1|A|||||" + "|".join(["0"] * 18) + "\n")
    write(tmp_path, "u.user", "1|24|M|technician|85711\n")
    err = load_error(tmp_path)
    assert "u.data, line 2" in str(err) and err.line == 2


# --- 4. the same (user, item) more than once -----------------------------------------------------

def test_conflicting_duplicates_keep_the_latest(tmp_path):
    write(tmp_path, "interactions.csv", HEADER +
          "u1,i1,4,100\nu2,i1,3,100\nu1,i1,2,300\nu1,i1,5,200\nu1,i1,5,200\nu2,i2,1,50\n")
    data = load_dataset(str(tmp_path))
    inter = data.interactions
    assert pairs(data) == [("u2", "i1"), ("u1", "i1"), ("u2", "i2")]  # file order kept
    assert inter.set_index(["user_id", "item_id"]).loc[("u1", "i1"), "rating"] == 2.0
    assert inter.set_index(["user_id", "item_id"]).loc[("u1", "i1"), "timestamp"] == 300
    assert any("removed 1 exact duplicate" in line for line in data.report)
    line = next(line for line in data.report if "conflicting duplicate" in line)
    assert "dropped 2 conflicting duplicate interaction row(s)" in line
    assert "1 (user_id, item_id) pair(s)" in line and "latest" in line
    assert not inter[["user_id", "item_id"]].duplicated().any()


def test_duplicate_ties_go_to_the_last_row_in_the_file(tmp_path):
    write(tmp_path, "interactions.csv", HEADER + "u1,i1,4,100\nu1,i1,1,100\nu2,i1,3,100\n")
    data = load_dataset(str(tmp_path))
    assert data.interactions["rating"].tolist() == [1.0, 3.0]
    assert any("dropped 1 conflicting duplicate" in line for line in data.report)


def test_repeated_implicit_interactions_keep_the_latest(tmp_path):
    write(tmp_path, "interactions.csv", "user_id,item_id,timestamp\n"
                                        "u1,i1,100\nu1,i1,300\nu1,i1,100\nu1,i1,200\nu2,i1,100\n")
    data = load_dataset(str(tmp_path))
    assert pairs(data) == [("u1", "i1"), ("u2", "i1")]
    assert data.interactions["timestamp"].tolist() == [300, 100]
    assert any("removed 1 exact duplicate" in line for line in data.report)
    assert any("dropped 2 repeated interaction row(s)" in line and "1 (user_id, item_id) pair(s)" in line
               for line in data.report)


def test_no_pair_in_both_train_and_test_after_deduplication(tmp_path):
    rng = np.random.default_rng(0)
    rows = [f"u{rng.integers(5)},i{rng.integers(5)},{rng.integers(1, 6)},{t}" for t in range(200)]
    write(tmp_path, "interactions.csv", HEADER + "\n".join(rows) + "\n")
    data = load_dataset(str(tmp_path))
    assert len(data.interactions) == len(set(pairs(data))) <= 25
    for kind in ("random", "temporal"):
        split = make_split(data, kind=kind, seed=0)
        seen = set(zip(split.train.user_id, split.train.item_id)) | \
            set(zip(split.validation.user_id, split.validation.item_id))
        assert not seen & set(zip(split.test.user_id, split.test.item_id))


# --- 5. implausible ratings without meta.json -------------------------------------------------------

@pytest.mark.parametrize("value", ["1e6", "1e300", "-20000"])
def test_huge_rating_without_meta_json_is_an_error(tmp_path, value):
    write(tmp_path, "interactions.csv", HEADER + ROWS + f"u2,i2,{value},400\n")
    err = load_error(tmp_path)
    message = str(err)
    assert "interactions.csv, line 5, column 'rating'" in message and repr(value) in message
    assert "meta.json" in message and '{"rating_range": [lo, hi]}' in message
    assert (err.line, err.column) == (5, "rating")


def test_rating_span_over_100_without_meta_json_is_an_error(tmp_path):
    write(tmp_path, "interactions.csv", HEADER + "u1,i1,0,1\nu1,i2,3,2\nu2,i1,150,3\n")
    err = load_error(tmp_path)
    assert "line 4, column 'rating'" in str(err) and "span 0 to 150" in str(err)
    assert '{"rating_range": [0, 150]}' in str(err)


@pytest.mark.parametrize("low, high", [(1, 5), (0, 10), (0, 100), (-10, 10), (0.5, 5)])
def test_usual_scales_load_without_meta_json(tmp_path, low, high):
    write(tmp_path, "interactions.csv", HEADER + f"u1,i1,{low},1\nu1,i2,{high},2\n")
    assert load_dataset(str(tmp_path)).rating_range == (float(low), float(high))


def test_meta_json_allows_a_wide_scale(tmp_path):
    write(tmp_path, "interactions.csv", HEADER + "u1,i1,0,1\nu1,i2,1000000,2\n")
    write(tmp_path, "meta.json", json.dumps({"rating_range": [0, 1e6]}))
    data = load_dataset(str(tmp_path))
    assert data.rating_range == (0.0, 1e6) and data.interactions["rating"].max() == 1e6


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_rating_is_an_error(tmp_path, value):
    write(tmp_path, "interactions.csv", HEADER + ROWS + f"u2,i2,{value},400\n")
    err = load_error(tmp_path)
    assert "line 5, column 'rating'" in str(err) and "not a number" in str(err)


def test_meta_json_range_beyond_float32_is_an_error(tmp_path):
    write(tmp_path, "interactions.csv", HEADER + ROWS)
    write(tmp_path, "meta.json", '{"rating_range": [0, 1e300]}')
    message = str(load_error(tmp_path))
    assert "meta.json" in message and "rating_range" in message and "float32" in message


# --- what must keep working -------------------------------------------------------------------------

def test_ids_with_spaces_commas_and_non_ascii(tmp_path):
    write(tmp_path, "interactions.csv", HEADER + 'José Ñ,çay bardağı,4,100\n"Doe, Jane",i 2,3,200\n'
                                                 '東京,çay bardağı,5,300\n')
    write(tmp_path, "users.csv", 'user_id,city\nJosé Ñ,İzmir\n"Doe, Jane",Köln\n東京,東京\n')
    write(tmp_path, "items.csv", "item_id,title,categories\nçay bardağı,Çay,Ev|Mutfak\ni 2,Lamba,Ev\n")
    data = load_dataset(str(tmp_path))
    assert pairs(data) == [("José Ñ", "çay bardağı"), ("Doe, Jane", "i 2"), ("東京", "çay bardağı")]
    assert data.users.set_index("user_id")["city"].to_dict() == {"José Ñ": "İzmir", "Doe, Jane": "Köln",
                                                                 "東京": "東京"}
    assert data.items.set_index("item_id").loc["çay bardağı", "categories"] == ["Ev", "Mutfak"]
    assert [line for line in data.report if "unknown column" in line or "dropped" in line] == []
