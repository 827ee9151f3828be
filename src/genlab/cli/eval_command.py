"""``genlab eval DIR --real DATA [--out report.html]``: score a saved model against held-out real records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from genlab.api import load
from genlab.cli.options import DataDir, EvalCount, Overwrite, RealData, Seed, refuse_existing
from genlab.cli.tables import metrics_table
from genlab.data.registry import load as load_dataset
from genlab.evaluate import N_BOOTSTRAP
from genlab.evaluate import evaluate as evaluate_model
from genlab.io import write_json
from genlab.report.html import RunResult, write_html_report

Bootstrap = Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples behind each 95% interval.")]


def evaluate(
    run: Annotated[Path, typer.Argument(help="Run directory written by `genlab fit`.")],
    real: RealData,
    n: EvalCount = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="report.html for an HTML report, else a metrics JSON (default RUN/metrics.json).")] = None,
    seed: Seed = 0,
    bootstrap: Bootstrap = N_BOOTSTRAP,
    overwrite: Overwrite = False,
    data_dir: DataDir = None,
) -> None:
    """Evaluate the model in RUN against the test split of REAL and print the metrics."""
    if out is not None:
        refuse_existing(out, overwrite)
    model = load(run)
    data = load_dataset(real, data_dir=data_dir)
    console = Console()
    with console.status(f"evaluating {run} against {data.name}"):
        report = evaluate_model(model, data, n=n, seed=seed, n_bootstrap=bootstrap)
    console.print(metrics_table({str(run): report}, title=f"{report.n_samples} samples vs {report.n_real} real "
                                f"test records (seed {seed}, 95% bootstrap intervals)"))
    if out is not None and out.suffix.lower() == ".html":
        with console.status(f"drawing the report {out}"):
            write_html_report(out, [RunResult(run.name, model, data, report)], title=f"genlab eval: {run.name}")
        console.print(f"report written to [bold]{out}[/bold]")
        return
    destination = out or run / "metrics.json"
    write_json(destination, report.to_dict())
    console.print(f"metrics written to [bold]{destination}[/bold]")
