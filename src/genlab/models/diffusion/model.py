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

Captions: with ``captions`` and a Dataset that carries them (``shapes``), images take the same loss and
sampling, but the network is :class:`~genlab.nn.cross_attention_unet.CrossAttentionUNet`, which reads
the caption's word ids (codec :class:`~genlab.data.captions.CaptionedImageCodec`, whose vocabulary is the
training captions' words); a caption becomes the empty caption with probability ``cond_dropout``, and
``sample(n, prompt="a small red circle at the top left", guidance=3)`` guides towards the prompt with the
empty caption as the null condition. Without captions nothing of this runs.

Image-to-image (SDEdit, Meng et al. 2022): ``sample(n, init=images, strength=s)`` noises the encoded
``init`` images to the visited step from which ``int(steps * s)`` steps remain (diffusers' ``strength``)
with ``q(x_t | x_0)`` and runs only those steps, under the prompt when one is given. Inpainting:
``mask`` (``(1 or n, 1, H, W)``, 1 = redraw) with ``init`` (``strength`` 1 unless given) replaces, after
every step, the kept pixels by a fresh draw of ``q(x_{t-1} | x_0)`` of the picture (the replacement of
RePaint, Lugmayr et al. 2022, without its resampling jumps).

Sampling is swappable at call time: ``sampler="ddpm"`` (ancestral, the configured variance),
``"ddim"`` (Song et al. 2021, with ``eta``) or ``"dpm++"`` (DPM-Solver++(2M), Lu et al. 2022), over
``steps`` of the ``T`` training steps; ``backend`` picks what runs the network at each step (on CPU by
default onnxruntime where it can and pays, else eager PyTorch: :mod:`genlab.models.diffusion.backends`).
The network is a time-conditioned MLP for points and a small UNet for images; fitted weights are the EMA
of training (Ho et al. 2020, sec. 4).

Tables (TabDDPM, Kotelnikov et al. 2023, "TabDDPM: Modelling Tabular Data with Diffusion Models"): the
table codec maps numbers to normal scores through their empirical CDF (``numeric="quantile"``, TabDDPM's
quantile transform) and categories, and a numeric column's missing indicator, to one-hot blocks. The
scores take the Gaussian diffusion above; each one-hot block takes multinomial diffusion (Hoogeboom et
al. 2021, maths in :mod:`genlab.sampling.multinomial`) on the same ``alpha_bar`` schedule. One MLP sees
``[x_t numbers, x_t one-hots, e(t) + e(y)]`` and outputs the numbers' prediction and, per block, logits
of ``x_0``; the loss is the Gaussian MSE plus ``T`` times the mean over blocks of the multinomial bound's
term ``L_t = KL(q(x_{t-1} | x_t, x_0) || q(x_{t-1} | x_t, x0_hat))`` (``-log p(x_0 | x_1)`` at ``t = 0``),
an unbiased estimate of the categorical bound as TabDDPM trains it. A categorical target (with
``conditional``) is not diffused but is the class label ``y`` (TabDDPM's classification setting): sampling
draws it from the training shares, or fixes it. ``sample(n, condition={column: value})`` is exact without
rejection: the network also takes a mask of columns shown clean, and in a share ``mask_rate`` of the
training rows a random subset of columns is shown clean (their loss terms dropped), so it learns
``p(rest | shown columns)``; sampling shows the conditioned columns clean at every step and writes
their values into the result. (The replacement method of RePaint, Lugmayr et al. 2022, imposing a
draw of ``q(x_t | x_0)`` of each known value, needs no such training but followed a numeric condition
worse at equal training: see docs/architecture.md.)
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable

import torch
from torch import nn

from genlab.defaults import DataDefaults
from genlab.errors import ConfigError, DataError, unknown_choice
from genlab.models.base import DataInfo, GenerativeModel
from genlab.models.options import SampleOption
from genlab.models.diffusion.backends import BACKENDS, SamplingBackends
from genlab.models.diffusion.captions import CaptionedDiffusion
from genlab.models.diffusion.config import CPU_SAMPLE_VALUES, SAMPLERS, DiffusionConfig, equal_chunks
from genlab.models.diffusion.editing import DiffusionEditing
from genlab.models.diffusion.networks import PointDenoiser
from genlab.models.diffusion.objective import vlb_term
from genlab.models.diffusion.tabular import TabularDiffusion
from genlab.nn.cross_attention_unet import CrossAttentionUNet
from genlab.nn.unet import UNet
from genlab.sampling.cuda_graphs import DENOISER_OPTIONS, denoiser
from genlab.sampling.ddim import DDIMSampler
from genlab.sampling.ddpm import DDPMSampler
from genlab.sampling.dpm_solver import DPMSolverSampler
from genlab.sampling.schedules import NoiseSchedule, Sampler
from genlab.train import Batch, Losses, Phase, TrainConfig


#: Guidance for images conditioned on captions (``shapes``), which otherwise take the image defaults' patched
#: UNet. Chosen at equal wall-clock time (480 s, 2 cores) by benchmarks/text_to_image.py, one object with a
#: seen / held-out colour-shape pair all right: guidance 1.5 / 3 / 5 gave 77 / 83 / 75 % and 46 / 60 / 56 %
#: (2,517 steps); full resolution (channels (16, 32, 64), 1,148 steps) 54 % / 42 %, a wider (64, 128) 65 % /
#: 33 % and self-attention at 8x8 58 % / 44 % at guidance 3 (docs/text_to_image.md).
CAPTION_GUIDANCE = 3.0


class DiffusionModel(CaptionedDiffusion, DiffusionEditing, SamplingBackends, TabularDiffusion, GenerativeModel):
    """The ``diffusion`` family: DDPM training; DDPM, DDIM or DPM-Solver++ sampling with guidance.

    Sampling options: ``steps`` (default 50), ``sampler`` (``"ddpm"``, ``"ddim"`` default, ``"dpm++"``),
    ``eta`` (DDIM only, default 0), ``guidance`` (classifier-free guidance scale, default 1) and
    ``batch_size`` (records denoised together; default: equal cache-sized chunks on CPU, all at once on CUDA;
    it changes which noise each record gets in stochastic samplers, not the distribution) and ``backend``
    (``"auto"`` default, ``"onnxruntime"``, ``"eager"``; :meth:`sampling_backend` says which runs). Speed options
    for images and points (default ``False``): ``cuda_graphs`` (replay the network call as a CUDA graph;
    ignored on CPU), ``compile`` (``torch.compile``), ``bf16`` (bfloat16 autocast); see
    :mod:`genlab.sampling.cuda_graphs`.

    Example:
        >>> model = genlab.fit("ring8", family="diffusion", train={"steps": 3000})
        >>> x = model.sample(2500, steps=20, sampler="dpm++", generator=torch.Generator().manual_seed(0))
        >>> adult = genlab.fit("adult", family="diffusion", hidden=256, train={"max_time": 600, "steps": None})
        >>> rich = adult.sample(1000, condition={"sex": "Female", "income": ">50K"})   # every row satisfies it
    """

    family = "diffusion"
    config_class = DiffusionConfig
    sample_options = frozenset({"steps", "sampler", "eta", "guidance", "batch_size", "initial_noise", "prompt",
                                "init", "strength", "mask", "backend", *DENOISER_OPTIONS})
    supports_tables = True
    declared_options = {
        "steps": SampleOption("integer", "sampler steps over the T training steps", 50, 1, 1000),
        "sampler": SampleOption("string", "ddpm (ancestral), ddim or dpm++ (DPM-Solver++ 2M)", "ddim",
                                choices=SAMPLERS),
        "eta": SampleOption("number", "DDIM's stochasticity (ddim only; 0 = deterministic)", 0.0, 0, 1),
        "guidance": SampleOption("number", "classifier-free guidance scale (1 = plain conditional)", 1.0, 0, 20),
        "prompt": SampleOption("string", "the caption to draw (models trained on captions)", None,
                               nullable=True, modalities=("images",)),
        "backend": SampleOption("string", "what runs the network: auto (onnxruntime on CPU where it can and "
                                "pays, else eager), onnxruntime or eager", "auto", choices=BACKENDS),
    }

    def sampling_options(self) -> dict[str, SampleOption]:
        """The declared options with this model's saved sampler, steps and guidance as defaults; ``prompt``
        only for a model trained on captions."""
        options = super().sampling_options()
        if not self.reads_captions:
            options.pop("prompt", None)
        config = self.config
        for name, value in (("steps", config.sample_steps), ("sampler", config.sampler), ("guidance", config.guidance),
                            ("backend", config.backend)):
            options[name] = replace(options[name], default=value)
        return options

    def default_train_config(self) -> TrainConfig:
        """AdamW with warm-up and an EMA of the weights, which sampling uses.

        The decay 0.995 (an average over the last ~200 steps) suits budgets of a few thousand steps,
        where a longer average would still hold early, poor weights; on ring8/grid25 it beat no EMA.
        """
        return TrainConfig(steps=5000, batch_size=256, lr=1e-3, warmup_steps=100, ema_decay=0.995)

    @classmethod
    def data_defaults(cls, info: DataInfo, x: Any) -> DataDefaults:
        """Images: the UNet at half resolution (``patch=2`` where the sides are even), two widths, batch 64,
        sampled by DPM-Solver++ in 20 steps at guidance 1.5 (benchmarks/mnist_families.py: Fréchet 9.3 and
        conditional accuracy 0.992, where the full-resolution UNet at batch 256 took 4 s a step on 2 cores
        and fitted 60 steps in 4 minutes), at lr 3e-3: on MNIST in 300 CPU s (~1,200 steps) Fréchet 31.4 at
        1e-3, 19.3 at 2e-3, 15.1 at 3e-3 (benchmarks/defaults.py). Captioned images take
        the same network and training at :data:`CAPTION_GUIDANCE`. Points and tables keep the family's
        defaults, which benchmarks/diffusion_points.py and benchmarks/tables_adult.py measured."""
        if info.modality != "images":
            return DataDefaults()
        even = all(side % 2 == 0 for side in info.shape[1:])
        model = {"channels": (32, 64), "patch": 2 if even else 1, "sampler": "dpm++", "sample_steps": 20,
                 "guidance": 1.5}
        train = {"batch_size": 64, "lr": 3e-3}
        if info.captioned:
            return DataDefaults(model={**model, "guidance": CAPTION_GUIDANCE}, train=train,
                                why="the patched caption UNet measured on shapes, at guidance 3")
        return DataDefaults(model=model, train=train, why="the patched UNet measured on MNIST")

    @property
    def schedule(self) -> NoiseSchedule:
        """The configured noise schedule (``T`` float64 entries)."""
        return NoiseSchedule.create(self.config.schedule, self.config.timesteps)

    def _learned_variance(self) -> bool:
        return self.config.variance == "learned"

    def _build_network(self, data: DataInfo) -> nn.Module:
        if data.modality == "tables":
            layout = self._table_layout(data)
            if layout.width == 0:
                raise DataError("the table has no column to diffuse (every column is an identifier or the target)")
            # No Fourier features: the scores are smooth normal marginals and the one-hots are not coordinates.
            # Input: the row and its mask of columns shown clean (conditioning); output: the row's predictions.
            return PointDenoiser(2 * layout.width, layout.width, hidden=self.config.hidden, depth=self.config.depth,
                                 n_classes=layout.n_classes, fourier_features=0,
                                 fourier_scale=self.config.fourier_scale)
        n_classes = data.n_classes if self.config.conditional else 0
        factor = 2 if self._learned_variance() else 1
        if data.modality == "images":
            channels = data.shape[0]
            levels, patch = len(self.config.channels) - 1, self.config.patch
            if data.shape[1] % (patch * 2 ** levels) or data.shape[2] % (patch * 2 ** levels):
                raise ConfigError(f"images of {data.shape[1]}x{data.shape[2]} cannot be cut into {patch}x{patch} "
                                  f"patches and then halved {levels} times; give channels fewer levels than "
                                  f"{list(self.config.channels)} or a smaller patch")
            if self.reads_captions:
                return CrossAttentionUNet(channels, factor * channels, vocab_size=self.codec_.vocab_size,
                                          length=self.codec_.length, channels=self.config.channels,
                                          blocks=self.config.blocks, patch=patch,
                                          caption_width=self.config.caption_width,
                                          caption_layers=self.config.caption_layers,
                                          self_attention_levels=self.config.self_attention_levels)
            return UNet(channels, factor * channels, channels=self.config.channels, blocks=self.config.blocks,
                        n_classes=n_classes, patch=patch)
        return PointDenoiser(data.dim, factor * data.dim, hidden=self.config.hidden, depth=self.config.depth,
                             n_classes=n_classes, fourier_features=self.config.fourier_features,
                             fourier_scale=self.config.fourier_scale)

    def _conditional(self) -> bool:
        return getattr(self.network_, "classes", None) is not None

    def _phases(self) -> list[Phase]:
        if self.data_.modality == "tables":
            return [Phase("model", self.network_, self._table_loss)]
        schedule = self.schedule
        config = self.config
        conditional = self._conditional()
        null_class = self.network_.classes.null_class if conditional else 0
        tokens = self._train_tokens if self.reads_captions else None   # (n, L) caption of each record

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
            if tokens is not None:   # batch.y is the record index; drop captions to the empty one
                y = tokens[batch.y.cpu()].to(device)
                drop = torch.rand(len(y), generator=generator, device=generator.device) < config.cond_dropout
                y = torch.where(drop.to(device)[:, None], self.codec_.null_tokens(len(y)).to(device), y)
            output = module(x_t, t, y)
            if self._learned_variance():
                output, v = output.chunk(2, dim=1)
            mse = (output - schedule.target(config.prediction, x0, eps, t)).pow(2).mean()
            if not self._learned_variance():
                return Losses(mse, {"mse": float(mse.detach())})
            # L_vlb ~ T * E_t[L_t]; the mean is detached so the bound trains only the variance.
            vlb = config.timesteps * vlb_term(schedule, config.prediction, output.detach(), v, x0, x_t, t).mean()
            total = mse + config.vlb_weight * vlb
            return Losses(total, {"mse": float(mse.detach()), "vlb": float(vlb.detach())})

        return [Phase("model", self.network_, denoising_loss)]

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

    def _sample_network(self, n: int, condition: int | dict[str, Any] | None, generator: torch.Generator | None,
                        **options: Any) -> torch.Tensor:
        steps = options.get("steps", self.config.sample_steps)
        guidance = options.get("guidance", self.config.guidance)
        if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not guidance >= 0:
            raise ConfigError(f"guidance must be a number >= 0 (1 = plain conditional sampling), got {guidance!r}")
        sampler, eta = options.get("sampler", self.config.sampler), options.get("eta", 0.0)
        self._solver(sampler, eta)   # check the options before any work
        backend = self.sampling_backend(n, condition=condition, **options)
        if options.get("prompt") is not None and not self.reads_captions:
            raise ConfigError("a prompt conditions a model trained on captions (e.g. shapes); this one was not")
        device = self.device
        values = (self._table_layout().width if self.data_.modality == "tables" else math.prod(self.data_.shape))
        chunk = options.get("batch_size")
        if chunk is None:
            chunk = n if device.type == "cuda" else equal_chunks(n, CPU_SAMPLE_VALUES // values)
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {chunk!r}")
        if self.data_.modality == "tables":
            if guidance != 1:
                raise ConfigError("diffusion on tables conditions exactly (replacement), so guidance must be 1")
            if any(options.get(name) for name in DENOISER_OPTIONS):
                raise ConfigError(f"{', '.join(DENOISER_OPTIONS)} are options of images and points, not tables")
            return self._sample_table(n, condition, generator, sampler=sampler, eta=eta, steps=steps, chunk=chunk)

        rng_device = generator.device if generator is not None else torch.device("cpu")
        x_T = torch.randn((n, *self.data_.shape), generator=generator, device=rng_device).to(device)
        if options.get("initial_noise") is not None:   # e.g. a Tree-Ring watermarked x_T (genlab.provenance)
            x_T = torch.as_tensor(options["initial_noise"], dtype=torch.float32).to(device)
            if x_T.shape != (n, *self.data_.shape):
                raise ConfigError(f"initial_noise must have shape {(n, *self.data_.shape)}, got {tuple(x_T.shape)}")
        y = null = None
        if self.reads_captions:
            y, null = self._caption_tokens(n, options.get("prompt"))
            y, null = y.to(device), null.to(device)
            guidance = guidance if options.get("prompt") is not None else 1.0
        else:
            if self._conditional():
                label = self.network_.classes.null_class if condition is None else condition
                y = torch.full((n,), label, dtype=torch.long, device=device)
            guidance = guidance if self._conditional() and condition is not None else 1.0
        if backend == "onnxruntime":
            denoise = self._onnx_call(fallback=options.get("backend", self.config.backend) == "auto")
        else:
            denoise = denoiser(self.network_, **options)   # the network itself unless a speed option is set
        first, known = 0, None
        mask, strength = options.get("mask"), options.get("strength")
        if mask is not None and strength is None:
            strength = 1.0   # inpainting redraws the masked pixels from pure noise unless told otherwise
        if options.get("init") is not None or strength is not None:
            x_T, first = self._edit_start(options.get("init"), strength, x_T, sampler, eta, steps)
        if mask is not None:
            known = self._known_pixels(options["init"], mask, n)
        parts = []
        for start in range(0, n, chunk):   # each chunk runs the whole reverse process with a fresh solver
            solver = self._solver(sampler, eta)
            solver.set_timesteps(steps)
            parts.append(self._reverse(x_T[start:start + chunk], None if y is None else y[start:start + chunk],
                                       solver, guidance, generator, denoise,
                                       None if null is None else null[start:start + chunk], first,
                                       None if known is None else tuple(k[start:start + chunk] for k in known)))
        return torch.cat(parts)

    def _reverse(self, x: torch.Tensor, y: torch.Tensor | None, solver: Sampler, guidance: float,
                 generator: torch.Generator | None, denoise: Callable[..., torch.Tensor],
                 null: torch.Tensor | None = None, first: int = 0,
                 known: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Run ``solver`` from ``x = x_T (B, *shape)`` down to ``x_0``; ``y (B,)`` labels, ``(B, L)`` caption
        tokens or ``None``; ``null`` the null condition of guidance (default: the null class); ``first``
        the index of the first visited step to run (an image edit starts part-way); ``known`` the kept
        picture and its mask when inpainting;
        ``denoise`` calls the network (see :func:`genlab.sampling.cuda_graphs.denoiser`)."""
        for t in solver.timesteps.tolist()[first:]:
            t_batch = torch.full((len(x),), t, dtype=torch.long, device=x.device)
            if guidance != 1:
                both = denoise(torch.cat([x, x]), torch.cat([t_batch, t_batch]),
                               torch.cat([y, torch.full_like(y, self.network_.classes.null_class)
                                          if null is None else null]))
                cond, uncond = both.chunk(2)
                output = uncond + guidance * (cond - uncond)
                if self._learned_variance():   # guide the mean; keep the conditional variance
                    output = torch.cat([output.chunk(2, dim=1)[0], cond.chunk(2, dim=1)[1]], dim=1)
            else:
                output = denoise(x, t_batch, y)
            x = solver.step(output, t, x, generator=generator)
            if known is not None:   # RePaint's replacement: kept pixels follow q(x_{t-1} | x_0) of the picture
                x0, keep = known
                abar_prev = solver.alpha_bars(t)[1]
                rng_device = generator.device if generator is not None else torch.device("cpu")
                eps = torch.randn(x.shape, generator=generator, device=rng_device).to(x.device)
                x = torch.where(keep, abar_prev ** 0.5 * x0 + (1 - abar_prev) ** 0.5 * eps, x)
        return x
