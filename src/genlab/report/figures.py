"""Figures of runs as PNG: image grids, point scatter plots, per-column distributions of tables,
training-loss curves, interpolation strips, molecules drawn by RDKit (PNG grids, or one SVG each) and
chorales as piano rolls.

Each figure is built as PNG bytes (for the HTML report, which embeds them); ``save_*`` writes the same
bytes to a file atomically.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from genlab.io import atomic_path  # noqa: E402

#: Categories drawn per categorical column (the most frequent in the real data; the rest pooled as "other").
TOP_CATEGORIES = 8
#: Histogram bins per numeric column.
BINS = 30

#: History keys that are bookkeeping, not losses.
_NOT_LOSSES = frozenset({"step", "lr", "elapsed"})


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


def image_grid_png(images: np.ndarray, *, columns: int | None = None, scale: int = 4) -> bytes:
    """PNG of :func:`image_grid` of ``images (n, C, H, W)``, enlarged ``scale`` times (nearest)."""
    picture = Image.fromarray(image_grid(images, columns=columns))
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def scatter_png(fake: np.ndarray, *, real: np.ndarray | None = None, title: str = "",
                path: np.ndarray | None = None) -> bytes:
    """PNG scatter of the first two coordinates of ``fake (n, d)`` over ``real`` (grey).

    ``path`` ``(s, d)``, when given, is drawn as a connected line of points (an interpolation).
    """
    figure, axes = plt.subplots(figsize=(4, 4), dpi=100)
    if real is not None:
        axes.scatter(real[:, 0], real[:, 1], s=4, c="0.6", label="real", linewidths=0)
    # Half-transparent, so real data under a cloud of samples still shows through.
    axes.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:blue", alpha=0.5, label="generated", linewidths=0)
    if path is not None:
        axes.plot(path[:, 0], path[:, 1], "-o", c="tab:red", ms=3, lw=1, label="interpolation")
    axes.set_aspect("equal", adjustable="datalim")
    axes.set_title(title, fontsize=9)
    axes.legend(loc="upper right", fontsize=7, markerscale=4 if path is None else 1)
    return _figure_png(figure)


def column_distributions_png(real: pd.DataFrame, fake: pd.DataFrame, *, columns: Sequence[str] | None = None,
                             per_row: int = 4) -> bytes:
    """PNG with one panel per column: real (grey) against generated (blue) shares.

    Numeric and datetime columns are density histograms over ``BINS`` common bins (from the real
    values' range); categorical and boolean ones are bars of the ``TOP_CATEGORIES`` most frequent real
    categories plus "other" when there are more (or the samples have others). Missing values show as the share noted in each panel's title.

    Args:
        real, fake: tables with the same columns.
        columns: which columns, in order (default: all of ``real``).
        per_row: panels per row.
    """
    columns = list(real.columns if columns is None else columns)
    rows = math.ceil(len(columns) / per_row)
    figure, grid = plt.subplots(rows, per_row, figsize=(3.2 * per_row, 2.4 * rows), dpi=90, squeeze=False)
    for axes, column in zip(grid.flat, columns):
        r, f = real[column], fake[column]
        missing = f"missing {r.isna().mean():.0%} / {f.isna().mean():.0%}" if r.isna().any() or f.isna().any() else ""
        r, f = r.dropna(), f.dropna()
        if pd.api.types.is_datetime64_any_dtype(r):
            r, f = r.astype("int64"), pd.to_datetime(f).astype("int64")
        if pd.api.types.is_numeric_dtype(r) and not pd.api.types.is_bool_dtype(r) and len(r):
            edges = np.histogram_bin_edges(r.to_numpy(np.float64), bins=BINS)
            axes.hist(r.to_numpy(np.float64), bins=edges, density=True, color="0.6", label="real")
            axes.hist(f.to_numpy(np.float64).clip(edges[0], edges[-1]), bins=edges, density=True,
                      histtype="step", color="tab:blue", lw=1.5, label="generated")
            axes.tick_params(labelsize=6)
        else:
            counts = r.astype(str).value_counts()
            top = counts.index[:TOP_CATEGORIES].tolist()
            labels = top + (["other"] if len(counts) > TOP_CATEGORIES or not f.astype(str).isin(top).all() else [])
            shares = [(s.astype(str).where(s.astype(str).isin(top), "other").value_counts(normalize=True)
                       .reindex(labels, fill_value=0.0)) for s in (r, f)]
            positions = np.arange(len(labels))
            axes.bar(positions - 0.2, shares[0].to_numpy(), width=0.4, color="0.6", label="real")
            axes.bar(positions + 0.2, shares[1].to_numpy(), width=0.4, color="tab:blue", label="generated")
            axes.set_xticks(positions, [label[:10] for label in labels], rotation=60, fontsize=6,
                            ha="right")
            axes.tick_params(axis="y", labelsize=6)
        axes.set_title(f"{column}" + (f"  ({missing})" if missing else ""), fontsize=8)
    for axes in list(grid.flat)[len(columns):]:
        axes.axis("off")
    grid.flat[0].legend(fontsize=6)
    return _figure_png(figure)


def loss_curves_png(history: Sequence[dict[str, Any]]) -> bytes | None:
    """PNG of every logged loss against the training step, one panel per phase; ``None`` without steps.

    ``history`` holds the Trainer's records ``{"step", "lr", "elapsed", "<phase>", "<phase>/<part>",
    "eval/<metric>"}``; keys are grouped into panels by the part before ``/``. Records without a
    ``step`` (e.g. an EM fit's summary) give no curve.
    """
    series: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for record in history:
        if "step" not in record:
            continue
        for key, value in record.items():
            if key in _NOT_LOSSES or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            steps, values = series.setdefault(key.split("/")[0], {}).setdefault(key, ([], []))
            steps.append(float(record["step"]))
            values.append(float(value))
    if not series:
        return None
    figure, axes = plt.subplots(1, len(series), figsize=(4 * len(series), 3), dpi=100, squeeze=False)
    for panel, (group, lines) in zip(axes[0], series.items(), strict=True):
        for key, (steps, values) in lines.items():
            panel.plot(steps, values, lw=1, label=key, ls="-" if key == group else "--")
        panel.set_xlabel("step", fontsize=8)
        panel.set_title(group, fontsize=9)
        panel.tick_params(labelsize=7)
        panel.legend(fontsize=7)
    return _figure_png(figure)


def molecule_grid_png(smiles: Sequence[str], *, columns: int = 4, side: int = 160,
                      legends: Sequence[str] | None = None) -> bytes:
    """Valid SMILES drawn by RDKit (``Draw.MolsToGridImage``), ``columns`` to a row, ``side`` pixels each,
    ``legends`` (one line of text per molecule, e.g. its properties) under the drawings when given."""
    from rdkit import Chem
    from rdkit.Chem import Draw

    image = Draw.MolsToGridImage([Chem.MolFromSmiles(s) for s in smiles], molsPerRow=columns,
                                 subImgSize=(side, side), legends=None if legends is None else list(legends))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def molecule_svg(smiles: str, *, side: int = 200) -> str | None:
    """One SMILES drawn by RDKit as an SVG document ``side`` pixels square; ``None`` when RDKit cannot parse it."""
    from rdkit import Chem
    from rdkit.Chem.Draw import rdMolDraw2D

    mol = Chem.MolFromSmiles(smiles) if smiles else None
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    drawer = rdMolDraw2D.MolDraw2DSVG(side, side)
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


def piano_roll_png(chorale: str) -> bytes:
    """A chorale in the time grid (:mod:`genlab.data.music`, it must parse) as a piano roll: MIDI pitch
    against beats, one colour per voice."""
    from genlab.data.music import STEP, VOICES, parse_chorale

    grid = parse_chorale(chorale)
    figure, axis = plt.subplots(figsize=(7, 2.8))
    for voice, name in enumerate(VOICES):
        steps = np.flatnonzero(grid.pitch[:, voice] >= 0)
        axis.scatter(steps * STEP, grid.pitch[steps, voice], s=6, marker="s", label=name)
    axis.set_xlabel("beat")
    axis.set_ylabel("MIDI pitch")
    axis.legend(loc="upper right", fontsize=7)
    return _figure_png(figure)


def save_image_grid(images: np.ndarray, path: str | Path, *, scale: int = 4) -> None:
    """Write :func:`image_grid` of ``images`` to ``path`` as PNG, enlarged ``scale`` times (nearest)."""
    _write(image_grid_png(images, scale=scale), path)


def save_scatter(fake: np.ndarray, path: str | Path, *, real: np.ndarray | None = None, title: str = "") -> None:
    """Scatter the first two coordinates of ``fake (n, d)`` over ``real`` (grey) and write a PNG."""
    _write(scatter_png(fake, real=real, title=title), path)


def _figure_png(figure: plt.Figure) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _write(png: bytes, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(png)
