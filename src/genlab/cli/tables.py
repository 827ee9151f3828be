"""Rich tables of metric values with their bootstrap intervals and the real-data floor (`eval`, `compare`, `demo`)."""

from __future__ import annotations

from rich.table import Table

from genlab.evaluate import Report
from genlab.report.ranking import LOWER_IS_BETTER, metric_names


def metrics_table(reports: dict[str, Report], *, title: str = "") -> Table:
    """One row per metric (the union over runs), one column per run as ``value [low, high]``, and a
    last column with the real-vs-real floor (of the first run that has one), 4 significant digits."""
    table = Table(title=title or None)
    table.add_column("metric")
    for run in reports:
        table.add_column(run, justify="right")
    table.add_column("real floor", justify="right", style="dim")
    for name in metric_names(list(reports.values())):
        arrow = "↓" if name in LOWER_IS_BETTER else "↑"
        floors = [report.floor[name] for report in reports.values() if name in report.floor]
        table.add_row(f"{name} {arrow}", *(_cell(report, name) for report in reports.values()),
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
