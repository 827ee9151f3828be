"""Ancestral sampling of the DDPM reverse process (Ho et al. 2020; Nichol & Dhariwal 2021).

From ``x_t`` at visited step ``t`` to the next visited step ``s < t`` (``s = t - 1`` when every step is
visited; strided visits use the respaced schedule ``beta'_t = 1 - alpha_bar_t / alpha_bar_s``, Nichol &
Dhariwal 2021, sec. 4):

    x_s = mu~(x_t, x0) + sigma_t z,      z ~ N(0, I),

with the posterior mean of q(x_s | x_t, x_0) (Ho et al. 2020, eq. 7)

    mu~ = sqrt(alpha_bar_s) beta'_t / (1 - alpha_bar_t) x0 + sqrt(alpha'_t) (1 - alpha_bar_s) / (1 - alpha_bar_t) x_t

and the variance ``sigma_t^2`` one of (Ho et al. 2020, sec. 3.2; Nichol & Dhariwal 2021, eq. 15):

- ``fixed_small``: the posterior variance ``beta~_t = (1 - alpha_bar_s) / (1 - alpha_bar_t) beta'_t``;
- ``fixed_large``: ``beta'_t``;
- ``learned``: ``exp(f log beta'_t + (1 - f) log beta~_t)`` with ``f = (v + 1) / 2`` read from the second
  half of the network's output channels, ``v`` in ``[-1, 1]``.

One step equals diffusers' ``DDPMScheduler.step`` (variance types ``fixed_small``, ``fixed_large``,
``learned_range``) for the same output, sample, timestep and noise, except that no noise is added on
the final step, where the posterior has none.
"""

from __future__ import annotations

import math

import torch

from genlab.errors import unknown_choice
from genlab.sampling.schedules import NoiseSchedule, Sampler

VARIANCES: tuple[str, ...] = ("fixed_small", "fixed_large", "learned")


class DDPMSampler(Sampler):
    """Ancestral DDPM sampler; ``variance`` picks the reverse-step variance (see the module docstring).

    Args:
        schedule: the training schedule.
        prediction: ``"eps"``, ``"x0"`` or ``"v"``.
        variance: ``"fixed_small"``, ``"fixed_large"`` or ``"learned"`` (the network outputs twice the
            channels: prediction then the interpolation value ``v``).
        clip: clamp the predicted ``x0`` into ``[-clip, clip]``, or ``None``.
    """

    def __init__(self, schedule: NoiseSchedule, *, prediction: str = "eps", variance: str = "fixed_small",
                 clip: float | None = None) -> None:
        if variance not in VARIANCES:
            raise unknown_choice("variance", variance, VARIANCES)
        super().__init__(schedule, prediction=prediction, clip=clip)
        self.variance = variance

    def log_variances(self, t: int) -> tuple[float, float]:
        """``(log beta~_t, log beta'_t)``, the posterior and forward log-variances of the step from ``t``.

        The posterior variance is floored at ``1e-20`` (it is 0 on the step to ``x_0``), as in diffusers.
        """
        alpha_bar_t, alpha_bar_prev = self.alpha_bars(t)
        beta_t = 1 - alpha_bar_t / alpha_bar_prev
        posterior = max((1 - alpha_bar_prev) / (1 - alpha_bar_t) * beta_t, 1e-20)
        return math.log(posterior), math.log(beta_t)

    def step(self, model_output: torch.Tensor, t: int, x_t: torch.Tensor, *,
             generator: torch.Generator | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
        """One ancestral step from ``x_t`` at visited timestep ``t``.

        Args:
            model_output: ``(B, *shape)``, or ``(B, 2 C, ...)`` with ``variance="learned"``.
            t: a timestep of :attr:`timesteps`.
            x_t: ``(B, *shape)`` current sample.
            generator: draws ``z`` (``torch.randn`` of ``x_t``'s shape on the generator's device).
            noise: ``z`` itself, ``(B, *shape)``, instead of drawing it.

        Returns:
            ``x_prev (B, *shape)`` at the next visited timestep (``x_0`` after the last).
        """
        frac = None
        if self.variance == "learned":
            model_output, v = model_output.chunk(2, dim=1)
            frac = (v + 1) / 2
        alpha_bar_t, alpha_bar_prev = self.alpha_bars(t)
        x0, _ = self.split(model_output, t, x_t)
        beta_t = 1 - alpha_bar_t / alpha_bar_prev
        mean = ((alpha_bar_prev ** 0.5 * beta_t / (1 - alpha_bar_t)) * x0
                + ((1 - beta_t) ** 0.5 * (1 - alpha_bar_prev) / (1 - alpha_bar_t)) * x_t)
        if self._previous[int(t)] < 0:
            return mean
        if noise is None:
            noise = torch.randn(x_t.shape, generator=generator, dtype=x_t.dtype,
                                device=generator.device if generator is not None else x_t.device)
        noise = noise.to(x_t.device, x_t.dtype)
        log_small, log_large = self.log_variances(t)
        if self.variance == "fixed_small":
            std = math.exp(0.5 * log_small)
        elif self.variance == "fixed_large":
            std = math.exp(0.5 * log_large)
        else:
            std = torch.exp(0.5 * (frac * log_large + (1 - frac) * log_small))
        return mean + std * noise
