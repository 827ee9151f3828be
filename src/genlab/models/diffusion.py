"""Gaussian diffusion: learn to denoise, then sample by reversing the noising process.

Training (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", Algorithm 1): draw a record
``x_0``, a step ``t ~ U{0..T-1}`` and noise ``eps ~ N(0, I)``; form ``x_t = sqrt(abar_t) x_0 +
sqrt(1 - abar_t) eps`` and regress the network's output on the target of the configured
``prediction`` (``eps``, ``x0`` or ``v``; see :mod:`genlab.sampling.schedules`):

    L_simple = E || f(x_t, t, c) - target ||^2.

With ``variance="learned"`` the network also outputs ``v`` in ``[-1, 1]`` per coordinate, the reverse
variance is ``exp(f log beta_t + (1 - f) log beta~_t)`` with ``f = (v + 1) / 2``, and the objective is
the hybrid ``L_simple + lambda L_vlb`` with ``lambda = vlb_weight = 0.001``, where the variational bound
only trains the variance (the mean is detached) (Nichol & Dhariwal 2021, "Improved DDPM", sec. 3.1).

Labels: with ``conditional`` and labelled data the network sees a class embedding; each label is replaced
by a null class with probability ``cond_dropout``, so the same network is also unconditional, and
sampling mixes the two with classifier-free guidance (Ho & Salimans 2022, eq. 6):

    f~ = f(x_t, t, null) + s (f(x_t, t, c) - f(x_t, t, null)),     s = ``guidance`` (1 = plain conditional).

Sampling is swappable at call time: ``sampler="ddpm"`` (ancestral, the configured variance),
``"ddim"`` (Song et al. 2021, with ``eta``) or ``"dpm++"`` (DPM-Solver++(2M), Lu et al. 2022), over
``steps`` of the ``T`` training steps. The network is a time-conditioned MLP for points and a small
UNet for images; fitted weights are the EMA of training (Ho et al. 2020, sec. 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from genlab.errors import ConfigError, unknown_choice
from genlab.models.base import DataInfo, GenerativeModel
from genlab.nn.embeddings import ClassEmbedding, FourierFeatures, TimeEmbedding
from genlab.nn.mlp import MLP
from genlab.nn.unet import UNet
from genlab.sampling.ddim import DDIMSampler
from genlab.sampling.ddpm import DDPMSampler
from genlab.sampling.dpm_solver import DPMSolverSampler
from genlab.sampling.schedules import NoiseSchedule, Sampler, split_prediction
from genlab.train import Batch, Losses, Phase, TrainConfig

SAMPLERS: tuple[str, ...] = ("ddpm", "ddim", "dpm++")


@dataclass(frozen=True, kw_only=True)
class DiffusionConfig:
    """Options of the diffusion family.

    Attributes:
        schedule: ``"linear"`` (Ho et al. 2020) or ``"cosine"`` (Nichol & Dhariwal 2021) betas.
        timesteps: number of training steps ``T``.
        prediction: what the network outputs: ``"eps"`` (noise), ``"x0"`` (clean record) or ``"v"``
            (Salimans & Ho 2022). ``v`` is the default: at the last steps of the cosine schedule
            ``alpha_bar ~ 1e-8`` and recovering ``x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar)`` from a
            predicted ``eps`` multiplies its error ~10^4 times, which derails few-step samplers.
        variance: reverse-step variance of the DDPM sampler: ``"fixed_small"`` (posterior
            ``beta~_t``), ``"fixed_large"`` (``beta_t``) or ``"learned"`` (interpolated, hybrid loss).
        vlb_weight: ``lambda`` of the hybrid loss (used only with ``variance="learned"``).
        hidden: hidden width of the point network (an MLP).
        depth: hidden layers of the point network.
        fourier_features: sinusoidal features per point coordinate fed to the point network besides the
            coordinate itself (0 = none); without them an MLP blurs narrow modes (Tancik et al. 2020).
        fourier_scale: highest frequency of those features, in radians per standardised unit.
        channels: UNet widths per resolution for images, full to coarsest.
        blocks: UNet residual blocks per resolution.
        conditional: condition on class labels when the data has them.
        cond_dropout: probability of dropping a label during training (classifier-free guidance).
    """

    schedule: Literal["linear", "cosine"] = "cosine"
    timesteps: int = 1000
    prediction: Literal["eps", "x0", "v"] = "v"
    variance: Literal["fixed_small", "fixed_large", "learned"] = "fixed_small"
    vlb_weight: float = 0.001
    hidden: int = 128
    depth: int = 3
    fourier_features: int = 64
    fourier_scale: float = 30.0
    channels: tuple[int, ...] = (32, 64, 64)
    blocks: int = 1
    conditional: bool = True
    cond_dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.timesteps < 2:
            raise ValueError(f"timesteps must be at least 2, got {self.timesteps}")
        if self.hidden < 1 or self.depth < 1 or self.blocks < 1:
            raise ValueError("hidden, depth and blocks must be at least 1")
        if self.fourier_features < 0 or self.fourier_scale <= 0:
            raise ValueError("fourier_features must be >= 0 and fourier_scale > 0")
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels must be a non-empty list of positive widths, got {self.channels}")
        if not 0 <= self.cond_dropout < 1:
            raise ValueError(f"cond_dropout must be in [0, 1), got {self.cond_dropout}")
        if self.vlb_weight < 0:
            raise ValueError(f"vlb_weight must be non-negative, got {self.vlb_weight}")


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


class DiffusionModel(GenerativeModel):
    """The ``diffusion`` family: DDPM training; DDPM, DDIM or DPM-Solver++ sampling with guidance.

    Sampling options: ``steps`` (default 50), ``sampler`` (``"ddpm"``, ``"ddim"`` default, ``"dpm++"``),
    ``eta`` (DDIM only, default 0) and ``guidance`` (classifier-free guidance scale, default 1).

    Example:
        >>> model = genlab.fit("ring8", family="diffusion", train={"steps": 3000})
        >>> x = model.sample(2500, steps=20, sampler="dpm++", generator=torch.Generator().manual_seed(0))
    """

    family = "diffusion"
    config_class = DiffusionConfig
    sample_options = frozenset({"steps", "sampler", "eta", "guidance"})

    def default_train_config(self) -> TrainConfig:
        """AdamW with warm-up and an EMA of the weights, which sampling uses.

        The decay 0.995 (an average over the last ~200 steps) suits budgets of a few thousand steps,
        where a longer average would still hold early, poor weights; on ring8/grid25 it beat no EMA.
        """
        return TrainConfig(steps=5000, batch_size=256, lr=1e-3, warmup_steps=100, ema_decay=0.995)

    @property
    def schedule(self) -> NoiseSchedule:
        """The configured noise schedule (``T`` float64 entries)."""
        return NoiseSchedule.create(self.config.schedule, self.config.timesteps)

    def _learned_variance(self) -> bool:
        return self.config.variance == "learned"

    def _build_network(self, data: DataInfo) -> nn.Module:
        n_classes = data.n_classes if self.config.conditional else 0
        factor = 2 if self._learned_variance() else 1
        if data.modality == "images":
            channels = data.shape[0]
            levels = len(self.config.channels) - 1
            if data.shape[1] % 2 ** levels or data.shape[2] % 2 ** levels:
                raise ConfigError(f"images of {data.shape[1]}x{data.shape[2]} cannot be halved {levels} times; "
                                  f"give channels fewer levels than {list(self.config.channels)}")
            return UNet(channels, factor * channels, channels=self.config.channels, blocks=self.config.blocks,
                        n_classes=n_classes)
        return PointDenoiser(data.dim, factor * data.dim, hidden=self.config.hidden, depth=self.config.depth,
                             n_classes=n_classes, fourier_features=self.config.fourier_features,
                             fourier_scale=self.config.fourier_scale)

    def _conditional(self) -> bool:
        return getattr(self.network_, "classes", None) is not None

    # ------------------------------------------------------------------ training
    def _phases(self) -> list[Phase]:
        schedule = self.schedule
        config = self.config
        conditional = self._conditional()
        null_class = self.network_.classes.null_class if conditional else 0

        def denoising_loss(module: nn.Module, batch: Batch, generator: torch.Generator) -> Losses:
            # x0: (B, *shape) encoded records; t: (B,) steps; eps: (B, *shape)
            x0 = batch.x
            device = x0.device
            t = torch.randint(config.timesteps, (len(x0),), generator=generator, device=generator.device).to(device)
            eps = torch.randn(x0.shape, generator=generator, device=generator.device).to(device, x0.dtype)
            x_t = schedule.add_noise(x0, eps, t)
            y = None
            if conditional:
                y = batch.y if batch.y is not None else torch.full_like(t, null_class)
                y = self.network_.classes.drop(y, config.cond_dropout, generator)
            output = module(x_t, t, y)
            if self._learned_variance():
                output, v = output.chunk(2, dim=1)
            mse = (output - schedule.target(config.prediction, x0, eps, t)).pow(2).mean()
            if not self._learned_variance():
                return Losses(mse, {"mse": float(mse.detach())})
            # L_vlb ~ T * E_t[L_t]; the mean is detached so the bound trains only the variance.
            vlb = config.timesteps * _vlb_term(schedule, config.prediction, output.detach(), v, x0, x_t, t).mean()
            total = mse + config.vlb_weight * vlb
            return Losses(total, {"mse": float(mse.detach()), "vlb": float(vlb.detach())})

        return [Phase("model", self.network_, denoising_loss)]

    # ------------------------------------------------------------------ sampling
    def _solver(self, sampler: str, eta: float) -> Sampler:
        """The named sampler over this model's schedule; images clip ``x0`` into the codec's ``[-1, 1]``."""
        clip = 1.0 if self.data_.modality == "images" else None
        schedule, prediction = self.schedule, self.config.prediction
        if sampler != "ddim" and eta != 0:
            raise ConfigError(f"eta applies to the ddim sampler only, not {sampler!r}")
        if sampler == "ddpm":
            return DDPMSampler(schedule, prediction=prediction, variance=self.config.variance, clip=clip)
        if sampler == "ddim":
            return DDIMSampler(schedule, prediction=prediction, eta=eta, clip=clip)
        if sampler == "dpm++":
            return DPMSolverSampler(schedule, prediction=prediction, clip=clip)
        raise unknown_choice("sampler", sampler, SAMPLERS)

    def _sample_network(self, n: int, condition: int | None, generator: torch.Generator | None,
                        **options: Any) -> torch.Tensor:
        steps = options.get("steps", 50)
        guidance = options.get("guidance", 1.0)
        if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not guidance >= 0:
            raise ConfigError(f"guidance must be a number >= 0 (1 = plain conditional sampling), got {guidance!r}")
        solver = self._solver(options.get("sampler", "ddim"), options.get("eta", 0.0))
        solver.set_timesteps(steps)

        device = self.device
        rng_device = generator.device if generator is not None else torch.device("cpu")
        x = torch.randn((n, *self.data_.shape), generator=generator, device=rng_device).to(device)
        y = None
        if self._conditional():
            label = self.network_.classes.null_class if condition is None else condition
            y = torch.full((n,), label, dtype=torch.long, device=device)
        guided = self._conditional() and condition is not None and guidance != 1
        for t in solver.timesteps.tolist():
            t_batch = torch.full((n,), t, dtype=torch.long, device=device)
            if guided:
                both = self.network_(torch.cat([x, x]), torch.cat([t_batch, t_batch]),
                                     torch.cat([y, torch.full_like(y, self.network_.classes.null_class)]))
                cond, uncond = both.chunk(2)
                output = uncond + guidance * (cond - uncond)
                if self._learned_variance():   # guide the mean; keep the conditional variance
                    output = torch.cat([output.chunk(2, dim=1)[0], cond.chunk(2, dim=1)[1]], dim=1)
            else:
                output = self.network_(x, t_batch, y)
            x = solver.step(output, t, x, generator=generator)
        return x


def _vlb_term(schedule: NoiseSchedule, prediction: str, output: torch.Tensor, v: torch.Tensor,
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

