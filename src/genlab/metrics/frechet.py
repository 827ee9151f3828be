"""Fréchet distance between Gaussians fitted to real and generated feature vectors.

Heusel et al., 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium" (NeurIPS), Eq. 6, the formula behind FID. With sample means ``mu_r, mu_f`` and sample
covariances ``S_r, S_f`` (``1/(n-1)`` normalisation, as in the reference FID code):

    d^2 = ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^{1/2})

The product ``S_r S_f`` is not symmetric, and ``scipy.linalg.sqrtm`` of it can return complex noise
or fail for singular covariances. Instead, with ``A = S_r^{1/2}`` from a symmetric eigendecomposition,
``S_r S_f = A (A S_f)`` has the same eigenvalues as the symmetric PSD matrix ``M = A S_f A``, so

    Tr((S_r S_f)^{1/2}) = sum_i sqrt(lambda_i(M))

computed in float64 with tiny negative eigenvalues (rounding) clipped at 0.

The mathematical distance is symmetric, but the two orders ``A_r S_f A_r`` and ``A_f S_r A_f`` round
differently: for a rank-deficient covariance the square root is ill-conditioned and they differed in
the 9th digit on one CPU and the 8th on another. The trace is therefore the mean of both orders, and
the traces are added as one commutative sum, so ``d(real, fake) == d(fake, real)`` holds bit for bit
on every BLAS kernel, not just within rounding.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from genlab.errors import DataError
from genlab.metrics.inputs import feature_matrix


def frechet_distance(*, real: np.ndarray, fake: np.ndarray) -> float:
    """Squared Fréchet distance between Gaussians fitted to ``real`` and ``fake`` (FID's formula).

    Args:
        real: ``(n, d)`` real feature vectors, finite, ``n >= 2``.
        fake: ``(m, d)`` generated feature vectors, finite, ``m >= 2``.

    Returns:
        ``d^2 >= 0`` in squared feature units (a value below 0 from rounding is returned as 0.0).

    Raises:
        DataError: an array is not 2-D, has fewer than 2 rows, holds NaN/inf, or ``d`` differs.
    """
    real = feature_matrix("real features", real, min_rows=2, why="for a covariance")
    fake = feature_matrix("fake features", fake, min_rows=2, why="for a covariance")
    if real.shape[1] != fake.shape[1]:
        raise DataError(f"real features have dimension {real.shape[1]} but fake have {fake.shape[1]}")

    mu_r, sigma_r = real.mean(axis=0), np.atleast_2d(np.cov(real, rowvar=False))  # (d,), (d, d)
    mu_f, sigma_f = fake.mean(axis=0), np.atleast_2d(np.cov(fake, rowvar=False))  # (d,), (d, d)
    diff = mu_r - mu_f  # (d,); its negation has the same square, bit for bit
    traces = np.trace(sigma_r) + np.trace(sigma_f)  # one addition: commutative in IEEE arithmetic
    cross = (_trace_sqrt_product(sigma_r, sigma_f) + _trace_sqrt_product(sigma_f, sigma_r)) / 2.0
    value = diff @ diff + traces - 2.0 * cross
    return max(0.0, float(value))


def _trace_sqrt_product(sigma_r: np.ndarray, sigma_f: np.ndarray) -> float:
    """``Tr((S_r S_f)^{1/2})`` for symmetric PSD ``(d, d)`` matrices, via ``eig(S_r^{1/2} S_f S_r^{1/2})``."""
    w, v = linalg.eigh(sigma_r)  # S_r = V diag(w) V^T
    root = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T  # S_r^{1/2}, (d, d)
    inner = root @ sigma_f @ root  # (d, d), symmetric PSD up to rounding
    inner = (inner + inner.T) / 2.0
    return float(np.sqrt(np.clip(linalg.eigvalsh(inner), 0.0, None)).sum())
