"""Runs: a training run end to end, the run folder it writes, and what it holds.

- :mod:`~afetler_tf.runs.folder`: :class:`RunFolder`, the folder's layout, state and lock;
- :mod:`~afetler_tf.runs.training_run`: :func:`run` (data -> split -> fit -> evaluate -> write)
  and :func:`load_run`;
- :mod:`~afetler_tf.runs.stored_data`: the data the run was trained on, stored in the folder;
- :mod:`~afetler_tf.runs.catalogue`: items added after the fit, and the item index;
- :mod:`~afetler_tf.runs.streamed_run`: the streamed fit of logs too large for memory.
"""

from afetler_tf.runs.folder import RunDirError, RunFolder, RunLockedError

__all__ = ["RunDirError", "RunFolder", "RunLockedError"]
