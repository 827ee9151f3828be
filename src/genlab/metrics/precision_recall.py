"""Precision, recall, density and coverage of generated feature vectors against real ones.

Naeem et al., 2020, "Reliable Fidelity and Diversity Metrics for Generative Models" (ICML), Sec. 3,
with the conventions of the authors' reference package ``prdc``. For ``n`` real points ``X_i``, ``m``
fake points ``Y_j`` and ``k`` neighbours, let ``B(p, r)`` be the open Euclidean ball and
``NND_k(p)`` the distance from ``p`` to its ``k``-th nearest neighbour in its own set, itself excluded:

- precision ``= (1/m) sum_j 1[exists i: Y_j in B(X_i, NND_k(X_i))]``   (Kynkaanniemi et al., 2019);
- recall    ``= (1/n) sum_i 1[exists j: X_i in B(Y_j, NND_k(Y_j))]``   (Kynkaanniemi et al., 2019);
- density   ``= 1/(k m) sum_j sum_i 1[Y_j in B(X_i, NND_k(X_i))]``     (Naeem et al., Eq. 3), in ``[0, n/k]``;
- coverage  ``= (1/n) sum_i 1[min_j ||X_i - Y_j|| < NND_k(X_i)]``      (Naeem et al., Eq. 4).

All distances are computed in float64 with torch, a block of rows at a time, so memory stays at
``_BLOCK_ELEMENTS`` distances (32 MB) beyond the inputs whatever ``n`` and ``m`` are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from genlab.errors import ConfigError
from genlab.metrics.inputs import feature_matrix, same_dimension

#: Distances held at once in one block of a distance matrix (float64: 32 MB).
_BLOCK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class PRDC:
    """The four k-NN manifold scores of one fake set against one real set.

    Attributes:
        precision: share of fake points inside some real point's k-NN ball, in ``[0, 1]`` (fidelity).
        recall: share of real points inside some fake point's k-NN ball, in ``[0, 1]`` (diversity).
        density: mean number of real k-NN balls holding a fake point, divided by ``k``, in
            ``[0, n_real / k]``; about 1 when fake and real come from the same distribution.
        coverage: share of real points whose k-NN ball holds at least one fake point, in ``[0, 1]``.
    """

    precision: float
    recall: float
    density: float
    coverage: float


def prdc(*, real: np.ndarray, fake: np.ndarray, k: int = 5) -> PRDC:
    """Precision, recall, density and coverage (Naeem et al., 2020) of ``fake`` against ``real``.

    Args:
        real: ``(n, d)`` real feature vectors, finite, ``n > k``.
        fake: ``(m, d)`` generated feature vectors, finite, ``m > k``.
        k: number of nearest neighbours that sets each point's ball radius, ``>= 1``.

    Returns:
        A :class:`PRDC`.

    Raises:
        DataError: an array is not 2-D, holds NaN/inf, has ``k`` or fewer points, or ``d`` differs.
        ConfigError: ``k`` is not a positive integer.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    return prdc_from_terms(*prdc_per_record(real=real, fake=fake, k=int(k)), k=int(k))


def prdc_per_record(*, real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Per-record terms of the four scores, given the k-NN radii of the full sets.

    Splitting the scores into terms lets a bootstrap redraw records without shrinking the radii (a
    repeated record would be its own nearest neighbour), see :mod:`genlab.metrics.bootstrap`.

    Args:
        real: ``(n, d)`` real feature vectors, finite, ``n > k``.
        fake: ``(m, d)`` generated feature vectors, finite, ``m > k``.
        k: nearest neighbours setting each ball's radius.

    Returns:
        ``real_terms`` float64 ``(n, 2)``: [in some fake ball (recall), own ball holds a fake (coverage)];
        ``fake_terms`` float64 ``(m,)``: how many real balls hold the fake record.
    """
    why = f"for k-NN radii with k={k}"
    real_np = feature_matrix("real features", real, min_rows=k + 1, why=why)
    fake_np = feature_matrix("fake features", fake, min_rows=k + 1, why=why)
    same_dimension(real_np, fake_np)
    real_t, fake_t = torch.from_numpy(real_np), torch.from_numpy(fake_np)  # (n, d), (m, d)
    real_sq = torch.linalg.vector_norm(real_t, dim=1).square_()  # (n,); x * x would copy all of x
    fake_sq = torch.linalg.vector_norm(fake_t, dim=1).square_()  # (m,)
    real_radius, fake_radius = _knn_radii(real_t, real_sq, k), _knn_radii(fake_t, fake_sq, k)
    n, m = len(real_t), len(fake_t)
    balls_holding = torch.zeros(m, dtype=torch.float64)  # (m,) real balls that hold fake j
    real_terms = torch.empty(n, 2, dtype=torch.float64)  # (n, 2)
    for start, stop in _blocks(n, m):
        dist = _distances(real_t[start:stop], real_sq[start:stop], fake_t, fake_sq)  # (b, m)
        inside = dist < real_radius[start:stop, None]  # (b, m): fake j in real i's ball
        balls_holding += inside.sum(dim=0)
        real_terms[start:stop, 0] = (dist < fake_radius[None, :]).any(dim=1).double()
        # min_j d_ij < r_i  <=>  some j has d_ij < r_i, so coverage needs no separate minimum.
        real_terms[start:stop, 1] = inside.any(dim=1).double()
        del dist, inside  # free this block before the next one is allocated, so only one is alive
    return real_terms.numpy(), balls_holding.numpy()


def prdc_from_terms(real_terms: np.ndarray, fake_terms: np.ndarray, *, k: int = 5) -> PRDC:
    """:class:`PRDC` from the per-record terms of :func:`prdc_per_record` (or a resample of them)."""
    return PRDC(precision=float(np.mean(fake_terms > 0)), recall=float(np.mean(real_terms[:, 0])),
                density=float(np.mean(fake_terms)) / k, coverage=float(np.mean(real_terms[:, 1])))

def _knn_radii(x: torch.Tensor, x_sq: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row of ``x`` ``(n, d)`` to its ``k``-th nearest other row: ``(n,)``.

    The point itself is excluded by setting its own distance to ``inf``; a duplicate of it still counts
    as a neighbour at distance 0, as in the reference package (which takes the ``(k+1)``-th smallest
    distance including the zero to itself).
    """
    n = len(x)
    radius = torch.empty(n, dtype=x.dtype)
    for start, stop in _blocks(n, n):
        dist = _distances(x[start:stop], x_sq[start:stop], x, x_sq)  # (b, n)
        rows = torch.arange(stop - start)
        dist[rows, rows + start] = torch.inf
        radius[start:stop] = torch.topk(dist, k, dim=1, largest=False).values[:, -1]
        del dist  # free this block before the next one is allocated, so only one is alive
    return radius


def _distances(a: torch.Tensor, a_sq: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``(p, q)`` between rows of ``a`` ``(p, d)`` and ``b`` ``(q, d)``.

    ``||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b`` turns the work into one matrix product; rounding can
    make the sum slightly negative for near-identical rows, hence the clamp at 0 before the root.
    """
    dist = a @ b.T  # (p, q); updated in place so one block is the only large buffer
    return dist.mul_(-2.0).add_(a_sq[:, None]).add_(b_sq[None, :]).clamp_(min=0.0).sqrt_()


def _blocks(n_rows: int, n_cols: int) -> list[tuple[int, int]]:
    """Row ranges ``[start, stop)`` covering ``n_rows`` with at most ``_BLOCK_ELEMENTS`` per block."""
    step = max(1, _BLOCK_ELEMENTS // n_cols)
    return [(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]
