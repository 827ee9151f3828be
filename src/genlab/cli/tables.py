"""Rich tables of metric values with their bootstrap intervals and the real-data floor (`eval`, `compare`, `demo`)."""

from __future__ import annotations

from rich import box
from rich.table import Table

from genlab.evaluation import Report
from genlab.report.ranking import direction, metric_names


def metrics_table(reports: dict[str, Report], *, title: str = "") -> Table:
    """One row per metric (the union over runs), one column per run as ``value [low, high]``, and a
    last column with the real-vs-real floor (of the first run that has one), 4 significant digits."""
    table = Table(title=title or None)
    table.add_column("metric")
    for run in reports:
        table.add_column(run, justify="right")
    table.add_column("real floor", justify="right", style="dim")
    for name in metric_names(list(reports.values())):
        floors = [report.floor[name] for report in reports.values() if name in report.floor]
        table.add_row(f"{name} {direction(name)}", *(_cell(report, name) for report in reports.values()),
                      f"{floors[0]:.4g}" if floors else "–")
    return table


def _cell(report: Report, name: str) -> str:
    if name not in report.metrics:
        return "–"
    value = f"{report.metrics[name]:.4g}"
    if name in report.intervals:
        low, high = report.intervals[name]
        value += f" [{low:.3g}, {high:.3g}]"
    return value


#: The few metrics a terminal summary shows, in this order, where a run has them, with short headers.
HEADLINE = {"modes_captured": "modes", "high_quality": "HQ", "reverse_kl": "KL", "precision": "prec",
            "recall": "rec", "coverage": "cov", "frechet": "FD"}
LEGEND = {"high_quality": "high-quality share", "reverse_kl": "reverse KL", "frechet": "Fréchet distance"}


def ranking_table(reports: dict[str, Report], *, dataset: str) -> Table:
    """One row per run of ``dataset``, in the order given (best first), with the :data:`HEADLINE` values
    and the real-vs-real floor as the last row; it fits 80 columns. The full tables, with intervals and
    every metric, live in the HTML report."""
    names = [name for name in HEADLINE if any(name in report.metrics for report in reports.values())]
    legend = ", ".join(f"{HEADLINE[n]} {LEGEND[n]}" for n in names if n in LEGEND)
    table = Table(title=f"{dataset}: best first", box=box.SIMPLE_HEAD, padding=(0, 1), caption=legend or None)
    table.add_column("run", no_wrap=True)
    for name in names:
        table.add_column(f"{HEADLINE[name]}{direction(name)}", justify="right")
    for run, report in reports.items():
        short = run.removeprefix(f"{dataset}-")
        table.add_row(short, *(f"{report.metrics[n]:.3f}" if n in report.metrics else "–" for n in names))
    floor = next(iter(reports.values())).floor
    table.add_row("real floor", *(f"{floor[n]:.3f}" if n in floor else "–" for n in names), style="dim")
    return table
