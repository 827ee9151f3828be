"""``genlab demo``: the main job on built-in data: fit every family on ring8 and digits and a small
transformer on the ``pystdlib`` code corpus, evaluate, rank, write one HTML report."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
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
    """One model of the demo: a name, its data, family options and training overrides."""

    name: str
    data: str
    family: str
    options: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)


#: What the demo trains. Budgets are in steps, not seconds, so two demos with one seed give identical
#: numbers; they are sized so the whole demo, install included, takes under 5 minutes on 2 CPU cores.
DEMO_RUNS = (
    DemoRun("ring8-gaussian", "ring8", "gaussian", {"n_components": 1}),
    DemoRun("ring8-gaussian-mixture8", "ring8", "gaussian", {"n_components": 8}),
    # The GAN's default lr (2e-4, DCGAN) needs ~10k steps here; 2e-3 decaying to 1e-5 settles in 2.5k
    # (benchmarks/gan_vae_points.py): at 2,000 steps and the default lr it hit no mode at all.
    DemoRun("ring8-gan", "ring8", "gan", train={"steps": 2500, "lr": 2e-3, "min_lr_ratio": 0.005}),
    DemoRun("ring8-vae", "ring8", "vae", train={"steps": 3000}),
    DemoRun("ring8-diffusion", "ring8", "diffusion", train={"steps": 4000}),
    # Points as two binned coordinates; 64 levels keep a bin centre inside a mode's high-quality radius
    # (tests/test_learning.py measured 97.7 % high-quality samples with this budget).
    DemoRun("ring8-transformer", "ring8", "transformer", {"levels": 64, "n_layer": 2, "n_head": 4, "n_embd": 64},
            train={"steps": 800, "batch_size": 64, "lr": 3e-3}),
    # 8x8 digits have pixels that never vary; reg_covar keeps their variance from collapsing to zero,
    # which would make the held-out likelihood meaningless (measured: K=4 with 1e-6 gives NLL +1.6e4).
    DemoRun("digits-gaussian", "digits", "gaussian", {"n_components": 1, "reg_covar": 1e-3}),
    DemoRun("digits-gaussian-mixture2", "digits", "gaussian", {"n_components": 2, "reg_covar": 1e-2}),
    DemoRun("digits-gan", "digits", "gan", train={"steps": 500}),
    DemoRun("digits-vae", "digits", "vae", train={"steps": 1200}),
    DemoRun("digits-diffusion", "digits", "diffusion", {"channels": (16, 32)}, train={"steps": 1000, "batch_size": 64}),
    # 64 pixels as tokens of 17 levels (lossless for digits) after a class token.
    DemoRun("digits-transformer", "digits", "transformer", {"n_layer": 2, "n_head": 4, "n_embd": 64, "block_size": 72},
            train={"steps": 600, "batch_size": 64, "lr": 3e-3}),
    # Characters, 2 layers of width 64: about 30 s of training on 2 CPU cores (measured: 60-75 ms a step on
    # one loaded core). Far from writing valid functions (benchmarks/transformer_code.py trains for 15
    # minutes); it shows the text report: completions with validity marks, distinct-n, perplexity.
    DemoRun("pystdlib-transformer", "pystdlib", "transformer",
            {"tokenizer": "char", "n_layer": 2, "n_head": 4, "n_embd": 64, "block_size": 64},
            train={"steps": 400, "batch_size": 32, "lr": 3e-3, "warmup_steps": 40}),
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
            model = fit_model(data, family=run.family, train={**run.train, "seed": seed}, callbacks=[progress],
                              **run.options)
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
