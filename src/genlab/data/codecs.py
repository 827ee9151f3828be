"""Codecs: how one modality's raw records become the tensors a network fits, and back.

A codec is fitted on the training records (it may learn statistics, e.g. per-coordinate scale), then
maps raw records to model space with :meth:`Codec.encode` and back with :meth:`Codec.decode`. Its
learned state is plain JSON, saved beside the weights. The continuous codecs are affine, so densities
move between spaces by a constant: ``log p_raw(x) = log p_model(encode(x)) + log_abs_det_jacobian``.

Autoregressive families need token sequences instead: a :class:`TokenCodec` maps records to int64
rows that start with a start token ``bos``. Here are the token codecs of points (binned coordinates)
and images (quantised intensities); the text tokenizers live in :mod:`genlab.data.text`. A codec's
state names its class (``"codec"``), so a modality can have several.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch

from genlab.errors import DataError, NotSupportedError


class Codec(ABC):
    """Raw records of one modality <-> float32 model tensors of the same shape."""

    modality: ClassVar[str]
    #: Key of the codec class in saved state; the continuous codecs keep their modality's name.
    name: ClassVar[str]

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

    modality = name = "points"

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

    modality = name = "images"

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


class TokenCodec(Codec):
    """Raw records <-> int64 token rows ``(n, L)`` that start with the start token ``bos``.

    Token ids ``0 .. vocab_size - 1`` are the codec's own; a family may append more (class tokens).
    """

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of token ids the codec uses, ``bos`` included."""

    @property
    @abstractmethod
    def bos(self) -> int:
        """The start token every encoded row begins with."""

    def log_abs_det_jacobian(self) -> float:
        raise NotSupportedError("a token codec is discrete: densities do not move between token and raw space")


class _FixedLengthTokenCodec(TokenCodec):
    """Records of a fixed shape whose ``L = prod(shape)`` scalars each become one of ``levels`` tokens.

    ``encode`` gives ``(n, 1 + L)``: ``bos = levels`` then the scalars in C order; ``decode`` takes the
    ``(n, L)`` scalar tokens (no ``bos``).
    """

    def __init__(self, shape: tuple[int, ...], levels: int) -> None:
        super().__init__(shape)
        if levels < 2:
            raise ValueError(f"levels must be at least 2, got {levels}")
        self.levels = levels

    @property
    def vocab_size(self) -> int:
        return self.levels + 1

    @property
    def bos(self) -> int:
        return self.levels

    @property
    def sequence_length(self) -> int:
        """``L``, tokens per record after ``bos``."""
        return math.prod(self.shape)

    @abstractmethod
    def _to_levels(self, x: np.ndarray) -> np.ndarray:
        """Float records ``(n, *shape)`` -> integer levels in ``[0, levels)``, same shape."""

    @abstractmethod
    def _from_levels(self, levels: np.ndarray) -> np.ndarray:
        """Integer levels ``(n, *shape)`` -> float32 records."""

    def encode(self, x: np.ndarray) -> torch.Tensor:
        levels = self._to_levels(self.check_records(x)).reshape(len(x), -1)      # (n, L)
        tokens = np.concatenate([np.full((len(x), 1), self.bos), levels], axis=1)  # (n, 1 + L)
        return torch.from_numpy(tokens.astype(np.int64))

    def decode(self, z: torch.Tensor) -> np.ndarray:
        tokens = z.detach().to("cpu", torch.int64).numpy().reshape(len(z), *self.shape)
        if tokens.min(initial=0) < 0 or tokens.max(initial=0) >= self.levels:
            raise DataError(f"tokens must lie in [0, {self.levels}) to decode into records")
        return self._from_levels(tokens)


class ImageTokenCodec(_FixedLengthTokenCodec):
    """Images in ``[0, 1]`` as pixel sequences of ``levels`` intensities, ``round(x (levels - 1))``.

    scikit-learn's 8x8 digits hold exactly 17 levels (0..16), so ``levels=17`` is lossless for them.
    """

    modality = "images"
    name = "image-tokens"

    def fit(self, x: np.ndarray) -> "ImageTokenCodec":
        ImageCodec(self.shape).fit(x)
        return self

    def _to_levels(self, x: np.ndarray) -> np.ndarray:
        return np.rint(np.clip(x, 0.0, 1.0) * (self.levels - 1)).astype(np.int64)

    def _from_levels(self, levels: np.ndarray) -> np.ndarray:
        return (levels / (self.levels - 1)).astype(np.float32)

    def state(self) -> dict[str, Any]:
        return {"codec": self.name, "modality": self.modality, "shape": list(self.shape), "levels": self.levels}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "ImageTokenCodec":
        return cls(tuple(state["shape"]), state["levels"])


class PointTokenCodec(_FixedLengthTokenCodec):
    """Points as one token per coordinate: the index of its bin among ``levels`` equal bins spanning the
    training range of that coordinate; decoding returns the bin centre."""

    modality = "points"
    name = "point-tokens"

    def __init__(self, shape: tuple[int, ...], levels: int, low: list[float] | None = None,
                 high: list[float] | None = None) -> None:
        super().__init__(shape, levels)
        self.low = None if low is None else np.asarray(low, dtype=np.float64)
        self.high = None if high is None else np.asarray(high, dtype=np.float64)

    def fit(self, x: np.ndarray) -> "PointTokenCodec":
        x = self.check_records(x, "training records").astype(np.float64)
        self.low, self.high = x.min(axis=0), np.maximum(x.max(axis=0), x.min(axis=0) + 1e-8)
        return self

    def _to_levels(self, x: np.ndarray) -> np.ndarray:
        unit = (x - self.low) / (self.high - self.low)
        return np.clip(np.floor(unit * self.levels), 0, self.levels - 1).astype(np.int64)

    def _from_levels(self, levels: np.ndarray) -> np.ndarray:
        return (self.low + (levels + 0.5) / self.levels * (self.high - self.low)).astype(np.float32)

    def state(self) -> dict[str, Any]:
        return {"codec": self.name, "modality": self.modality, "shape": list(self.shape), "levels": self.levels,
                "low": self.low.tolist(), "high": self.high.tolist()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "PointTokenCodec":
        return cls(tuple(state["shape"]), state["levels"], state["low"], state["high"])


CODECS: dict[str, type[Codec]] = {codec.modality: codec for codec in (PointCodec, ImageCodec)}


def codec_for(modality: str, shape: tuple[int, ...]) -> Codec:
    """A new, unfitted continuous codec for ``modality`` records of ``shape``."""
    return CODECS[modality](shape)
