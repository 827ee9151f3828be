"""A small convolutional image classifier, genlab's own feature extractor for image metrics.

Two ``Conv2d(3x3, padding 1) -> ReLU -> MaxPool(2)`` blocks (widths ``width`` and ``2 width``), a hidden
linear layer whose ReLU output is the *feature vector*, and a linear head to class logits: the LeNet-5
layout (LeCun et al. 1998) with ReLU and max pooling. It plays the role Inception-v3 plays for FID
(Heusel et al. 2017): Fréchet distance, KID and precision/recall are computed on :meth:`features`.

There is no batch normalisation and no dropout, so a record's features never depend on the rest of the
batch and training randomness is only the initial weights and the order of the records.
"""

from __future__ import annotations

import torch
from torch import nn

from genlab.errors import NotSupportedError

#: Smallest image side: two 2x poolings must leave at least one pixel.
MIN_SIDE = 4


class ImageClassifier(nn.Module):
    """Images to class logits, with the penultimate layer exposed as features.

    Shapes for ``shape = (C, H, W)``: ``(B, C, H, W) -> (B, w, H/2, W/2) -> (B, 2w, H/4, W/4)`` (floor
    division at each pooling) ``-> (B, features)`` -> ``(B, n_classes)``. For 1x8x8 digits with the defaults:
    ``(B, 32, 2, 2)`` -> 128 features; for 1x28x28 MNIST: ``(B, 32, 7, 7)`` -> 128 features.

    Args:
        shape: ``(C, H, W)`` of the input images, ``H, W >= 4``.
        n_classes: number of classes, ``>= 2``.
        width: channels of the first convolution (the second has ``2 width``).
        features: width of the feature vector (the hidden linear layer).

    Raises:
        NotSupportedError: the image is smaller than 4x4 or there are fewer than 2 classes.
    """

    def __init__(self, shape: tuple[int, int, int], n_classes: int, *, width: int = 16, features: int = 128) -> None:
        super().__init__()
        channels, height, width_px = shape
        if min(height, width_px) < MIN_SIDE:
            raise NotSupportedError(f"the image classifier needs images of at least {MIN_SIDE}x{MIN_SIDE} pixels, "
                                    f"got {height}x{width_px}")
        if n_classes < 2:
            raise NotSupportedError(f"the image classifier needs at least 2 classes, got {n_classes}")
        self.shape = tuple(shape)
        self.convs = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.hidden = nn.Linear(2 * width * (height // 4) * (width_px // 4), features)
        self.head = nn.Linear(features, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer activations: ``(B, C, H, W)`` in ``[0, 1]`` -> ``(B, features)``, non-negative."""
        # x: (B, C, H, W) -> (B, 2w, H/4, W/4) -> (B, 2w * H/4 * W/4) -> (B, features)
        return torch.relu(self.hidden(self.convs(x).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits: ``(B, C, H, W)`` -> ``(B, n_classes)``."""
        return self.head(self.features(x))
