"""MovieLens-100k: where to find it, in order (docs/design.md §2).

1. A local copy in the cache dir: a GroupLens folder ``CACHE/ml-100k/`` or
   RecBole files ``CACHE/ml-100k-recbole/ml-100k.{inter,item,user}``.
2. TensorFlow Datasets ``movielens/100k-ratings``: an already prepared copy in
   ``CACHE/tfds``, or a download, but only if ``files.grouplens.org:443``
   answers within 2 s (offline, tfds retries forever).
3. The copy inside the PyPI wheel ``recbole==1.2.1``, fetched with ``pip
   download`` and unpacked into ``CACHE/ml-100k-recbole/`` (then step 1 finds it).
4. Otherwise a DataError that says how to place the files.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import zipfile
from typing import Optional

from afetler_tf.data import grouplens, recbole
from afetler_tf.data.errors import DataError
from afetler_tf.data.schema import Dataset

NAME = "movielens-100k"
GROUPLENS_DIR = "ml-100k"
RECBOLE_DIR = "ml-100k-recbole"
RECBOLE_WHEEL = "recbole==1.2.1"
WHEEL_MEMBER = "recbole/dataset_example/ml-100k/{}"
TFDS_NAME = "movielens/100k-ratings"
TFDS_HOST = ("files.grouplens.org", 443)


def cache_dir(override: Optional[str] = None) -> str:
    """The data cache: ``override``, else ``$AFETLER_DATA``, else ``~/.cache/afetler_tf``."""
    path = override or os.environ.get("AFETLER_DATA") or os.path.join("~", ".cache", "afetler_tf")
    return os.path.abspath(os.path.expanduser(path))


def load(cache: Optional[str] = None, download_timeout: float = 600.0) -> Dataset:
    """Loads MovieLens-100k from the first source that has it (module docstring).

    Args:
        cache: Cache dir (see :func:`cache_dir`).
        download_timeout: Seconds allowed for ``pip download``.

    Returns:
        The Dataset: 100,000 ratings (1-5) of 1,682 movies by 943 users.

    Raises:
        DataError: No source has the data; the message says how to place it.
    """
    root = cache_dir(cache)
    local = _load_local(root)
    if local is not None:
        return local
    problems = []
    data = _load_tfds(root, problems)
    if data is not None:
        return data
    if _fetch_recbole_wheel(root, download_timeout, problems):
        return recbole.load(os.path.join(root, RECBOLE_DIR), name=NAME)
    raise DataError(
        "MovieLens-100k is not available offline and could not be downloaded "
        f"({'; '.join(problems)}). Place it in the cache dir {root} (set AFETLER_DATA or "
        f"cache_dir to use another), either as the GroupLens folder {os.path.join(root, GROUPLENS_DIR)}/ "
        "with u.data, u.item and u.user (from https://files.grouplens.org/datasets/movielens/ml-100k.zip), "
        f"or as {os.path.join(root, RECBOLE_DIR)}/ml-100k.inter, .item and .user (from the wheel "
        f"`pip download --no-deps {RECBOLE_WHEEL}`, folder recbole/dataset_example/ml-100k/).", path=root)


def _load_local(root: str) -> Optional[Dataset]:
    folder = os.path.join(root, GROUPLENS_DIR)
    if grouplens.is_grouplens(folder):
        return grouplens.load(folder, name=NAME)
    folder = os.path.join(root, RECBOLE_DIR)
    if recbole.has_files(folder):
        return recbole.load(folder, name=NAME)
    return None


def host_reachable(host: tuple[str, int] = TFDS_HOST, timeout: float = 2.0) -> bool:
    """Whether a TCP connection to ``host`` opens within ``timeout`` s (DNS included)."""
    result = []

    def connect():
        try:
            socket.create_connection(host, timeout=timeout).close()
            result.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result)


def _load_tfds(root: str, problems: list[str]) -> Optional[Dataset]:
    data_dir = os.path.join(root, "tfds")
    prepared = os.path.isdir(os.path.join(data_dir, *TFDS_NAME.split("/")))
    if not prepared and not host_reachable():
        problems.append(f"TFDS skipped: {TFDS_HOST[0]}:{TFDS_HOST[1]} is unreachable")
        return None
    try:
        from afetler_tf.data import tfds_source
        return tfds_source.load(data_dir, download=not prepared, name=NAME)
    except Exception as e:  # any TFDS failure falls through to the next source
        problems.append(f"TFDS failed: {type(e).__name__}: {e}")
        return None


def _fetch_recbole_wheel(root: str, timeout: float, problems: list[str]) -> bool:
    """Downloads the recbole wheel and unpacks the three ml-100k files into ``root``."""
    print(f"afetler_tf: MovieLens-100k is not cached; downloading the {RECBOLE_WHEEL} wheel "
          f"(about 2 MB, it carries the data set) with pip into {root} ...", file=sys.stderr, flush=True)
    os.makedirs(root, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                   RECBOLE_WHEEL, "-d", tmp]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            problems.append(f"`{' '.join(command[1:])}` failed: {e}")
            return False
        wheels = glob.glob(os.path.join(tmp, "recbole-*.whl"))
        if done.returncode != 0 or not wheels:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel"]
            problems.append(f"`pip download {RECBOLE_WHEEL}` failed: {tail[0]}")
            return False
        try:
            _extract(wheels[0], os.path.join(tmp, "out"))
        except (KeyError, zipfile.BadZipFile) as e:
            problems.append(f"{os.path.basename(wheels[0])} does not hold the ml-100k files: {e}")
            return False
        _move_into_place(os.path.join(tmp, "out"), os.path.join(root, RECBOLE_DIR))
    print(f"afetler_tf: MovieLens-100k cached in {os.path.join(root, RECBOLE_DIR)}",
          file=sys.stderr, flush=True)
    return True


def _extract(wheel: str, out: str) -> None:
    os.makedirs(out)
    with zipfile.ZipFile(wheel) as archive:
        for file in recbole.FILES:
            with archive.open(WHEEL_MEMBER.format(file)) as src, \
                    open(os.path.join(out, file), "wb") as dst:
                shutil.copyfileobj(src, dst)


def _move_into_place(src: str, dst: str) -> None:
    """Renames ``src`` to ``dst`` atomically; a complete ``dst`` already there wins."""
    if os.path.isdir(dst) and not recbole.has_files(dst):
        shutil.rmtree(dst)  # a broken earlier copy
    try:
        os.replace(src, dst)
    except OSError:
        if not recbole.has_files(dst):  # not another process that won the race
            raise
