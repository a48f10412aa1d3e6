"""KerasTuner searches over AFETLER's hyperparameters (docs/design.md §6).

``python -m tuning.search --tuner bayesian --max-trials 8 --out runs/tune``
searches, resumes an interrupted search in the same ``--out``, and writes
``best_config.json`` for ``python -m afetler_tf.fit --config``.

Modules, in the order a search uses them: :mod:`tuning.space` (the search
space and hyperparameters -> Config), :mod:`tuning.objective` (one trial: fit
on the training part, score on the validation split), :mod:`tuning.tuners`
(the KerasTuner subclasses), :mod:`tuning.search` (API and CLI),
:mod:`tuning.report` (trials table). Default vs tuned on the test set,
once, after a search, is an experiment outside the package (``python -m
experiments tuning_compare``), as are the named variants (``python -m experiments
variants``).
"""

import afetler_tf  # noqa: F401  (Keras-2 set-up before keras_tuner imports TensorFlow)
