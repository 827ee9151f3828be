"""Raw records <-> the JSON a client sends and receives.

Each modality in its natural JSON: points as lists of floats ``[x0, x1, ...]``, table rows as objects
keyed by column (missing values as ``null``), images as base64-encoded PNG (8-bit gray or RGB), and the
records of every string modality (text, SMILES, chorales: ``STRING_MODALITIES``) as strings. The reverse
direction (:func:`record_from_json`) turns one record a client sent back (to make variations of it, to
interpolate or refine it) into the raw array or one-row DataFrame the library takes.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from genlab.data.dataset import STRING_MODALITIES
from genlab.errors import DataError


def records_to_json(records: np.ndarray | pd.DataFrame, modality: str) -> list[Any]:
    """``n`` raw records -> a list of ``n`` JSON values (see the module docstring)."""
    if modality == "tables":
        return [{column: _plain(value) for column, value in row.items()}
                for row in records.to_dict(orient="records")]
    if modality in STRING_MODALITIES:
        return [str(text) for text in records]
    if modality == "images":
        return [image_to_base64(image) for image in records]
    return np.asarray(records, dtype=np.float64).tolist()


def _plain(value: Any) -> Any:
    """A table cell as JSON: ``None`` for missing, Python numbers (every digit kept), ISO dates."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value.item() if isinstance(value, np.generic) else value


def image_to_base64(image: np.ndarray) -> str:
    """One image ``(C, H, W)`` in ``[0, 1]`` (C = 1 or 3) -> base64 of its 8-bit PNG."""
    pixels = np.clip(np.rint(np.asarray(image) * 255), 0, 255).astype(np.uint8)
    picture = Image.fromarray(pixels[0]) if pixels.shape[0] == 1 else Image.fromarray(pixels.transpose(1, 2, 0))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def image_from_base64(text: str, shape: tuple[int, ...]) -> np.ndarray:
    """Base64 PNG -> float32 ``(C, H, W)`` in ``[0, 1]`` of the model's ``shape``, or a DataError."""
    try:
        picture = Image.open(io.BytesIO(base64.b64decode(text, validate=True)))
        picture.load()
    except (binascii.Error, UnidentifiedImageError, OSError, ValueError) as error:
        raise DataError(f"an image record must be a base64-encoded PNG ({error})") from None
    channels = shape[0]
    pixels = np.asarray(picture.convert("L" if channels == 1 else "RGB"), dtype=np.float32) / 255
    pixels = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
    if pixels.shape != tuple(shape):
        raise DataError(f"the image is {pixels.shape[2]}x{pixels.shape[1]} with {pixels.shape[0]} channel(s); "
                        f"this model's images are {shape[2]}x{shape[1]} with {shape[0]}")
    return pixels


def record_from_json(value: Any, modality: str, shape: tuple[int, ...], columns: list[str] | None = None
                     ) -> np.ndarray | pd.DataFrame:
    """One JSON record -> raw records of one row: float32 ``(1, *shape)``, a one-row DataFrame (tables,
    with the model's ``columns``), or an object array ``(1,)`` of ``str`` (a string modality). Raises DataError."""
    if modality in STRING_MODALITIES:
        if not isinstance(value, str):
            raise DataError(f"a {modality} record is a string, got {type(value).__name__}")
        return np.array([value], dtype=object)
    if modality == "tables":
        if not isinstance(value, dict):
            raise DataError("a table record is an object keyed by column")
        unknown = sorted(set(value) - set(columns or ()))
        if unknown:
            raise DataError(f"unknown column(s) {', '.join(map(repr, unknown))}; columns: {', '.join(columns)}")
        return pd.DataFrame([{column: value.get(column) for column in columns}])
    if modality == "images":
        if not isinstance(value, str):
            raise DataError("an image record is a base64-encoded PNG string")
        return image_from_base64(value, shape)[None]
    try:
        point = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataError(f"a point is a list of {shape[0]} numbers") from None
    if point.shape != tuple(shape) or not np.isfinite(point).all():
        raise DataError(f"a point is a list of {shape[0]} finite numbers, got {value!r}")
    return point[None]
