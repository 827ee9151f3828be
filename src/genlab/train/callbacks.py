"""Hooks into the training loop, for progress bars, logging and early inspection.

The library never prints: the CLI shows progress by passing a :class:`Callback` to the
:class:`~genlab.train.trainer.Trainer`. Callbacks run on every process under torchrun; one that writes
or prints should check :func:`genlab.train.distributed.is_main_process`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainState:
    """Where training stands, updated by the Trainer after every step.

    Attributes:
        step: training steps completed so far (including those before a resume).
        total_steps: the step budget, or ``None`` for a time budget only.
        elapsed: seconds of training so far (including those before a resume).
        max_time: the time budget in seconds, or ``None``.
        losses: the last step's losses: ``"<phase>"`` (mean over the phase's repeats) and
            ``"<phase>/<part>"`` for each of :attr:`~genlab.train.phase.Losses.parts`.
        lr: the last step's learning rate for the default base rate ``TrainConfig.lr``.
    """

    step: int
    total_steps: int | None
    elapsed: float
    max_time: float | None
    losses: dict[str, float] = field(default_factory=dict)
    lr: float = 0.0


class Callback:
    """Base class of training hooks; every method does nothing unless overridden. Each receives the running
    :class:`~genlab.train.trainer.Trainer` (typed ``Any`` here: the trainer imports this module).

    A callback may raise to stop training (the exception propagates out of ``fit``); the last
    checkpoint written stays resumable.
    """

    def on_train_start(self, trainer: Any, state: TrainState) -> None:
        """Called once before the first step (after a resume has restored ``state.step``)."""

    def on_step_end(self, trainer: Any, state: TrainState) -> None:
        """Called after every training step."""

    def on_eval(self, trainer: Any, state: TrainState, metrics: dict[str, float]) -> None:
        """Called on the main process after each evaluation, with its metrics."""

    def on_train_end(self, trainer: Any, state: TrainState) -> None:
        """Called once when the budget is spent, after the final checkpoint."""
