"""``genlab fit DATA --family F --out DIR``: train a model and save its run directory.

``genlab fit data.csv --target income`` (or ``--modality tables``) models a table; a ``.csv`` file
that is not purely numeric is a table anyway.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from genlab.api import family_class
from genlab.cli.options import (DataDir, ModalityOption, Overwrite, Seed, Target, parse_assignments, parse_duration,
                                refuse_existing)
from genlab.cli.progress import RichProgress
from genlab.config import from_dict, to_dict
from genlab.data.registry import load as load_dataset
from genlab.rules import RulesPlan
from genlab.train import TrainConfig
from genlab.train.distributed import is_main_process, shutdown


def fit(
    data: Annotated[str, typer.Argument(help="A built-in dataset name (see `genlab datasets`) or a path.")],
    family: Annotated[str, typer.Option("--family", "-f", help="Model family.")] = "gaussian",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory (default runs/DATA-FAMILY).")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Training steps.")] = None,
    max_time: Annotated[str | None, typer.Option("--max-time", help="Wall-clock budget, e.g. 90s, 2m.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Records per batch.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Peak learning rate.")] = None,
    checkpoint_every: Annotated[int | None, typer.Option("--checkpoint-every", help="Steps between checkpoints.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu or cuda.")] = None,
    option: Annotated[list[str] | None, typer.Option("--set", "-s", help="Model option key=value (repeatable).")] = None,
    train_option: Annotated[list[str] | None, typer.Option("--train", "-t", help="Training option key=value (repeatable).")] = None,
    seed: Seed = 0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the training checkpointed in --out.")] = False,
    overwrite: Overwrite = False,
    data_dir: DataDir = None,
    target: Target = None,
    modality: ModalityOption = None,
    rules: Annotated[Path | None, typer.Option(
        "--rules", help="JSON rules every sampled table row keeps (see genlab.rules.files); its \"remove\" list "
                        "drops inferred ones.")] = None,
    infer_rules: Annotated[bool, typer.Option(
        "--infer-rules", help="Find rules in the training table (dependencies between categories, orders "
                              "between numbers, ranges), print them, save them in the run and enforce them.")] = False,
) -> None:
    """Train a generative model on DATA and save it to a run directory."""
    model = family_class(family)(**parse_assignments(option, "model option"))
    train = _train_config(model.default_train_config(), steps, max_time, batch_size, lr, checkpoint_every,
                          device, seed, parse_assignments(train_option, "training option"))
    dataset = load_dataset(data, data_dir=data_dir, seed=seed, modality=modality, target=target)
    rules_plan = RulesPlan.read(rules, infer_rules, list(getattr(dataset.x_train, "columns", [])), dataset.modality)
    out = out or Path("runs") / f"{Path(dataset.name).stem}-{family}"
    if not resume:
        refuse_existing(out, overwrite, "pass --overwrite to replace it or --resume to continue its training")
    console = Console(stderr=True, quiet=not is_main_process())
    console.print(f"[bold]genlab fit[/bold] {family} on {dataset.describe()}")
    started = time.perf_counter()
    try:
        with RichProgress(console) as progress:
            model.fit(dataset, train=train, run_dir=out, resume=resume, callbacks=[progress])
        if is_main_process():
            model.rules_ = rules_plan.apply(model, dataset.x_train)
            for rule in model.rules_:
                console.print(f"rule: {rule.describe()}")
            model.save_pretrained(out)
            console.print(f"saved to [bold]{out}[/bold] in {time.perf_counter() - started:.1f} s")
    finally:
        shutdown()


def _train_config(default: TrainConfig, steps, max_time, batch_size, lr, checkpoint_every, device, seed,
                  extra: dict) -> TrainConfig:
    """The family's default TrainConfig with the command line's values on top."""
    values = to_dict(default)
    flags = {"batch_size": batch_size, "lr": lr, "checkpoint_every": checkpoint_every, "device": device}
    values.update({key: value for key, value in flags.items() if value is not None})
    if steps is not None or max_time is not None:  # a budget on the command line replaces the default one
        values["steps"] = steps
        values["max_time"] = None if max_time is None else parse_duration(max_time)
    values["seed"] = seed
    values.update(extra)
    return from_dict(TrainConfig, values, what="training")
