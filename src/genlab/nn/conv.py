"""DCGAN-style convolutional blocks for small square images (Radford, Metz & Chintala 2016).

:class:`ConvEncoder` halves the resolution with strided 4x4 convolutions (no pooling) and ends in a
linear map to a feature vector; :class:`ConvDecoder` mirrors it with transposed convolutions. The GAN
uses them as discriminator and generator, the VAE as encoder and decoder.

The number of halvings follows from the image size: halve while the side is even and larger than 4, so
8x8 images go 8 -> 4 and 28x28 (MNIST) images go 28 -> 14 -> 7. The channel width doubles at each halving.
"""

from __future__ import annotations

from torch import nn

from genlab.errors import NotSupportedError


def base_size(size: int) -> tuple[int, int]:
    """``(s0, halvings)``: the smallest side and how many times ``size`` is halved to reach it.

    Raises:
        NotSupportedError: the side cannot be halved at all (odd, or at most 4).
    """
    halvings = 0
    while size % 2 == 0 and size > 4:
        size //= 2
        halvings += 1
    if halvings == 0:
        raise NotSupportedError(f"convolutional networks need an even image side larger than 4 "
                                f"(e.g. 8, 28, 32), got {size}")
    return size, halvings


def _square_side(shape: tuple[int, ...]) -> int:
    channels, height, width = shape
    if height != width:
        raise NotSupportedError(f"convolutional networks need square images, got {height}x{width}")
    return height


class ConvEncoder(nn.Module):
    """Strided convolutions then a linear map: ``(B, C, H, W)`` -> ``(B, out_features)``.

    Each layer is ``Conv2d(4x4, stride 2) -> LeakyReLU(0.2)``; widths ``width, 2 width, ...``. There is no
    batch normalisation, so the output of one record never depends on the rest of the batch (needed by
    the WGAN-GP and R1 penalties, which differentiate per record).

    Args:
        shape: ``(C, H, W)`` of the input, square with ``H`` as in :func:`base_size`.
        out_features: width of the output.
        width: channels of the first convolution.
    """

    def __init__(self, shape: tuple[int, int, int], out_features: int, *, width: int = 64) -> None:
        super().__init__()
        s0, halvings = base_size(_square_side(shape))
        layers: list[nn.Module] = []
        channels = shape[0]
        for i in range(halvings):
            out = width * 2 ** i
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            channels = out
        self.convs = nn.Sequential(*layers)
        self.linear = nn.Linear(channels * s0 * s0, out_features)

    def forward(self, x):
        # x: (B, C, H, W) -> h: (B, C', s0, s0) -> (B, out_features)
        return self.linear(self.convs(x).flatten(1))


class ConvDecoder(nn.Module):
    """A linear map to a small feature map, then transposed convolutions: ``(B, in_features)`` -> ``(B, C, H, W)``.

    Layers: ``Linear -> (B, 2^(L-1) width, s0, s0)``, then ``L`` times ``[BatchNorm -> ReLU ->
    ConvTranspose2d(4x4, stride 2)]`` (DCGAN's generator), and a last ``BatchNorm -> ReLU -> Conv2d(3x3)``
    to the output channels. The output is unbounded (the caller applies ``tanh`` or reads it as logits).

    Args:
        in_features: width of the input vector (latent plus any class embedding).
        shape: ``(C, H, W)`` of the output.
        width: channels before the last convolution.
    """

    def __init__(self, in_features: int, shape: tuple[int, int, int], *, width: int = 64) -> None:
        super().__init__()
        s0, halvings = base_size(_square_side(shape))
        channels = width * 2 ** (halvings - 1)
        self.start = (channels, s0, s0)
        self.linear = nn.Linear(in_features, channels * s0 * s0)
        layers: list[nn.Module] = []
        for i in reversed(range(halvings)):
            out = width * 2 ** max(i - 1, 0)
            layers += [nn.BatchNorm2d(channels), nn.ReLU(), nn.ConvTranspose2d(channels, out, 4, stride=2, padding=1)]
            channels = out
        layers += [nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, shape[0], 3, padding=1)]
        self.convs = nn.Sequential(*layers)

    def forward(self, h):
        # h: (B, in_features) -> (B, C0, s0, s0) -> (B, C, H, W)
        return self.convs(self.linear(h).view(-1, *self.start))
