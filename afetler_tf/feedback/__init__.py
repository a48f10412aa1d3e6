"""Feedback loop and marketing (docs/design.md §4 protocol F, §5).

replay (protocol F simulator, rewards and penalties) -> sources (normalised
per-source scores) -> dbgd (source weights by interleaved comparisons) ->
online (reward-weighted fine-tuning) -> learner (the replayed recommender) ->
exposure (RIM-style dual for minimum item exposure) -> userrec (whom to
market an item to). The protocol F replay of all of it on one data set is an
experiment, outside the package: ``python -m experiments feedback``.
"""

from afetler_tf.feedback.config import SOURCES, FeedbackConfig
from afetler_tf.feedback.dbgd import DuelingBanditGD, project_simplex, team_draft
from afetler_tf.feedback.exposure import (check_exposure_feasible, constrained_top_k, fit_duals,
                                          tradeoff_curve)
from afetler_tf.feedback.replay import make_replay, round_feedback, simulate
from afetler_tf.feedback.userrec import evaluate_userrec, users_for_item

__all__ = ["DuelingBanditGD", "FeedbackConfig", "SOURCES", "check_exposure_feasible",
           "constrained_top_k", "evaluate_userrec", "fit_duals", "make_replay", "project_simplex",
           "round_feedback", "simulate", "team_draft", "tradeoff_curve",
           "users_for_item"]

