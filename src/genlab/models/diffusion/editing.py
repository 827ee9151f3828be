"""Editing verbs of the diffusion family, the one implementation the CLI, the server, the playground and
the watermark share: SDEdit (``sample(init=, strength=)``, and :meth:`variations`), inpainting
(``sample(init=, mask=)``) and DDIM inversion (:meth:`invert`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genlab.errors import ConfigError, DataError
from genlab.sampling.ddim import DDIMSampler
from genlab.sampling.ddim_inversion import invert


class DiffusionEditing:
    """The diffusion model's editing methods (a mixin of :class:`~genlab.models.diffusion.DiffusionModel`)."""

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

    def _edit_start(self, init: Any, strength: Any, eps: torch.Tensor, sampler: str, eta: float,
                    steps: int) -> tuple[torch.Tensor, int]:
        """SDEdit's start (module doc): ``x_t (n, *shape)`` of the ``init`` images (float ``(1 or n, *shape)``
        in ``[0, 1]``) noised with ``eps (n, *shape)``, and the index of the first visited step to run.

        Raises:
            ConfigError: not images, ``init`` or ``strength`` missing, ``strength`` outside ``(0, 1]`` or too
                small to leave a step, or ``init`` of another shape.
        """
        if self.data_.modality not in ("images", "points"):
            raise ConfigError(f"init and strength edit images and points; this model makes {self.data_.modality}")
        if init is None or strength is None:
            raise ConfigError("an image edit needs both init (the images) and strength (how much to change)")
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 < strength <= 1:
            raise ConfigError(f"strength must be in (0, 1] (1 = start from pure noise), got {strength!r}")
        init = np.asarray(init, dtype=np.float32)
        n, shape = len(eps), tuple(self.data_.shape)
        if init.shape[1:] != shape or len(init) not in (1, n):
            raise ConfigError(f"init must hold 1 or {n} records of shape {shape}, got {init.shape}")
        if not np.isfinite(init).all():
            raise ConfigError("init holds NaN or infinite values")
        if self.data_.modality == "images" and not (0 <= init.min() and init.max() <= 1):
            raise ConfigError("init images must hold intensities in [0, 1]")
        remaining = int(steps * strength)
        if remaining < 1:
            raise ConfigError(f"strength {strength} of {steps} steps leaves no step to run; raise strength or steps")
        solver = self._solver(sampler, eta)
        solver.set_timesteps(steps)
        first = steps - remaining
        t = torch.full((n,), int(solver.timesteps[first]), dtype=torch.long, device=eps.device)
        x0 = self.codec_.encode(init).to(eps.device).expand(n, *shape)
        return self.schedule.add_noise(x0, eps, t), first

    def variations(self, x: np.ndarray | None, *, n: int, strength: float, generator: torch.Generator | None = None,
                   condition: int | str | None = None, latent: np.ndarray | None = None,
                   **options: Any) -> np.ndarray:
        """SDEdit (Meng et al. 2022) of one record ``x (1, *shape)``: ``n`` records ``(n, *shape)`` drawn by
        ``sample(n, init=x, strength=strength, ...)``, the same edit as ``genlab sample --init --strength``
        (``strength`` 0 returns the record itself). Options are ``sample``'s (``steps``, ``prompt``, ...).

        Raises:
            ConfigError: a latent instead of the record (a diffusion model has none).
        """
        if latent is not None:
            raise ConfigError("a diffusion model has no latent: give the record itself")
        if x is None:
            raise DataError("give the record to vary")
        if strength == 0:
            return np.repeat(np.asarray(x, dtype=np.float32), n, axis=0)
        return self.sample(n, init=x, strength=strength, condition=condition, generator=generator, **options)

    @torch.no_grad()
    def invert(self, x: np.ndarray, *, steps: int | None = None, batch: int = 256) -> torch.Tensor:
        """DDIM inversion (Song et al. 2021, run backwards) of raw records ``x (n, *shape)`` to the initial
        noise ``(n, *shape)`` their deterministic DDIM sample starts from, under the null condition (the
        empty caption, the null class, or none): how Tree-Ring detection reads a mark back.

        Args:
            x: raw records (images in ``[0, 1]``).
            steps: DDIM steps (default: the model's ``sample_steps``).
            batch: records inverted together.
        """
        self._check_fitted()
        x = np.asarray(x, dtype=np.float32)
        if x.shape[1:] != tuple(self.data_.shape):
            raise DataError(f"records of shape {x.shape[1:]} do not match the model's {tuple(self.data_.shape)}")
        sampler = DDIMSampler(self.schedule, prediction=self.config.prediction)
        sampler.set_timesteps(steps or self.config.sample_steps)
        device = self.device
        parts = []
        for start in range(0, len(x), batch):
            z = torch.as_tensor(self.codec_.encode(x[start:start + batch])).to(device)
            y = self._null_condition(len(z))

            def denoise(x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = y) -> torch.Tensor:
                return self.network_(x_t, t, y)

            parts.append(invert(denoise, z, sampler).cpu())
        return torch.cat(parts)

    def _null_condition(self, n: int) -> torch.Tensor | None:
        """What the network reads as "no condition" for ``n`` records: empty captions ``(n, L)``, the null
        class ``(n,)``, or None for an unconditional network."""
        if self.reads_captions:
            return self.codec_.null_tokens(n).to(self.device)
        if self._conditional():
            return torch.full((n,), self.network_.classes.null_class, dtype=torch.long, device=self.device)
        return None
