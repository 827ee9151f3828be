"""Tree-Ring watermarks for diffusion images (Wen et al. 2023, "Tree-Ring Watermarks: Fingerprints for
Diffusion Images that are Invisible and Robust").

Sampling writes a keyed pattern into the centred 2-D Fourier transform of channel 0 of the initial
noise ``x_T``: inside the disc of radius ``R`` (10 of 64 in the paper, scaled to the image side), every
coefficient but the centre gets a complex value drawn by the key from white noise's own distribution
(the paper's "rand" pattern, Hermitian-symmetric so the noise stays real). Not the paper's "rings"
pattern (one real value a ring, invariant to rotation): at 28x28 a disc holds 5 rings, 5 numbers a key,
and images marked with one key were flagged under 29 of 100 other keys; ``R = 4.4`` holds 30 independent
complex values (34 at 32x32, ``R = 5``). The rest of the noise is untouched, so a marked sample looks like
any other.

Detection inverts a record back to ``x_T`` with DDIM (:mod:`genlab.sampling.ddim_inversion`) and tests
the disc against the key by their angle. Write ``v`` for the real and imaginary parts of the ``m`` unique
Fourier coefficients ``y_i`` in the disc (one of each Hermitian pair) and ``u`` for the key's values there:
``d = 2 m`` real numbers each, and the score is ``cos = <u, v> / (|u| |v|)``. Under either null, a white
noise ``v`` (any scale) with a fixed key, or *any* image with a key drawn independently of it, one of the
two vectors is isotropic, so ``(1 + cos) / 2`` is exactly ``Beta((d - 1) / 2, (d - 1) / 2)``; the p-value is
its upper tail. The second null is the one that matters: a real photograph or a record marked under
another key is tested against a key that knows nothing of it, so over keys it is flagged at exactly the
false-positive rate, whatever its spectrum (for one key and many images, nearly so: see the tests).
The paper's distance test ``eta = sum_i |k_i - y_i|^2 / (sigma^2 / 2)`` with ``sigma^2`` estimated from the
disc was exact on white noise but not on real images: their inverted noise keeps the picture's mean and
low frequencies (a 60-second MNIST run: mean power 115 at the centre of the spectrum against 1 for
samples), the estimate of ``sigma^2`` swelled, and 33 % of real test digits were flagged at 1 % FPR. The
angle ignores the scale of ``v``, so a blur or a brightness change that shrinks the spectrum does not
move it either. The centre of the spectrum (the mean brightness of channel 0) is neither written nor
tested. Because every image of one key carries the same values, a wrong key flags all of them or none;
the rate over many wrong keys is the false-positive rate (``tests/test_watermark_images.py``). The score
is the normal quantile ``z = Phi^{-1}(1 - p)``. Because inversion is approximate, the rate of false
alarms is *measured* on unmarked samples and real images (``benchmarks/watermark_images.py``).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
import torch
from scipy.stats import beta, norm

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
    """``(mask, values)``: bool ``(H, W)`` disc (its centre left out) and complex ``(H, W)`` keyed values of
    the centred spectrum.

    One of each Hermitian pair ``f, -f`` in the disc gets a complex value whose real and imaginary parts are
    drawn from ``N(0, H W / 2)`` by the key, its partner the conjugate: the distribution of white noise's own
    coefficients, so a marked noise is still white noise."""
    radius = _radius(height, width)
    R = max(2.0, RADIUS_SHARE * min(height, width))
    mask = (radius < R) & (radius > 0)
    unique = _unique(mask)
    seed = int.from_bytes(hashlib.sha256(b"tree-ring-rand" + key.to_bytes(8, "big")).digest()[:8], "big")
    draws = np.random.default_rng(seed).normal(0.0, math.sqrt(height * width / 2), (int(unique.sum()), 2))
    values = np.zeros((height, width), dtype=np.complex128)
    values[unique] = draws[:, 0] + 1j * draws[:, 1]
    i, j = np.nonzero(unique)
    centre = (height // 2, width // 2)
    values[2 * centre[0] - i, 2 * centre[1] - j] = np.conj(values[i, j])    # -f in the centred layout
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
    """Tree-Ring's test of every inverted noise ``x_T (B, C, H, W)`` against ``key``: the angle between the
    disc's coefficients and the key's (module doc)."""
    height, width = x_T.shape[-2:]
    mask, values = key_pattern(key, height, width)
    unique = _unique(mask)
    spectrum = torch.fft.fftshift(torch.fft.fft2(x_T[:, 0].double().cpu()), dim=(-2, -1)).numpy()
    y, k = spectrum[:, unique], values[unique]                               # (B, m), (m,)
    # <u, v> over real and imaginary parts is Re sum conj(k) y; d = 2 m real dimensions
    cos = np.real(y @ np.conj(k)) / (np.linalg.norm(k) * np.maximum(np.linalg.norm(y, axis=1), 1e-300))
    half = (2 * len(k) - 1) / 2
    p = beta.sf((1 + cos) / 2, half, half)
    out = []
    for p_i, cos_i in zip(p, cos):
        p_i = float(max(p_i, 1e-300))
        out.append(Detection(float(norm.isf(p_i)), p_i, p_i <= fpr, 0, len(k), f"cos = {cos_i:.3f}"))
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
