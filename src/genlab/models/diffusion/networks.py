"""The denoiser of points and table rows: a time- (and class-) conditioned MLP; images use the UNets of
:mod:`genlab.nn`."""

from __future__ import annotations

import torch
from torch import nn

from genlab.nn.embeddings import ClassEmbedding, FourierFeatures, TimeEmbedding
from genlab.nn.mlp import MLP


class PointDenoiser(nn.Module):
    """The network for points: ``MLP([x, fourier(x), e(t) + e(y)])``.

    Shapes: ``x (B, D)``, ``t (B,)``, ``y (B,)`` -> ``(B, out_features)``.

    Args:
        dim: point dimension ``D``.
        out_features: ``D``, or ``2 D`` for a learned variance.
        hidden: MLP width; also the embedding width.
        depth: MLP hidden layers.
        n_classes: number of labels, 0 for an unconditional network (label ``n_classes`` is null).
        fourier_features, fourier_scale: see :class:`~genlab.nn.embeddings.FourierFeatures`.
    """

    def __init__(self, dim: int, out_features: int, *, hidden: int, depth: int, n_classes: int,
                 fourier_features: int, fourier_scale: float) -> None:
        super().__init__()
        self.fourier = FourierFeatures(fourier_features, fourier_scale)
        self.time = TimeEmbedding(hidden)
        self.classes = ClassEmbedding(n_classes, hidden) if n_classes else None
        self.mlp = MLP(dim * (1 + fourier_features) + hidden, out_features, hidden=hidden, depth=depth)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, D), t: (B,), y: (B,) or None -> (B, out)
        emb = self.time(t)                                                   # (B, hidden)
        if self.classes is not None:
            if y is None:
                y = torch.full((len(x),), self.classes.null_class, dtype=torch.long, device=x.device)
            emb = emb + self.classes(y)
        return self.mlp(torch.cat([self.fourier(x), emb], dim=1))
