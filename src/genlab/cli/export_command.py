"""``genlab export RUN --format onnx --out model.onnx``: the run's sampling network as an ONNX graph.

The graph is exported with the dynamo-based exporter, checked with ``onnx.checker`` and carries what
:mod:`genlab.export.runner` needs to sample from it without torch (see :mod:`genlab.export.onnx`).
Needs the ``onnx`` extra (``pip install -e '.[onnx]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from genlab.api import load
from genlab.cli.options import Overwrite, refuse_existing
from genlab.errors import ConfigError, unknown_choice

FORMATS = ("onnx",)


def export(
    run: Annotated[Path, typer.Argument(help="Run directory written by `genlab fit` (or `genlab compress`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The graph file to write, e.g. model.onnx.")],
    format: Annotated[str, typer.Option("--format", help="Export format: onnx.")] = "onnx",
    overwrite: Overwrite = False,
) -> None:
    """Export a run's sampling network (generator, decoder, denoiser or cached decoder) for other runtimes."""
    if format not in FORMATS:
        raise unknown_choice("export format", format, FORMATS)
    if out.suffix != ".onnx":
        raise ConfigError(f"the ONNX graph goes to a .onnx file, not {out.name!r}")
    refuse_existing(out, overwrite)
    model = load(run)   # a run whose weights fail their checksum stops here, before anything is written
    try:
        from genlab.export.onnx import export_onnx
    except ImportError as error:   # pragma: no cover - the onnx extra is part of the test install
        raise ConfigError(f"ONNX export needs the onnx extra: pip install -e '.[onnx]' ({error})") from None
    export_onnx(model, out)
    typer.echo(f"wrote {out}")
