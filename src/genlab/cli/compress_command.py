"""``genlab compress RUN --out RUN2``: prune and/or quantise a run into a new, ordinary run directory.

``--quantize int8`` stores every linear layer as int8 per output channel with float scales (dynamic
int8 activations on CPU); ``--prune AMOUNT`` removes that share of the smallest weights (globally), or
with ``--structured`` of the hidden units between linear layers (the matrices shrink), then fine-tunes
``--steps`` steps on ``--data``. ``RUN2/config.json`` records the parent's weights' SHA-256 and what was
done; ``genlab sample``, ``eval`` and ``genlab.load`` read RUN2 like any run. See docs/compression.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from genlab.cli.options import DataDir, Overwrite
from genlab.compress.run import compress as compress_run


def compress(
    run: Annotated[Path, typer.Argument(help="Run directory written by `genlab fit`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The new run directory.")],
    quantize: Annotated[str | None, typer.Option("--quantize", help="int8: dynamic int8 linear layers.")] = None,
    prune: Annotated[float | None, typer.Option("--prune", help="Share in (0, 1) of weights to remove.")] = None,
    structured: Annotated[bool, typer.Option("--structured", help="Prune whole hidden units (smaller, faster).")] = False,
    steps: Annotated[int, typer.Option("--steps", help="Fine-tuning steps after pruning (needs --data).")] = 0,
    data: Annotated[str | None, typer.Option("--data", help="Training data of the fine-tune (name or path).")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Fine-tuning learning rate (default: the run's / 10).")] = None,
    data_dir: DataDir = None,
    overwrite: Overwrite = False,
) -> None:
    """Compress a trained run: prune (+ fine-tune), then quantise."""
    compress_run(run, out, quantize=quantize, prune=prune, structured=structured, steps=steps, data=data,
                 data_dir=data_dir, lr=lr, overwrite=overwrite)
    typer.echo(f"wrote {out}")
