"""Data: sources, schema checks, splits and user histories (docs/design.md §2).

    data = load_dataset("movielens-100k")          # or a folder path
    split = make_split(data, kind="temporal")
    hist = make_histories(split.train, split.test, max_len=50, temporal=True)
"""

from afetler_tf.data.errors import DataError
from afetler_tf.data.histories import HistoryIndex, make_histories, user_histories
from afetler_tf.data.loading import load_dataset
from afetler_tf.data.movielens import cache_dir
from afetler_tf.data.schema import Dataset, Split
from afetler_tf.data.splits import SPLIT_KINDS, make_split

__all__ = ["DataError", "Dataset", "SPLIT_KINDS", "Split", "cache_dir", "load_dataset",
           "make_histories", "make_split", "user_histories", "HistoryIndex"]
