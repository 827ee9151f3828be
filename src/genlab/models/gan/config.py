"""Options of the GAN family (:class:`GANConfig`) and its losses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


LOSSES = ("ns", "hinge", "wgan-gp")


@dataclass(frozen=True, kw_only=True)
class GANConfig:
    """Options of the GAN family.

    Attributes:
        latent_dim: size of the latent ``z ~ N(0, I)``.
        loss: ``"ns"`` (non-saturating), ``"hinge"`` or ``"wgan-gp"``.
        spectral_norm: spectral normalisation of every discriminator layer (Miyato et al. 2018).
        r1: weight ``gamma`` of the R1 penalty on real data (0 = off; Mescheder et al. 2018).
        gp: weight ``lambda`` of the WGAN-GP gradient penalty (used by ``loss="wgan-gp"`` only).
        n_critic: discriminator steps per generator step.
        lr_d: peak learning rate of the discriminator, ``None`` for ``TrainConfig.lr``; a ``lr_d`` above
            ``lr_g`` is the two time-scale update rule (TTUR, Heusel et al. 2017). Both follow the
            Trainer's schedule.
        lr_g: peak learning rate of the generator, ``None`` for ``TrainConfig.lr``.
        betas: Adam betas of both phases.
        pack: PacGAN degree ``m``: records the discriminator sees at once (1 = an ordinary GAN).
        hidden: width of the hidden layers (points) or of the pre-projection features (images).
        depth: hidden layers of the generator and discriminator MLPs (points).
        channels: channels of the first discriminator and last generator convolution (images).
        embed_dim: width of the generator's class embedding (conditional models).
        conditional: condition on class labels when the data has them.
        drs: also train a *rejection critic* (an unpacked discriminator with the logistic loss, beside
            the game, never giving the generator gradients) and sample by discriminator rejection sampling
            (Azadi et al. 2019; :mod:`genlab.sampling.rejection`). Points and images.
        drs_fourier_features: sinusoidal features per coordinate fed to the rejection critic on points
            besides the coordinates (0 = none; :class:`~genlab.nn.embeddings.FourierFeatures`). They let it
            resolve modes far narrower than the data's spread. Given to the game's discriminator they
            collapsed grid25 to 2-6 modes: its gradients then no longer reach across modes.
        drs_fourier_scale: highest angular frequency of those features, per standardised unit.
        diffaugment: show the discriminator translated and cut-out real and generated images in both
            players' losses (DiffAugment, Zhao et al. 2020; :mod:`genlab.models.gan.augment`). Images only.
    """

    latent_dim: int = 32
    loss: Literal["ns", "hinge", "wgan-gp"] = "ns"
    spectral_norm: bool = False
    r1: float = 0.0
    gp: float = 10.0
    n_critic: int = 1
    lr_d: float | None = None
    lr_g: float | None = None
    betas: tuple[float, float] = (0.5, 0.999)
    pack: int = 1
    hidden: int = 256
    depth: int = 3
    channels: int = 64
    embed_dim: int = 16
    conditional: bool = True
    drs: bool = False
    drs_fourier_features: int = 16
    drs_fourier_scale: float = 30.0
    diffaugment: bool = False

    def __post_init__(self) -> None:
        for name in ("latent_dim", "n_critic", "pack", "hidden", "depth", "channels", "embed_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("lr_d", "lr_g"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive or None, got {getattr(self, name)}")
        if self.drs_fourier_features < 0 or not self.drs_fourier_scale > 0:
            raise ValueError("drs_fourier_features must be >= 0 and drs_fourier_scale > 0")
        if self.r1 < 0 or self.gp < 0:
            raise ValueError("r1 and gp must be non-negative")
        if not all(0 <= beta < 1 for beta in self.betas):
            raise ValueError(f"betas must lie in [0, 1), got {self.betas}")
