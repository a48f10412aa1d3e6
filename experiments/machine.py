"""The machine a suite ran on: one description, recorded in every result file."""

from __future__ import annotations

import os
import platform


def _memory_gib():
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        return None


def machine(**extra) -> dict:
    """Platform, CPUs, memory, GPUs, library versions and the 1-minute load
    average now, plus ``extra`` (e.g. ``load_average_at_start``)."""
    import afetler_tf  # noqa: F401  (Keras-2 set-up before TensorFlow)
    import pandas
    import tensorflow as tf
    import tensorflow_recommenders as tfrs
    gpus = len(tf.config.list_physical_devices("GPU"))
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "memory_gib": _memory_gib(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "tfrs": tfrs.__version__, "pandas": pandas.__version__,
            "gpu": bool(gpus), "gpus": gpus, "load_average": os.getloadavg()[0], **extra}
