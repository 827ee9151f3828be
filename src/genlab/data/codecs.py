"""Codecs: how one modality's raw records become the tensors a network fits, and back.

A codec is fitted on the training records (it may learn statistics, e.g. per-coordinate scale), then
maps raw records to model space with :meth:`Codec.encode` and back with :meth:`Codec.decode`. Its
learned state is plain JSON, saved beside the weights. Both codecs here are affine, so densities move
between spaces by a constant: ``log p_raw(x) = log p_model(encode(x)) + log_abs_det_jacobian``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch

from genlab.errors import CheckpointError, DataError


class Codec(ABC):
    """Raw records of one modality <-> float32 model tensors of the same shape."""

    modality: ClassVar[str]

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(shape)

    @abstractmethod
    def fit(self, x: np.ndarray) -> "Codec":
        """Learn the codec's statistics from raw training records ``(n, *shape)``; returns ``self``."""

    @abstractmethod
    def encode(self, x: np.ndarray) -> torch.Tensor:
        """Raw records ``(n, *shape)`` -> float32 model tensor ``(n, *shape)``."""

    @abstractmethod
    def decode(self, z: torch.Tensor) -> np.ndarray:
        """Model tensor ``(n, *shape)`` -> raw float32 records ``(n, *shape)``."""

    @abstractmethod
    def log_abs_det_jacobian(self) -> float:
        """``log |det d encode(x) / dx|`` per record (constant for an affine codec)."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """JSON-ready learned state, read back by :meth:`from_state`."""

    @classmethod
    @abstractmethod
    def from_state(cls, state: dict[str, Any]) -> "Codec":
        """Rebuild a fitted codec from :meth:`state`."""

    def check_records(self, x: np.ndarray, what: str = "records") -> np.ndarray:
        """Return ``x`` as float32 after checking its record shape and finiteness."""
        x = np.asarray(x, dtype=np.float32)
        if x.shape[1:] != self.shape:
            raise DataError(f"{what} have shape {x.shape[1:]} per record; this model expects {self.shape}")
        if not np.isfinite(x).all():
            raise DataError(f"{what} hold NaN or infinite values")
        return x


class PointCodec(Codec):
    """Standardises each coordinate: ``z = (x - mean) / std`` (std floored at 1e-8 for constant columns)."""

    modality = "points"

    def __init__(self, shape: tuple[int, ...], mean: list[float] | None = None, std: list[float] | None = None):
        super().__init__(shape)
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.std = None if std is None else np.asarray(std, dtype=np.float64)

    def fit(self, x: np.ndarray) -> "PointCodec":
        x = self.check_records(x, "training records").astype(np.float64)
        self.mean = x.mean(axis=0)
        self.std = np.maximum(x.std(axis=0), 1e-8)
        return self

    def encode(self, x: np.ndarray) -> torch.Tensor:
        x = self.check_records(x)
        return torch.from_numpy(((x - self.mean) / self.std).astype(np.float32))

    def decode(self, z: torch.Tensor) -> np.ndarray:
        z = z.detach().to("cpu", torch.float64).numpy()
        return (z * self.std + self.mean).astype(np.float32)

    def log_abs_det_jacobian(self) -> float:
        return float(-np.log(self.std).sum())

    def state(self) -> dict[str, Any]:
        return {"modality": self.modality, "shape": list(self.shape),
                "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "PointCodec":
        return cls(tuple(state["shape"]), mean=state["mean"], std=state["std"])


class ImageCodec(Codec):
    """Maps intensities in ``[0, 1]`` to ``[-1, 1]``: ``z = 2x - 1``; decoding clamps back into ``[0, 1]``."""

    modality = "images"

    def fit(self, x: np.ndarray) -> "ImageCodec":
        x = self.check_records(x, "training images")
        if x.min() < 0 or x.max() > 1:
            raise DataError(f"images must hold intensities in [0, 1], got [{x.min():.3g}, {x.max():.3g}]")
        return self

    def encode(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.check_records(x, "images") * 2.0 - 1.0)

    def decode(self, z: torch.Tensor) -> np.ndarray:
        return ((z.detach().to("cpu", torch.float32) + 1.0) / 2.0).clamp(0.0, 1.0).numpy()

    def log_abs_det_jacobian(self) -> float:
        return math.prod(self.shape) * math.log(2.0)

    def state(self) -> dict[str, Any]:
        return {"modality": self.modality, "shape": list(self.shape)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "ImageCodec":
        return cls(tuple(state["shape"]))


CODECS: dict[str, type[Codec]] = {codec.modality: codec for codec in (PointCodec, ImageCodec)}


def codec_for(modality: str, shape: tuple[int, ...]) -> Codec:
    """A new, unfitted codec for ``modality`` records of ``shape``."""
    return CODECS[modality](shape)


def codec_from_state(state: dict[str, Any]) -> Codec:
    """Rebuild a fitted codec from its saved JSON state, rejecting unknown or incomplete state."""
    try:
        return CODECS[state["modality"]].from_state(state)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"codec state is incomplete or unknown ({error!s})") from None
