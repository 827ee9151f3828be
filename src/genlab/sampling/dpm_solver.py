"""DPM-Solver++(2M): a second-order multistep solver of the diffusion ODE (Lu et al. 2022,
"DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic Models", Algorithm 2).

With ``alpha_t = sqrt(alpha_bar_t)``, ``sigma_t = sqrt(1 - alpha_bar_t)``, the half log-SNR
``lambda_t = log(alpha_t / sigma_t)`` and the data prediction ``x0_t``, one step from the previous
visited time ``s`` to ``t`` with ``h = lambda_t - lambda_s`` is

    x_t = (sigma_t / sigma_s) x_s - alpha_t (exp(-h) - 1) D,
    D   = (1 + 1 / (2 r)) x0_s - 1 / (2 r) x0_{s'},      r = h_{s'} / h,

using the data prediction ``x0_{s'}`` of the step before (first order, ``D = x0_s``, on the first step).
The last step goes to ``alpha_bar = 1`` (``sigma = 0``), where the update is the data prediction itself,
so it is taken at first order. Ten to twenty steps reach the quality DDIM needs fifty or more for.
"""

from __future__ import annotations

import math

import torch

from genlab.sampling.schedules import NoiseSchedule, Sampler


class DPMSolverSampler(Sampler):
    """DPM-Solver++(2M) sampler (deterministic). It keeps the previous step's ``x0``: call
    :meth:`set_timesteps` before each new trajectory.

    Args:
        schedule: the training schedule.
        prediction: ``"eps"``, ``"x0"`` or ``"v"``.
        clip: clamp the predicted ``x0`` into ``[-clip, clip]``, or ``None``.
    """

    def __init__(self, schedule: NoiseSchedule, *, prediction: str = "eps", clip: float | None = None) -> None:
        self._history: list[tuple[float, torch.Tensor]] = []
        super().__init__(schedule, prediction=prediction, clip=clip)

    def set_timesteps(self, steps: int, spacing: str = "trailing") -> None:
        """Visit ``steps`` timesteps and forget the previous trajectory's ``x0``."""
        super().set_timesteps(steps, spacing)
        self._history = []

    def step(self, model_output: torch.Tensor, t: int, x_t: torch.Tensor, *,
             generator: torch.Generator | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
        """One solver step from ``x_t`` at visited timestep ``t``.

        Args:
            model_output: ``(B, *shape)`` the network's prediction (extra variance channels are ignored).
            t: a timestep of :attr:`timesteps`, visited in order.
            x_t: ``(B, *shape)`` current sample.
            generator, noise: unused (the solver is deterministic); accepted so samplers are swappable.

        Returns:
            ``x_prev (B, *shape)`` at the next visited timestep.
        """
        if model_output.shape[1] == 2 * x_t.shape[1]:
            model_output = model_output.chunk(2, dim=1)[0]
        alpha_bar_s, alpha_bar_t = self.alpha_bars(t)   # s: where x_t is now; t: the target
        x0, _ = self.split(model_output, t, x_t)
        lambda_s = 0.5 * math.log(alpha_bar_s / (1 - alpha_bar_s))
        previous = self._history[-1] if self._history else None
        self._history = [(lambda_s, x0)]
        if alpha_bar_t >= 1.0:
            return x0
        lambda_t = 0.5 * math.log(alpha_bar_t / (1 - alpha_bar_t))
        h = lambda_t - lambda_s
        d = x0
        if previous is not None:
            lambda_before, x0_before = previous
            r = (lambda_s - lambda_before) / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_before
        sigma_ratio = ((1 - alpha_bar_t) / (1 - alpha_bar_s)) ** 0.5
        return sigma_ratio * x_t - alpha_bar_t ** 0.5 * math.expm1(-h) * d
