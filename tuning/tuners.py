"""KerasTuner tuners for AFETLER: random search, Bayesian optimisation, Hyperband.

KerasTuner's own trial loop rejects tf_keras models when Keras 3 is
installed (docs/design.md §1), so every tuner here overrides ``run_trial``: it turns
the trial's hyperparameters into a Config (:mod:`tuning.space`), trains and
scores it on the validation split (:mod:`tuning.objective`) and returns the
metrics; KerasTuner records them, picks the next trial and saves its state
after every trial, so a search started again in the same directory resumes.
``get_best_models()`` is not supported: retrain the best configuration
(``search.best_config``) instead.

Example:
    >>> tuner = make_tuner("random", space, "ndcg", max_trials=8, directory="runs/tune")
    >>> tuner.search(data, tuning_split(data, split))
"""

from __future__ import annotations

import time
from typing import Callable, Optional

import keras_tuner as kt

from afetler_tf.data import Dataset, Split
from tuning import objective as objectives
from tuning.space import SearchSpace

PROJECT = "keras_tuner"  # KerasTuner's state: DIR/keras_tuner/{oracle.json, trial_*/trial.json}


class AfetlerTrials:
    """The ``run_trial`` shared by the AFETLER tuners (mixed in before a kt tuner).

    Args:
        space: The search space (its base values are the defaults).
        objective_name: One of ``objective.OBJECTIVES``.
        rmse_weight: w of the combined objective.
        relevant: Protocol T relevance.
        on_trial_done: Called with the tuner after each trial (e.g. to write
            the trials table).
        verbose: 1 prints a line per trial start and end; 0 is silent.
        **kwargs: For the KerasTuner class (max_trials, seed, directory, ...).
    """

    starts_from_base = True  # first trial evaluates the base config (not Hyperband)

    def __init__(self, space: SearchSpace, objective_name: str = "ndcg", rmse_weight: float = 1.0,
                 relevant: str = "all", on_trial_done: Optional[Callable] = None, verbose: int = 1,
                 **kwargs):
        self.space = space
        self.objective_name = objective_name
        self.rmse_weight = rmse_weight
        self.relevant = relevant
        self.trials_run: list[str] = []  # trial ids run by this process
        self._on_trial_done = on_trial_done
        self._verbose = verbose
        self._started = self._trial_started = time.perf_counter()
        kwargs.setdefault("project_name", PROJECT)
        super().__init__(hypermodel=None, objective=objectives.objective(objective_name),
                         hyperparameters=space.hyperparameters(), tune_new_entries=False,
                         allow_new_entries=False, **kwargs)
        self.oracle.verbose = 0  # our own progress lines replace KerasTuner's tables
        if self.starts_from_base:
            _first_trial_from(self.oracle, space.hyperparameters().values)

    def run_trial(self, trial, data: Dataset, trial_split: Split, *args, **kwargs) -> dict:
        """Builds the trial's config, fits it and returns the validation metrics.

        Hyperband's budget ``tuner/epochs`` sets ``train.epochs``; the model is
        retrained from scratch for it (``tuner/initial_epoch`` is not resumed).
        """
        self.trials_run.append(trial.trial_id)
        config = self.trial_config(trial.hyperparameters.values)
        return objectives.run_config(config, data, trial_split, self.rmse_weight, self.relevant,
                                     objective_name=self.objective_name)

    def trial_config(self, values: dict):
        """The Config a trial with these hyperparameter values trains."""
        config = self.space.config(values)
        if "tuner/epochs" in values:
            config = config.replace(train={"epochs": int(values["tuner/epochs"])})
        return config

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        self._trial_started = time.perf_counter()
        if self._verbose:
            values = {k: _short(v) for k, v in trial.hyperparameters.values.items()}
            print(f"\n{self._position(trial)} starts: {values}", flush=True)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)  # records the result and saves the search state
        if self._verbose:
            print(self._summary(self.oracle.get_trial(trial.trial_id)), flush=True)
        if self._on_trial_done:
            self._on_trial_done(self)

    def _position(self, trial) -> str:
        n = self.oracle.start_order.index(trial.trial_id) + 1
        total = self.oracle.max_trials or "?"
        return f"trial {n}/{total} (id {trial.trial_id})"

    def _summary(self, trial) -> str:
        elapsed = time.perf_counter() - self._trial_started
        timing = f"{elapsed:.0f}s, search {(time.perf_counter() - self._started) / 60:.1f} min"
        name = self.oracle.objective.name
        if trial.status != "COMPLETED":
            reason = (trial.message or "").strip().splitlines()[-1:] or [""]
            return f"{self._position(trial)} {trial.status} ({timing}): {reason[0]}"
        best = self.oracle.get_best_trials(1)[0]
        return (f"{self._position(trial)} done: {name} {trial.score:.4f} "
                f"(best {best.score:.4f}, trial {best.trial_id}) in {timing}")


def _short(value):
    return round(value, 5) if isinstance(value, float) else value


def _first_trial_from(oracle: kt.Oracle, values: dict) -> None:
    """Makes the oracle's first trial (of a fresh search) evaluate ``values``.

    KerasTuner has no "enqueue a trial" call; wrapping this oracle's
    ``populate_space`` is the least intrusive way to have the base
    configuration scored, so the search can only improve on it. Its values
    are recorded like any other trial's, so they are not drawn again.
    """
    populate = oracle.populate_space

    def populate_space(trial_id):
        if not oracle.trials:
            return {"status": "RUNNING", "values": dict(values)}
        return populate(trial_id)

    oracle.populate_space = populate_space


class AfetlerRandomSearch(AfetlerTrials, kt.RandomSearch):
    """Random search over the AFETLER space (first trial: the base config)."""


class AfetlerBayesianOptimization(AfetlerTrials, kt.BayesianOptimization):
    """Gaussian-process Bayesian optimisation over the AFETLER space.

    The first ``num_initial_points`` trials (the base config, then random
    ones) seed the Gaussian process.
    """


class AfetlerHyperband(AfetlerTrials, kt.Hyperband):
    """Hyperband with the number of epochs as the budget (``max_epochs``).

    ``epochs`` is not a searched hyperparameter here: each trial trains for
    its bracket's ``tuner/epochs`` (from scratch; early stopping still
    applies). ``max_trials`` caps the total number of trials.
    """

    starts_from_base = False  # a Hyperband trial needs its bracket's budget

    def __init__(self, *args, max_trials: Optional[int] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.oracle.max_trials = max_trials  # not a HyperbandOracle argument; Oracle honours it


TUNERS = {"random": AfetlerRandomSearch, "bayesian": AfetlerBayesianOptimization,
          "hyperband": AfetlerHyperband}


def make_tuner(kind: str, space: SearchSpace, objective_name: str, max_trials: int, directory: str,
               seed: int = 42, overwrite: bool = False, num_initial_points: Optional[int] = None,
               **kwargs) -> AfetlerTrials:
    """Creates (or, with ``overwrite=False``, reloads) a tuner in ``directory``.

    Args:
        kind: "random", "bayesian" or "hyperband".
        space: The search space (built with ``tune_epochs=False`` for Hyperband).
        objective_name: One of ``objective.OBJECTIVES``.
        max_trials: Total trials of the search, finished ones included.
        directory: Search directory; KerasTuner's state goes to ``directory/keras_tuner``.
        seed: Seed of the oracle's random draws.
        overwrite: Start afresh instead of resuming.
        num_initial_points: Bayesian only: random trials before the Gaussian
            process is used (KerasTuner's default: 3 per hyperparameter).
        **kwargs: For :class:`AfetlerTrials` (rmse_weight, relevant, verbose, ...).

    Raises:
        ValueError: Unknown kind or objective, or a bad ``max_trials``.
    """
    if kind not in TUNERS:
        raise ValueError(f"Unknown tuner {kind!r}; valid: {', '.join(TUNERS)}.")
    objectives.objective(objective_name)
    if int(max_trials) < 1:
        raise ValueError(f"max_trials must be >= 1, got {max_trials}.")
    kwargs.update(max_trials=int(max_trials), seed=seed, directory=directory, overwrite=overwrite)
    if kind == "bayesian" and num_initial_points:
        kwargs["num_initial_points"] = int(num_initial_points)
    if kind == "hyperband":
        kwargs.update(max_epochs=space.epochs_cap or space.base.train.epochs, factor=3)
    return TUNERS[kind](space, objective_name, **kwargs)
