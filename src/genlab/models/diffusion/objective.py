"""The variational bound's term that trains a learned reverse variance (Improved DDPM)."""

from __future__ import annotations

import math

import torch

from genlab.sampling.schedules import NoiseSchedule, split_prediction


def vlb_term(schedule: NoiseSchedule, prediction: str, output: torch.Tensor, v: torch.Tensor,
              x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The bound's term ``L_t`` in nats per coordinate, ``(B,)`` (Nichol & Dhariwal 2021, eq. 4-6).

    ``t > 0``: ``KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))``; ``t = 0``: the decoder's negative
    log-likelihood ``-log N(x_0; mu, sigma^2)`` (a continuous density, also for images, where Improved
    DDPM discretises it to 8 bits).

    Args:
        output: ``(B, *shape)`` the (detached) mean prediction; ``v``: ``(B, *shape)`` variance interpolation.
        x0, x_t: ``(B, *shape)``; ``t``: ``(B,)`` timesteps.
    """
    abar = schedule.gather(schedule.alpha_bar, t, x0)
    abar_prev = schedule.gather(schedule.alpha_bar_prev, t, x0)
    beta = schedule.gather(schedule.betas, t, x0)
    # The posterior variance is 0 at t = 0; use the next step's value there (Nichol & Dhariwal's clipping).
    posterior = schedule.posterior_variance
    log_posterior = schedule.gather(torch.cat([posterior[1:2], posterior[1:]]).log(), t, x0)

    def mean(x_start: torch.Tensor) -> torch.Tensor:   # Ho et al. 2020, eq. 7
        return ((abar_prev.sqrt() * beta / (1 - abar)) * x_start
                + ((1 - beta).sqrt() * (1 - abar_prev) / (1 - abar)) * x_t)

    frac = (v + 1) / 2
    log_var = frac * beta.log() + (1 - frac) * log_posterior
    x0_hat, _ = split_prediction(prediction, output, x_t, abar)
    mu_q, mu_p = mean(x0), mean(x0_hat)
    kl = 0.5 * (-1.0 + log_var - log_posterior + (log_posterior - log_var).exp()
                + (mu_q - mu_p).pow(2) * (-log_var).exp())
    nll = 0.5 * (math.log(2 * math.pi) + log_var + (x0 - mu_p).pow(2) * (-log_var).exp())
    first = (t == 0).reshape(-1, *([1] * (x0.dim() - 1)))
    return torch.where(first, nll, kl).flatten(1).mean(1)
