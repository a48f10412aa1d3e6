"""Data: sources, schema checks, splits and user histories (DESIGN §2)."""

from afetler_tf.data.schema import Dataset, Split

__all__ = ["Dataset", "Split", "load_dataset", "make_split"]


def load_dataset(source="movielens-100k", cache_dir=None):  # replaced by the data module
    raise NotImplementedError


def make_split(data, kind="random", seed=42, test_fraction=0.2, validation_fraction=0.1):
    raise NotImplementedError
