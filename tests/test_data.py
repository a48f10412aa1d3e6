"""Data loading and validation on tiny synthetic files (splits and histories: test_splits.py)."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from afetler_tf.data import DataError, cache_dir, load_dataset
from afetler_tf.data import movielens, tfds_source
from conftest import load_error, write

INTER = "user_id,item_id,rating,timestamp\nu1,i1,4,100\nu1,i2,3,200\nu2,i1,5,2024-05-01T00:00:00Z\n"


# --- generic folder: happy paths --------------------------------------------------------------

def test_generic_folder_gives_canonical_tables(tmp_path):
    write(tmp_path, "interactions.csv", INTER)
    write(tmp_path, "users.csv", "user_id,age,country,zip,score\nu1,31,TR,01234,\n")
    write(tmp_path, "items.csv", "item_id,title,year,categories,price\n"
                                 "i1,Lamp,2020,Home|Light,9.5\ni2,Desk,,Home,120\n")
    data = load_dataset(str(tmp_path))
    inter, users, items = data.interactions, data.users, data.items
    assert list(inter.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert inter["user_id"].dtype == object and inter["item_id"].dtype == object
    assert all(type(v) is str for v in inter["item_id"])
    assert inter["rating"].dtype == np.float64 and inter["timestamp"].dtype == np.int64
    assert inter["timestamp"].tolist() == [100, 200, 1714521600]  # ISO date-time -> seconds
    assert items.set_index("item_id")["categories"].to_dict() == {"i1": ["Home", "Light"], "i2": ["Home"]}
    assert items["category"].tolist() == ["Home", "Home"]
    assert np.isnan(items["year"].iloc[1]) and items["price"].tolist() == [9.5, 120.0]
    assert users.set_index("user_id")["country"].to_dict() == {"u1": "TR", "u2": ""}
    assert users["zip"].iloc[0] == "01234"  # codes with a leading zero stay text
    assert users["age"].iloc[0] == 31 and users["age"].dtype.kind in "if"
    assert any("1 user(s)" in line and "added" in line for line in data.report)
    assert data.rating_range == (3.0, 5.0)  # observed, no meta.json


def test_parquet_and_implicit_feedback(tmp_path):
    frame = pd.DataFrame({"user_id": [1, 2, 2], "item_id": ["a", "b", "a"],
                          "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"])})
    frame.to_parquet(tmp_path / "interactions.parquet")
    data = load_dataset(str(tmp_path))
    assert data.interactions["user_id"].tolist() == ["1", "2", "2"]
    assert data.interactions["rating"].isna().all() and not data.has_ratings
    assert data.rating_range is None
    assert data.interactions["timestamp"].iloc[0] == 1704067200
    assert any("no items file" in line for line in data.report)
    assert any("no users file" in line for line in data.report)


def test_exact_duplicates_are_removed_and_reported(tmp_path):
    write(tmp_path, "interactions.csv", INTER + "u1,i1,4,100\nu1,i1,4,100\n")
    data = load_dataset(str(tmp_path))
    assert len(data.interactions) == 3
    assert any("removed 2 exact duplicate" in line for line in data.report)


def test_blank_lines_are_skipped_and_reported(tmp_path):
    write(tmp_path, "interactions.csv", "user_id,item_id,rating,timestamp\nu1,i1,4,100\n\nu2,i2,x,5\n")
    err = load_error(tmp_path)
    assert "line 4" in str(err)  # line numbers still count the blank line
    write(tmp_path, "interactions.csv", "user_id,item_id,rating,timestamp\nu1,i1,4,100\n\nu2,i2,2,5\n")
    data = load_dataset(str(tmp_path))
    assert len(data.interactions) == 2 and any("1 blank line" in line for line in data.report)


def test_stated_primary_category_goes_first(tmp_path):
    write(tmp_path, "interactions.csv", INTER)
    write(tmp_path, "items.csv", "item_id,categories,category\ni1,A|B,B\ni2,,C\n")
    items = load_dataset(str(tmp_path)).items.set_index("item_id")
    assert items.loc["i1", "categories"] == ["B", "A"] and items.loc["i1", "category"] == "B"
    assert items.loc["i2", "categories"] == ["C"]


# --- generic folder: errors ---------------------------------------------------------------------

def test_misspelt_column_suggests_the_valid_name(tmp_path):
    write(tmp_path, "interactions.csv", "user_id,itme_id,rating,timestamp\nu1,i1,4,100\n")
    err = load_error(tmp_path)
    assert "interactions.csv" in str(err) and "'item_id'" in str(err)
    assert "rename it to 'item_id'" in str(err) and "'itme_id'" in str(err)


def test_missing_column_is_named(tmp_path):
    write(tmp_path, "interactions.csv", "user_id,item_id,rating\nu1,i1,4\n")
    err = load_error(tmp_path)
    assert "missing required column(s) 'timestamp'" in str(err) and err.column == "timestamp"


def test_semicolon_file_gets_a_separator_hint(tmp_path):
    write(tmp_path, "interactions.csv", "user_id;item_id;timestamp\nu1;i1;4\n")
    assert "comma-separated" in str(load_error(tmp_path))


def test_non_numeric_rating(tmp_path):
    write(tmp_path, "interactions.csv", INTER + "u2,i2,great,300\n")
    err = load_error(tmp_path)
    message = str(err)
    assert "interactions.csv, line 5, column 'rating'" in message and "'great'" in message
    assert (err.line, err.column) == (5, "rating")


def test_rating_out_of_declared_range(tmp_path):
    write(tmp_path, "interactions.csv", INTER + "u2,i2,6,300\n")
    write(tmp_path, "meta.json", json.dumps({"rating_range": [1, 5]}))
    message = str(load_error(tmp_path))
    assert "line 5, column 'rating'" in message and "[1, 5]" in message and "meta.json" in message


def test_meta_json_rating_range_is_kept(tmp_path):
    write(tmp_path, "interactions.csv", INTER)
    write(tmp_path, "meta.json", json.dumps({"rating_range": [1, 5]}))
    assert load_dataset(str(tmp_path)).rating_range == (1.0, 5.0)


@pytest.mark.parametrize("meta", ['{"rating_range": [5, 1]}', '{"range": [1, 5]}', "{oops"])
def test_bad_meta_json(tmp_path, meta):
    write(tmp_path, "interactions.csv", INTER)
    write(tmp_path, "meta.json", meta)
    assert "meta.json" in str(load_error(tmp_path))


def test_unparsable_timestamp(tmp_path):
    write(tmp_path, "interactions.csv", INTER + "u2,i2,3,yesterday\n")
    err = load_error(tmp_path)
    assert "line 5, column 'timestamp'" in str(err) and "'yesterday'" in str(err)
    assert "ISO" in str(err)


def test_empty_file(tmp_path):
    write(tmp_path, "interactions.csv", "")
    assert "is empty" in str(load_error(tmp_path))


def test_header_only_file(tmp_path):
    write(tmp_path, "interactions.csv", "user_id,item_id,rating,timestamp\n")
    assert "no rows" in str(load_error(tmp_path))


def test_row_with_too_many_fields(tmp_path):
    write(tmp_path, "interactions.csv", INTER + "u2,i2,3,300,extra\n")
    message = str(load_error(tmp_path))
    assert "interactions.csv" in message and "line 5" in message


def test_duplicate_header(tmp_path):
    write(tmp_path, "interactions.csv", "user_id,item_id,rating,rating,timestamp\nu1,i1,4,4,100\n")
    err = load_error(tmp_path)
    assert "duplicate column name 'rating'" in str(err) and "line 1" in str(err)


def test_unknown_item_when_items_table_is_given(tmp_path):
    write(tmp_path, "interactions.csv", INTER + "u2,i9,3,300\n")
    write(tmp_path, "items.csv", "item_id,title\ni1,Lamp\ni2,Desk\n")
    err = load_error(tmp_path)
    assert "line 5, column 'item_id'" in str(err) and "'i9'" in str(err) and "items.csv" in str(err)


def test_missing_user_id_value(tmp_path):
    write(tmp_path, "interactions.csv", INTER + ",i2,3,300\n")
    err = load_error(tmp_path)
    assert "line 5, column 'user_id'" in str(err) and "missing user_id" in str(err)


def test_duplicate_item_in_items_table(tmp_path):
    write(tmp_path, "interactions.csv", INTER)
    write(tmp_path, "items.csv", "item_id\ni1\ni2\ni1\n")
    assert "line 4" in str(load_error(tmp_path)) and "line 2" in str(load_error(tmp_path))


def test_path_that_does_not_exist(tmp_path):
    err = load_error(tmp_path / "nope")
    assert "nope" in str(err) and "movielens-100k" in str(err)


def test_folder_without_interactions(tmp_path):
    assert "interactions.csv" in str(load_error(tmp_path))


# --- GroupLens layout and the MovieLens resolution order ---------------------------------------

def write_grouplens(folder):
    os.makedirs(folder, exist_ok=True)
    write(folder, "u.data", "1\t1\t5\t874965758\n1\t2\t3\t876893171\n2\t1\t4\t888550871\n")
    flags = ["0"] * 19
    toy, golden = list(flags), list(flags)
    toy[3] = toy[4] = toy[5] = "1"
    golden[1] = "1"
    write(folder, "u.item", "1|Toy Story (1995)|01-Jan-1995||http://x|" + "|".join(toy) + "\n"
                            "2|GoldenEye (1995)||||" + "|".join(golden) + "\n")
    write(folder, "u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n")


def test_grouplens_folder(tmp_path):
    write_grouplens(tmp_path)
    data = load_dataset(str(tmp_path))
    items = data.items.set_index("item_id")
    assert items.loc["1", "title"] == "Toy Story" and items.loc["1", "year"] == 1995
    assert items.loc["1", "categories"] == ["Animation", "Children's", "Comedy"]
    assert items.loc["2", "year"] == 1995  # from the title when the date is missing
    assert data.users["age"].dtype == np.int64 and data.users["zip"].tolist() == ["85711", "94043"]
    assert data.rating_range == (1.0, 5.0)


def test_grouplens_bad_rating(tmp_path):
    write_grouplens(tmp_path)
    write(tmp_path, "u.data", "1\t1\t5\t874965758\n1\t2\t7\t876893171\n")
    message = str(load_error(tmp_path))
    assert "u.data, line 2, column 'rating'" in message and "[1, 5]" in message


def test_movielens_from_cached_grouplens_folder(tmp_path):
    write_grouplens(tmp_path / "ml-100k")
    data = load_dataset("movielens-100k", cache_dir=str(tmp_path))
    assert data.name == "movielens-100k" and len(data.interactions) == 3


def test_movielens_from_cached_recbole_files(tmp_path):
    folder = tmp_path / "ml-100k-recbole"
    folder.mkdir()
    write(folder, "ml-100k.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                   "1\t1\t5\t874965758\n2\t2\t3\t876893171\n")
    write(folder, "ml-100k.item", "item_id:token\tmovie_title:token_seq\t"
                                  "release_year:token\tclass:token_seq\n"
                                  "1\tToy Story\t1995\tAnimation Children's Comedy\n"
                                  "2\tOdd \"quoted\" (1994)\tV\tDrama\n")
    write(folder, "ml-100k.user", "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
                                  "1\t24\tM\ttechnician\t85711\n2\t53\tF\tother\t94043\n")
    data = load_dataset("movielens-100k", cache_dir=str(tmp_path))
    items = data.items.set_index("item_id")
    assert items.loc["1", "categories"] == ["Animation", "Children's", "Comedy"]
    assert items.loc["2", "title"] == 'Odd "quoted"' and items.loc["2", "year"] == 1994
    assert data.users["zip"].tolist() == ["85711", "94043"]


def test_movielens_unavailable_says_how_to_place_files(tmp_path, monkeypatch):
    monkeypatch.setattr(movielens, "host_reachable", lambda *a, **k: False)
    monkeypatch.setattr(movielens, "_fetch_recbole_wheel", lambda root, timeout, problems: False)
    with pytest.raises(DataError) as info:
        load_dataset("movielens-100k", cache_dir=str(tmp_path))
    message = str(info.value)
    assert str(tmp_path / "ml-100k") in message and "ml-100k.inter" in message and "AFETLER_DATA" in message


def test_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("AFETLER_DATA", str(tmp_path))
    assert cache_dir() == str(tmp_path)
    assert cache_dir(str(tmp_path / "x")) == str(tmp_path / "x")
    monkeypatch.delenv("AFETLER_DATA")
    assert cache_dir().endswith(os.path.join(".cache", "afetler_tf"))


def test_tfds_records_are_converted():
    names = ["Action", "Children", "Comedy", "Unknown"]
    records = [
        {"user_id": b"1", "movie_id": b"10", "user_rating": 4.0, "timestamp": 5, "movie_title": b"Toy (1995)",
         "movie_genres": [2, 1], "raw_user_age": 24.0, "user_gender": True,
         "user_occupation_text": b"writer", "user_zip_code": b"0101"},
        {"user_id": b"2", "movie_id": b"10", "user_rating": 2.0, "timestamp": 6, "movie_title": b"Toy (1995)",
         "movie_genres": [2, 1], "raw_user_age": 30.0, "user_gender": False,
         "user_occupation_text": b"other", "user_zip_code": b"0202"},
    ]
    data = tfds_source.from_records(records, names, "movielens-100k")
    assert data.items["categories"].iloc[0] == ["Children's", "Comedy"]
    assert data.items["title"].iloc[0] == "Toy" and data.items["year"].iloc[0] == 1995
    assert data.users["gender"].tolist() == ["M", "F"] and len(data.interactions) == 2
