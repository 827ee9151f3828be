"""DDIM inversion: run the deterministic DDIM ODE backwards, from an image ``x_0`` to the noise ``x_T``
that DDIM would turn into it (Song et al. 2021, §4.3; Dhariwal & Nichol 2021, App. F; diffusers'
``DDIMInverseScheduler``).

One inverse step from the current level ``s`` (``alpha_bar_s``; 1 at ``x_0``) up to the visited step
``t > s`` reads ``eps`` from the network at ``(x_s, t)`` (the approximation that makes inversion
explicit: ``eps(x_t, t) ~ eps(x_s, t)``) and moves along the same line the forward DDIM step uses::

    x0_hat = (x_s - sqrt(1 - alpha_bar_s) eps) / sqrt(alpha_bar_s)
    x_t    = sqrt(alpha_bar_t) x0_hat + sqrt(1 - alpha_bar_t) eps

With many steps and a smooth network, sampling ``x_T`` with DDIM (``eta = 0``) and inverting the
result returns close to ``x_T``; Tree-Ring detection (:mod:`genlab.provenance.image_watermark`) needs
only its low frequencies back.
"""

from __future__ import annotations

from typing import Callable

import torch

from genlab.sampling.schedules import Sampler, split_prediction


def invert_step(sampler: Sampler, model_output: torch.Tensor, t: int, x_s: torch.Tensor) -> torch.Tensor:
    """One inverse DDIM step: ``x_s (B, *shape)`` at the level below visited step ``t`` -> ``x_t``.

    ``model_output`` is the network's prediction at ``(x_s, t)`` (extra variance channels are ignored).
    """
    if model_output.shape[1] == 2 * x_s.shape[1]:
        model_output = model_output.chunk(2, dim=1)[0]
    alpha_bar_t, alpha_bar_s = sampler.alpha_bars(t)
    _, eps = split_prediction(sampler.prediction, model_output, x_s, alpha_bar_t)
    x0 = (x_s - (1 - alpha_bar_s) ** 0.5 * eps) / alpha_bar_s ** 0.5
    return alpha_bar_t ** 0.5 * x0 + (1 - alpha_bar_t) ** 0.5 * eps


@torch.no_grad()
def invert(denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x_0: torch.Tensor,
           sampler: Sampler) -> torch.Tensor:
    """The noise ``x_T (B, *shape)`` whose DDIM trajectory over ``sampler.timesteps`` ends at ``x_0``.

    Args:
        denoise: ``denoise(x (B, *shape), t (B,) int64) -> output`` (the network, unconditional).
        x_0: ``(B, *shape)`` records in model space.
        sampler: any :class:`Sampler` after ``set_timesteps`` (its schedule, prediction and visited steps).
    """
    x = x_0
    for t in reversed(sampler.timesteps.tolist()):
        t_batch = torch.full((len(x),), t, dtype=torch.long, device=x.device)
        x = invert_step(sampler, denoise(x, t_batch), t, x)
    return x
