"""Embeddings of a diffusion step and of a class label, summed into one conditioning vector."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Transformer positional features of (possibly fractional) timesteps (Vaswani et al. 2017, sec. 3.5;
    used for the diffusion step by Ho et al. 2020, appendix B).

    ``[cos(t w_0), ..., cos(t w_{k-1}), sin(t w_0), ..., sin(t w_{k-1})]`` with ``w_i = max_period^(-i/k)``
    and ``k = dim // 2`` (a zero column is appended when ``dim`` is odd).

    Args:
        t: ``(B,)`` timesteps (any numeric dtype).
        dim: feature width.

    Returns:
        ``(B, dim)`` float32 features in ``[-1, 1]``.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]                                  # (B, half)
    features = torch.cat([angles.cos(), angles.sin()], dim=1)
    if dim % 2:
        features = torch.cat([features, torch.zeros_like(features[:, :1])], dim=1)
    return features


class TimeEmbedding(nn.Module):
    """Sinusoidal features of ``t`` through ``Linear -> SiLU -> Linear``: ``(B,)`` -> ``(B, dim)``.

    Args:
        dim: output width.
        frequencies: width of the sinusoidal features (default ``dim``).
    """

    def __init__(self, dim: int, frequencies: int | None = None) -> None:
        super().__init__()
        self.frequencies = frequencies or dim
        self.mlp = nn.Sequential(nn.Linear(self.frequencies, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        # t: (B,) timesteps -> (B, dim)
        return self.mlp(sinusoidal_embedding(t, self.frequencies))


class ClassEmbedding(nn.Module):
    """A learned vector per class plus one for the *null* class ``n_classes`` (no label), which
    classifier-free guidance trains by dropping labels and samples from unconditionally (Ho & Salimans
    2022, "Classifier-Free Diffusion Guidance", Algorithm 1): ``(B,)`` int64 in ``0..n_classes`` -> ``(B, dim)``.

    Args:
        n_classes: number of real classes ``C``; the table has ``C + 1`` rows.
        dim: embedding width.
    """

    def __init__(self, n_classes: int, dim: int) -> None:
        super().__init__()
        self.null_class = n_classes
        self.table = nn.Embedding(n_classes + 1, dim)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        # y: (B,) labels, null_class for "no label" -> (B, dim)
        return self.table(y)

    def drop(self, y: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
        """Replace each label by the null class with probability ``p``: ``(B,)`` -> ``(B,)``."""
        if p <= 0:
            return y
        rng_device = generator.device if generator is not None else y.device
        keep = torch.rand(y.shape, generator=generator, device=rng_device).to(y.device) >= p
        return torch.where(keep, y, torch.full_like(y, self.null_class))


class FourierFeatures(nn.Module):
    """Each coordinate and its sinusoidal features: ``(B, D)`` -> ``(B, D (1 + features))``.

    A plain MLP on raw low-dimensional inputs learns high frequencies slowly (spectral bias); sines and
    cosines of the scaled coordinates let it represent sharp functions such as the denoiser of a
    mixture with narrow modes (Tancik et al. 2020, "Fourier Features Let Networks Learn High Frequency
    Functions in Low Dimensional Domains"). Frequencies are geometric from ``scale`` down to
    ``scale / 10^4`` (:func:`sinusoidal_embedding` of ``scale * x_i``); there are no parameters.

    Args:
        features: sinusoidal features per coordinate (0 passes the coordinates through alone).
        scale: highest angular frequency, in radians per unit of the (standardised) input.
    """

    def __init__(self, features: int, scale: float) -> None:
        super().__init__()
        self.features = features
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, D) -> (B, D + D * features)
        if self.features == 0:
            return x
        parts = [sinusoidal_embedding(x[:, i] * self.scale, self.features).to(x.dtype) for i in range(x.shape[1])]
        return torch.cat([x, *parts], dim=1)
