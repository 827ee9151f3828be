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
``steps`` of the ``T`` training steps. The network is a time-conditioned MLP for points and a small
UNet for images; fitted weights are the EMA of training (Ho et al. 2020, sec. 4).

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
from dataclasses import dataclass, replace
from typing import Any, Callable, Literal

import numpy as np
import torch
from torch import nn

from genlab.data.captions import CaptionedImageCodec
from genlab.data.codecs import Codec
from genlab.data.dataset import Dataset
from genlab.data.tables import TableCodec
from genlab.defaults import DataDefaults
from genlab.errors import ConfigError, DataError, unknown_choice
from genlab.models.base import DataInfo, FitContext, GenerativeModel
from genlab.nn.embeddings import ClassEmbedding, FourierFeatures, TimeEmbedding
from genlab.nn.mlp import MLP
from genlab.nn.cross_attention_unet import CrossAttentionUNet
from genlab.nn.unet import UNet
from genlab.sampling.ddim import DDIMSampler
from genlab.sampling.ddpm import DDPMSampler
from genlab.sampling import multinomial
from genlab.sampling.cuda_graphs import DENOISER_OPTIONS, denoiser
from genlab.sampling.dpm_solver import DPMSolverSampler
from genlab.sampling.schedules import NoiseSchedule, Sampler, split_prediction
from genlab.train import Batch, Losses, Phase, TrainConfig

SAMPLERS: tuple[str, ...] = ("ddpm", "ddim", "dpm++")
#: Record values (pixels, coordinates) denoised together on CPU. A batch whose activations outgrow the
#: CPU caches is slower per record: one thread, 28x28 UNet, 256 images at once took 2.3 s per network
#: call, chunks of 32-64 images 1.25-1.35 s. 2^15 values = 41 MNIST images, 512 digits, 16,384 points.
#: On CUDA the whole batch goes at once.
CPU_SAMPLE_VALUES = 2 ** 15


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
        patch: side of the pixel blocks the UNet folds into channels (space-to-depth) so that it runs at
            ``1/patch`` of the image resolution, ~``patch^2`` times cheaper per step (1 = full resolution).
            On MNIST in 900 CPU s, ``patch=2, channels=(32, 64)`` took 3,738 steps where the default took
            889: Fréchet distance 41.2 against 60.8 at guidance 3 (9.2 at guidance 1.5; see
            benchmarks/mnist_families.py).
        conditional: condition on class labels when the data has them.
        cond_dropout: probability of dropping a label during training (classifier-free guidance).
        mask_rate: on tables, the share of training rows in which a random subset of columns (each with a
            probability drawn uniformly per row) is shown clean, flagged by the network's mask input, so
            that the network learns ``p(rest | shown columns)`` for exact conditional sampling.
        sampler: the sampler ``sample`` uses when it is given none (``"ddpm"``, ``"ddim"``, ``"dpm++"``);
            saved with the model, as Hugging Face saves a ``generation_config.json``.
        sample_steps: sampler steps ``sample`` uses when it is given no ``steps``.
        guidance: classifier-free guidance scale ``sample`` uses when it is given none (1 = plain
            conditional sampling).
        captions: condition images on their captions when the data has them (then ``cond_dropout`` is
            the share of training captions replaced by the empty caption).
        caption_width: width of the caption encoder and of the cross-attention keys and values.
        caption_layers: transformer layers of the caption encoder.
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
    patch: int = 1
    conditional: bool = True
    cond_dropout: float = 0.1
    mask_rate: float = 0.5
    sampler: Literal["ddpm", "ddim", "dpm++"] = "ddim"
    sample_steps: int = 50
    guidance: float = 1.0
    captions: bool = True
    caption_width: int = 64
    caption_layers: int = 2

    def __post_init__(self) -> None:
        if self.sample_steps < 1 or self.guidance < 0:
            raise ValueError(f"sample_steps must be at least 1 and guidance >= 0, got {self.sample_steps}, "
                             f"{self.guidance}")
        if self.timesteps < 2:
            raise ValueError(f"timesteps must be at least 2, got {self.timesteps}")
        if self.hidden < 1 or self.depth < 1 or self.blocks < 1 or self.patch < 1:
            raise ValueError(f"hidden, depth, blocks and patch must be at least 1, got {self.hidden}, {self.depth}, "
                             f"{self.blocks} and {self.patch}")
        if self.fourier_features < 0 or self.fourier_scale <= 0:
            raise ValueError("fourier_features must be >= 0 and fourier_scale > 0")
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels must be a non-empty list of positive widths, got {self.channels}")
        if not 0 <= self.cond_dropout < 1:
            raise ValueError(f"cond_dropout must be in [0, 1), got {self.cond_dropout}")
        if not 0 <= self.mask_rate <= 1:
            raise ValueError(f"mask_rate must be in [0, 1], got {self.mask_rate}")
        if self.vlb_weight < 0:
            raise ValueError(f"vlb_weight must be non-negative, got {self.vlb_weight}")
        if self.caption_width < 4 or self.caption_width % 4 or self.caption_layers < 1:
            raise ValueError(f"caption_width must be a positive multiple of 4 (four heads) and caption_layers at "
                             f"least 1, got {self.caption_width} and {self.caption_layers}")


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


@dataclass(frozen=True)
class TableLayout:
    """Where the parts of a table's diffusion live in the codec's encoded row ``(width,)``.

    Attributes:
        numeric: encoded columns of the ``scalar`` blocks (normal scores), Gaussian-diffused.
        categorical: ``(start, stop)`` of each one-hot block (``categories``, ``missing``), multinomial-diffused.
        label: ``(start, stop)`` of the target's one-hot block when it is the class label, else ``None``.

    The network's row is ``[numbers (len(numeric)), one-hot blocks in order]``: :attr:`width` values.
    """

    numeric: tuple[int, ...]
    categorical: tuple[tuple[int, int], ...]
    label: tuple[int, int] | None

    @classmethod
    def from_codec(cls, codec: TableCodec, label_column: str | None) -> "TableLayout":
        """The layout of ``codec.blocks``; ``label_column``'s block (if any) becomes the label."""
        numeric, categorical, label = [], [], None
        for block in codec.blocks:
            if block.kind == "scalar":
                numeric.append(block.start)
            elif block.kind in ("categories", "missing") and block.column == label_column:
                label = (block.start, block.stop)
            elif block.kind in ("categories", "missing"):
                categorical.append((block.start, block.stop))
            else:
                raise DataError(f"diffusion on tables needs quantile scores and one-hot blocks, "
                                f"got a {block.kind!r} block for column {block.column!r}")
        return cls(tuple(numeric), tuple(categorical), label)

    @property
    def n_numeric(self) -> int:
        """Number of Gaussian-diffused scores."""
        return len(self.numeric)

    @property
    def width(self) -> int:
        """Width of the network's row: the scores then every one-hot block."""
        return self.n_numeric + sum(stop - start for start, stop in self.categorical)

    @property
    def n_classes(self) -> int:
        """Categories of the label block (0 without one)."""
        return 0 if self.label is None else self.label[1] - self.label[0]

    @property
    def unit_sizes(self) -> list[int]:
        """Widths of the network row's units: 1 per score, ``K`` per one-hot block."""
        return [1] * self.n_numeric + [stop - start for start, stop in self.categorical]

    def gather(self, z: torch.Tensor) -> torch.Tensor:
        """Encoded rows ``(B, codec width)`` -> the network's row ``(B, width)`` (scores, then one-hots)."""
        return torch.cat([z[:, list(self.numeric)], *(z[:, start:stop] for start, stop in self.categorical)], dim=1)

    def split_logits(self, output: torch.Tensor) -> list[torch.Tensor]:
        """The network's categorical outputs ``(B, width - n_numeric)`` -> one ``(B, K)`` per block."""
        sizes = [stop - start for start, stop in self.categorical]
        return list(output[:, self.n_numeric:].split(sizes, dim=1)) if sizes else []


class DiffusionModel(GenerativeModel):
    """The ``diffusion`` family: DDPM training; DDPM, DDIM or DPM-Solver++ sampling with guidance.

    Sampling options: ``steps`` (default 50), ``sampler`` (``"ddpm"``, ``"ddim"`` default, ``"dpm++"``),
    ``eta`` (DDIM only, default 0), ``guidance`` (classifier-free guidance scale, default 1) and
    ``batch_size`` (records denoised together; default: cache-sized chunks on CPU, all at once on CUDA;
    it changes which noise each record gets in stochastic samplers, not the distribution). Speed options
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
                                "init", "strength", "mask", *DENOISER_OPTIONS})
    supports_tables = True

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
        1e-3, 19.3 at 2e-3, 15.1 at 3e-3 (benchmarks/defaults.py). Points and tables keep the family's
        defaults, which benchmarks/diffusion_points.py and benchmarks/tables_adult.py measured."""
        if info.modality != "images":
            return DataDefaults()
        even = all(side % 2 == 0 for side in info.shape[1:])
        return DataDefaults(model={"channels": (32, 64), "patch": 2 if even else 1, "sampler": "dpm++",
                                   "sample_steps": 20, "guidance": 1.5},
                            train={"batch_size": 64, "lr": 3e-3}, why="the patched UNet measured on MNIST")

    @property
    def schedule(self) -> NoiseSchedule:
        """The configured noise schedule (``T`` float64 entries)."""
        return NoiseSchedule.create(self.config.schedule, self.config.timesteps)

    def _learned_variance(self) -> bool:
        return self.config.variance == "learned"

    def fit(self, data: Dataset | Any, **kwargs: Any) -> "DiffusionModel":
        """:meth:`GenerativeModel.fit`; with ``captions`` and a captioned Dataset of images, the model
        conditions on the captions (module doc) and ignores labels."""
        self._train_captions = (data.captions_train if self.config.captions and isinstance(data, Dataset)
                                and data.modality == "images" else None)
        try:
            return super().fit(data, **kwargs)
        finally:
            self._train_captions = self._train_tokens = None

    def _make_codec(self, data: DataInfo) -> Codec:
        """The image codec with the training captions' vocabulary when fitting on captions, else the base's."""
        if self._train_captions is not None:
            return CaptionedImageCodec.from_captions(data.shape, self._train_captions)
        return super()._make_codec(data)

    def _captioned(self) -> bool:
        return isinstance(self.codec_, CaptionedImageCodec)

    def _fit_network(self, x: torch.Tensor, y: torch.Tensor | None, context: FitContext) -> None:
        """Captioned data: each record's label is its index, whose caption tokens the loss looks up; the
        periodic validation (which has no captions) is off. Otherwise the base's fit."""
        if not self._captioned():
            return super()._fit_network(x, y, context)
        self._train_tokens = self.codec_.tokens(list(self._train_captions))   # (n, L)
        super()._fit_network(x, torch.arange(len(x)), replace(context, validation=None))

    def _make_table_codec(self, data: DataInfo) -> TableCodec:
        """TabDDPM's encoding: numbers through their empirical CDF to normal scores (quantile
        transform), categories and missing indicators one-hot."""
        if self._learned_variance():
            raise ConfigError("diffusion on tables has a fixed reverse variance; use variance='fixed_small' "
                              "or 'fixed_large', not 'learned'")
        return TableCodec(numeric="quantile", categorical="onehot")

    def _table_layout(self, data: DataInfo | None = None) -> TableLayout:
        """The layout of ``data``'s (default: the fitted data's) table; a categorical target is the class
        label when ``conditional``."""
        codec, target = self.codec_, (data or self.data_).target
        label = None
        if self.config.conditional and target is not None and target in codec.columns \
                and "categories" in codec.spec(target):
            label = target
        return TableLayout.from_codec(codec, label)

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
            if self._captioned():
                return CrossAttentionUNet(channels, factor * channels, vocab_size=self.codec_.vocab_size,
                                          length=self.codec_.length, channels=self.config.channels,
                                          blocks=self.config.blocks, patch=patch,
                                          caption_width=self.config.caption_width,
                                          caption_layers=self.config.caption_layers)
            return UNet(channels, factor * channels, channels=self.config.channels, blocks=self.config.blocks,
                        n_classes=n_classes, patch=patch)
        return PointDenoiser(data.dim, factor * data.dim, hidden=self.config.hidden, depth=self.config.depth,
                             n_classes=n_classes, fourier_features=self.config.fourier_features,
                             fourier_scale=self.config.fourier_scale)

    def _conditional(self) -> bool:
        return getattr(self.network_, "classes", None) is not None

    # ------------------------------------------------------------------ training
    def _phases(self) -> list[Phase]:
        if self.data_.modality == "tables":
            return [Phase("model", self.network_, self._table_loss)]
        schedule = self.schedule
        config = self.config
        conditional = self._conditional()
        null_class = self.network_.classes.null_class if conditional else 0
        tokens = self._train_tokens if self._captioned() else None   # (n, L) caption of each record

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
            vlb = config.timesteps * _vlb_term(schedule, config.prediction, output.detach(), v, x0, x_t, t).mean()
            total = mse + config.vlb_weight * vlb
            return Losses(total, {"mse": float(mse.detach()), "vlb": float(vlb.detach())})

        return [Phase("model", self.network_, denoising_loss)]

    def _table_loss(self, module: nn.Module, batch: Batch, generator: torch.Generator) -> Losses:
        """TabDDPM's objective on encoded rows ``batch.x (B, width)``: Gaussian MSE on the scores plus
        ``T`` times the mean multinomial ``L_t`` over one-hot blocks (module doc)."""
        # x: (B, width); t: (B,); numbers (B, N); each one-hot block (B, K)
        config, schedule, layout = self.config, self.schedule, self._table_layout()
        x, device = batch.x, batch.x.device
        t = torch.randint(config.timesteps, (len(x),), generator=generator, device=generator.device).to(device)
        alpha_bar = schedule.gather(schedule.alpha_bar, t, x)                 # (B, 1)
        alpha_bar_prev = schedule.gather(schedule.alpha_bar_prev, t, x)       # (B, 1)
        x0_num = x[:, list(layout.numeric)]
        eps = torch.randn(x0_num.shape, generator=generator, device=generator.device).to(device, x.dtype)
        x0_cat = [x[:, start:stop] for start, stop in layout.categorical]
        x_t_cat = [multinomial.sample_one_hot(multinomial.log_q_xt_given_x0(multinomial.one_hot_log(block),
                                                                              alpha_bar), generator)
                   for block in x0_cat]
        y = None
        if layout.label is not None:
            y = x[:, layout.label[0]:layout.label[1]].argmax(dim=1)
            y = self.network_.classes.drop(y, config.cond_dropout, generator)
        # Conditioning training: in a share mask_rate of the rows, each unit is shown clean with a
        # probability drawn per row; the loss counts only the units left to denoise.
        units = len(layout.unit_sizes)
        rate = torch.rand((len(x), 1), generator=generator, device=generator.device)
        shown = torch.rand((len(x), units), generator=generator, device=generator.device) < rate
        shown &= torch.rand((len(x), 1), generator=generator, device=generator.device) < config.mask_rate
        shown = shown.to(device)                                                # (B, units)
        mask = shown.repeat_interleave(torch.tensor(layout.unit_sizes, device=device), dim=1).to(x.dtype)
        x_t = torch.cat([schedule.add_noise(x0_num, eps, t), *x_t_cat], dim=1)
        x_in = torch.where(mask.bool(), layout.gather(x), x_t)
        output = module(torch.cat([x_in, mask], dim=1), t, y)
        hidden = (~shown).to(x.dtype)                                           # (B, units)
        zero = x.new_zeros(())
        mse = zero
        if layout.n_numeric:
            error = (output[:, :layout.n_numeric] - schedule.target(config.prediction, x0_num, eps, t)).pow(2)
            mse = (error * hidden[:, :layout.n_numeric]).mean()
        bound = zero
        for j, (block, x_t_block, logits) in enumerate(zip(x0_cat, x_t_cat, layout.split_logits(output))):
            # L_t = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)); at t = 0 it is -log p(x_0 | x_1).
            log_true = multinomial.log_posterior(multinomial.one_hot_log(block), x_t_block, alpha_bar, alpha_bar_prev)
            # .float(): CPU autocast keeps log_softmax in bf16, too coarse for log alpha_bar sums
            log_model = multinomial.log_posterior(torch.log_softmax(logits.float(), dim=1), x_t_block, alpha_bar,
                                                  alpha_bar_prev)
            bound = bound + (multinomial.kl(log_true, log_model) * hidden[:, layout.n_numeric + j]).mean()
        if layout.categorical:
            bound = config.timesteps * bound / len(layout.categorical)
        return Losses(mse + bound, {"mse": float(mse.detach()), "multinomial": float(bound.detach())})

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

    def _sample_network(self, n: int, condition: int | dict[str, Any] | None, generator: torch.Generator | None,
                        **options: Any) -> torch.Tensor:
        steps = options.get("steps", self.config.sample_steps)
        guidance = options.get("guidance", self.config.guidance)
        if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not guidance >= 0:
            raise ConfigError(f"guidance must be a number >= 0 (1 = plain conditional sampling), got {guidance!r}")
        sampler, eta = options.get("sampler", self.config.sampler), options.get("eta", 0.0)
        self._solver(sampler, eta)   # check the options before any work
        if options.get("prompt") is not None and not self._captioned():
            raise ConfigError("a prompt conditions a model trained on captions (e.g. shapes); this one was not")
        device = self.device
        values = (self._table_layout().width if self.data_.modality == "tables" else math.prod(self.data_.shape))
        chunk = options.get("batch_size")
        if chunk is None:
            chunk = n if device.type == "cuda" else max(1, CPU_SAMPLE_VALUES // values)
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
        if self._captioned():
            y, null = self._caption_tokens(n, options.get("prompt"))
            y, null = y.to(device), null.to(device)
            guidance = guidance if options.get("prompt") is not None else 1.0
        else:
            if self._conditional():
                label = self.network_.classes.null_class if condition is None else condition
                y = torch.full((n,), label, dtype=torch.long, device=device)
            guidance = guidance if self._conditional() and condition is not None else 1.0
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

    def _known_pixels(self, init: Any, mask: Any, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inpainting's kept picture: encoded ``x0 (n, *shape)`` and bool ``keep (n, 1, H, W)`` from ``mask``
        (float ``(1 or n, 1, H, W)``, 1 = redraw, 0 = keep); ``init`` is already checked by :meth:`_edit_start`.

        Raises:
            ConfigError: a mask of another shape or with values outside ``{0, 1}``.
        """
        mask = np.asarray(mask, dtype=np.float32)
        shape = (1, *self.data_.shape[1:])
        if mask.ndim != 4 or mask.shape[1:] != shape or len(mask) not in (1, n):
            raise ConfigError(f"mask must hold 1 or {n} masks of shape {shape}, got {mask.shape}")
        if not np.isin(mask, (0.0, 1.0)).all():
            raise ConfigError("mask values must be 0 (keep) or 1 (redraw)")
        x0 = self.codec_.encode(np.asarray(init, dtype=np.float32)).to(self.device)
        keep = torch.from_numpy(mask == 0).to(self.device)
        return x0.expand(n, -1, -1, -1), keep.expand(n, -1, -1, -1)

    def _caption_tokens(self, n: int, prompt: str | list[str] | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``(n, L)`` of ``prompt`` (one string for all, or one per sample; ``None`` = the empty
        caption) and of the empty caption, checked against the vocabulary."""
        prompts = prompt if isinstance(prompt, list) else [prompt] * n
        if len(prompts) != n or None in prompts and prompt is not None:
            raise ConfigError(f"give one prompt string, or a list of {n} strings (one per sample)")
        return self.codec_.tokens(prompts), self.codec_.null_tokens(n)

    def _edit_start(self, init: Any, strength: Any, eps: torch.Tensor, sampler: str, eta: float,
                    steps: int) -> tuple[torch.Tensor, int]:
        """SDEdit's start (module doc): ``x_t (n, *shape)`` of the ``init`` images (float ``(1 or n, *shape)``
        in ``[0, 1]``) noised with ``eps (n, *shape)``, and the index of the first visited step to run.

        Raises:
            ConfigError: not images, ``init`` or ``strength`` missing, ``strength`` outside ``(0, 1]`` or too
                small to leave a step, or ``init`` of another shape.
        """
        if self.data_.modality != "images":
            raise ConfigError(f"init and strength edit images; this model makes {self.data_.modality}")
        if init is None or strength is None:
            raise ConfigError("an image edit needs both init (the images) and strength (how much to change)")
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 < strength <= 1:
            raise ConfigError(f"strength must be in (0, 1] (1 = start from pure noise), got {strength!r}")
        init = np.asarray(init, dtype=np.float32)
        n = len(eps)
        if init.ndim != 4 or init.shape[1:] != self.data_.shape or len(init) not in (1, n):
            raise ConfigError(f"init must hold 1 or {n} images of shape {self.data_.shape}, got {init.shape}")
        if not (np.isfinite(init).all() and 0 <= init.min() and init.max() <= 1):
            raise ConfigError("init images must hold intensities in [0, 1]")
        remaining = int(steps * strength)
        if remaining < 1:
            raise ConfigError(f"strength {strength} of {steps} steps leaves no step to run; raise strength or steps")
        solver = self._solver(sampler, eta)
        solver.set_timesteps(steps)
        first = steps - remaining
        t = torch.full((n,), int(solver.timesteps[first]), dtype=torch.long, device=eps.device)
        x0 = self.codec_.encode(init).to(eps.device).expand(n, -1, -1, -1)
        return self.schedule.add_noise(x0, eps, t), first

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

    # ------------------------------------------------------------------ tables
    def _known(self, condition: dict[str, Any] | None) -> tuple[torch.Tensor, torch.Tensor]:
        """A parsed table condition as an encoded row ``(width,)`` and the mask ``(width,)`` of the encoded
        columns it fixes (every block of each conditioned column, e.g. a number and its ``present`` flag).

        The row is the codec's own encoding of a one-row table holding the conditioned values, so a
        condition is encoded exactly as training rows are.
        """
        codec = self.codec_
        mask = torch.zeros(codec.width, dtype=torch.bool)
        if not condition:
            return torch.zeros(codec.width), mask
        for block in codec.blocks:
            if block.column in condition:
                mask[block.start:block.stop] = True
        return torch.as_tensor(codec.encode_condition(condition)), mask

    def _sample_table(self, n: int, condition: dict[str, Any] | None, generator: torch.Generator | None, *,
                      sampler: str, eta: float, steps: int, chunk: int) -> torch.Tensor:
        """``n`` encoded rows ``(n, codec.width)`` from the joint reverse process, ``condition`` imposed."""
        layout, device, width = self._table_layout(), self.device, self.codec_.width
        known, mask = self._known(condition)
        known, mask = known.to(device), mask.to(device)
        rng_device = generator.device if generator is not None else torch.device("cpu")
        if layout.label is None:
            y = None
        elif mask[layout.label[0]]:
            y = torch.full((n,), int(known[layout.label[0]:layout.label[1]].argmax()), dtype=torch.long)
        else:   # the class label from its training shares (TabDDPM samples y first, then x | y)
            spec = self.codec_.spec(self.data_.target)
            # frequencies: categories, then missing (a slot of the block only when training had missing values)
            shares = torch.tensor(spec["frequencies"][:layout.n_classes], dtype=torch.float64)
            y = torch.multinomial(shares, n, replacement=True, generator=generator if rng_device.type == "cpu"
                                  else None)
        parts = []
        for start in range(0, n, chunk):   # each chunk runs the whole reverse process with a fresh solver
            solver = self._solver(sampler, eta)
            solver.set_timesteps(steps)
            rows = min(chunk, n - start)
            part_y = None if y is None else y[start:start + rows].to(device)
            x_num, x_cat = self._reverse_table(rows, part_y, known, mask, layout, solver, generator)
            z = torch.zeros(rows, width, device=device)
            z[:, list(layout.numeric)] = x_num
            for (first, stop), block in zip(layout.categorical, x_cat):
                z[:, first:stop] = block
            if part_y is not None:
                z[:, layout.label[0]:layout.label[1]] = nn.functional.one_hot(part_y, layout.n_classes).float()
            parts.append(torch.where(mask, known, z))   # the conditioned columns hold their values exactly
        return torch.cat(parts)

    def _reverse_table(self, n: int, y: torch.Tensor | None, known: torch.Tensor, mask: torch.Tensor,
                       layout: TableLayout, solver: Sampler, generator: torch.Generator | None
                       ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Reverse ``n`` rows from noise: scores ``(n, N)`` and one-hot blocks ``[(n, K), ...]``.

        The conditioned columns are shown clean at every step, flagged in the mask input, as in training
        (module doc), so the network denoises the others from ``p(rest | condition)``; their own outputs
        are ignored (the caller writes the values in).
        """
        device = known.device
        rng_device = generator.device if generator is not None else torch.device("cpu")
        shown = layout.gather(mask[None].to(known.dtype)).expand(n, -1)       # (n, width) mask input
        clean = layout.gather(known[None]).expand(n, -1)                      # (n, width) conditioned values
        x_num = torch.randn((n, layout.n_numeric), generator=generator, device=rng_device).to(device)
        x_cat = [multinomial.sample_one_hot(torch.zeros(n, stop - start, device=device), generator)
                 for start, stop in layout.categorical]
        for t in solver.timesteps.tolist():
            alpha_bar_t, alpha_bar_prev = solver.alpha_bars(t)
            x_in = torch.where(shown.bool(), clean, torch.cat([x_num, *x_cat], dim=1))
            t_batch = torch.full((n,), t, dtype=torch.long, device=device)
            output = self.network_(torch.cat([x_in, shown], dim=1), t_batch, y)
            x_num = solver.step(output[:, :layout.n_numeric], t, x_num, generator=generator)
            x_cat = [multinomial.sample_one_hot(multinomial.log_posterior(torch.log_softmax(logits, dim=1), x_t,
                                                                          alpha_bar_t, alpha_bar_prev), generator)
                     for x_t, logits in zip(x_cat, layout.split_logits(output))]
        return x_num, x_cat


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

