"""afetler_tf: AFETLER two-tower recommender on TensorFlow Recommenders.

TFRS needs Keras 2. ``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is
first imported, so it is set here before anything else; if ``tf.keras`` still
turns out to be Keras 3 (TensorFlow was imported earlier without it), importing
this package fails with a message that says what to do.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide CUDA-probe noise

import tensorflow as tf  # noqa: E402  (must follow the environment set-up)

if not type(tf.keras.layers.Layer()).__module__.startswith("tf_keras."):
    raise ImportError(
        "afetler_tf needs Keras 2 (tf_keras) but tf.keras is Keras 3. TensorFlow was imported before afetler_tf without "
        "TF_USE_LEGACY_KERAS=1: set `export TF_USE_LEGACY_KERAS=1` in the shell, or "
        "import afetler_tf before tensorflow, and make sure `pip install tf-keras==2.20.*`."
    )

__version__ = "0.1.0"

from afetler_tf.config import Config  # noqa: E402
from afetler_tf.data import DataError, Dataset, Split, load_dataset, make_split  # noqa: E402
from afetler_tf.evaluation import evaluate  # noqa: E402
from afetler_tf.layers import MCAU, AdaptiveFusion  # noqa: E402
from afetler_tf.models import build_model  # noqa: E402
from afetler_tf.runs.training_run import load_run, run  # noqa: E402

__all__ = ["AdaptiveFusion", "Config", "DataError", "Dataset", "MCAU", "Split", "build_model",
           "evaluate", "load_dataset", "load_run", "make_split", "run", "__version__"]
