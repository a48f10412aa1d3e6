"""Training as explicit stages: a model's fit is an ordered list of :class:`Stage`.

Each stage has a name, its checkpoint folder (``CHECKPOINTS/<name>/`` when the
fit is resumable; ``checkpoints.StageCheckpoint`` keeps its per-epoch state there),
a condition under which it runs, and ``fit(context) -> history``. The
:class:`FitContext` carries what every stage reads (the model, the data, the
split, the training and validation examples, verbosity, the checkpoint
root), so a stage reads the model's public interface and the context, never
another module's private state. :func:`run_stages` runs them in order and
merges their histories, each under its stage's prefix (AFETLER's order is
docs/design.md §3.7's: joint -> item-item channel -> ranking -> NewItemGAN and
the cold-item path -> users' taste).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable, Optional, Sequence


@dataclasses.dataclass
class FitContext:
    """What the stages of one fit share.

    Attributes:
        model: The Recommender being fitted.
        data: The Dataset.
        split: The Split (its validation part drives early stopping).
        train: Training examples (feature dict), built once for every stage.
        validation: Validation examples.
        verbose: Progress output level.
        checkpoint_dir: Root of the stages' checkpoint folders, or None.
        skip: Names of stages not to run in this fit (e.g. a tuning trial
            judged on retrieval alone skips the ranker's later stages).
    """

    model: Any
    data: Any
    split: Any
    train: dict
    validation: dict
    verbose: int = 1
    checkpoint_dir: Optional[str] = None
    skip: frozenset = frozenset()

    def stage_dir(self, name: str) -> Optional[str]:
        """The checkpoint folder of stage ``name`` (None: not resumable)."""
        return os.path.join(self.checkpoint_dir, name) if self.checkpoint_dir else None


def always(context: FitContext) -> bool:
    return True


@dataclasses.dataclass(frozen=True)
class Stage:
    """One step of a fit.

    Attributes:
        name: The stage's name (and its checkpoint folder's).
        fit: ``fit(context) -> history`` (a dict; {} if nothing to record).
        when: Whether the stage runs for this context (config switches, rated data).
        prefix: Prefix of its history keys in the fit's history ("ranking/");
            ``None``: the history is stored whole under the stage's name.
    """

    name: str
    fit: Callable[[FitContext], dict]
    when: Callable[[FitContext], bool] = always
    prefix: Optional[str] = ""


def run_stages(stages: Sequence[Stage], context: FitContext) -> dict:
    """Runs the stages that apply, in order; returns their merged histories,
    with ``stage_seconds``: each stage's wall time (name -> seconds).

    Raises:
        ValueError: ``context.skip`` names a stage that is not in ``stages``.
    """
    unknown = sorted(set(context.skip) - {stage.name for stage in stages})
    if unknown:
        raise ValueError(f"No stage named {unknown} to skip; the stages are "
                         f"{', '.join(stage.name for stage in stages)}.")
    history: dict = {}
    seconds: dict = {}
    for stage in stages:
        if stage.name in context.skip or not stage.when(context):
            continue
        start = time.perf_counter()
        result = stage.fit(context)
        seconds[stage.name] = time.perf_counter() - start
        if stage.prefix is None:
            history[stage.name] = result
        else:
            history.update({f"{stage.prefix}{key}": value for key, value in result.items()})
    history["stage_seconds"] = seconds
    return history
