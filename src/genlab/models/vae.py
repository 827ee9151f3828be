"""Variational autoencoders: an encoder ``q(z|x)``, a decoder ``p(x|z)`` and the evidence lower bound.

Kingma & Welling (2014, eq. 10) with the prior ``p(z) = N(0, I)`` and a diagonal Gaussian posterior
``q(z|x) = N(mu(x), diag exp(logvar(x)))``:

    ELBO(x) = E_q[log p(x|z)] - beta * KL(q(z|x) || p(z)),
    KL      = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j),

estimated with one reparameterised draw ``z = mu + exp(logvar / 2) * eps``, ``eps ~ N(0, I)``; ``beta``
is Higgins et al.'s (2017) weight (1 = the plain bound, > 1 favours disentangled latents).

Likelihoods ``p(x|z)``, in model space (the codec's standardised points, or images in ``[-1, 1]``):

- ``"gaussian"``: ``N(x; m(z), diag s(z)^2)`` with a learned per-coordinate scale
  ``s = min_std + softplus(.)`` (the default for points);
- ``"bernoulli"``: pixel intensities ``t = (x + 1) / 2`` in ``[0, 1]`` scored by
  ``sum t log p + (1 - t) log(1 - p)`` (the default for images). For gray levels this is the usual
  MNIST convention, not a normalised density on ``[0, 1]^D``; exactly normalised for binary images.
  It is reported in model space (``- D log 2``) so that ``log_prob`` adds the codec's ``D log 2`` back.

``log_prob`` is the importance-weighted bound of Burda et al. (2016, eq. 8),
``log 1/k sum_i p(x, z_i) / q(z_i|x)`` with ``z_i ~ q(z|x)``: a lower bound on ``log p(x)`` that equals
the ELBO for ``k = 1`` and rises towards ``log p(x)`` as ``k`` grows.

Conditional on class labels (Sohn et al. 2015): both ``q(z|x, y)`` and ``p(x|z, y)`` take a learned class
embedding, so ``z`` carries what the label does not (style), and ``decode(encode(x, c), c')`` transfers it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import ConfigError
from genlab.models.base import DataInfo, FitContext, GenerativeModel, class_log_prior
from genlab.nn.conv import ConvDecoder, ConvEncoder
from genlab.nn.mlp import MLP
from genlab.sampling.latent import check_latents
from genlab.train import Batch, Losses, Phase, TrainConfig

LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True, kw_only=True)
class VAEConfig:
    """Options of the VAE family.

    Attributes:
        latent_dim: size of ``z``.
        beta: weight of the KL term (Higgins et al. 2017); 1 gives the ELBO.
        likelihood: ``"auto"`` (Gaussian for points, Bernoulli for images), ``"gaussian"`` or ``"bernoulli"``.
        min_std: floor of the Gaussian decoder's scale, in model-space units (keeps the likelihood bounded).
        iwae_samples: importance samples ``k`` of ``log_prob`` (Burda et al. 2016).
        hidden: width of the hidden layers (points) or of the encoder's features (images).
        depth: hidden layers of the encoder and decoder MLPs (points).
        channels: channels of the first encoder and last decoder convolution (images).
        embed_dim: width of the class embeddings (conditional models).
        conditional: condition encoder and decoder on class labels when the data has them.
    """

    latent_dim: int = 16
    beta: float = 1.0
    likelihood: Literal["auto", "gaussian", "bernoulli"] = "auto"
    min_std: float = 1e-3
    iwae_samples: int = 64
    hidden: int = 256
    depth: int = 2
    channels: int = 32
    embed_dim: int = 16
    conditional: bool = True

    def __post_init__(self) -> None:
        for name in ("latent_dim", "iwae_samples", "hidden", "depth", "channels", "embed_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.beta < 0:
            raise ValueError(f"beta must be non-negative, got {self.beta}")
        if self.min_std <= 0:
            raise ValueError(f"min_std must be positive, got {self.min_std}")


class VAENetwork(nn.Module):
    """Encoder, decoder and likelihood of a (conditional) VAE.

    Args:
        encoder_body: ``(B, *shape)`` -> ``(B, features)`` (before its activation).
        decoder_body: ``(B, latent_dim [+ embed_dim])`` -> ``(B, *out_shape)``: the likelihood's
            parameters, ``out_shape`` = ``shape`` (Bernoulli logits) or twice the channels (Gaussian mean
            and scale).
        features: width of the encoder body's output.
        latent_dim: size of ``z``.
        n_classes: classes of a conditional model, 0 for none.
        embed_dim: width of the class embeddings.
        likelihood: ``"gaussian"`` or ``"bernoulli"``.
        min_std: floor of the Gaussian scale.
    """

    def __init__(self, encoder_body: nn.Module, decoder_body: nn.Module, *, features: int, latent_dim: int,
                 n_classes: int, embed_dim: int, likelihood: str, min_std: float) -> None:
        super().__init__()
        extra = embed_dim if n_classes else 0
        self.encoder_body = encoder_body
        self.encoder_head = nn.Linear(features + extra, 2 * latent_dim)
        self.decoder_body = decoder_body
        self.encoder_embed = nn.Embedding(n_classes, embed_dim) if n_classes else None
        self.decoder_embed = nn.Embedding(n_classes, embed_dim) if n_classes else None
        self.likelihood = likelihood
        self.min_std = min_std
        if n_classes:
            self.register_buffer("class_log_prior", torch.full((n_classes,), -math.log(n_classes)))

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``q(z|x, y)``: ``x (B, *shape)``, ``y (B,)`` -> ``mu, logvar``, each ``(B, latent_dim)``."""
        h = F.silu(self.encoder_body(x))                                  # (B, features)
        if self.encoder_embed is not None:
            h = torch.cat([h, self.encoder_embed(y)], dim=1)
        mu, logvar = self.encoder_head(h).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Parameters of ``p(x|z, y)``: ``z (B, latent_dim)`` -> ``(B, *out_shape)``."""
        h = z if self.decoder_embed is None else torch.cat([z, self.decoder_embed(y)], dim=1)
        return self.decoder_body(h)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """``E[x|z]`` in model space from the decoder's parameters: ``(B, *out_shape)`` -> ``(B, *shape)``."""
        if self.likelihood == "bernoulli":
            return 2 * torch.sigmoid(params) - 1
        return params.chunk(2, dim=1)[0]

    def scale(self, params: torch.Tensor) -> torch.Tensor:
        """Gaussian scale ``s = min_std + softplus(raw)``, ``(B, *shape)``."""
        return self.min_std + F.softplus(params.chunk(2, dim=1)[1])

    def log_likelihood(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """``log p(x|z)`` in model space, summed over coordinates: ``x (B, *shape)`` -> ``(B,)``."""
        if self.likelihood == "bernoulli":
            t = (x + 1) / 2                                               # intensities in [0, 1]
            log_p = -F.binary_cross_entropy_with_logits(params, t, reduction="none")
            return log_p.flatten(1).sum(1) - x[0].numel() * math.log(2.0)
        mean, s = params.chunk(2, dim=1)[0], self.scale(params)
        log_p = -0.5 * LOG_2PI - s.log() - 0.5 * ((x - mean) / s) ** 2
        return log_p.flatten(1).sum(1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One-sample ELBO terms: ``x (B, *shape)``, ``eps (B, latent_dim)`` -> ``log p(x|z) (B,)``, ``KL (B,)``."""
        mu, logvar = self.encode(x, y)
        z = mu + (0.5 * logvar).exp() * eps                               # reparameterisation trick
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)         # KL(q || N(0, I)), closed form
        return self.log_likelihood(x, self.decode(z, y)), kl


def iwae_bound(network: VAENetwork, x: torch.Tensor, y: torch.Tensor | None, k: int,
               generator: torch.Generator | None) -> torch.Tensor:
    """Importance-weighted bound ``log 1/k sum_i p(x|z_i) p(z_i) / q(z_i|x)`` (Burda et al. 2016 eq. 8).

    Args:
        network: the VAE.
        x: ``(B, *shape)`` records in model space.
        y: ``(B,)`` labels or ``None``.
        k: importance samples per record.
        generator: source of the draws ``z_i ~ q(z|x)``.

    Returns:
        ``(B,)`` bounds in nats, model space.
    """
    mu, logvar = network.encode(x, y)                                     # (B, L)
    B, L = mu.shape
    device = generator.device if generator is not None else torch.device("cpu")
    eps = torch.randn(k, B, L, generator=generator, device=device).to(mu)
    z = mu + (0.5 * logvar).exp() * eps                                   # (k, B, L)
    log_q = (-0.5 * (LOG_2PI + logvar + eps.pow(2))).sum(-1)             # (k, B)
    log_prior = (-0.5 * (LOG_2PI + z.pow(2))).sum(-1)                     # (k, B)
    repeat = lambda t: None if t is None else t.expand(k, *t.shape).reshape(k * B, *t.shape[1:])  # noqa: E731
    params = network.decode(z.reshape(k * B, L), repeat(y))
    log_px = network.log_likelihood(repeat(x), params).reshape(k, B)
    return torch.logsumexp(log_px + log_prior - log_q, dim=0) - math.log(k)


class VAEModel(GenerativeModel):
    """The ``vae`` family: ``fit``, ``sample``, ``encode``, ``decode``, ``log_prob`` (IWAE), save/load.

    Example:
        >>> model = VAEModel(latent_dim=8).fit(genlab.datasets.load("digits"))
        >>> z = model.encode(x, condition=3)                  # (n, 8) posterior means
        >>> model.decode(z, condition=5)                      # the same style, drawn as a 5
        >>> model.log_prob(x, condition=3, samples=1000)      # IWAE bound, nats per record
    """

    family = "vae"
    config_class = VAEConfig
    sample_options = frozenset({"mean"})

    def default_train_config(self) -> TrainConfig:
        """Adam(W) at 1e-3 for 3,000 steps of 256 records."""
        return TrainConfig(steps=3000, batch_size=256, lr=1e-3)

    @property
    def latent_shape(self) -> tuple[int]:
        """Shape of one latent vector, ``(latent_dim,)``; the prior is ``N(0, I)``."""
        return (self.config.latent_dim,)

    def _likelihood(self, data: DataInfo) -> str:
        likelihood = self.config.likelihood
        if likelihood == "auto":
            return "bernoulli" if data.modality == "images" else "gaussian"
        if likelihood == "bernoulli" and data.modality != "images":
            raise ConfigError("the bernoulli likelihood needs images with intensities in [0, 1]; "
                              f"for {data.modality} choose likelihood='gaussian' or 'auto'")
        return likelihood

    def _build_network(self, data: DataInfo) -> VAENetwork:
        config = self.config
        n_classes = data.n_classes if config.conditional else 0
        likelihood = self._likelihood(data)
        outputs = 2 if likelihood == "gaussian" else 1
        z_in = config.latent_dim + (config.embed_dim if n_classes else 0)
        if data.modality == "images":
            encoder_body: nn.Module = ConvEncoder(data.shape, config.hidden, width=config.channels)
            decoder_body: nn.Module = ConvDecoder(z_in, (outputs * data.shape[0], *data.shape[1:]),
                                                  width=config.channels)
        else:
            encoder_body = MLP(data.dim, config.hidden, hidden=config.hidden, depth=config.depth - 1)
            decoder_body = MLP(z_in, outputs * data.dim, hidden=config.hidden, depth=config.depth)
        return VAENetwork(encoder_body, decoder_body, features=config.hidden, latent_dim=config.latent_dim,
                          n_classes=n_classes, embed_dim=config.embed_dim, likelihood=likelihood,
                          min_std=config.min_std)

    @property
    def _conditional(self) -> bool:
        return hasattr(self.network_, "class_log_prior")

    def _fit_network(self, x: torch.Tensor, y: torch.Tensor | None, context: FitContext) -> None:
        labels = y if self._conditional else None
        if labels is not None:
            self.network_.class_log_prior.copy_(class_log_prior(labels, self.data_.class_names))
        super()._fit_network(x, labels, context)

    def _phases(self) -> list[Phase]:
        beta, latent_dim, conditional = self.config.beta, self.config.latent_dim, self._conditional

        def negative_elbo(module: nn.Module, batch: Batch, generator: torch.Generator) -> Losses:
            # x: (B, *shape); eps: (B, L); loss = mean over records of -log p(x|z) + beta KL (nats)
            eps = torch.randn(len(batch.x), latent_dim, generator=generator, device=generator.device)
            log_px, kl = module(batch.x, batch.y if conditional else None, eps.to(batch.x))
            recon, kl = -log_px.mean(), kl.mean()
            return Losses(recon + beta * kl, {"recon": float(recon.detach()), "kl": float(kl.detach()),
                                              "elbo": float(-(recon + kl).detach())})

        return [Phase("model", self.network_, negative_elbo)]

    def _labels(self, n: int, index: int | None, generator: torch.Generator | None, *,
                draw: bool) -> torch.Tensor | None:
        """Labels ``(n,)`` of a conditional model: the given class, a draw from the class prior, or an error."""
        if not self._conditional:
            return None
        if index is not None:
            return torch.full((n,), index, dtype=torch.long, device=self.device)
        if not draw:
            raise ConfigError("this VAE is class-conditional: pass condition= (a class index or name) among "
                              f"{', '.join(self.data_.class_names)}")
        device = generator.device if generator is not None else torch.device("cpu")
        prior = self.network_.class_log_prior.exp().to(device)
        return torch.multinomial(prior, n, replacement=True, generator=generator).to(self.device)

    def _sample_network(self, n: int, condition: int | None, generator: torch.Generator | None,
                        mean: bool = False) -> torch.Tensor:
        """``z ~ N(0, I)``, then ``x ~ p(x|z)`` (Gaussian), or ``E[x|z]`` with ``mean=True`` and for Bernoulli
        images (whose gray levels are the Bernoulli means)."""
        if not isinstance(mean, bool):
            raise ConfigError(f"sampling option mean must be true or false, got {mean!r}")
        device = generator.device if generator is not None else torch.device("cpu")
        y = self._labels(n, condition, generator, draw=True)
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=device).to(self.device)
        network = self.network_
        params = network.decode(z, y)
        x = network.mean(params)
        if network.likelihood == "gaussian" and not mean:
            eps = torch.randn(x.shape, generator=generator, device=device).to(x)
            x = x + network.scale(params) * eps
        return x

    def encode(self, x: np.ndarray, *, condition: int | str | None = None) -> np.ndarray:
        """Posterior means ``mu(x)`` of ``q(z|x)``.

        Args:
            x: raw records ``(n, *shape)``.
            condition: their class (required by a class-conditional model).

        Returns:
            float32 ``(n, latent_dim)``.
        """
        self._check_fitted()
        index = self.condition_index(condition)
        z = self.codec_.encode(x).to(self.device)
        with torch.no_grad():
            mu, _ = self.network_.encode(z, self._labels(len(z), index, None, draw=False))
        return mu.cpu().numpy()

    def decode(self, z: np.ndarray, *, condition: int | str | None = None) -> np.ndarray:
        """Raw records ``E[x|z]`` (the decoder's mean) from latents.

        Args:
            z: float ``(n, latent_dim)``; the prior is ``N(0, I)``.
            condition: the class to draw (required by a class-conditional model).

        Returns:
            float32 ``(n, *shape)`` raw records.
        """
        self._check_fitted()
        z = check_latents(z, self.latent_shape).to(self.device)
        index = self.condition_index(condition)
        with torch.no_grad():
            params = self.network_.decode(z, self._labels(len(z), index, None, draw=False))
            return self.codec_.decode(self.network_.mean(params))

    def log_prob(self, x: np.ndarray, *, condition: int | str | None = None, samples: int | None = None,
                 generator: torch.Generator | None = None) -> np.ndarray:
        """The IWAE lower bound on ``log p(x)`` (or ``log p(x | c)``), nats per raw record, float64 ``(n,)``.

        Args:
            x: raw records ``(n, *shape)``.
            condition: class of ``x`` for ``log p(x | c)``; ``None`` marginalises a conditional model over
                the class prior, ``log sum_c pi_c p(x | c)`` (each term bounded by IWAE).
            samples: importance samples ``k`` (default ``config.iwae_samples``); larger is tighter.
            generator: source of the importance draws; ``None`` uses a fixed seed (0), so repeated calls
                agree.
        """
        self._check_fitted()
        k = self.config.iwae_samples if samples is None else samples
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"samples must be a positive integer, got {k!r}")
        index = self.condition_index(condition)
        z = self.codec_.encode(x).to(self.device)
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        with torch.no_grad():
            log_p = self._iwae(z, index, k, generator)
        return log_p.double().cpu().numpy() + self.codec_.log_abs_det_jacobian()

    def _iwae(self, x: torch.Tensor, index: int | None, k: int, generator: torch.Generator) -> torch.Tensor:
        """Chunked :func:`iwae_bound` of model-space ``x (n, *shape)``, marginalising classes when asked: ``(n,)``."""
        network, chunk = self.network_, max(1, 16384 // k)
        classes: list[int | None] = [index]
        if self._conditional and index is None:
            classes = list(range(len(network.class_log_prior)))
        per_class = []
        for c in classes:
            bounds = []
            for rows in x.split(chunk):
                y = None if c is None else torch.full((len(rows),), c, dtype=torch.long, device=x.device)
                bounds.append(iwae_bound(network, rows, y, k, generator))
            per_class.append(torch.cat(bounds))
        if len(classes) == 1:
            return per_class[0]
        return torch.logsumexp(torch.stack(per_class, 1) + network.class_log_prior, dim=1)

