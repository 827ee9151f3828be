"""``genlab fit DATA --family F --out DIR``: train a model and save its run directory.

``genlab fit data.csv --target income`` (or ``--modality tables``) models a table; a ``.csv`` file
that is not purely numeric is a table anyway. Settings the user does not pass are chosen per modality
from the data (``genlab.defaults``) and printed before training; without ``--family`` the family is the
one genlab's benchmarks rank best for the data's modality. The budget is printed with an estimate of
its duration once the first steps are timed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from genlab.api import configure, family_class
from genlab.cli.options import (DataDir, ModalityOption, Overwrite, Seed, Target, parse_assignments, parse_duration,
                                refuse_existing)
from genlab.cli.progress import RichProgress
from genlab.data.registry import load as load_dataset
from genlab.rules import RulesPlan, attach_rules
from genlab.train.distributed import is_main_process, shutdown

FAMILY_HELP = ("Model family (see `genlab fit --help`). Default: the family genlab's benchmarks rank best for "
               "the data's modality: diffusion for points and images, the transformer for text, the Gaussian "
               "copula for tables (diffusion given --max-time of 10 minutes or more).")


def fit(
    data: Annotated[str, typer.Argument(help="A built-in dataset name (see `genlab datasets`) or a path.")],
    family: Annotated[str | None, typer.Option("--family", "-f", help=FAMILY_HELP)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory (default runs/DATA-FAMILY).")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Training steps.")] = None,
    max_time: Annotated[str | None, typer.Option(
        "--max-time", help="Time budget, e.g. 90s, 2m (wall clock; --train clock=cpu counts this process's CPU "
                           "seconds). The learning-rate schedule and warm-ups follow it.")] = None,
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
    """Train a generative model on DATA and save it to a run directory.

    Without --family, the family is chosen for the data's modality (diffusion for points and images,
    transformer for text, Gaussian copula for tables, or diffusion for tables given --max-time >= 10m).
    Every option not given is chosen from the data and printed; any option given wins.
    """
    options = parse_assignments(option, "model option")
    if family is not None:
        family_class(family)(**options)   # a bad family or option fails before the data is read
    user_train = _train_options(steps, max_time, batch_size, lr, checkpoint_every, device, seed,
                                parse_assignments(train_option, "training option"))
    dataset = load_dataset(data, data_dir=data_dir, seed=seed, modality=modality, target=target)
    rules_plan = RulesPlan.read(rules, infer_rules, list(getattr(dataset.x_train, "columns", [])), dataset.modality)
    settings = configure(dataset, family=family, options=options, train=user_train,
                         max_time=user_train.get("max_time"))
    family, train = settings.family, settings.resolved.train
    model = family_class(family)(**settings.resolved.model)
    out = out or Path("runs") / f"{Path(dataset.name).stem}-{family}"
    if not resume:
        refuse_existing(out, overwrite, "pass --overwrite to replace it or --resume to continue its training")
    console = Console(stderr=True, quiet=not is_main_process())
    console.print(f"[bold]genlab fit[/bold] {family} on {dataset.describe()}")
    if settings.family_why:
        console.print(f"family: {family}, chosen for {dataset.modality}: {settings.family_why} (--family overrides)")
    if settings.resolved.chosen:
        console.print(f"settings for {dataset.modality}: {settings.resolved.describe()}")
    started = time.perf_counter()
    try:
        with RichProgress(console, budget_note=_budget_source(user_train)) as progress:
            model.fit(dataset, train=train, run_dir=out, resume=resume, callbacks=[progress])
        if is_main_process():
            for rule in attach_rules(model, rules_plan.apply(model, dataset.x_train)):
                console.print(f"rule: {rule.describe()}")
            model.save_pretrained(out)
            console.print(f"saved to [bold]{out}[/bold] in {time.perf_counter() - started:.1f} s")
    finally:
        shutdown()


def _train_options(steps, max_time, batch_size, lr, checkpoint_every, device, seed, extra: dict) -> dict:
    """The TrainConfig fields the command line sets (a budget given replaces the default one)."""
    flags = {"steps": steps, "max_time": None if max_time is None else parse_duration(max_time),
             "batch_size": batch_size, "lr": lr, "checkpoint_every": checkpoint_every, "device": device}
    return {**{key: value for key, value in flags.items() if value is not None}, "seed": seed, **extra}


def _budget_source(user: dict) -> str:
    """Where the training budget came from, for the line printed before the progress bar."""
    if any(name in user for name in ("steps", "max_time")):
        return "as given"
    return "the family's default; --steps or --max-time to change"
