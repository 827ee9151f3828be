"""Options of the diffusion family (:class:`DiffusionConfig`) and the samplers it offers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SAMPLERS: tuple[str, ...] = ("ddpm", "ddim", "dpm++")
#: Record values (pixels, coordinates) denoised together on CPU. A batch whose activations outgrow the
#: CPU caches is slower per record: one thread, 28x28 UNet, 256 images at once took 2.3 s per network
#: call, chunks of 32-64 images 1.25-1.35 s. Smaller still is a little faster, most on onnxruntime
#: (benchmarks/diffusion_speed.py's 1M-parameter UNet, one thread, idle machine, ms an image a call):
#: onnxruntime 1.85-1.87 at 16-20 images, 1.92 at 32, 1.95 at 40-41; eager 2.1-2.6 at 16-20 and 2.5-2.7 at
#: 32-41 (noisier). 2^14 values = 20 MNIST images, 256 digits, 8,192 points. A larger batch is cut into
#: equal chunks (:func:`equal_chunks`): 64 images into four of 16, not 20, 20, 20 and 4. One cap for
#: both backends, so a seed gives the same records on either (a stochastic sampler draws its noise chunk by
#: chunk). On CUDA the whole batch goes at once.
CPU_SAMPLE_VALUES = 2 ** 14


def equal_chunks(n: int, cap: int) -> int:
    """The chunk size that cuts ``n`` records into the fewest chunks of at most ``cap`` (at least 1), as
    equal as can be (the last may be smaller): ``ceil(n / ceil(n / cap))``."""
    cap = max(1, cap)
    return -(-n // -(-n // cap))


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
        backend: what runs the network while sampling when ``sample`` is given none: ``"auto"`` (onnxruntime
            on CPU where it can run and pays, else eager PyTorch), ``"onnxruntime"`` or ``"eager"`` (see
            :mod:`genlab.models.diffusion.backends`).
        captions: condition images on their captions when the data has them (then ``cond_dropout`` is
            the share of training captions replaced by the empty caption).
        caption_width: width of the caption encoder and of the cross-attention keys and values.
        caption_layers: transformer layers of the caption encoder.
        self_attention_levels: coarsest UNet resolutions (and the middle, when > 0) that also self-attend,
            for images conditioned on captions (0 = none; see :mod:`genlab.nn.cross_attention_unet`).
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
    backend: Literal["auto", "onnxruntime", "eager"] = "auto"
    captions: bool = True
    caption_width: int = 64
    caption_layers: int = 2
    self_attention_levels: int = 0

    def __post_init__(self) -> None:
        if self.sample_steps < 1 or self.guidance < 0:
            raise ValueError(f"sample_steps must be at least 1 and guidance >= 0, got {self.sample_steps}, "
                             f"{self.guidance}")
        if self.timesteps < 2:
            raise ValueError(f"timesteps must be at least 2, got {self.timesteps}")
        if self.self_attention_levels < 0:
            raise ValueError(f"self_attention_levels must be >= 0, got {self.self_attention_levels}")
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
