"""``genlab sample DIR -n N --out FILE``: draw new records from a saved model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import torch
import typer
from rich.console import Console

from genlab.api import load
from genlab.cli.options import Overwrite, Seed, parse_assignments, refuse_existing
from genlab.errors import ConfigError
from genlab.io import atomic_path
from genlab.report.figures import save_image_grid, save_scatter

SUFFIXES = (".npy", ".csv", ".png")


def sample(
    run: Annotated[Path, typer.Argument(help="Run directory written by `genlab fit`.")],
    n: Annotated[int, typer.Option("-n", "--n", help="How many records to draw.")] = 64,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file: .npy, .csv (points) or .png.")] = Path("samples.png"),
    condition: Annotated[str | None, typer.Option("--condition", "-c", help="Class index or name.")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Sampler steps (diffusion).")] = None,
    sampler: Annotated[str | None, typer.Option("--sampler", help="Sampler name, e.g. ddpm, ddim (diffusion).")] = None,
    guidance: Annotated[float | None, typer.Option("--guidance", help="Classifier-free guidance scale.")] = None,
    truncation: Annotated[float | None, typer.Option("--truncation", help="Latent truncation psi (GAN).")] = None,
    option: Annotated[list[str] | None, typer.Option("--set", "-s", help="Other sampling option key=value.")] = None,
    seed: Seed = 0,
    overwrite: Overwrite = False,
) -> None:
    """Draw N new records from the model in RUN and write them to OUT."""
    flags = {"steps": steps, "sampler": sampler, "guidance": guidance, "truncation": truncation}
    options = {**{key: value for key, value in flags.items() if value is not None},
               **parse_assignments(option, "sampling option")}
    if out.suffix not in SUFFIXES:
        raise ConfigError(f"cannot write samples to {out.name!r}; use one of: {', '.join(SUFFIXES)}")
    refuse_existing(out, overwrite)
    model = load(run)
    if out.suffix == ".csv" and model.data_.modality != "points":
        raise ConfigError(f"CSV output holds points; this model makes {model.data_.modality}: use .npy or .png")
    records = model.sample(n, condition=condition, generator=torch.Generator().manual_seed(seed), **options)
    write_records(records, out, model.data_.modality)
    Console(stderr=True).print(f"wrote {n} samples to [bold]{out}[/bold]")


def write_records(records: np.ndarray, out: Path, modality: str) -> None:
    """Write records to ``out`` by its suffix: raw array, CSV of points, or a picture."""
    if out.suffix == ".npy":
        with atomic_path(out) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, records)
    elif out.suffix == ".csv":
        columns = [f"x{i}" for i in range(records.shape[1])]
        with atomic_path(out) as tmp:
            pd.DataFrame(records, columns=columns).to_csv(tmp, index=False)
    elif modality == "images":
        save_image_grid(records, out)
    else:
        save_scatter(records, out, title=f"{len(records)} samples")
