"""TVAE (Xu et al. 2019): the VAE on tables, a conditional VAE on shown columns."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import NotSupportedError
from genlab.nn.mlp import MLP
from genlab.nn.tabular import TableHeads
from genlab.train import Batch, Losses, Phase


#: Share of training rows in which a random subset of table columns is shown to the CVAE (module doc of
#: :mod:`genlab.nn.tabular`), as the diffusion family's ``mask_rate`` default.
TABLE_MASK_RATE = 0.5


#: Floor of the scalars' learned scale in model units (TVAE clamps ``sigma`` to ``[0.01, 1]``).
TABLE_MIN_STD = 0.01


class TableVAENetwork(nn.Module):
    """TVAE (Xu et al. 2019, sec. 4.4) as a conditional VAE on shown columns.

    ``q(z | x, c)`` and ``p(x | z, c)`` are MLPs; ``c = [x * shown, shown]`` (``(B, width + C)``, see
    :meth:`genlab.nn.tabular.TableHeads.condition_input`) is all zeros for an unconditioned row. The decoder
    outputs one raw value per encoded position: the mean of a scalar (scale ``sigma``, one learned
    parameter per scalar as TVAE's) or a logit of a one-hot block.

    Args:
        width: encoded row width ``W``; n_columns: table columns ``C``; n_scalars: scalar positions ``S``.
        latent_dim, hidden, depth: sizes of ``z`` and of both MLPs.
    """

    def __init__(self, width: int, n_columns: int, n_scalars: int, *, latent_dim: int, hidden: int,
                 depth: int) -> None:
        super().__init__()
        c = width + n_columns
        self.encoder = MLP(width + c, 2 * latent_dim, hidden=hidden, depth=depth)
        self.decoder = MLP(latent_dim + c, width, hidden=hidden, depth=depth)
        # sigma = TABLE_MIN_STD + softplus(raw) starts at 0.1, TVAE's initial value.
        self.sigma_raw = nn.Parameter(torch.full((n_scalars,), math.log(math.expm1(0.1 - TABLE_MIN_STD))))

    @property
    def sigma(self) -> torch.Tensor:
        """Scale of each scalar's Gaussian, ``(S,)``."""
        return TABLE_MIN_STD + F.softplus(self.sigma_raw)

    def encode(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, W)``, ``c (B, W + C)`` -> ``mu, logvar``, each ``(B, latent_dim)``."""
        return self.encoder(torch.cat([x, c], dim=1)).chunk(2, dim=1)

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``z (B, latent_dim)``, ``c (B, W + C)`` -> raw outputs ``(B, W)``."""
        return self.decoder(torch.cat([z, c], dim=1))

    def forward(self, x: torch.Tensor, c: torch.Tensor, eps: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One reparameterised pass (in ``forward`` so DDP sees every parameter): ``x (B, W)``,
        ``c (B, W + C)``, ``eps (B, L)`` -> decoder outputs ``(B, W)``, ``mu, logvar (B, L)``, ``sigma (S,)``."""
        mu, logvar = self.encode(x, c)
        z = mu + (0.5 * logvar).exp() * eps                               # reparameterisation trick
        return self.decode(z, c), mu, logvar, self.sigma


class TabularVAE:
    """The VAE's table methods (a mixin of :class:`~genlab.models.vae.VAEModel`)."""

    # ------------------------------------------------------------------ tables (TVAE, conditional on shown columns)
    def _build_table_network(self) -> "TableVAENetwork":
        heads, config = TableHeads(self.codec_), self.config
        return TableVAENetwork(heads.width, heads.n_columns, heads.n_scalars, latent_dim=config.latent_dim,
                               hidden=config.hidden, depth=config.depth)

    def _table_phases(self) -> list[Phase]:
        config, heads = self.config, TableHeads(self.codec_)

        def negative_elbo(module: nn.Module, batch: Batch, generator: torch.Generator) -> Losses:
            # x: (B, W); shown: (B, C); c: (B, W + C); eps: (B, L); the loss counts only hidden columns,
            # so the network learns p(hidden columns | shown columns) (unconditional when none is shown).
            x = batch.x
            shown = heads.random_shown(len(x), TABLE_MASK_RATE, generator).to(x.device)
            c = heads.condition_input(x, shown)
            eps = torch.randn(len(x), config.latent_dim, generator=generator, device=generator.device).to(x)
            raw, mu, logvar, sigma = module(x, c, eps)
            nll = heads.negative_log_likelihood(x, raw, sigma)                          # (B, C)
            recon = (nll * (~shown).to(x.dtype)).sum(1).mean()
            kl_dims = (0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)).mean(0)          # (L,)
            kl = kl_dims.sum()
            penalised = kl_dims.clamp(min=config.free_bits).sum() if config.free_bits > 0 else kl
            weight = config.beta
            if config.kl_warmup > 0:
                weight = config.beta * min(1.0, self._kl_progress / config.kl_warmup)
            return Losses(recon + weight * penalised,
                          {"recon": float(recon.detach()), "kl": float(kl.detach()), "kl_weight": weight,
                           "elbo": float(-(recon + kl).detach())})

        return [Phase("model", self.network_, negative_elbo)]

    def _sample_table(self, n: int, condition: dict[str, Any] | None, generator: torch.Generator | None, *,
                      mean: bool, temperature: float) -> torch.Tensor:
        """``z = tau * eps``, ``eps ~ N(0, I)``, ``x ~ p(x | z, c)`` with the conditioned columns shown in ``c``
        and written into the rows: ``(n, W)`` encoded rows, every one satisfying ``condition``."""
        heads, device = TableHeads(self.codec_), self.device
        known, shown = heads.known(self.codec_, condition)
        known, shown = known.to(device), shown.to(device)
        rng_device = generator.device if generator is not None else torch.device("cpu")
        eps = torch.randn(n, self.config.latent_dim, generator=generator, device=rng_device).to(device)
        z = temperature * eps
        c = heads.condition_input(known.expand(n, -1), shown.expand(n, -1))
        x = heads.draw(self.network_.decode(z, c), self.network_.sigma, generator, mean=mean)
        return torch.where(heads.expand(shown[None]).to(device), known, x)

    def _check_not_table(self, verb: str) -> None:
        if self.data_.modality == "tables":
            raise NotSupportedError(f"the vae family on tables has no {verb} (its latents are conditioned on "
                                    "shown columns); use sample(n, condition=...)")
