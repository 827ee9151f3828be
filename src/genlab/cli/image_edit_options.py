"""``genlab sample``'s flags that read pictures: ``--init PICTURE --strength S`` (SDEdit) and ``--mask MASK``
(inpainting; see :mod:`genlab.models.diffusion`), ``--image PICTURE`` (the picture a captioner captions; see
:mod:`genlab.models.transformer.captioning`), and reading the pictures into the model's layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from genlab.errors import ConfigError

Init = Annotated[Path | None, typer.Option(
    "--init", help="Picture to edit (PNG/JPEG of the model's size and mode; diffusion image models).")]
Strength = Annotated[float | None, typer.Option(
    "--strength", help="How much of the schedule an --init edit reruns, in (0, 1] (1 = from pure noise).")]

Image = Annotated[list[Path] | None, typer.Option(
    "--image", help="Picture to caption (PNG/JPEG, resized to the model's size; a transformer fitted on captioned "
                    "images, e.g. shapes); repeatable, one caption each unless -n asks for more of one picture.")]

Mask = Annotated[Path | None, typer.Option(
    "--mask", help="Grayscale picture of --init's size: white pixels are redrawn, black ones kept (inpainting).")]


def read_picture(path: Path, shape: tuple[int, ...], *, flag: str = "--init", resize: bool = False) -> np.ndarray:
    """The picture at ``path`` (given as ``flag``) as float32 ``(1, C, H, W)`` in ``[0, 1]`` for a model of
    image ``shape``; with ``resize``, a picture of any size and mode is converted to the model's mode and
    box-filtered to its size (a ``genlab sample`` picture, enlarged 4x, comes back pixel for pixel).

    Raises:
        ConfigError: the file is missing or not a picture, or (without ``resize``) its size or mode (``RGB``
            for 3 channels, ``L`` for 1) is not the model's.
    """
    from PIL import Image, UnidentifiedImageError

    if len(shape) != 3:
        raise ConfigError(f"{flag} reads images; this model was fitted on records of shape {shape}")
    if not path.is_file():
        raise ConfigError(f"{flag} {path} does not exist")
    channels, height, width = shape
    mode = {1: "L", 3: "RGB"}[channels]
    try:
        with Image.open(path) as picture:
            picture.load()
    except (UnidentifiedImageError, OSError) as error:
        raise ConfigError(f"{flag} {path} is not a picture PIL can read ({error})") from None
    if resize:
        picture = picture.convert(mode).resize((width, height), Image.Resampling.BOX)
    if picture.size != (width, height):
        raise ConfigError(f"{flag} {path} is {picture.size[0]}x{picture.size[1]}; the model makes {width}x{height}")
    if picture.mode != mode:
        raise ConfigError(f"{flag} {path} has mode {picture.mode}; the model makes {mode} images")
    array = np.asarray(picture, dtype=np.float32) / 255.0
    return (array[None, None] if channels == 1 else array.transpose(2, 0, 1)[None]).copy()


def read_mask(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """The mask at ``path`` as float32 ``(1, 1, H, W)``: 1 where the pixel is light (redraw), 0 where dark.

    Raises:
        ConfigError: the file is missing or not a picture, not grayscale (mode ``L`` or ``1``), or of
            another size than the model's images.
    """
    from PIL import Image, UnidentifiedImageError

    if len(shape) != 3 or not path.is_file():
        raise ConfigError(f"--mask {path} does not exist or the model makes no images")
    try:
        with Image.open(path) as picture:
            picture.load()
    except (UnidentifiedImageError, OSError) as error:
        raise ConfigError(f"--mask {path} is not a picture PIL can read ({error})") from None
    if picture.size != (shape[2], shape[1]):
        raise ConfigError(f"--mask {path} is {picture.size[0]}x{picture.size[1]}; the model makes {shape[2]}x{shape[1]}")
    if picture.mode not in ("L", "1"):
        raise ConfigError(f"--mask {path} has mode {picture.mode}; give a grayscale (L) picture")
    return (np.asarray(picture.convert("L")) > 127).astype(np.float32)[None, None]
