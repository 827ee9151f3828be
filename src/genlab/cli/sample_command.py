"""``genlab sample DIR -n N --out FILE``: draw new records from a saved model.

Text models write ``.txt`` (samples separated by ``<|endoftext|>`` lines); ``--prompt`` starts every
sample, and ``--verify python`` keeps only samples that parse, drawing again until N pass or 10 N have
been drawn, and reports the share that passed.

Table models write ``.csv`` (the training columns, names and value formats); ``--condition
column=value`` (repeatable) makes every row satisfy each condition, values read as their column's type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import torch
import typer
from rich.console import Console

from genlab.api import load
from genlab.cli.options import Overwrite, Seed, parse_assignments, parse_conditions, refuse_existing
from genlab.errors import ConfigError
from genlab.io import atomic_path
from genlab.report.figures import save_image_grid, save_scatter
from genlab.sampling.decoding import VERIFIERS, sample_verified

SUFFIXES = (".npy", ".csv", ".png", ".txt")
#: Line written between text samples in a ``.txt`` output.
TEXT_SEPARATOR = "<|endoftext|>"


def sample(
    run: Annotated[Path, typer.Argument(help="Run directory written by `genlab fit`.")],
    n: Annotated[int, typer.Option("-n", "--n", help="How many records to draw.")] = 64,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output file: .npy, .csv (points, tables), .png or .txt (text); default samples.png, "
                            "or samples.csv for tables.")] = None,
    condition: Annotated[list[str] | None, typer.Option(
        "--condition", "-c", help="Class index or name; for tables column=value (repeatable).")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Sampler steps (diffusion).")] = None,
    sampler: Annotated[str | None, typer.Option("--sampler", help="Sampler name, e.g. ddpm, ddim (diffusion).")] = None,
    guidance: Annotated[float | None, typer.Option("--guidance", help="Classifier-free guidance scale.")] = None,
    truncation: Annotated[float | None, typer.Option("--truncation", help="Latent truncation psi (GAN).")] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="Text every sample starts with (text models).")] = None,
    verify: Annotated[str | None, typer.Option("--verify", help=f"Keep only text samples that pass a check: {', '.join(VERIFIERS)}.")] = None,
    option: Annotated[list[str] | None, typer.Option("--set", "-s", help="Other sampling option key=value.")] = None,
    seed: Seed = 0,
    overwrite: Overwrite = False,
) -> None:
    """Draw N new records from the model in RUN and write them to OUT."""
    flags = {"steps": steps, "sampler": sampler, "guidance": guidance, "truncation": truncation, "prompt": prompt}
    options = {**{key: value for key, value in flags.items() if value is not None},
               **parse_assignments(option, "sampling option")}
    if out is not None and out.suffix not in SUFFIXES:
        raise ConfigError(f"cannot write samples to {out.name!r}; use one of: {', '.join(SUFFIXES)}")
    condition = parse_conditions(condition)
    model = load(run)
    modality = model.data_.modality
    out = out if out is not None else Path("samples.csv" if modality == "tables" else "samples.png")
    refuse_existing(out, overwrite)
    if isinstance(condition, dict) and modality != "tables":
        raise ConfigError(f"column=value conditions are for tables; this model makes {modality}: "
                          f"pass one class index or name")
    if modality == "tables" and out.suffix != ".csv":
        raise ConfigError(f"this model makes tables: write them to a .csv file, not {out.name!r}")
    if out.suffix == ".csv" and modality not in ("points", "tables"):
        raise ConfigError(f"CSV output holds points; this model makes {modality}: use .npy or .png")
    if (out.suffix == ".txt") != (modality == "text"):
        raise ConfigError(f"this model makes {modality}: write text to .txt and other records to .npy, .csv or .png")
    console = Console(stderr=True)
    generator = torch.Generator().manual_seed(seed)
    if verify is not None:
        if modality != "text":
            raise ConfigError(f"--verify checks text; this model makes {modality}")
        verified = sample_verified(model, n, verify, condition=condition, generator=generator, **options)
        records = np.array(verified.samples, dtype=object)
        console.print(f"{verified.passed} of {verified.drawn} samples pass {verify} "
                      f"(validity {verified.validity:.1%})")
    else:
        records = model.sample(n, condition=condition, generator=generator, **options)
    write_records(records, out, modality)
    console.print(f"wrote {len(records)} samples to [bold]{out}[/bold]")


def write_records(records: np.ndarray, out: Path, modality: str) -> None:
    """Write records to ``out`` by its suffix: raw array, CSV of points or of a table, a picture, or text."""
    if out.suffix == ".txt":
        with atomic_path(out) as tmp:
            Path(tmp).write_text("".join(f"{text}\n{TEXT_SEPARATOR}\n" for text in records), encoding="utf-8")
    elif out.suffix == ".npy":
        with atomic_path(out) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, records)
    elif modality == "tables":
        with atomic_path(out) as tmp:
            records.to_csv(tmp, index=False)
    elif out.suffix == ".csv":
        columns = [f"x{i}" for i in range(records.shape[1])]
        with atomic_path(out) as tmp:
            pd.DataFrame(records, columns=columns).to_csv(tmp, index=False)
    elif modality == "images":
        save_image_grid(records, out)
    else:
        save_scatter(records, out, title=f"{len(records)} samples")
