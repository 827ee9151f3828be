"""A rich progress bar that follows the Trainer through its callbacks."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from genlab.train import Callback, TrainState


class RichProgress(Callback):
    """Shows step, budget, latest losses and learning rate; silent when the console is quiet."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[losses]}"), console=console, transient=False,
        )
        self._task = None

    def __enter__(self) -> "RichProgress":
        return self

    def __exit__(self, *exc) -> None:
        if self._task is not None:  # the bar appears only for gradient training, not for e.g. EM
            self._progress.stop()

    def on_train_start(self, trainer, state: TrainState) -> None:
        self._progress.start()
        self._task = self._progress.add_task("train", total=state.total_steps, completed=state.step, losses="")

    def on_step_end(self, trainer, state: TrainState) -> None:
        # Only each phase's total fits on one line; the parts are in the run's history.json.
        losses = "  ".join(f"{name} {value:.4g}" for name, value in (state.losses or {}).items() if "/" not in name)
        self._progress.update(self._task, completed=state.step, losses=f"{losses}  lr {state.lr:.2e}")
