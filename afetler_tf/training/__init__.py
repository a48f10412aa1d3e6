"""Training: examples and their batches, the fit loop, validation, stages, checkpoints.

Modules, in the order a fit uses them:

- :mod:`~afetler_tf.training.examples`: feature dicts of (user, item) pairs,
  their log-Q sampling probabilities and ``tf.data`` batches;
- :mod:`~afetler_tf.training.loop`: ``model.fit`` with early stopping, resumable;
- :mod:`~afetler_tf.training.validation`: protocol T on the validation carve-out;
- :mod:`~afetler_tf.training.stages`: a model's fit as an ordered list of stages;
- :mod:`~afetler_tf.training.checkpoints`: per-epoch state of a stage;
- :mod:`~afetler_tf.training.compiled`: batched calls and compiled encoders;
- :mod:`~afetler_tf.training.optimizers`, :mod:`~afetler_tf.training.distribute`.

The names the models use are importable from here.
"""

from afetler_tf.training.compiled import Compiled, batched, predict_batched, signature_of, with_autograph
from afetler_tf.training.examples import as_strings, make_dataset, pair_examples, ratings, sampling_probabilities
from afetler_tf.training.loop import (SMALL_MODEL_STEPS_PER_EXECUTION, EpochLog, collector_skips_what_exists,
                                     create_optimizer_slots, fit_model, fit_with_early_stopping, set_seed)
from afetler_tf.training.validation import ValidationNdcg, ValidationRanking, validation_ndcg, validation_split

__all__ = ["SMALL_MODEL_STEPS_PER_EXECUTION", "Compiled", "EpochLog", "ValidationNdcg", "ValidationRanking",
           "as_strings", "batched", "collector_skips_what_exists", "create_optimizer_slots",
           "fit_model", "fit_with_early_stopping", "make_dataset", "pair_examples", "predict_batched", "ratings",
           "sampling_probabilities", "set_seed", "signature_of", "validation_ndcg", "validation_split",
           "with_autograph"]
