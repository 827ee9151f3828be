"""Kernel distance (KID): the unbiased squared MMD with a cubic polynomial kernel.

Bińkowski et al., 2018, "Demystifying MMD GANs" (ICLR), Sec. 2.3 and Appendix A. With ``d`` feature
dimensions the kernel is

    k(x, y) = (x . y / d + 1)^3

and, for ``m`` real points ``X_i`` and ``n`` fake points ``Y_j``, the unbiased estimator of
``MMD^2`` (Gretton et al., 2012, "A Kernel Two-Sample Test", JMLR, Lemma 6) is

    KID = 1/(m(m-1)) sum_{i != i'} k(X_i, X_i') + 1/(n(n-1)) sum_{j != j'} k(Y_j, Y_j')
          - 2/(mn) sum_{i, j} k(X_i, Y_j).

Its expectation is 0 when both sets come from one distribution, so a finite sample can score slightly
below 0. The paper's reference code averages the estimator over random subsets of 1,000 points; this
one uses every pair of the full sets (no randomness, lower variance, same expectation), summing the
kernel matrices a block of rows at a time in float64 so memory stays bounded.
:func:`kernel_distance_replicates` gives bootstrap replicates without recomputing the estimator on
sets with repeated records (see its docstring).
"""

from __future__ import annotations

import numpy as np
import torch

from genlab.metrics.inputs import feature_matrix, same_dimension

#: Kernel values held at once in one block (float64: 32 MB).
_BLOCK_ELEMENTS = 4_000_000


def kernel_distance(*, real: np.ndarray, fake: np.ndarray) -> float:
    """Kernel Inception Distance formula (unbiased ``MMD^2``, cubic polynomial kernel) of ``fake`` vs ``real``.

    Args:
        real: ``(m, d)`` real feature vectors, finite, ``m >= 2``.
        fake: ``(n, d)`` generated feature vectors, finite, ``n >= 2``.

    Returns:
        The unbiased estimate in squared kernel units; about 0 (either sign) for matching
        distributions, larger the further apart they are.

    Raises:
        DataError: an array is not 2-D, has fewer than 2 rows, holds NaN/inf, or ``d`` differs.
    """
    x, y = _pair(real, fake)
    return float(_weighted_mmd2(x, y, torch.ones(1, len(x), dtype=torch.float64),
                                torch.ones(1, len(y), dtype=torch.float64))[0])


def kernel_distance_replicates(*, real: np.ndarray, fake: np.ndarray, n_resamples: int,
                               rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates of :func:`kernel_distance`: both sets redrawn with replacement, float64 ``(B,)``.

    A replicate is the same U-statistic over the redrawn multiset with pairs of copies of one original
    record left out (a record repeated ``c`` times weighs ``c``), so repeats do not add the large
    ``k(x, x)`` terms that would bias a naive recomputation upwards. Drawing order: all real
    replicates' indices, then all fake ones, from ``rng``.
    """
    x, y = _pair(real, fake)
    counts_x = _counts(rng.integers(0, len(x), size=(n_resamples, len(x))), len(x))  # (B, m)
    counts_y = _counts(rng.integers(0, len(y), size=(n_resamples, len(y))), len(y))  # (B, n)
    return _weighted_mmd2(x, y, counts_x, counts_y).numpy()


def _weighted_mmd2(x: torch.Tensor, y: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor) -> torch.Tensor:
    """Unbiased ``MMD^2`` with record multiplicities ``cx (B, m)``, ``cy (B, n)``: ``(B,)``.

    With ``K`` the kernel matrix, ``sum_{i != i'} c_i c_i' K_ii' = c^T K c - sum_i c_i^2 K_ii`` over the
    ``(sum c)^2 - sum c^2`` ordered pairs of distinct copies; all-ones counts give the plain estimator.
    """
    d = x.shape[1]
    k_xx = _quadratic(x, x, cx, cx, d) - (cx.square() * _diagonal(x, d)).sum(dim=1)
    k_yy = _quadratic(y, y, cy, cy, d) - (cy.square() * _diagonal(y, d)).sum(dim=1)
    k_xy = _quadratic(x, y, cx, cy, d)
    mx, my = cx.sum(dim=1), cy.sum(dim=1)  # (B,)
    pairs_x = mx.square() - cx.square().sum(dim=1)
    pairs_y = my.square() - cy.square().sum(dim=1)
    return k_xx / pairs_x + k_yy / pairs_y - 2.0 * k_xy / (mx * my)


def _quadratic(a: torch.Tensor, b: torch.Tensor, ca: torch.Tensor, cb: torch.Tensor, d: int) -> torch.Tensor:
    """``ca^T K cb`` per replicate, ``K_ij = (a_i . b_j / d + 1)^3``, a block of rows of ``K`` at a time: ``(B,)``."""
    step = max(1, _BLOCK_ELEMENTS // len(b))
    total = torch.zeros(len(ca), dtype=torch.float64)
    for start in range(0, len(a), step):
        kernel = (a[start:start + step] @ b.T).div_(d).add_(1.0).pow_(3)  # (s, q)
        total += ((ca[:, start:start + step] @ kernel) * cb).sum(dim=1)  # (B, q) -> (B,)
    return total


def _diagonal(a: torch.Tensor, d: int) -> torch.Tensor:
    """``k(a_i, a_i)`` for rows of ``a`` ``(p, d)``: ``(p,)``."""
    return (a.square().sum(dim=1) / d + 1.0).pow(3)


def _counts(indices: np.ndarray, size: int) -> torch.Tensor:
    """Multiplicity of each record in each row of drawn ``indices`` ``(B, size)``: float64 ``(B, size)``."""
    counts = np.zeros((len(indices), size))
    for row, drawn in enumerate(indices):
        counts[row] = np.bincount(drawn, minlength=size)
    return torch.from_numpy(counts)


def _pair(real: np.ndarray, fake: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Both feature sets, checked, as float64 tensors of one dimension."""
    why = "for the unbiased estimate"
    x = feature_matrix("real features", real, min_rows=2, why=why)  # (m, d)
    y = feature_matrix("fake features", fake, min_rows=2, why=why)  # (n, d)
    same_dimension(x, y)
    return torch.from_numpy(x), torch.from_numpy(y)
