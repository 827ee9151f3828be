"""The encoder, decoder and likelihood of a (conditional) VAE, and the importance-weighted bound."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genlab.models.vae.ex_post import FittedPrior


LOG_2PI = math.log(2.0 * math.pi)


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
        fitted_prior: the ex-post mixture sampling draws latents from (:mod:`genlab.models.vae.ex_post`),
            or ``None`` for ``N(0, I)`` only.
    """

    def __init__(self, encoder_body: nn.Module, decoder_body: nn.Module, *, features: int, latent_dim: int,
                 n_classes: int, embed_dim: int, likelihood: str, min_std: float,
                 fitted_prior: FittedPrior | None = None) -> None:
        super().__init__()
        extra = embed_dim if n_classes else 0
        self.encoder_body = encoder_body
        self.encoder_head = nn.Linear(features + extra, 2 * latent_dim)
        self.decoder_body = decoder_body
        self.encoder_embed = nn.Embedding(n_classes, embed_dim) if n_classes else None
        self.decoder_embed = nn.Embedding(n_classes, embed_dim) if n_classes else None
        self.likelihood = likelihood
        self.min_std = min_std
        self.fitted_prior = fitted_prior
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
            return log_p.flatten(1).sum(1) - math.prod(x.shape[1:]) * math.log(2.0)
        mean, s = params.chunk(2, dim=1)[0], self.scale(params)
        log_p = -0.5 * LOG_2PI - s.log() - 0.5 * ((x - mean) / s) ** 2
        return log_p.flatten(1).sum(1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One-sample ELBO terms: ``x (B, *shape)``, ``eps (B, latent_dim)`` -> ``log p(x|z) (B,)`` and the KL
        per latent dimension ``(B, latent_dim)`` (sum it over ``dim=1`` for ``KL(q(z|x) || p(z))``)."""
        mu, logvar = self.encode(x, y)
        z = mu + (0.5 * logvar).exp() * eps                               # reparameterisation trick
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)                # KL(q_j || N(0, 1)), closed form
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
