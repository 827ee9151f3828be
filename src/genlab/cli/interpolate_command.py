"""``genlab interpolate DIR --steps 8 --out strip.png``: decode paths between latents of a saved model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer
from PIL import Image
from rich.console import Console

from genlab.api import load
from genlab.cli.options import Overwrite, Seed, refuse_existing
from genlab.errors import ConfigError, NotSupportedError
from genlab.io import atomic_path
from genlab.report.figures import image_grid, save_scatter
from genlab.sampling.latent import METHODS, interpolate as interpolate_latents

SUFFIXES = (".png", ".npy")


def interpolate(
    run: Annotated[Path, typer.Argument(help="Run directory of a model with a latent space (vae, gan).")],
    steps: Annotated[int, typer.Option("--steps", help="Points on each path, both ends included.")] = 8,
    paths: Annotated[int, typer.Option("--paths", help="Independent paths, one row each.")] = 1,
    method: Annotated[str, typer.Option("--method", help=f"Interpolation: {', '.join(METHODS)}.")] = "slerp",
    out: Annotated[Path, typer.Option("--out", "-o",
                                      help="Output: .png (a strip per path) or .npy.")] = Path("strip.png"),
    condition: Annotated[str | None, typer.Option("--condition", "-c", help="Class index or name.")] = None,
    seed: Seed = 0,
    overwrite: Overwrite = False,
) -> None:
    """Draw two latents from the prior N(0, I) per path and write what the model decodes along the way.

    A class-conditional model needs --condition; the class stays fixed along each path.
    """
    if out.suffix not in SUFFIXES:
        raise ConfigError(f"cannot write a strip to {out.name!r}; use one of: {', '.join(SUFFIXES)}")
    if paths < 1:
        raise ConfigError(f"--paths must be at least 1, got {paths}")
    refuse_existing(out, overwrite)
    model = load(run)
    if not hasattr(model, "latent_shape"):
        raise NotSupportedError(f"the {model.family} family has no latent space; interpolate works on vae and gan")
    rng = torch.Generator().manual_seed(seed)
    ends = torch.randn(paths, 2, *model.latent_shape, generator=rng).numpy()
    records = np.concatenate([
        interpolate_latents(model, a, b, steps=steps, method=method, condition=condition, inputs="latents")
        for a, b in ends
    ])                                                                    # (paths * steps, *shape)
    if out.suffix == ".npy":
        with atomic_path(out) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, records.reshape(paths, steps, *records.shape[1:]))
    elif model.data_.modality == "images":
        picture = Image.fromarray(image_grid(records, columns=steps))
        picture = picture.resize((picture.width * 4, picture.height * 4), Image.NEAREST)
        with atomic_path(out) as tmp:
            picture.save(tmp, format="PNG")
    else:
        save_scatter(records, out, title=f"{paths} {method} path(s), {steps} steps")
    Console(stderr=True).print(f"wrote {paths} path(s) of {steps} steps to [bold]{out}[/bold]")
