"""The discriminator's losses (non-saturating, hinge, WGAN-GP, R1) and PacGAN packing."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from genlab.models.gan.config import GANConfig
from genlab.train import Losses


def critic_loss(config: GANConfig, critic: Callable[..., torch.Tensor], real_p: torch.Tensor, fake_p: torch.Tensor,
                *, pair_labels: torch.Tensor | None, rng: torch.Generator) -> Losses:
    """The discriminator's loss on packed real and fake batches, with its penalties.

    ``ns``: ``softplus(-D(x)) + softplus(D(G(z)))`` (Goodfellow et al. 2014); ``hinge``: ``relu(1 - D(x)) +
    relu(1 + D(G(z)))`` (Lim & Ye 2017); ``wgan-gp``: ``D(G(z)) - D(x) + gp (||grad D(x_hat)|| - 1)^2`` on
    random interpolates ``x_hat`` (Gulrajani et al. 2017); plus ``r1/2 ||grad D(x)||^2`` on real data
    (Mescheder et al. 2018) when ``r1 > 0``.

    Args:
        critic: ``critic(x)`` -> scores ``(B,)``; called with ``labels`` as a second argument for both
            halves at once when ``pair_labels`` (labels of ``[real_p, fake_p]``) is given.
        real_p, fake_p: packed real and fake records ``(B, ...)`` (fake detached from the generator).
    """
    if config.r1 > 0:
        real_p = real_p.detach().requires_grad_(True)
    both = torch.cat([real_p, fake_p])
    d_real, d_fake = (critic(both) if pair_labels is None else critic(both, pair_labels)).chunk(2)
    parts: dict[str, float] = {}
    if config.loss == "ns":
        loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    elif config.loss == "hinge":
        loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    else:
        loss = d_fake.mean() - d_real.mean()
        parts["wasserstein"] = float(-loss.detach())
        eps = torch.rand(len(real_p), *[1] * (real_p.dim() - 1), generator=rng, device=rng.device).to(real_p)
        x_hat = (eps * real_p.detach() + (1 - eps) * fake_p).requires_grad_(True)
        norm = (input_gradient_norm_sq(critic(x_hat), x_hat) + 1e-12).sqrt()   # + eps: finite at 0
        gp = (norm - 1).pow(2).mean()
        loss = loss + config.gp * gp
        parts["gp"] = float(gp.detach())
    if config.r1 > 0:
        r1 = input_gradient_norm_sq(d_real, real_p).mean()
        loss = loss + config.r1 / 2 * r1
        parts["r1"] = float(r1.detach())
    parts["d_real"], parts["d_fake"] = float(d_real.detach().mean()), float(d_fake.detach().mean())
    return Losses(loss, parts)


def pack(x: torch.Tensor, y: torch.Tensor | None, m: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Group consecutive records in ``m``-tuples for a PacGAN discriminator (Lin et al. 2018 sec. 3).

    Args:
        x: ``(B, D)`` points or ``(B, C, H, W)`` images; the last ``B mod m`` records are dropped.
        y: ``(B,)`` labels or ``None``.
        m: packing degree.

    Returns:
        ``(B // m, m*D)`` or ``(B // m, m*C, H, W)`` (records concatenated along coordinates or channels),
        and labels ``(B // m, m)`` or ``None``.
    """
    groups = x.shape[0] // m
    packed = x[: groups * m].reshape(groups, m * x.shape[1], *x.shape[2:])
    return packed, None if y is None else y[: groups * m].reshape(groups, m)


def input_gradient_norm_sq(scores: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """``||grad_x D(x)||^2`` per record, differentiable (``create_graph``): ``scores (B',)`` -> ``(B',)``."""
    (grad,) = torch.autograd.grad(scores.sum(), inputs, create_graph=True)
    return grad.flatten(1).pow(2).sum(1)
