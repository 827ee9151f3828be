"""``genlab demo``: the main job on built-in data: fit every family on ring8 and digits and a small
transformer on the ``pystdlib`` code corpus, evaluate, rank, write one HTML report."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from genlab.api import fit as fit_model
from genlab.cli.options import Seed
from genlab.cli.progress import RichProgress
from genlab.cli.tables import HEADLINE, metrics_table, ranking_table
from genlab.data.dataset import Dataset
from genlab.data.registry import load as load_dataset
from genlab.evaluation import evaluate as evaluate_model
from genlab.io import write_json
from genlab.report.html import RunResult, write_html_report
from genlab.report.ranking import by_dataset


@dataclass(frozen=True)
class DemoRun:
    """One model of the demo: a name, its data, its family and its training budget in steps.

    Nothing else: every setting is the family's default for the data (``genlab.defaults``), so what the
    demo shows is what ``genlab fit DATA --family F --steps N`` gives a user. A step budget, unlike a time
    budget, trains the same steps on every machine and under any load, so two demos print the same
    figures (the Trainer's randomness is a function of the seed and the step).

    Attributes:
        steps: optimiser steps (EM fits ignore it).
    """

    name: str
    data: str
    family: str
    steps: int

    @property
    def budget(self) -> dict[str, Any]:
        """The TrainConfig budget fields: ``steps``, and no time limit."""
        return {"steps": self.steps, "max_time": None}


#: What the demo trains. Budgets in steps, sized from each fit's CPU seconds a step on 2 idle cores so that
#: the whole demo, install included, takes about 5 minutes (about 215 CPU seconds of training). The Gaussian
#: on points picks its components by BIC (8 on ring8); EM ignores the budget.
DEMO_RUNS = (
    DemoRun("ring8-gaussian", "ring8", "gaussian", 1),
    DemoRun("ring8-gan", "ring8", "gan", 1800),
    DemoRun("ring8-vae", "ring8", "vae", 1100),
    DemoRun("ring8-diffusion", "ring8", "diffusion", 2000),
    DemoRun("ring8-transformer", "ring8", "transformer", 1000),
    DemoRun("digits-gaussian", "digits", "gaussian", 1),
    DemoRun("digits-gan", "digits", "gan", 800),
    DemoRun("digits-vae", "digits", "vae", 800),
    DemoRun("digits-diffusion", "digits", "diffusion", 400),
    DemoRun("digits-transformer", "digits", "transformer", 220),
    DemoRun("pystdlib-transformer", "pystdlib", "transformer", 400),
)


def _budget(model: Any, run: DemoRun) -> str:
    """What the report says a run trained: its steps, or none for a closed-form or EM fit (no Trainer steps
    in its history)."""
    trained = max((entry.get("step", 0) for entry in model.history_), default=0)
    return f"{trained} steps" if trained else "by EM (no gradient steps)"


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the demo's runs (replaced).")] = Path("runs/demo"),
    seed: Seed = 0,
) -> None:
    """Train every available family on built-in data (and a transformer on Python code), evaluate, write
    OUT/report.html, print a ranked summary."""
    console = Console()
    if out.exists():
        shutil.rmtree(out)  # the demo's own folder: rerunning the demo starts it afresh
    datasets: dict[str, Dataset] = {}
    results: list[RunResult] = []
    for index, run in enumerate(DEMO_RUNS, start=1):
        if run.data not in datasets:
            datasets[run.data] = load_dataset(run.data, seed=seed)
        data = datasets[run.data]
        console.print(f"[bold]{index}/{len(DEMO_RUNS)}[/bold] {run.name}: {run.family} on {data.describe()}")
        started = time.perf_counter()
        with RichProgress(console) as progress:
            model = fit_model(data, family=run.family, train={**run.budget, "seed": seed}, callbacks=[progress])
        seconds = time.perf_counter() - started
        run_dir = out / run.name
        model.save_pretrained(run_dir)
        with console.status("evaluating"):
            report = evaluate_model(model, data, seed=seed)
        write_json(run_dir / "metrics.json", report.to_dict())
        results.append(RunResult(run.name, model, data, report, fit_seconds=seconds,
                                 budget=_budget(model, run)))
        console.print(f"[green]✓[/green] {run.name}: fitted in {seconds:.1f} s, evaluated in "
                      f"{time.perf_counter() - started - seconds:.1f} s")
    # summary.json holds what every demo reproduces; the seconds, which depend on the machine, go beside it
    write_json(out / "summary.json", {result.name: {"data": result.data.name, "family": result.model.family,
                                                    "budget": result.budget, **result.report.to_dict()}
                                      for result in results})
    write_json(out / "timings.json", {result.name: {"fit_seconds": result.fit_seconds} for result in results})
    with console.status("drawing the report"):
        write_html_report(out / "report.html", results, title="genlab demo")
    reports = {result.name: result.report for result in results}
    for dataset, ranked in by_dataset(reports).items():
        group = {name: reports[name] for name in ranked}
        if any(name in HEADLINE for report in group.values() for name in report.metrics):
            console.print(ranking_table(group, dataset=dataset))
        else:   # text has none of the headline metrics of points and images: the full table instead
            console.print(metrics_table(group, title=f"{dataset}: best first"))
    console.print(f"report: [bold]{out / 'report.html'}[/bold]; models and metrics: [bold]{out}/[/bold]")
