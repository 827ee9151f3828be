"""``genlab compare DIR1 DIR2 ... --real DATA [--out report.html]``: rank saved models on the same data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from genlab.api import load
from genlab.cli.eval_command import Bootstrap
from genlab.cli.options import DataDir, EvalCount, Overwrite, RealData, Seed, refuse_existing
from genlab.cli.tables import metrics_table
from genlab.data.registry import load as load_dataset
from genlab.errors import ConfigError
from genlab.evaluation import N_BOOTSTRAP
from genlab.evaluation import evaluate as evaluate_model
from genlab.io import write_json
from genlab.report.html import RunResult, write_html_report
from genlab.report.ranking import rank

#: What --out may end with.
OUT_SUFFIXES = (".html", ".json")


def compare(
    runs: Annotated[list[Path], typer.Argument(help="Run directories written by `genlab fit`.")],
    real: RealData,
    n: EvalCount = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="report.html (HTML report) or .json (metrics).")] = None,
    seed: Seed = 0,
    bootstrap: Bootstrap = N_BOOTSTRAP,
    overwrite: Overwrite = False,
    data_dir: DataDir = None,
) -> None:
    """Evaluate every run in RUNS against the test split of REAL and print them ranked, best first."""
    if out is not None:
        if out.suffix.lower() not in OUT_SUFFIXES:
            raise ConfigError(f"--out must end in {' or '.join(OUT_SUFFIXES)}, got {out.name!r}")
        refuse_existing(out, overwrite)
    if len(set(runs)) != len(runs):
        raise ConfigError("a run directory is listed twice")
    # Label runs by folder name where those are distinct (short table headers), else by full path.
    labels = [run.name for run in runs] if len({run.name for run in runs}) == len(runs) else list(map(str, runs))
    models = {label: load(run) for label, run in zip(labels, runs, strict=True)}  # a broken run fails before any work
    data = load_dataset(real, data_dir=data_dir)
    console = Console()
    results: dict[str, RunResult] = {}
    with Progress(TextColumn("[bold]evaluate"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  console=console, transient=True) as progress:
        task = progress.add_task("", total=len(models))
        for name, model in models.items():
            progress.update(task, description=name)
            report = evaluate_model(model, data, n=n, seed=seed, n_bootstrap=bootstrap)
            results[name] = RunResult(name, model, data, report)
            progress.advance(task)
    ranked = rank({name: result.report for name, result in results.items()})
    console.print(metrics_table({name: results[name].report for name in ranked},
                                title=f"{data.name}: best first (seed {seed}, 95% bootstrap intervals)"))
    if out is None:
        return
    if out.suffix.lower() == ".html":
        write_html_report(out, [results[name] for name in ranked], title=f"genlab compare on {data.name}")
    else:
        write_json(out, {name: results[name].report.to_dict() for name in ranked})
    console.print(f"written to [bold]{out}[/bold]")
