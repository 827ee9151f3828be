"""Variations of a record in a latent family (VAE, GAN): its latent mixed with fresh noise, then decoded."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from genlab.errors import ConfigError, DataError
from genlab.sampling.latent import check_latents


class LatentVariations:
    """``variations`` for a family with ``latent_shape``, ``encode`` and ``decode`` (a mixin)."""

    def variations(self, x: np.ndarray | None, *, n: int, strength: float, generator: torch.Generator | None = None,
                   condition: int | str | None = None, latent: np.ndarray | None = None,
                   **options: Any) -> np.ndarray:
        """``n`` records ``(n, *shape)`` decoded from ``z_i = sqrt(1 - s^2) z + s eps_i`` with ``eps_i ~ N(0, I)``,
        where ``z (L,)`` is ``latent`` or the record ``x (1, *shape)``'s encoding (a family without an encoder
        needs the latent). The mix keeps a prior-distributed latent prior-distributed: ``s = 1`` is an
        independent draw, ``s = 0`` the record's own decoding.

        Raises:
            ConfigError: sampling options, which a latent mix does not take.
            DataError: neither the record nor its latent.
        """
        if options:
            raise ConfigError(f"variations of a {self.family} model take no sampling options, got "
                              f"{', '.join(sorted(options))}")
        if latent is not None:
            z = check_latents(np.asarray(latent, dtype=np.float32)[None], self.latent_shape).numpy()[0]
        elif x is None:
            raise DataError("give the record, or its latent")
        else:
            z = self.encode(x, condition=condition)[0]                                     # (L,)
        device = generator.device if generator is not None else torch.device("cpu")
        eps = torch.randn(n, *z.shape, generator=generator, device=device).cpu().numpy()
        mixed = math.sqrt(1 - strength ** 2) * z[None] + strength * eps                  # (n, L)
        return self.decode(mixed.astype(np.float32), condition=condition)
