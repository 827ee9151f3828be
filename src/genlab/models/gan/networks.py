"""The generator, the (projection) discriminator and the pair the Trainer optimises."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Generator(nn.Module):
    """``G(z, y)``: ``z (B, latent_dim)`` and labels ``y (B,)`` -> records ``(B, *shape)`` in model space.

    Args:
        body: ``(B, latent_dim [+ embed_dim])`` -> ``(B, *shape)``.
        n_classes: classes of a conditional generator, 0 for none.
        embed_dim: width of the class embedding concatenated to ``z``.
        bounded: apply ``tanh`` (images live in ``[-1, 1]``).
    """

    def __init__(self, body: nn.Module, n_classes: int, embed_dim: int, bounded: bool) -> None:
        super().__init__()
        self.body = body
        self.embed = nn.Embedding(n_classes, embed_dim) if n_classes else None
        self.bounded = bounded

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        # z: (B, latent_dim), y: (B,) -> h: (B, latent_dim + embed_dim) -> x: (B, *shape)
        h = z if self.embed is None else torch.cat([z, self.embed(y)], dim=1)
        x = self.body(h)
        return torch.tanh(x) if self.bounded else x


class Discriminator(nn.Module):
    """Projection discriminator on packed records: ``(B', *packed_shape)``, ``y (B', m)`` -> logits ``(B',)``.

    ``D(x, y) = w^T phi(x) + sum_j <E(y_j), phi(x)>`` (Miyato & Koyama 2018 eq. 3, summed over the ``m``
    packed labels); without classes only the first term. There is no output bias: under the WGAN loss,
    and the hinge loss inside its margins, a constant cancels between real and fake and would never learn.

    Args:
        body: ``phi`` before its activation, ``(B', *packed_shape)`` -> ``(B', features)``.
        features: width of ``phi(x)``.
        n_classes: classes of a conditional discriminator, 0 for none.
    """

    def __init__(self, body: nn.Module, features: int, n_classes: int) -> None:
        super().__init__()
        self.body = body
        self.head = nn.Linear(features, 1, bias=False)
        self.embed = nn.Embedding(n_classes, features) if n_classes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B', m*C, H, W) or (B', m*D); y: (B', m) -> phi: (B', F) -> (B',)
        phi = F.leaky_relu(self.body(x), 0.2)
        logits = self.head(phi).squeeze(1)
        if self.embed is not None:
            logits = logits + (self.embed(y).sum(1) * phi).sum(1)
        return logits


class GANNetwork(nn.Module):
    """The generator and discriminator, plus the class prior used to draw labels when sampling.

    Attributes:
        generator: :class:`Generator`.
        discriminator: :class:`Discriminator`.
        class_log_prior: buffer ``(n_classes,)``, log class frequencies of the training data
            (conditional models only).
        rejection_critic: an unpacked :class:`Discriminator` whose logit estimates
            ``log p_data(x) / p_g(x)`` for rejection sampling, or ``None`` (``GANConfig.drs``).
    """

    def __init__(self, generator: Generator, discriminator: Discriminator, n_classes: int,
                 rejection_critic: Discriminator | None = None) -> None:
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator
        self.rejection_critic = rejection_critic
        if n_classes:
            self.register_buffer("class_log_prior", torch.full((n_classes,), -math.log(n_classes)))
