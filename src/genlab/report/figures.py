"""Figures of samples: image grids and point scatter plots, written as PNG files atomically."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from genlab.io import atomic_path  # noqa: E402


def image_grid(images: np.ndarray, *, columns: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile images ``(n, C, H, W)`` in ``[0, 1]`` into one uint8 picture ``(rows*(H+pad)+pad, ..., 3)``."""
    n, channels, height, width = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.ones((rows * (height + pad) + pad, columns * (width + pad) + pad, 3), dtype=np.float32)
    rgb = np.repeat(images, 3, axis=1) if channels == 1 else images[:, :3]
    for index, image in enumerate(rgb):
        top, left = pad + (index // columns) * (height + pad), pad + (index % columns) * (width + pad)
        grid[top:top + height, left:left + width] = image.transpose(1, 2, 0)
    return (grid.clip(0, 1) * 255).round().astype(np.uint8)


def save_image_grid(images: np.ndarray, path: str | Path, *, scale: int = 4) -> None:
    """Write :func:`image_grid` of ``images`` to ``path`` as PNG, enlarged ``scale`` times (nearest)."""
    picture = Image.fromarray(image_grid(images))
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")


def save_scatter(fake: np.ndarray, path: str | Path, *, real: np.ndarray | None = None, title: str = "") -> None:
    """Scatter the first two coordinates of ``fake (n, d)`` over ``real`` (grey) and write a PNG."""
    figure, axes = plt.subplots(figsize=(4, 4), dpi=100)
    if real is not None:
        axes.scatter(real[:, 0], real[:, 1], s=2, c="0.75", label="real", linewidths=0)
    axes.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:blue", label="generated", linewidths=0)
    axes.set_aspect("equal", adjustable="datalim")
    axes.set_title(title, fontsize=9)
    axes.legend(loc="upper right", fontsize=7, markerscale=4)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
