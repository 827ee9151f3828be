"""Tree-Ring watermarks for diffusion images (Wen et al. 2023, "Tree-Ring Watermarks: Fingerprints for
Diffusion Images that are Invisible and Robust").

Sampling writes a keyed pattern into the centred 2-D Fourier transform of channel 0 of the initial
noise ``x_T``: inside the disc of radius ``R`` (10 of 64 in the paper, scaled to the image side), every
coefficient gets a complex value drawn by the key from white noise's own distribution (the paper's "rand"
pattern, Hermitian-symmetric so the noise stays real). Not the paper's "rings" pattern (one real value a
ring, invariant to rotation): at 28x28 a disc holds 5 rings, 5 numbers a key, and images marked with one key
were flagged under 29 of 100 other keys; ``R = 4.4`` holds 35 independent complex values. The rest of the
noise is untouched, so a marked sample looks like any other.

Detection inverts a record back to ``x_T`` with DDIM (:mod:`genlab.sampling.ddim_inversion`) and tests
the disc against the key. Under the null, the ``m`` unique Fourier coefficients ``y_i`` in the disc
(one of each Hermitian pair) are complex Gaussian with ``E|y_i|^2 = sigma^2``, estimated as their mean
``|y_i|^2`` (the DC term is real); the paper's statistic ``eta = sum_i |k_i - y_i|^2 / (sigma^2 / 2)``
(``/ sigma^2`` for the DC term) is then non-central chi-square with ``2 m - 1`` degrees of freedom and
non-centrality ``sum_i |k_i|^2 / (sigma^2 / 2)`` (likewise), and the p-value is its lower tail (small
``eta``: the inverted noise sits on the key). An image marked under another key is, to this key's test,
white noise like an unmarked one: a wrong key flags it at the test's false-positive rate, and, because every
image of that key carries the same values, it flags all of them or none; a rate over many wrong keys is the
false-positive rate (``tests/test_watermark_images.py``). The score is the
normal quantile ``z = Phi^{-1}(1 - p)``. Because inversion is approximate, the rate of false alarms is
*measured* on unmarked samples (benchmarks/watermark.py), not taken from this null.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
import torch
from scipy.stats import ncx2, norm

from genlab.errors import DataError, NotSupportedError
from genlab.provenance.keys import WatermarkKey
from genlab.provenance.stats import Detection

#: Radius of the keyed disc as a share of the image side (the paper's 10 of 64).
RADIUS_SHARE = 10 / 64
#: DDIM inversion steps (the paper's 50), whatever sampler made the image.
INVERSION_STEPS = 50


def _radius(height: int, width: int) -> np.ndarray:
    """``|f|`` of every position of the centred spectrum ``(H, W)``."""
    i = np.arange(height)[:, None] - height // 2
    j = np.arange(width)[None, :] - width // 2
    return np.sqrt(i ** 2 + j ** 2)


def key_pattern(key: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mask, values)``: bool ``(H, W)`` disc and complex ``(H, W)`` keyed values of the centred spectrum.

    One of each Hermitian pair ``f, -f`` in the disc gets a complex value whose real and imaginary parts are
    drawn from ``N(0, H W / 2)`` by the key, its partner the conjugate, and the centre a real ``N(0, H W)``:
    the distribution of white noise's own coefficients, so a marked noise is still white noise."""
    radius = _radius(height, width)
    R = max(2.0, RADIUS_SHARE * min(height, width))
    mask = radius < R
    unique = _unique(mask)
    seed = int.from_bytes(hashlib.sha256(b"tree-ring-rand" + key.to_bytes(8, "big")).digest()[:8], "big")
    draws = np.random.default_rng(seed).normal(0.0, math.sqrt(height * width / 2), (int(unique.sum()), 2))
    values = np.zeros((height, width), dtype=np.complex128)
    values[unique] = draws[:, 0] + 1j * draws[:, 1]
    i, j = np.nonzero(unique)
    centre = (height // 2, width // 2)
    values[2 * centre[0] - i, 2 * centre[1] - j] = np.conj(values[i, j])    # -f in the centred layout
    values[centre] = math.sqrt(2) * values[centre].real                      # real, variance H W
    return mask, values


def _unique(mask: np.ndarray) -> np.ndarray:
    """One position of each Hermitian pair ``f, -f`` inside ``mask`` (the centre once)."""
    height, width = mask.shape
    i = np.arange(height)[:, None] - height // 2
    j = np.arange(width)[None, :] - width // 2
    return mask & ((i > 0) | ((i == 0) & (j >= 0)))


def mark_noise(x_T: torch.Tensor, key: int) -> torch.Tensor:
    """``x_T (B, C, H, W)`` with the key's pattern in the spectrum of channel 0 (module doc)."""
    height, width = x_T.shape[-2:]
    mask, values = key_pattern(key, height, width)
    spectrum = torch.fft.fftshift(torch.fft.fft2(x_T[:, 0].double()), dim=(-2, -1))
    m = torch.as_tensor(mask, device=x_T.device)
    spectrum[:, m] = torch.as_tensor(values[mask], dtype=spectrum.dtype, device=x_T.device)
    out = x_T.clone()
    out[:, 0] = torch.fft.ifft2(torch.fft.ifftshift(spectrum, dim=(-2, -1))).real.to(x_T.dtype)
    return out


def ring_test(x_T: torch.Tensor, key: int, fpr: float) -> list[Detection]:
    """Tree-Ring's test of every inverted noise ``x_T (B, C, H, W)`` against ``key`` (module doc)."""
    height, width = x_T.shape[-2:]
    mask, values = key_pattern(key, height, width)
    unique = _unique(mask)
    spectrum = torch.fft.fftshift(torch.fft.fft2(x_T[:, 0].double().cpu()), dim=(-2, -1)).numpy()
    y, k = spectrum[:, unique], values[unique]                               # (B, m), (m,)
    centre = (np.flatnonzero(unique) == (height // 2) * width + width // 2)[None]   # the real DC term
    sigma2 = np.mean(np.abs(y) ** 2, axis=1, keepdims=True)                  # (B, 1): E|y|^2
    # each complex term has variance sigma^2 / 2 per part (2 degrees of freedom); the DC term is real (1)
    scale = np.where(centre, sigma2, sigma2 / 2)                             # (B, m)
    eta = np.sum(np.abs(k[None] - y) ** 2 / scale, axis=1)
    lam = np.sum(np.abs(k[None]) ** 2 / scale, axis=1)
    p = ncx2.cdf(eta, 2 * unique.sum() - int(centre.any()), lam)
    out = []
    for p_i, eta_i in zip(p, eta):
        p_i = float(max(p_i, 1e-300))
        out.append(Detection(float(norm.isf(p_i)), p_i, p_i <= fpr, 0, int(unique.sum()),
                             f"eta = {eta_i:.1f}"))
    return out


def check_invertible_images(model: Any) -> None:
    """Raise :class:`NotSupportedError` unless ``model`` makes images from an initial noise it can invert
    (the ``initial_noise`` sampling option and :meth:`~genlab.models.base.GenerativeModel.invert`)."""
    if model.data_.modality != "images" or "initial_noise" not in model.sample_options:
        raise NotSupportedError(f"Tree-Ring marks images drawn from an initial noise the sampler can invert "
                                f"(diffusion); this is the {model.family} family's {model.data_.modality}")


def marked_noise(model: Any, n: int, watermark: WatermarkKey, generator: torch.Generator | None) -> torch.Tensor:
    """``x_T (n, *shape)``: Gaussian noise drawn from ``generator`` with ``watermark``'s rings in its spectrum."""
    check_invertible_images(model)
    device = generator.device if generator is not None else torch.device("cpu")
    x_T = torch.randn((n, *model.data_.shape), generator=generator, device=device).cpu()
    return mark_noise(x_T, watermark.seed)


def invert_images(model: Any, images: np.ndarray, *, steps: int | None = None) -> torch.Tensor:
    """Raw images ``(n, C, H, W)`` in [0, 1] back to the model's initial noise ``(n, C, H, W)``
    (the model's own :meth:`invert`: DDIM run backwards, unconditionally)."""
    check_invertible_images(model)
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[1:] != tuple(model.data_.shape):
        raise DataError(f"images of shape {x.shape[1:]} do not match the model's {tuple(model.data_.shape)}")
    return model.invert(x, steps=steps or INVERSION_STEPS)


def detect_images(images: np.ndarray, watermark: WatermarkKey, model: Any, *, fpr: float,
                  steps: int | None = None) -> list[Detection]:
    """Tree-Ring detection of raw images (module doc)."""
    return ring_test(invert_images(model, images, steps=steps), watermark.seed, fpr)
