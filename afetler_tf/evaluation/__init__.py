"""Evaluation: the protocols (R: ratings, T: full-catalogue ranking, C: new items),
their metrics, and the run report (results table and plots). docs/evaluation.md
describes the protocols."""

from afetler_tf.evaluation.protocols import PROTOCOLS, RELEVANT, TopNTask, evaluate, run_topn, topn_task

__all__ = ["PROTOCOLS", "RELEVANT", "TopNTask", "evaluate", "run_topn", "topn_task"]
