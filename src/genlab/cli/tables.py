"""Rich tables of metric values, shared by `eval` and `demo`."""

from __future__ import annotations

from rich.table import Table

#: Metrics where lower is better; every other metric is better higher.
LOWER_IS_BETTER = frozenset({"reverse_kl", "frechet", "nll"})


def metrics_table(runs: dict[str, dict[str, float]], *, title: str = "") -> Table:
    """One row per metric (the union over runs), one column per run, values to 4 significant digits."""
    names = sorted({name for metrics in runs.values() for name in metrics})
    table = Table(title=title or None)
    table.add_column("metric")
    for run in runs:
        table.add_column(run, justify="right")
    for name in names:
        arrow = "↓" if name in LOWER_IS_BETTER else "↑"
        table.add_row(f"{name} {arrow}", *(f"{m[name]:.4g}" if name in m else "–" for m in runs.values()))
    return table
