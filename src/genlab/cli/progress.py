"""A rich progress bar that follows the Trainer through its callbacks, after a line that states the
budget and, once the first steps are timed, one that estimates how long it takes."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from genlab.train import Callback, TrainState


#: The time-per-step estimate is printed after this many steps or seconds of training, whichever is later.
ESTIMATE_AFTER_STEPS, ESTIMATE_AFTER_SECONDS = 10, 2.0


class RichProgress(Callback):
    """Shows step, budget, latest losses and learning rate; silent when the console is quiet.

    Args:
        console: where to draw.
        budget_note: said after the budget in its line, e.g. where the budget came from.
    """

    def __init__(self, console: Console, budget_note: str = "") -> None:
        self._console, self._budget_note = console, budget_note
        self._progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[losses]}"), console=console, transient=False,
        )
        self._task = None
        self._first: tuple[int, float] | None = None   # (step, elapsed) when training (re)started
        self._estimated = False

    def __enter__(self) -> "RichProgress":
        return self

    def __exit__(self, *exc) -> None:
        if self._task is not None:  # the bar appears only for gradient training, not for e.g. EM
            self._progress.stop()

    def on_train_start(self, trainer, state: TrainState) -> None:
        parts = [f"{state.total_steps} steps"] if state.total_steps is not None else []
        if state.max_time is not None:
            clock = "CPU" if trainer.config.clock == "cpu" else "wall-clock"
            parts.append(f"{state.max_time:g} s of {clock} time")
        note = f" ({self._budget_note})" if self._budget_note else ""
        self._console.print(f"budget: {' or '.join(parts)}, whichever ends first{note}" if len(parts) > 1
                            else f"budget: {parts[0]}{note}")
        self._first = (state.step, state.elapsed)
        self._progress.start()
        self._task = self._progress.add_task("train", total=state.total_steps, completed=state.step, losses="")

    def on_step_end(self, trainer, state: TrainState) -> None:
        # Only each phase's total fits on one line; the parts are in the run's history.json.
        losses = "  ".join(f"{name} {value:.4g}" for name, value in (state.losses or {}).items() if "/" not in name)
        self._progress.update(self._task, completed=state.step, losses=f"{losses}  lr {state.lr:.2e}")
        if not self._estimated:
            self._estimate(state)

    def _estimate(self, state: TrainState) -> None:
        """Print once, after the first steps, the time per step and what it means for the budget."""
        steps, seconds = state.step - self._first[0], state.elapsed - self._first[1]
        if steps < ESTIMATE_AFTER_STEPS or seconds < ESTIMATE_AFTER_SECONDS:
            return
        self._estimated = True
        per_step = seconds / steps
        if state.total_steps is not None:
            left = (state.total_steps - state.step) * per_step
            if state.max_time is not None:
                left = min(left, state.max_time - state.elapsed)
            self._progress.console.print(f"{per_step:.3g} s a step: about {_duration(left)} to go")
        else:
            left_steps = int((state.max_time - state.elapsed) / per_step)
            self._progress.console.print(f"{per_step:.3g} s a step: about {left_steps} more steps in the budget")


def _duration(seconds: float) -> str:
    """``42 s``, ``3.5 min``, ``5.5 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
