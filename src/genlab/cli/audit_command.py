"""``genlab audit RUN --real TEST --sensitive COL [--target COL] --out audit.html``: a bias audit.

Draws ``-n`` rows from the table model in RUN (or through a remedy: ``--balance COL`` equal group
shares, ``--parity TARGET:COL`` equal ``P(target | group)``, ``--fair TARGET:COL`` the target drawn
blind to the group and its proxies at equal rates) and writes a self-contained HTML page: group
shares with intervals, the target's rate per group and its gap, Column Shapes per group, and
downstream fairness (fairlearn's demographic parity and equalized odds differences, FTU, AUROC) of
classifiers trained on the samples and on real rows (see :mod:`genlab.audit`). A summary is printed.
``--parity`` needs a family that conditions on two columns jointly (not the GAN: it would relabel rows
instead of resampling them); it refuses otherwise, naming the families that can.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.console import Console

from genlab.api import load
from genlab.audit import Balance, audit, render_html
from genlab.audit.processors import remedy_from_flags
from genlab.cli.options import Overwrite, Seed, refuse_existing
from genlab.data.table_files import read_table
from genlab.errors import ConfigError
from genlab.io import atomic_path


def audit_run(
    run: Annotated[Path, typer.Argument(help="Run directory of a table model (`genlab fit`).")],
    real: Annotated[Path, typer.Option("--real", help="CSV of real rows the model did not train on.")],
    sensitive: Annotated[str, typer.Option("--sensitive", help="Categorical column defining the groups.")],
    target: Annotated[str | None, typer.Option("--target", help="Binary categorical column to audit.")] = None,
    train: Annotated[Path | None, typer.Option("--train", help="CSV of the training rows (reference).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML report to write.")] = Path("audit.html"),
    n: Annotated[int, typer.Option("-n", "--n", help="Rows to draw.")] = 10_000,
    balance: Annotated[str | None, typer.Option("--balance", help="Remedy: equal shares of this column's groups.")] = None,
    parity: Annotated[str | None, typer.Option("--parity", help="Remedy TARGET:COL: equal P(target | group).")] = None,
    fair: Annotated[str | None, typer.Option(
        "--fair", help="Remedy TARGET:COL: target drawn blind to the group and its proxies, equal rates.")] = None,
    classifier: Annotated[list[str] | None, typer.Option(
        "--classifier", help="Downstream classifier: boosting, mlp (repeatable; default boosting).")] = None,
    runs: Annotated[int, typer.Option("--runs", help="Seeds per downstream classifier.")] = 1,
    seed: Seed = 0,
    overwrite: Overwrite = False,
) -> None:
    """Audit the table model in RUN for bias against real rows and write an HTML report."""
    remedy = remedy_from_flags(balance=balance, parity=parity, fair=fair)   # the processor genlab sample uses
    if isinstance(remedy, Balance) and remedy.column != sensitive:
        raise ConfigError(f"--balance {balance} balances the sensitive column: pass --sensitive {balance}")
    if remedy is not None and not isinstance(remedy, Balance):
        if remedy.column != sensitive or (target is not None and remedy.target != target):
            raise ConfigError(f"--{remedy.name} takes TARGET:COL with COL the sensitive column ({sensitive}) and "
                              f"TARGET the audited target, got {parity or fair!r}")
        target = remedy.target
    if runs < 1:
        raise ConfigError(f"--runs must be at least 1, got {runs}")
    refuse_existing(out, overwrite)
    model = load(run)
    result = audit(model, read_table(real), sensitive=sensitive, target=target,
                   train=None if train is None else read_table(train), n=n,
                   remedy=None if remedy is None else remedy.name,
                   classifiers=tuple(classifier or ("boosting",)), runs=runs,
                   generator=torch.Generator().manual_seed(seed))
    with atomic_path(out) as tmp:
        Path(tmp).write_text(render_html(result), encoding="utf-8")
    console = Console(stderr=True)
    samples = result.representation["samples"]
    console.print("group shares in the samples: " + ", ".join(f"{g} {samples[g].share:.3f}" for g in result.groups))
    if target is not None:
        console.print(f"P({target}={result.positive} | group) gap: samples {result.gaps['samples']:.3f}, "
                      f"real {result.gaps['test']:.3f}")
        for source, by_name in result.downstream.items():
            for name, scores in by_name.items():
                console.print(f"downstream {name} trained on {source}: AUROC {scores['auroc'][0]:.3f}, "
                              f"DP {scores['demographic_parity'][0]:.3f}, EO {scores['equalized_odds'][0]:.3f}, "
                              f"FTU {scores['ftu'][0]:.3f}")
    console.print(f"wrote [bold]{out}[/bold]")
