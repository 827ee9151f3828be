"""``genlab variations RUN --seed S --index I -n 8 --strength 0.3 --out variations.png``: variations of one
record (:func:`genlab.interaction.variations`).

The subject is record ``I`` of ``genlab sample RUN --seed S`` (same condition), so a record seen once
can be named again by its seed and index; for a GAN, which has no encoder, it is ``decode(z)`` of the
``I``-th latent drawn from the seed. The variations themselves draw from seed ``S + 1``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.console import Console

from genlab.api import load
from genlab.cli.options import Overwrite, Seed, parse_assignments, parse_conditions, refuse_existing
from genlab.cli.sample_command import SUFFIXES, write_records
from genlab.errors import ConfigError
from genlab.interaction import variations as make_variations


def variations(
    run: Annotated[Path, typer.Argument(help="Run directory written by `genlab fit`.")],
    index: Annotated[int, typer.Option("--index", help="Which record of `genlab sample --seed S` to vary.")] = 0,
    n: Annotated[int, typer.Option("-n", "--n", help="How many variations.")] = 8,
    strength: Annotated[float, typer.Option("--strength", help="0 = the record itself, 1 = unrelated.")] = 0.3,
    condition: Annotated[list[str] | None, typer.Option(
        "--condition", "-c", help="Class index or name; for tables column=value (repeatable).")] = None,
    lock: Annotated[list[str] | None, typer.Option("--lock", help="Table column to keep (repeatable).")] = None,
    prefix: Annotated[str | None, typer.Option("--prefix", help="Text to keep (default: the first 1 - strength).")] = None,
    option: Annotated[list[str] | None, typer.Option("--set", "-s", help="Sampling option key=value.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file: .npy, .csv, .png or .txt.")] = Path(
        "variations.png"),
    seed: Seed = 0,
    overwrite: Overwrite = False,
) -> None:
    """Write N variations of one record of the model in RUN to OUT."""
    if out.suffix not in SUFFIXES:
        raise ConfigError(f"cannot write variations to {out.name!r}; use one of: {', '.join(SUFFIXES)}")
    if index < 0:
        raise ConfigError(f"--index must be >= 0, got {index}")
    refuse_existing(out, overwrite)
    options = parse_assignments(option, "sampling option")
    conditions = parse_conditions(condition)
    model = load(run)
    generator = torch.Generator().manual_seed(seed)
    record, latent = None, None
    if hasattr(model, "latent_shape") and not model.encodes_records and model.data_.modality in ("points", "images"):
        # a latent family without an encoder (a GAN): vary the record's latent, drawn as sample() draws it
        latent = torch.randn(index + 1, *model.latent_shape, generator=generator)[index].numpy()
    else:
        records = model.sample(index + 1, condition=conditions, generator=generator, **options)
        record = records.iloc[[index]] if model.data_.modality == "tables" else records[index:index + 1]
    varied = make_variations(model, record, n=n, strength=strength, generator=torch.Generator().manual_seed(seed + 1),
                             latent=latent, condition=conditions, locked=lock or (), prefix=prefix, **options)
    write_records(varied, out, model.data_.modality)
    Console(stderr=True).print(f"wrote {len(varied)} variations of record {index} (seed {seed}) to [bold]{out}[/bold]")
