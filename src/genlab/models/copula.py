"""Sampling a zero-mean Gaussian ``z ~ N(0, Sigma)`` with some coordinates conditioned: the maths of
the Gaussian copula on tables (the ``gaussian`` family with a table; Masarotto & Varin 2012, SDV's
``GaussianCopulaSynthesizer``).

A table codec with ``numeric="quantile", categorical="normal"`` turns each row into standard-normal
scores, one per column (and one per numeric column's missing indicator): a number through its
empirical CDF, ``z = Phi^-1(F(x))``; a category through the interval ``[a_v, b_v)`` of the CDF over
categories it owns, ``z = Phi^-1(u)``, ``u ~ U(a_v, b_v)``. The copula is ``z ~ N(0, R)``, ``R`` the
correlation matrix of the training scores. Every condition ``column = value`` is a box on the scores
(see ``TableCodec.latent_boxes``): a category is ``z_j in [Phi^-1(a_v), Phi^-1(b_v))``; a number of a
rounded (integer, datetime, fixed-decimals) column is the interval of scores that decode to it; a
number of a continuous column is a point ``z_j = Phi^-1(F(c))``. Writing ``P`` for the point
coordinates, ``B`` for the box coordinates, ``F`` for the free ones and ``C = P + B``,
``p(z | condition)`` factorises exactly as

1. ``z_P = c_P``;
2. ``z_B | z_P ~ N(mu_B, S_B)`` truncated to the boxes, with the Gaussian conditional (Schur complement)
   ``mu_B = R_BP R_PP^-1 c_P``, ``S_B = R_BB - R_BP R_PP^-1 R_PB``;
3. ``z_F | z_C ~ N(R_FC R_CC^-1 z_C, R_FF - R_FC R_CC^-1 R_CF)``.

Steps 1 and 3 are exact. Step 2 is exact for one box coordinate (inverse-CDF draw from the
univariate truncated normal, ``scipy.stats.truncnorm``). For several box coordinates it is a Gibbs
sampler on the truncated multivariate normal (Geweke 1991; each coordinate redrawn from its
univariate truncated conditional ``N(mu_i - sum_(j != i) L_ij (z_j - mu_j) / L_ii, 1 / L_ii)``,
``L = S_B^-1``), started from a sequential draw and run for :data:`GIBBS_SWEEPS` sweeps: an
approximation of the conditional's shape that converges with the sweeps, but every draw lies inside
every box, so every row satisfies the condition. Nothing is rejected.

With a categorical target and ``conditional=True`` the family fits one copula per target class
(``p(x) = sum_c pi_c p_c(x)``, each ``p_c`` with its own marginals and correlation, see the table
codec's ``strata``). A condition that names the class fixes ``c``; otherwise ``c`` is drawn from the
exact posterior ``p(c | condition) ∝ pi_c p_c(condition)``, :func:`log_likelihood` giving
``log p_c(condition)`` in the latent space (the Gaussian density of the points times the probability
of the boxes given them: a normal CDF difference for one box, ``scipy.stats.multivariate_normal.cdf``
(Genz's numerical integration, accurate to about 1e-5) for several), to which the model adds each
continuous point's ``log dF/dx - log phi(z)``.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import log_ndtr
from scipy.stats import multivariate_normal, truncnorm

#: Gibbs sweeps over the box coordinates when more than one is conditioned (step 2 of the module doc).
GIBBS_SWEEPS = 50
#: Added to the diagonal of conditional covariances so that their Cholesky factors exist.
JITTER = 1e-9


def correlation(z: np.ndarray, reg: float = 1e-6) -> np.ndarray:
    """The correlation matrix ``(D, D)`` of scores ``z (n, D)``; a constant coordinate is uncorrelated
    with every other, and ``reg`` is added to the diagonal (then rescaled to a unit diagonal)."""
    z = np.asarray(z, dtype=np.float64)
    centred = z - z.mean(axis=0)
    std = np.sqrt((centred ** 2).mean(axis=0))
    constant = std < 1e-12
    scaled = centred / np.where(constant, 1.0, std)
    r = scaled.T @ scaled / len(z)
    r[constant, :] = 0.0
    r[:, constant] = 0.0
    r[np.diag_indices_from(r)] = 1.0 + reg
    return r / (1.0 + reg)


def sample(cov: torch.Tensor, n: int, boxes: dict[int, tuple[float, float]] | None = None,
           generator: torch.Generator | None = None, sweeps: int = GIBBS_SWEEPS) -> torch.Tensor:
    """``n`` draws of ``z ~ N(0, cov)`` given ``lo <= z_j <= hi`` for every ``j: (lo, hi)`` in ``boxes``.

    Args:
        cov: ``(D, D)`` covariance (positive definite).
        n: number of draws.
        boxes: coordinate -> ``(lo, hi)``, ``lo == hi`` for a point, infinite ends allowed.
        generator: source of every random number (normal and uniform draws on the CPU).
        sweeps: Gibbs sweeps when more than one coordinate has a proper box.

    Returns:
        float64 ``(n, D)``; coordinate ``j`` of ``boxes`` always within its box.
    """
    cov = cov.detach().to("cpu", torch.float64)
    D = cov.shape[0]
    boxes = dict(boxes or {})
    z = torch.zeros(n, D, dtype=torch.float64)
    points = sorted(j for j, (lo, hi) in boxes.items() if lo == hi)
    ranged = sorted(j for j, (lo, hi) in boxes.items() if lo != hi)
    for j in points:
        z[:, j] = boxes[j][0]
    if ranged:                                                        # step 2
        mean, sub = _conditional(cov, points, ranged, z[:1, points])  # (1, |B|), (|B|, |B|)
        low = torch.tensor([boxes[j][0] for j in ranged], dtype=torch.float64)
        high = torch.tensor([boxes[j][1] for j in ranged], dtype=torch.float64)
        z[:, ranged] = _truncated_gaussian(mean[0], sub, low, high, n, generator, sweeps)
    conditioned = points + ranged
    free = [j for j in range(D) if j not in boxes]
    if free:                                                          # step 3
        mean, sub = _conditional(cov, conditioned, free, z[:, conditioned])
        scale = torch.linalg.cholesky(sub + JITTER * torch.eye(len(free), dtype=torch.float64))
        eps = torch.randn(n, len(free), generator=generator, dtype=torch.float64)
        z[:, free] = mean + eps @ scale.T
    return z


def log_likelihood(cov: torch.Tensor, boxes: dict[int, tuple[float, float]]) -> float:
    """``log [phi_P(c_P) * P(z_B in box | z_P = c_P)]`` for ``z ~ N(0, cov)``: points ``lo == hi``, boxes
    otherwise (module doc); ``-inf`` when the boxes have probability 0."""
    cov = cov.detach().to("cpu", torch.float64)
    points = sorted(j for j, (lo, hi) in boxes.items() if lo == hi)
    ranged = sorted(j for j, (lo, hi) in boxes.items() if lo != hi)
    value = 0.0
    c_p = torch.tensor([[boxes[j][0] for j in points]], dtype=torch.float64)
    if points:
        value += float(multivariate_normal(mean=np.zeros(len(points)), cov=cov[points][:, points].numpy(),
                                           allow_singular=True).logpdf(c_p[0].numpy()))
    if ranged:
        mean, sub = _conditional(cov, points, ranged, c_p if points else torch.zeros(1, 0, dtype=torch.float64))
        low = np.array([boxes[j][0] for j in ranged])
        high = np.array([boxes[j][1] for j in ranged])
        if len(ranged) == 1:
            s = float(sub[0, 0].sqrt())
            a, b = (low[0] - float(mean[0, 0])) / s, (high[0] - float(mean[0, 0])) / s
            # log(Phi(b) - Phi(a)) = log Phi(b) + log(1 - Phi(a) / Phi(b)), stable in both tails
            if a > 0:
                a, b = -b, -a
            log_b, log_a = log_ndtr(b), log_ndtr(a)
            value += float(log_b + np.log1p(-np.exp(log_a - log_b))) if log_a < log_b else -np.inf
        else:
            prob = multivariate_normal(mean=mean[0].numpy(), cov=sub.numpy(), allow_singular=True).cdf(
                high, lower_limit=low)
            value += float(np.log(prob)) if prob > 0 else -np.inf
    return value


def _conditional(cov: torch.Tensor, given: list[int], target: list[int],
                 values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(m, |T|)`` and covariance ``(|T|, |T|)`` of ``z_T | z_G = values (m, |G|)`` for ``N(0, cov)``."""
    s_tt = cov[target][:, target]
    if not given:
        return torch.zeros(values.shape[0], len(target), dtype=torch.float64), s_tt
    s_gg = cov[given][:, given] + JITTER * torch.eye(len(given), dtype=torch.float64)
    s_tg = cov[target][:, given]
    gain = torch.linalg.solve(s_gg, s_tg.T).T                         # (|T|, |G|) = S_TG S_GG^-1
    sub = s_tt - gain @ s_tg.T
    return values @ gain.T, 0.5 * (sub + sub.T)


def _truncated_gaussian(mean: torch.Tensor, cov: torch.Tensor, low: torch.Tensor, high: torch.Tensor, n: int,
                        generator: torch.Generator | None, sweeps: int) -> torch.Tensor:
    """``n`` draws ``(n, k)`` of ``N(mean, cov)`` truncated to ``[low, high]``: exact for ``k = 1``,
    sequential start plus Gibbs sweeps otherwise (module doc, step 2)."""
    k = len(mean)
    z = torch.empty(n, k, dtype=torch.float64)
    for i in range(k):     # sequential start: each coordinate given the ones before, ignoring the later boxes
        m, v = _conditional(cov, list(range(i)), [i], z[:, :i])
        z[:, i] = _univariate(mean[i] + m[:, 0], v[0, 0].sqrt(), low[i], high[i], generator)
    if k == 1:
        return z
    precision = torch.linalg.inv(cov + JITTER * torch.eye(k, dtype=torch.float64))
    for _ in range(sweeps):
        for i in range(k):
            others = [j for j in range(k) if j != i]
            shift = (z[:, others] - mean[others]) @ precision[i, others] / precision[i, i]
            z[:, i] = _univariate(mean[i] - shift, precision[i, i].rsqrt(), low[i], high[i], generator)
    return z


def _univariate(mean: torch.Tensor, std: torch.Tensor, low: torch.Tensor, high: torch.Tensor,
                generator: torch.Generator | None) -> torch.Tensor:
    """Inverse-CDF draws of ``N(mean, std^2)`` truncated to ``[low, high]`` (``mean (n,)``), clipped into
    the box so that float round-off cannot leave it."""
    u = torch.rand(mean.shape[0], generator=generator, dtype=torch.float64).numpy()
    m, s, lo, hi = mean.numpy(), float(std), float(low), float(high)
    x = m + s * truncnorm.ppf(u, (lo - m) / s, (hi - m) / s)
    x = np.where(np.isfinite(x), x, np.clip(m, lo, hi))   # a box far in a tail, beyond float64's reach
    return torch.from_numpy(np.clip(x, lo, hi))
