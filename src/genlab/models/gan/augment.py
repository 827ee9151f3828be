"""Differentiable augmentation of the images a discriminator sees (DiffAugment, Zhao et al. 2020).

With few training images the discriminator memorises them and its gradients stop guiding the generator.
DiffAugment applies the same random, differentiable transforms ``T`` to real and generated images in
both players' losses, ``D(T(x))`` and ``D(T(G(z)))``: the discriminator can no longer tell the sets apart
by exact pixels, and since ``T`` is differentiable the generator still gets gradients through it (and,
unlike augmenting the real images only, it is not taught to draw augmented images).

The two transforms the paper recommends for small sets:

- translation: shift by up to ``1/8`` of the side in each direction, padding with zeros;
- cutout: zero a square of half the side at a random place.

Zero is the middle gray of model space ``[-1, 1]``.
"""

from __future__ import annotations

import torch


def diff_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Translation then cutout, drawn independently per image.

    Args:
        x: images ``(B, C, H, W)`` in model space.
        generator: source of the shifts and the cutout positions (on its own device).

    Returns:
        ``(B, C, H, W)``, differentiable in ``x``.
    """
    return cutout(translate(x, generator, ratio=0.125), generator, ratio=0.5)


def translate(x: torch.Tensor, generator: torch.Generator, ratio: float) -> torch.Tensor:
    """Shift each image by integers ``(dy, dx)`` uniform in ``[-r, r]``, ``r = round(ratio * side)``,
    filling with zeros: ``out[b, :, i, j] = x[b, :, i - dy_b, j - dx_b]`` where that lies inside."""
    B, _, H, W = x.shape
    ry, rx = round(ratio * H), round(ratio * W)
    shift = _integers(B, (ry, rx), generator, x.device)                            # (B, 2) in [-r, r]
    rows = torch.arange(H, device=x.device)[None, :] - shift[:, :1]               # (B, H) source row
    cols = torch.arange(W, device=x.device)[None, :] - shift[:, 1:]               # (B, W) source column
    inside = ((rows >= 0) & (rows < H))[:, :, None] & ((cols >= 0) & (cols < W))[:, None, :]   # (B, H, W)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))                             # index -1 / H read zeros
    rows, cols = rows.clamp(-1, H) + 1, cols.clamp(-1, W) + 1
    gathered = padded[torch.arange(B, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return gathered.permute(0, 3, 1, 2) * inside[:, None]                          # (B, H, W, C) -> (B, C, H, W)


def cutout(x: torch.Tensor, generator: torch.Generator, ratio: float) -> torch.Tensor:
    """Zero a ``round(ratio * H) x round(ratio * W)`` square per image, its centre uniform over the image
    (the square may be clipped at the border)."""
    B, _, H, W = x.shape
    h, w = round(ratio * H), round(ratio * W)
    centre = _integers(B, (H // 2, W // 2), generator, x.device) + torch.tensor([H // 2, W // 2], device=x.device)
    top, left = centre[:, :1] - h // 2, centre[:, 1:] - w // 2                    # (B, 1) each
    rows, cols = torch.arange(H, device=x.device)[None, :], torch.arange(W, device=x.device)[None, :]
    in_rows = (rows >= top) & (rows < top + h)                                    # (B, H)
    in_cols = (cols >= left) & (cols < left + w)                                  # (B, W)
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])                           # (B, H, W)
    return x * keep[:, None].to(x.dtype)


def _integers(n: int, bounds: tuple[int, int], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """``(n, 2)`` integers, column ``k`` uniform in ``[-bounds[k], bounds[k]]``."""
    high = torch.tensor(bounds, device=generator.device)
    draws = torch.rand(n, 2, generator=generator, device=generator.device) * (2 * high + 1)
    return (draws.floor().long() - high).to(device)
