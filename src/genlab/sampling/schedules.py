"""Noise schedules of Gaussian diffusion and the closed forms every sampler shares.

The forward process (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", eq. 2 and 4) adds noise
in ``T`` steps with variances ``beta_1..beta_T``:

    q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I),
    q(x_t | x_0)     = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I),   alpha_bar_t = prod_{s<=t} (1 - beta_s),

so ``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps``. Timesteps are 0-based as in diffusers:
index ``t`` in ``0..T-1`` holds the paper's step ``t + 1``.

Two schedules, numerically identical to diffusers' ``DDPMScheduler`` (``beta_schedule="linear"`` and
``"squaredcos_cap_v2"``):

- ``linear``: ``beta`` evenly spaced from ``1e-4`` to ``0.02`` (Ho et al. 2020, sec. 4);
- ``cosine``: ``alpha_bar(s) = cos^2((s + 0.008) / 1.008 * pi / 2)`` and
  ``beta_t = min(1 - alpha_bar((t + 1) / T) / alpha_bar(t / T), 0.999)`` (Nichol & Dhariwal 2021,
  "Improved Denoising Diffusion Probabilistic Models", eq. 17).

A network's output is read as one of three targets (``prediction``), each of which determines the
others given ``x_t``:

- ``eps``: the noise (Ho et al. 2020);
- ``x0``: the clean record;
- ``v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0`` (Salimans & Ho 2022, "Progressive
  Distillation", eq. in sec. 4 / appendix D).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from genlab.errors import ConfigError, unknown_choice

Schedule = Literal["linear", "cosine"]
Prediction = Literal["eps", "x0", "v"]
SCHEDULES: tuple[str, ...] = ("linear", "cosine")
PREDICTIONS: tuple[str, ...] = ("eps", "x0", "v")


def linear_betas(timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """Ho et al. (2020) betas, float64 ``(T,)`` evenly spaced from ``beta_start`` to ``beta_end``."""
    return torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)


def cosine_betas(timesteps: int, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal (2021, eq. 17) betas, float64 ``(T,)``, each capped at ``max_beta``."""

    def alpha_bar(s: float) -> float:
        return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar((i + 1) / timesteps) / alpha_bar(i / timesteps), max_beta)
             for i in range(timesteps)]
    return torch.tensor(betas, dtype=torch.float64)


@dataclass(frozen=True)
class NoiseSchedule:
    """The tables of one schedule, float64 ``(T,)`` on the CPU (samplers read them as Python floats).

    Attributes:
        betas: ``beta_t``, the variance added at step ``t``, in ``(0, 1)``.
        alphas: ``alpha_t = 1 - beta_t``.
        alpha_bar: ``alpha_bar_t = prod_{s<=t} alpha_s``, decreasing from ``~1`` towards ``0``.
    """

    betas: torch.Tensor
    alphas: torch.Tensor
    alpha_bar: torch.Tensor

    @classmethod
    def create(cls, name: str, timesteps: int) -> "NoiseSchedule":
        """The ``linear`` or ``cosine`` schedule with ``timesteps`` steps.

        Raises:
            ConfigError: an unknown schedule name (the message lists the valid ones).
        """
        if name == "linear":
            betas = linear_betas(timesteps)
        elif name == "cosine":
            betas = cosine_betas(timesteps)
        else:
            raise unknown_choice("noise schedule", name, SCHEDULES)
        alphas = 1.0 - betas
        return cls(betas=betas, alphas=alphas, alpha_bar=torch.cumprod(alphas, dim=0))

    @property
    def timesteps(self) -> int:
        """The number of forward steps ``T``."""
        return len(self.betas)

    @property
    def alpha_bar_prev(self) -> torch.Tensor:
        """``alpha_bar_{t-1}`` with ``alpha_bar_{-1} = 1``, float64 ``(T,)``."""
        return torch.cat([torch.ones(1, dtype=self.alpha_bar.dtype), self.alpha_bar[:-1]])

    @property
    def posterior_variance(self) -> torch.Tensor:
        """``beta~_t = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)``, the variance of ``q(x_{t-1} | x_t, x_0)``
        (Ho et al. 2020, eq. 7), float64 ``(T,)``; 0 at ``t = 0``."""
        return self.betas * (1 - self.alpha_bar_prev) / (1 - self.alpha_bar)

    def gather(self, table: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``table[t]`` shaped to broadcast against ``like``: ``t (B,)`` -> ``(B, 1, ..., 1)``."""
        values = table.to(like.device)[t.to(like.device)].to(like.dtype)
        return values.reshape(-1, *([1] * (like.dim() - 1)))

    def add_noise(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Draw from ``q(x_t | x_0)`` (Ho et al. 2020, eq. 4): ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``.

        Args:
            x0: ``(B, *shape)`` clean records.
            eps: ``(B, *shape)`` standard normal noise.
            t: ``(B,)`` int64 timesteps in ``0..T-1``.
        """
        abar = self.gather(self.alpha_bar, t, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * eps

    def target(self, prediction: str, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What a network trained for ``prediction`` should output for ``x_t = add_noise(x0, eps, t)``."""
        if prediction == "eps":
            return eps
        if prediction == "x0":
            return x0
        if prediction == "v":
            abar = self.gather(self.alpha_bar, t, x0)
            return abar.sqrt() * eps - (1 - abar).sqrt() * x0
        raise unknown_choice("prediction", prediction, PREDICTIONS)


def split_prediction(prediction: str, model_output: torch.Tensor, x_t: torch.Tensor,
                     alpha_bar_t: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a network output as ``(x0, eps)`` using ``x_t = sqrt(abar) x0 + sqrt(1 - abar) eps``.

    Args:
        prediction: ``"eps"``, ``"x0"`` or ``"v"``.
        model_output: ``(B, *shape)`` the network's prediction.
        x_t: ``(B, *shape)`` the noisy input.
        alpha_bar_t: ``alpha_bar`` at the input's timestep, a float or a tensor broadcastable to ``x_t``.

    Returns:
        ``x0`` and ``eps``, both ``(B, *shape)``.
    """
    a = alpha_bar_t ** 0.5
    s = (1 - alpha_bar_t) ** 0.5
    if prediction == "eps":
        eps = model_output
        return (x_t - s * eps) / a, eps
    if prediction == "x0":
        x0 = model_output
        return x0, (x_t - a * x0) / s
    if prediction == "v":
        # v = a eps - s x0 and x_t = a x0 + s eps, with a^2 + s^2 = 1.
        return a * x_t - s * model_output, s * x_t + a * model_output
    raise unknown_choice("prediction", prediction, PREDICTIONS)


def spaced_timesteps(timesteps: int, steps: int, spacing: str = "trailing") -> torch.Tensor:
    """The ``steps`` timesteps a sampler visits, decreasing, int64 ``(steps,)``.

    ``leading`` is diffusers' default, ``(0, k, 2k, ...)`` reversed with ``k = T // steps``; it never
    starts from the last, purest-noise step. ``trailing`` counts back from ``T - 1`` (Lin et al. 2024,
    "Common Diffusion Noise Schedules and Sample Steps are Flawed", sec. 3.3), so every sampler starts
    where training noise is strongest. Both equal diffusers' ``timestep_spacing`` of the same name.

    Raises:
        ConfigError: ``steps`` outside ``1..T`` or an unknown spacing.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= timesteps:
        raise ConfigError(f"steps must be an integer in 1..{timesteps} (the training timesteps), got {steps!r}")
    if spacing == "leading":
        ratio = timesteps // steps
        return torch.arange(steps - 1, -1, -1, dtype=torch.int64) * ratio
    if spacing == "trailing":
        values = [round(timesteps - i * timesteps / steps) - 1 for i in range(steps)]
        return torch.tensor(values, dtype=torch.int64)
    raise unknown_choice("timestep spacing", spacing, ("leading", "trailing"))


class Sampler:
    """What the reverse-process solvers share: a schedule, the prediction type and the visited timesteps.

    A sampler is pure tensor maths with no weights (diffusers' scheduler design): ``set_timesteps``
    chooses the steps, then ``step`` maps the network's output at ``x_t`` to ``x_prev``, the sample at
    the next (smaller) visited timestep.

    Args:
        schedule: the training schedule.
        prediction: what the network outputs, ``"eps"``, ``"x0"`` or ``"v"``.
        clip: clamp the predicted ``x0`` into ``[-clip, clip]`` (images live in ``[-1, 1]``), or ``None``.
    """

    def __init__(self, schedule: NoiseSchedule, *, prediction: str = "eps", clip: float | None = None) -> None:
        if prediction not in PREDICTIONS:
            raise unknown_choice("prediction", prediction, PREDICTIONS)
        self.schedule = schedule
        self.prediction = prediction
        self.clip = clip
        self.timesteps = torch.empty(0, dtype=torch.int64)
        self._previous: dict[int, int] = {}
        self.set_timesteps(schedule.timesteps)

    def set_timesteps(self, steps: int, spacing: str = "trailing") -> None:
        """Visit ``steps`` timesteps (see :func:`spaced_timesteps`); resets any solver state."""
        self.timesteps = spaced_timesteps(self.schedule.timesteps, steps, spacing)
        visited = self.timesteps.tolist()
        self._previous = dict(zip(visited, visited[1:] + [-1]))

    def alpha_bars(self, t: int) -> tuple[float, float]:
        """``(alpha_bar_t, alpha_bar_prev)`` at visited step ``t``; ``alpha_bar_prev = 1`` after the last."""
        previous = self._previous[int(t)]
        alpha_bar = self.schedule.alpha_bar
        return float(alpha_bar[int(t)]), (float(alpha_bar[previous]) if previous >= 0 else 1.0)

    def split(self, model_output: torch.Tensor, t: int, x_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x0, eps)`` predicted at ``x_t``.

        With ``clip``, ``x0`` is clamped and ``eps`` recomputed from it so the pair stays consistent with
        ``x_t`` (as guided-diffusion does; diffusers keeps the unclipped ``eps``).
        """
        alpha_bar_t = float(self.schedule.alpha_bar[int(t)])
        x0, eps = split_prediction(self.prediction, model_output, x_t, alpha_bar_t)
        if self.clip is not None:
            x0 = x0.clamp(-self.clip, self.clip)
            eps = (x_t - alpha_bar_t ** 0.5 * x0) / (1 - alpha_bar_t) ** 0.5
        return x0, eps
