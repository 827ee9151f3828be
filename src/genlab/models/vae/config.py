"""Options of the VAE family (:class:`VAEConfig`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, kw_only=True)
class VAEConfig:
    """Options of the VAE family.

    Attributes:
        latent_dim: size of ``z``.
        beta: weight of the KL term (Higgins et al. 2017); 1 gives the ELBO.
        kl_warmup: share of the training budget (of its steps, or of its time when the budget is a time)
            over which the KL weight rises linearly from 0 to ``beta`` (Bowman et al. 2016 sec. 3.1;
            Sønderby et al. 2016); 0 = none. A share, not a step count, so that ``--max-time`` warms up
            as a step budget does (1/3: 1,000 of the default 3,000 steps, as measured on ring8).
        free_bits: nats per latent dimension, ``lambda``, below which the batch-averaged KL of that
            dimension is not penalised (Kingma et al. 2016 eq. 15); 0 = none.
        likelihood: ``"auto"`` (Gaussian for points, Bernoulli for images), ``"gaussian"`` or ``"bernoulli"``.
        min_std: floor of the Gaussian decoder's scale, in model-space units (keeps the likelihood bounded).
        iwae_samples: importance samples ``k`` of ``log_prob`` (Burda et al. 2016).
        hidden: width of the hidden layers (points) or of the encoder's features (images).
        depth: hidden layers of the encoder and decoder MLPs (points).
        channels: channels of the first encoder and last decoder convolution (images).
        embed_dim: width of the class embeddings (conditional models).
        conditional: condition encoder and decoder on class labels when the data has them.
        prior: where sampling draws latents: ``"standard"``, ``N(0, I)``; ``"gmm"``, a Gaussian mixture
            fitted after training to the training set's posterior means, per class for a conditional model
            (ex-post density estimation, :mod:`genlab.models.vae.ex_post`). Images and points only.
        prior_components: components of that mixture (per class).
    """

    latent_dim: int = 16
    beta: float = 1.0
    kl_warmup: float = 1 / 3
    free_bits: float = 0.0
    likelihood: Literal["auto", "gaussian", "bernoulli"] = "auto"
    min_std: float = 1e-3
    iwae_samples: int = 64
    hidden: int = 256
    depth: int = 3
    channels: int = 32
    embed_dim: int = 16
    conditional: bool = True
    prior: Literal["standard", "gmm"] = "standard"
    prior_components: int = 10

    def __post_init__(self) -> None:
        for name in ("latent_dim", "iwae_samples", "hidden", "depth", "channels", "embed_dim",
                     "prior_components"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.beta < 0:
            raise ValueError(f"beta must be non-negative, got {self.beta}")
        if not 0 <= self.kl_warmup <= 1:
            raise ValueError(f"kl_warmup is a share of the training budget in [0, 1], got {self.kl_warmup}")
        if self.free_bits < 0:
            raise ValueError(f"free_bits must be non-negative, got {self.free_bits}")
        if self.min_std <= 0:
            raise ValueError(f"min_std must be positive, got {self.min_std}")
