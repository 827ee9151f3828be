"""A small UNet for denoising images, conditioned on the diffusion step and an optional class label.

The architecture of Ho et al. (2020, appendix B) without attention, at a size for 8x8 digits and 28x28
MNIST: residual blocks (GroupNorm -> SiLU -> 3x3 conv, twice; the step/class embedding added in between)
at each resolution, stride-2 convolutions down, nearest-neighbour upsampling + 3x3 convolution up, and
skip connections concatenated across. The default widths ``(32, 64, 64)`` give about 1M parameters.

With ``patch=p > 1`` the network first folds each ``p x p`` block of pixels into channels (space-to-depth,
``pixel_unshuffle``: ``(B, C, H, W) -> (B, C p^2, H/p, W/p)``) and unfolds its output the same way at the
end, so every level runs at ``1/p`` of the resolution, about ``p^2`` times fewer FLOPs for the same widths
(the patching of Hoogeboom et al. 2023, "simple diffusion", and of U-ViT, Bao et al. 2023).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from genlab.nn.embeddings import ClassEmbedding, TimeEmbedding


def _norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups (fewer when ``channels`` is not divisible)."""
    groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


class ResBlock(nn.Module):
    """``h = conv(SiLU(GN(x))) + W e; out = conv(SiLU(GN(h))) + skip(x)``: ``(B, C_in, H, W)`` -> ``(B, C_out, H, W)``.

    Args:
        in_channels, out_channels: widths; a 1x1 convolution matches them on the skip path.
        emb_dim: width of the conditioning vector ``e``.
    """

    def __init__(self, in_channels: int, out_channels: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1 = _norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.emb = nn.Linear(emb_dim, out_channels)
        self.norm2 = _norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        # x: (B, C_in, H, W), emb: (B, E) -> (B, C_out, H, W)
        # The sums go in place into fresh convolution outputs (their backward needs neither), and without
        # autograd the SiLUs overwrite the fresh GroupNorm outputs: two fewer activation-sized buffers per
        # block, the same numbers (sampling is bound by the convolutions and by memory traffic).
        inplace = not torch.is_grad_enabled()
        h = self.conv1(F.silu(self.norm1(x), inplace=inplace))
        h += self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h), inplace=inplace))
        h += self.skip(x)
        return h


class UNet(nn.Module):
    """Noise-prediction UNet: ``x (B, C, H, W)``, ``t (B,)``, ``y (B,)`` -> ``(B, out_channels, H, W)``.

    ``H`` and ``W`` must be divisible by ``patch * 2^(len(channels) - 1)`` (8 and 28 are, for three
    levels and ``patch=1``; 28 is for two levels and ``patch=2``).

    Args:
        in_channels: image channels ``C``.
        out_channels: output channels (``C``, or ``2 C`` for a learned variance).
        channels: width at each resolution, from full to coarsest.
        blocks: residual blocks per resolution on the way down (one more on the way up).
        n_classes: number of class labels, 0 for an unconditional network; label ``n_classes`` (or
            ``y=None``) is the null class of classifier-free guidance.
        patch: side of the pixel blocks folded into channels at the input and unfolded at the output
            (1 = none, the network runs at full resolution).
    """

    def __init__(self, in_channels: int, out_channels: int, *, channels: tuple[int, ...] = (32, 64, 64),
                 blocks: int = 1, n_classes: int = 0, patch: int = 1) -> None:
        super().__init__()
        self.patch = patch
        in_channels, out_channels = in_channels * patch ** 2, out_channels * patch ** 2
        emb_dim = 4 * channels[0]
        self.time = TimeEmbedding(emb_dim, frequencies=channels[0])
        self.classes = ClassEmbedding(n_classes, emb_dim) if n_classes else None
        self.conv_in = nn.Conv2d(in_channels, channels[0], 3, padding=1)

        self.down = nn.ModuleList()
        skips = [channels[0]]
        width = channels[0]
        for level, ch in enumerate(channels):
            for _ in range(blocks):
                self.down.append(ResBlock(width, ch, emb_dim))
                width = ch
                skips.append(width)
            if level < len(channels) - 1:
                self.down.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
                skips.append(width)
        self.middle = nn.ModuleList([ResBlock(width, width, emb_dim), ResBlock(width, width, emb_dim)])
        self.up = nn.ModuleList()
        for level, ch in reversed(list(enumerate(channels))):
            for _ in range(blocks + 1):
                self.up.append(ResBlock(width + skips.pop(), ch, emb_dim))
                width = ch
            if level > 0:
                self.up.append(nn.Conv2d(width, width, 3, padding=1))   # after a 2x nearest upsample
        self.norm_out = _norm(width)
        self.conv_out = nn.Conv2d(width, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, C, H, W), t: (B,), y: (B,) or None -> (B, out_channels, H, W)
        emb = self.time(t)                                                   # (B, E)
        if self.classes is not None:
            if y is None:
                y = torch.full((len(x),), self.classes.null_class, dtype=torch.long, device=x.device)
            emb = emb + self.classes(y)
        if self.patch > 1:
            x = F.pixel_unshuffle(x, self.patch)                                # (B, C p^2, H/p, W/p)
        h = self.conv_in(x)
        skips = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
            skips.append(h)
        for layer in self.middle:
            h = layer(h, emb)
        for layer in self.up:
            if isinstance(layer, ResBlock):
                h = layer(torch.cat([h, skips.pop()], dim=1), emb)
            else:
                h = layer(F.interpolate(h, scale_factor=2, mode="nearest"))
        out = self.conv_out(F.silu(self.norm_out(h), inplace=not torch.is_grad_enabled()))
        return F.pixel_shuffle(out, self.patch) if self.patch > 1 else out
