"""``genlab eval DIR --real DATA [--out report.html]``: score a saved model against held-out real records.

For a model of tables, ``--real test.csv --train train.csv`` compares with every row of ``test.csv``
and measures privacy against ``train.csv``; without ``--train`` the real file's own 80/20 split is used.
DATA is read as the model's modality (a ``.csv`` file of SMILES for a model of molecules, a folder of
MIDI/MusicXML files for a model of chorales), and each modality is scored with its own metrics
(:mod:`genlab.evaluation`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from genlab.api import load
from genlab.cli.options import DataDir, EvalCount, Overwrite, RealData, Seed, refuse_existing
from genlab.data.table_datasets import labelled
from genlab.data.table_files import read_table
from genlab.errors import ConfigError
from genlab.cli.tables import metrics_table
from genlab.data.registry import load as load_dataset
from genlab.evaluation import N_BOOTSTRAP
from genlab.evaluation import evaluate as evaluate_model
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
    train: Annotated[str | None, typer.Option(
        "--train", help="Tables: the training rows (a .csv file); then every row of REAL is a test row.")] = None,
) -> None:
    """Evaluate the model in RUN against the test split of REAL and print the metrics."""
    if out is not None:
        refuse_existing(out, overwrite)
    model = load(run)
    if model.data_.modality == "tables":
        target = model.data_.target
        if train is None:
            data = load_dataset(real, data_dir=data_dir, modality="tables", target=target)
        else:
            rows = [read_table(path, strict=True) for path in (train, real)]
            data = labelled(real, rows[0], rows[1], target)
    else:
        if train is not None:
            raise ConfigError("--train is for models of tables; other data brings its own split")
        # the model's modality says how to read DATA: a .csv of SMILES is no table, a folder of MIDI no images
        data = load_dataset(real, data_dir=data_dir, modality=model.data_.modality)
    console = Console()
    with console.status(f"evaluating {run} against {data.name}"):
        report = evaluate_model(model, data, n=n, seed=seed, n_bootstrap=bootstrap)
    intervals = "95% bootstrap intervals" if report.intervals else "no intervals"
    console.print(metrics_table({str(run): report}, title=f"{report.n_samples} samples vs {report.n_real} real "
                                f"test records (seed {seed}, {intervals})"))
    if out is not None and out.suffix.lower() == ".html":
        with console.status(f"drawing the report {out}"):
            write_html_report(out, [RunResult(run.name, model, data, report)], title=f"genlab eval: {run.name}")
        console.print(f"report written to [bold]{out}[/bold]")
        return
    destination = out or run / "metrics.json"
    write_json(destination, report.to_dict())
    console.print(f"metrics written to [bold]{destination}[/bold]")
