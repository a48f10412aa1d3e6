"""Interaction logs too large for pandas: sharded files read with tf.data.

A streamed source is a folder with ``items.csv|parquet`` and ``users.csv|parquet``
(catalogue-sized, read with pandas as in :mod:`afetler_tf.data.folder`) and the
interactions in shards ``interactions/*.csv``, ``*.parquet`` or ``*.tfrecord``
(one format), each with ``user_id``, ``item_id``, ``timestamp`` and optional
``rating``. TFRecord shards hold ``tf.train.Example``s with bytes features
``user_id``/``item_id``, float ``rating`` (absent = implicit) and int64 ``timestamp``.

Every record is checked in the graph (field count, empty id, non-numeric or
out-of-range rating, non-integer timestamp) and carries its file and line
(text: line in the file, header = 1; Parquet: row; TFRecord: record, 1-based),
so a bad one is reported where it is. :func:`scan` is the one streaming pass
that builds the vocabularies and counts; with ``skip_bad`` it counts bad
records instead of stopping, and training filters the same records out.
The split is by a seeded hash of (user, item, timestamp): no table needed.

Limits: CSV shards are split on ``,`` without quoting (ids and numbers only).
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import os

import numpy as np
import tensorflow as tf

from afetler_tf.data.errors import DataError

FORMATS = ("csv", "parquet", "tfrecord")
FIELDS = ("user_id", "item_id", "rating", "timestamp")
REASONS = ("", "wrong number of fields", "empty user_id or item_id", "rating is not a number",
           "rating outside the declared range", "timestamp is not an integer")
NUMBER = r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"
CHUNK = 8192  # records parsed together (vectorised string ops)


def shard_files(folder: str) -> tuple[list[str], str]:
    """The interaction shards of ``folder`` and their format.

    Raises:
        DataError: No shards, or shards of several formats.
    """
    found = {fmt: sorted(glob.glob(os.path.join(folder, "interactions", f"*.{fmt}")))
             for fmt in FORMATS}
    formats = [fmt for fmt, files in found.items() if files]
    if len(formats) != 1:
        what = "no shards" if not formats else f"shards of several formats ({formats})"
        raise DataError(f"{folder}/interactions/ holds {what}. Put the interaction log there as "
                        f"*.csv, *.parquet or *.tfrecord shards of one format.", path=folder)
    return found[formats[0]], formats[0]


def _csv_header(path: str) -> list[str]:
    with open(path, encoding="utf-8-sig") as f:
        header = [h.strip() for h in f.readline().rstrip("\n").split(",")]
    missing = [c for c in ("user_id", "item_id", "timestamp") if c not in header]
    if missing:
        raise DataError(f"{path}, line 1: header {header} lacks {missing}. Every shard starts with "
                        f"a header naming user_id, item_id, timestamp[, rating].", path=path, line=1)
    return header


def _csv_records(files: list[str]) -> tf.data.Dataset:
    header = _csv_header(files[0])
    for path in files[1:]:
        if _csv_header(path) != header:
            raise DataError(f"{path}, line 1: header {_csv_header(path)} differs from {files[0]}'s "
                            f"{header}. Give every shard the same header.", path=path, line=1)
    index = {c: header.index(c) for c in FIELDS if c in header}

    def one_file(path):
        lines = tf.data.TextLineDataset(path).skip(1)
        numbers = tf.data.Dataset.range(2, tf.int64.max)
        return tf.data.Dataset.zip((lines, numbers)).batch(CHUNK).map(
            lambda text, line: _split_csv(text, line, path, index, len(header)))
    return tf.data.Dataset.from_tensor_slices(files).interleave(one_file, cycle_length=1)


def _split_csv(text, line, path, index, width):
    parts = tf.strings.split(text, ",")  # (chunk, None) ragged
    fields = parts.to_tensor(default_value="", shape=[None, width])  # (chunk, width)
    wrong = tf.not_equal(parts.row_lengths(), width)
    out = {c: tf.strings.strip(fields[:, i]) for c, i in index.items()}
    out.setdefault("rating", tf.fill(tf.shape(text), ""))
    out.update(line=line, file=tf.fill(tf.shape(text), path), wrong=wrong)
    return out


def _parquet_records(files: list[str]) -> tf.data.Dataset:
    import pyarrow.parquet as pq

    def rows(path):
        path, first = path.decode(), 1
        for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK):
            table = batch.to_pydict()
            n = batch.num_rows
            out = {c: np.array(["" if v is None else str(v) for v in table.get(c, [None] * n)],
                               object) for c in FIELDS}
            out.update(line=np.arange(first, first + n), file=np.full(n, path, object),
                       wrong=np.zeros(n, bool))
            first += n
            yield out
    spec = {c: tf.TensorSpec([None], tf.string) for c in (*FIELDS, "file")}
    spec.update(line=tf.TensorSpec([None], tf.int64), wrong=tf.TensorSpec([None], tf.bool))
    return tf.data.Dataset.from_tensor_slices(files).interleave(
        lambda p: tf.data.Dataset.from_generator(rows, output_signature=spec, args=(p,)),
        cycle_length=1)


def _tfrecord_records(files: list[str]) -> tf.data.Dataset:
    schema = {"user_id": tf.io.FixedLenFeature([], tf.string, ""),
              "item_id": tf.io.FixedLenFeature([], tf.string, ""),
              "rating": tf.io.FixedLenFeature([], tf.float32, float("nan")),
              "timestamp": tf.io.FixedLenFeature([], tf.int64, -1)}

    def one_file(path):
        numbers = tf.data.Dataset.range(1, tf.int64.max)
        return tf.data.Dataset.zip((tf.data.TFRecordDataset(path), numbers)).batch(CHUNK).map(
            lambda raw, line: _tfrecord_fields(tf.io.parse_example(raw, schema), line, path))
    return tf.data.Dataset.from_tensor_slices(files).interleave(one_file, cycle_length=1)


def _tfrecord_fields(parsed, line, path):
    rating = parsed["rating"]
    return {"user_id": parsed["user_id"], "item_id": parsed["item_id"],
            "rating": tf.where(tf.math.is_nan(rating), "", tf.strings.as_string(rating)),
            "timestamp": tf.where(parsed["timestamp"] < 0, "",
                                  tf.strings.as_string(parsed["timestamp"])),
            "line": line, "file": tf.fill(tf.shape(line), path),
            "wrong": tf.zeros(tf.shape(line), tf.bool)}


def records(files: list[str], fmt: str, rating_range=None) -> tf.data.Dataset:
    """Chunks of parsed, checked records (dict of (chunk,) tensors).

    Keys: ``user_id``, ``item_id`` (str), ``rating`` (float32, NaN = none),
    ``file`` (str), ``line`` (int64), ``reason`` (int32 index into REASONS;
    0 = good) and ``bucket`` (int64 in [0, 1000), the split hash).
    """
    reader = {"csv": _csv_records, "parquet": _parquet_records, "tfrecord": _tfrecord_records}[fmt]
    low, high = rating_range or (-np.inf, np.inf)
    return reader(files).map(lambda r: _check(r, float(low), float(high)),
                             num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _check(r, low, high):
    rating_text = r["rating"]
    numeric = tf.strings.regex_full_match(rating_text, NUMBER)
    rating = tf.where(numeric, tf.strings.to_number(tf.where(numeric, rating_text, "0")), np.nan)
    checks = [r["wrong"],
              tf.logical_or(tf.equal(r["user_id"], ""), tf.equal(r["item_id"], "")),
              tf.logical_and(tf.not_equal(rating_text, ""), tf.logical_not(numeric)),
              tf.logical_and(numeric, tf.logical_or(rating < low, rating > high)),
              tf.logical_not(tf.strings.regex_full_match(r["timestamp"], r"[-+]?\d+"))]
    reason = tf.zeros(tf.shape(rating), tf.int32)
    for code in range(len(checks), 0, -1):  # the first failing check names the problem
        reason = tf.where(checks[code - 1], code, reason)
    key = tf.strings.join([r["user_id"], r["item_id"], r["timestamp"]], "\x1f")
    return {"user_id": r["user_id"], "item_id": r["item_id"], "rating": rating, "file": r["file"],
            "line": r["line"], "reason": reason,
            "bucket": tf.strings.to_hash_bucket_fast(key, 1000)}


def bad_record_error(path, line, reason: int, skip_hint: bool = True) -> DataError:
    path = path.decode() if isinstance(path, bytes) else str(path)
    hint = " Fix or remove the record, or pass --skip-bad-records to skip and count bad records." \
        if skip_hint else ""
    return DataError(f"{path}, line {int(line)}: {REASONS[reason]}.{hint}", path=path, line=int(line))


@dataclasses.dataclass
class Scan:
    """What one streaming pass learned (vocabularies come from the training part).

    Attributes:
        records: Records read; bad: bad records (skipped); bad_examples: the first few, located.
        train, validation: Good records of each part of the hash split.
        user_ids: Users of the training part (sorted); item_counts: item -> training count.
        rating_sum, rated: Sum and number of training ratings (mean for the ranking head).
    """

    records: int = 0
    bad: int = 0
    bad_examples: list = dataclasses.field(default_factory=list)
    train: int = 0
    validation: int = 0
    user_ids: list = dataclasses.field(default_factory=list)
    item_counts: dict = dataclasses.field(default_factory=dict)
    rating_sum: float = 0.0
    rated: int = 0


def scan(files: list[str], fmt: str, validation_buckets: int, skip_bad: bool = False,
         rating_range=None) -> Scan:
    """The streaming pass: counts, vocabularies and bad records, chunk by chunk.

    Raises:
        DataError: The first bad record (file, line, problem) unless ``skip_bad``.
    """
    result, users, items = Scan(), set(), collections.Counter()
    for chunk in records(files, fmt, rating_range).prefetch(2).as_numpy_iterator():
        result.records += len(chunk["reason"])
        bad = chunk["reason"] > 0
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            if not skip_bad:
                raise bad_record_error(chunk["file"][first], chunk["line"][first],
                                       int(chunk["reason"][first]))
            result.bad += int(bad.sum())
            for i in np.flatnonzero(bad)[:max(0, 5 - len(result.bad_examples))]:
                result.bad_examples.append(str(bad_record_error(
                    chunk["file"][i], chunk["line"][i], int(chunk["reason"][i]), False)))
        train = ~bad & (chunk["bucket"] >= validation_buckets)
        result.train += int(train.sum())
        result.validation += int((~bad).sum() - train.sum())
        users.update(chunk["user_id"][train].tolist())
        ids, counts = np.unique(chunk["item_id"][train], return_counts=True)
        items.update(dict(zip(ids.tolist(), counts.tolist())))
        ratings = chunk["rating"][train]
        result.rating_sum += float(np.nansum(ratings))
        result.rated += int(np.isfinite(ratings).sum())
    result.user_ids = sorted(u.decode() for u in users)
    result.item_counts = {i.decode(): int(c) for i, c in sorted(items.items())}
    return result
