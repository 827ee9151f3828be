"""DDIM: the non-Markovian reverse process of Song, Meng & Ermon (2021), "Denoising Diffusion Implicit Models".

From ``x_t`` to the next visited step ``s < t`` (eq. 12):

    x_s = sqrt(alpha_bar_s) x0 + sqrt(1 - alpha_bar_s - sigma_t^2) eps + sigma_t z,    z ~ N(0, I),
    sigma_t = eta sqrt((1 - alpha_bar_s) / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_s)   (eq. 16),

where ``(x0, eps)`` are read from the network's output. ``eta = 0`` is the deterministic DDIM sampler
(an ODE solver: few steps suffice); ``eta = 1`` has DDPM's posterior variance. One step equals diffusers'
``DDIMScheduler.step`` (``set_alpha_to_one=True``) for the same output, sample, timestep and noise.
"""

from __future__ import annotations

import torch

from genlab.errors import ConfigError
from genlab.sampling.schedules import NoiseSchedule, Sampler


class DDIMSampler(Sampler):
    """DDIM sampler with stochasticity ``eta`` (0 = deterministic, 1 = DDPM-like).

    Args:
        schedule: the training schedule.
        prediction: ``"eps"``, ``"x0"`` or ``"v"``.
        eta: ``>= 0``, the share of the posterior standard deviation re-injected as fresh noise.
        clip: clamp the predicted ``x0`` into ``[-clip, clip]``, or ``None``.
    """

    def __init__(self, schedule: NoiseSchedule, *, prediction: str = "eps", eta: float = 0.0,
                 clip: float | None = None) -> None:
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not eta >= 0:
            raise ConfigError(f"eta must be a number >= 0 (0 is deterministic DDIM), got {eta!r}")
        super().__init__(schedule, prediction=prediction, clip=clip)
        self.eta = float(eta)

    def step(self, model_output: torch.Tensor, t: int, x_t: torch.Tensor, *,
             generator: torch.Generator | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
        """One DDIM step from ``x_t`` at visited timestep ``t`` (eq. 12).

        Args:
            model_output: ``(B, *shape)`` the network's prediction (extra variance channels are ignored).
            t: a timestep of :attr:`timesteps`.
            x_t: ``(B, *shape)`` current sample.
            generator: draws ``z`` when ``eta > 0``.
            noise: ``z`` itself, ``(B, *shape)``, instead of drawing it.

        Returns:
            ``x_prev (B, *shape)`` at the next visited timestep.
        """
        if model_output.shape[1] == 2 * x_t.shape[1]:
            model_output = model_output.chunk(2, dim=1)[0]   # a learned-variance network's mean part
        alpha_bar_t, alpha_bar_prev = self.alpha_bars(t)
        x0, eps = self.split(model_output, t, x_t)
        variance = (1 - alpha_bar_prev) / (1 - alpha_bar_t) * (1 - alpha_bar_t / alpha_bar_prev)
        sigma = self.eta * variance ** 0.5
        x_prev = alpha_bar_prev ** 0.5 * x0 + max(1 - alpha_bar_prev - sigma ** 2, 0.0) ** 0.5 * eps
        if sigma > 0:
            if noise is None:
                noise = torch.randn(x_t.shape, generator=generator, dtype=x_t.dtype,
                                    device=generator.device if generator is not None else x_t.device)
            x_prev = x_prev + sigma * noise.to(x_t.device, x_t.dtype)
        return x_prev
