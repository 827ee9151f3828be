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
    """One model of the demo: a name, its data, its family and its training budget.

    Nothing else: every setting is the family's default for the data (``genlab.defaults``), so what the
    demo shows is what ``genlab fit DATA --family F --max-time S`` gives a user.

    Attributes:
        budget: TrainConfig budget fields only: ``steps``, or ``max_time`` with its ``clock``.
    """

    name: str
    data: str
    family: str
    budget: dict[str, Any]


def cpu_seconds(seconds: float) -> dict[str, Any]:
    """A budget of ``seconds`` of this process's CPU clock (both torch threads count)."""
    return {"max_time": seconds, "clock": "cpu"}


#: What the demo trains. Budgets are CPU seconds of the demo's process, sized so that the whole demo,
#: install included, takes under 5 minutes on 2 idle CPU cores; so, unlike a step budget, two demos may
#: differ a little in their figures. The Gaussian on points picks its components by BIC (8 on ring8);
#: EM ignores the budget.
DEMO_RUNS = (
    DemoRun("ring8-gaussian", "ring8", "gaussian", cpu_seconds(10)),
    DemoRun("ring8-gan", "ring8", "gan", cpu_seconds(30)),
    DemoRun("ring8-vae", "ring8", "vae", cpu_seconds(20)),
    DemoRun("ring8-diffusion", "ring8", "diffusion", cpu_seconds(20)),
    DemoRun("ring8-transformer", "ring8", "transformer", cpu_seconds(20)),
    DemoRun("digits-gaussian", "digits", "gaussian", cpu_seconds(10)),
    DemoRun("digits-gan", "digits", "gan", cpu_seconds(20)),
    DemoRun("digits-vae", "digits", "vae", cpu_seconds(20)),
    DemoRun("digits-diffusion", "digits", "diffusion", cpu_seconds(30)),
    DemoRun("digits-transformer", "digits", "transformer", cpu_seconds(20)),
    DemoRun("pystdlib-transformer", "pystdlib", "transformer", cpu_seconds(40)),
)


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
        results.append(RunResult(run.name, model, data, report, fit_seconds=seconds))
        console.print(f"[green]✓[/green] {run.name}: fitted in {seconds:.1f} s, evaluated in "
                      f"{time.perf_counter() - started - seconds:.1f} s")
    write_json(out / "summary.json", {result.name: {"data": result.data.name, "family": result.model.family,
                                                    "fit_seconds": result.fit_seconds, **result.report.to_dict()}
                                      for result in results})
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
