"""``genlab compress RUN --out RUN2``: prune and/or quantise a run into a new, ordinary run directory.

``--quantize int8`` stores every linear layer as int8 per output channel with float scales (dynamic
int8 activations on CPU); ``--prune AMOUNT`` removes that share of the smallest weights (globally), or
with ``--structured`` of the hidden units between linear layers (the matrices shrink), then fine-tunes
``--steps`` steps on ``--data``; ``--distill --set n_layer=2`` trains a smaller GPT on the teacher's soft
targets (Hinton et al. 2015) from teacher layers (``--init teacher``, DistilGPT2's start) for ``--steps``
on ``--data``. ``RUN2/config.json`` records the parent's weights' SHA-256 and what was
done; ``genlab sample``, ``eval`` and ``genlab.load`` read RUN2 like any run. See docs/compression.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from genlab.cli.options import DataDir, Overwrite, parse_assignments
from genlab.compress.run import compress as compress_run
from genlab.errors import ConfigError


def compress(
    run: Annotated[Path, typer.Argument(help="Run directory written by `genlab fit`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The new run directory.")],
    quantize: Annotated[str | None, typer.Option("--quantize", help="int8: dynamic int8 linear layers.")] = None,
    prune: Annotated[float | None, typer.Option("--prune", help="Share in (0, 1) of weights to remove.")] = None,
    structured: Annotated[bool, typer.Option("--structured", help="Prune whole hidden units (smaller, faster).")] = False,
    steps: Annotated[int, typer.Option("--steps", help="Fine-tuning steps after pruning (needs --data).")] = 0,
    data: Annotated[str | None, typer.Option("--data", help="Training data of the fine-tune (name or path).")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Fine-tuning learning rate (default: the run's / 10).")] = None,
    distill: Annotated[bool, typer.Option("--distill", help="Train a smaller GPT student (--set n_layer=2) for --steps.")] = False,
    student: Annotated[list[str] | None, typer.Option("--set", help="Student option key=value (n_layer, n_head, n_embd).")] = None,
    kd_temperature: Annotated[float, typer.Option("--kd-temperature", help="Distillation temperature T.")] = 2.0,
    kd_alpha: Annotated[float, typer.Option("--kd-alpha", help="Weight of the soft (teacher) term, 0..1.")] = 0.5,
    init: Annotated[str, typer.Option("--init", help="Student start: teacher (teacher layers) or random.")] = "teacher",
    data_dir: DataDir = None,
    overwrite: Overwrite = False,
) -> None:
    """Compress a trained run: distil or prune (+ fine-tune), then quantise."""
    if student and not distill:
        raise ConfigError("--set gives the student's options and needs --distill")
    options = None if not distill else {"student": parse_assignments(student, "student option"),
                                         "temperature": kd_temperature, "alpha": kd_alpha, "init": init}
    compress_run(run, out, quantize=quantize, prune=prune, structured=structured, steps=steps, data=data,
                 data_dir=data_dir, lr=lr, distill=options, overwrite=overwrite)
    typer.echo(f"wrote {out}")
