"""Walks through a model's latent space: interpolation (lerp, slerp) and attribute directions.

Works with every family that has a latent space, i.e. a ``latent_shape`` and a ``decode(z, condition=)``
(the VAE, and the GAN where ``decode`` is the generator). Where the family also has an encoder (the VAE),
the end points may be records: they are encoded to their posterior means first.

Why slerp: latents drawn from ``N(0, I)`` in ``d`` dimensions concentrate near the sphere of radius
``sqrt(d)``; the straight line between two of them passes closer to the origin, through latents the
generator rarely saw in training. Spherical interpolation (Shoemake 1985; White 2016, "Sampling
Generative Networks", sec. 2.2) follows the great circle instead.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch

from genlab.errors import ConfigError, DataError, NotSupportedError

METHODS = ("lerp", "slerp")
INPUTS = ("auto", "records", "latents")


def check_latents(z: Any, latent_shape: tuple[int, ...]) -> torch.Tensor:
    """Return latents as a float32 tensor ``(n, *latent_shape)``, or raise a DataError naming the shape."""
    z = torch.as_tensor(np.asarray(z, dtype=np.float32))
    if tuple(z.shape[1:]) != tuple(latent_shape):
        raise DataError(f"latents have shape {tuple(z.shape[1:])} per record; this model's latents are "
                        f"{tuple(latent_shape)} (pass an array (n, {', '.join(map(str, latent_shape))}))")
    if not torch.isfinite(z).all():
        raise DataError("latents hold NaN or infinite values")
    return z


def latent_path(a: np.ndarray, b: np.ndarray, steps: int, method: str = "lerp") -> np.ndarray:
    """``steps`` points from ``a`` to ``b`` inclusive, float64 ``(steps, *a.shape)``.

    - ``"lerp"``: ``(1 - t) a + t b``.
    - ``"slerp"``: the direction moves along the great circle, ``sin((1-t) w)/sin w a^ + sin(t w)/sin w b^``
      with ``cos w = <a^, b^>`` (unit vectors), and the norm moves linearly from ``|a|`` to ``|b|``, so
      two latents of equal norm give a path of that norm. Parallel directions (``w ~ 0``) fall back to lerp.

    Raises:
        ConfigError: unknown method, or ``steps < 2``.
        DataError: ``a`` and ``b`` differ in shape, or slerp between opposite directions (no unique circle).
    """
    if method not in METHODS:
        raise ConfigError(f"unknown interpolation method {method!r}; choose one of: {', '.join(METHODS)}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ConfigError(f"steps must be an integer of at least 2 (both end points), got {steps!r}")
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise DataError(f"end points differ in shape: {a.shape} and {b.shape}")
    t = np.linspace(0.0, 1.0, steps).reshape(-1, *[1] * a.ndim)          # (steps, 1, ...)
    norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
    if method == "lerp" or norm_a == 0 or norm_b == 0:
        return (1 - t) * a + t * b
    unit_a, unit_b = a / norm_a, b / norm_b
    cos = float(np.clip(np.sum(unit_a * unit_b), -1.0, 1.0))
    omega = math.acos(cos)
    if omega < 1e-6:
        direction = (1 - t) * unit_a + t * unit_b
        direction /= np.linalg.norm(direction.reshape(steps, -1), axis=1).reshape(t.shape)
    elif math.pi - omega < 1e-6:
        raise DataError("slerp is undefined between opposite directions; use method='lerp'")
    else:
        direction = (np.sin((1 - t) * omega) * unit_a + np.sin(t * omega) * unit_b) / math.sin(omega)
    return ((1 - t) * norm_a + t * norm_b) * direction


def _latents(model: Any, x: np.ndarray, inputs: str, condition: int | str | None) -> np.ndarray:
    """Latents ``(n, *latent_shape)`` of ``x``: encoded records, or ``x`` itself when it holds latents."""
    if inputs not in INPUTS:
        raise ConfigError(f"unknown inputs {inputs!r}; choose one of: {', '.join(INPUTS)}")
    if not hasattr(model, "latent_shape"):
        raise NotSupportedError(f"the {model.family} family has no latent space to walk through")
    if inputs in ("auto", "records"):
        try:
            return model.encode(x, condition=condition)
        except NotSupportedError:
            if inputs == "records":
                raise
    return check_latents(x, model.latent_shape).numpy()


def interpolate(model: Any, a: np.ndarray, b: np.ndarray, *, steps: int = 8, method: str = "lerp",
                condition: int | str | None = None,
                inputs: Literal["auto", "records", "latents"] = "auto") -> np.ndarray:
    """Decode the latent path from ``a`` to ``b``: raw records ``(steps, *record_shape)``, float32.

    Args:
        model: a fitted model with a latent space (VAE, GAN).
        a, b: two records ``(*record_shape)`` (encoded first, VAE) or two latents ``(*latent_shape)``.
        steps: points on the path, both ends included.
        method: ``"lerp"`` or ``"slerp"`` (see :func:`latent_path`).
        condition: class of a class-conditional model, for encoding and decoding.
        inputs: ``"auto"`` (records when the family has an encoder, else latents), ``"records"`` or
            ``"latents"``.

    Example:
        >>> z = np.random.default_rng(0).standard_normal((2, *gan.latent_shape))
        >>> strip = genlab.interpolate(gan, z[0], z[1], steps=8, method="slerp")
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise DataError(f"end points differ in shape: {a.shape} and {b.shape}")
    ends = _latents(model, np.stack([a, b]), inputs, condition)           # (2, *latent_shape)
    path = latent_path(ends[0], ends[1], steps, method)
    return model.decode(path.astype(np.float32), condition=condition)


def attribute_direction(model: Any, x_a: np.ndarray, x_b: np.ndarray, *, condition: int | str | None = None,
                        inputs: Literal["auto", "records", "latents"] = "auto") -> np.ndarray:
    """Mean latent difference from group ``a`` to group ``b``: float32 ``(*latent_shape)``.

    ``d = mean_i z(x_b,i) - mean_j z(x_a,j)`` (e.g. records without and with an attribute); adding ``alpha d``
    to a latent moves its decoding towards group ``b`` (White 2016, sec. 3.2 "attribute vectors").

    Args:
        model: a fitted model with a latent space.
        x_a, x_b: ``(n_a, ...)`` and ``(n_b, ...)``: records (encoded first) or latents, see ``inputs``.
        condition: class of a class-conditional model, for encoding.
        inputs: as in :func:`interpolate`.
    """
    z_a = _latents(model, x_a, inputs, condition)
    z_b = _latents(model, x_b, inputs, condition)
    if len(z_a) == 0 or len(z_b) == 0:
        raise DataError("both groups need at least one record")
    return (z_b.mean(0) - z_a.mean(0)).astype(np.float32)
