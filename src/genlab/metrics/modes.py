"""Mode coverage of samples from a known mixture of isotropic Gaussians (2-D rings and grids).

The protocol of VEEGAN (Srivastava et al., 2017, "VEEGAN: Reducing Mode Collapse in GANs using
Implicit Variational Learning", Sec. 5.1), reused by PacGAN (Lin et al., 2018, Sec. 5.1):

- a generated point ``x`` is *high quality* if ``min_i ||x - mode_i||_2 < 3 * std``;
- a mode is *captured* if it is the nearest mode of at least one high-quality point;
- with ``p_i`` the share of high-quality points whose nearest mode is ``i``, the *reverse KL* is
  ``KL(p || uniform) = sum_i p_i log(p_i * m)`` over the ``m`` modes (natural log, ``0 log 0 = 0``):
  ``0`` when the high-quality points spread evenly, ``log(m / c)`` when they spread evenly over only
  ``c`` modes, at most ``log(m)``.

With no high-quality point the histogram ``p`` does not exist; the reverse KL is then reported as
``inf`` rather than a finite number that would look like a (poor) score of a real distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from genlab.errors import ConfigError, DataError
from genlab.metrics.inputs import feature_matrix

#: A point within this many component standard deviations of its nearest mode is high quality.
HQ_STDS = 3.0


@dataclass(frozen=True)
class ModeCoverage:
    """Mode-coverage scores of one sample set.

    Attributes:
        modes_captured: number of modes that are the nearest mode of at least one high-quality point,
            in ``[0, n_modes]``.
        n_modes: number of mixture modes ``m``.
        high_quality: share of generated points within ``3 * std`` of their nearest mode, in ``[0, 1]``.
        reverse_kl: ``KL(p || uniform)`` of the high-quality points over modes, in ``[0, log m]``
            (nats); ``inf`` when there is no high-quality point.
        counts: high-quality points per mode, length ``n_modes``, in the order of ``modes``.
    """

    modes_captured: int
    n_modes: int
    high_quality: float
    reverse_kl: float
    counts: tuple[int, ...]


def mode_coverage(*, fake: np.ndarray, modes: np.ndarray, std: float) -> ModeCoverage:
    """Score generated points against the known modes of a Gaussian mixture (VEEGAN protocol).

    Args:
        fake: ``(n, d)`` generated points, finite, ``n >= 1``.
        modes: ``(m, d)`` mixture centres, finite, ``m >= 1``.
        std: per-coordinate standard deviation of each mixture component, ``> 0``.

    Returns:
        A :class:`ModeCoverage`.

    Raises:
        DataError: an array is not 2-D, is empty, holds NaN/inf, or the two disagree in ``d``.
        ConfigError: ``std`` is not a positive finite number.
    """
    fake = feature_matrix("fake points", fake)
    modes = feature_matrix("modes", modes)
    if fake.shape[1] != modes.shape[1]:
        raise DataError(f"fake points have {fake.shape[1]} coordinates but modes have {modes.shape[1]}")
    if isinstance(std, bool) or not isinstance(std, (int, float)) or not math.isfinite(std) or std <= 0:
        raise ConfigError(f"std must be a positive finite number, got {std!r}")

    # Loop over the few modes rather than building an (n, m, d) array: memory stays O(n d).
    best_sq = np.full(len(fake), np.inf)  # (n,) squared distance to the nearest mode so far
    nearest = np.zeros(len(fake), dtype=np.int64)  # (n,) index of that mode
    for i, mode in enumerate(modes):
        sq = ((fake - mode) ** 2).sum(axis=1)  # (n,)
        closer = sq < best_sq
        best_sq[closer] = sq[closer]
        nearest[closer] = i

    hq = best_sq < (HQ_STDS * std) ** 2  # (n,) bool
    counts = np.bincount(nearest[hq], minlength=len(modes))  # (m,)
    n_hq = int(counts.sum())
    if n_hq == 0:
        reverse_kl = math.inf
    else:
        p = counts[counts > 0] / n_hq  # 0 log 0 = 0: empty modes drop out of the sum
        # KL >= 0; the clip only removes rounding residue such as -1e-17 for an even spread.
        reverse_kl = max(0.0, float(np.sum(p * np.log(p * len(modes)))))
    return ModeCoverage(
        modes_captured=int((counts > 0).sum()),
        n_modes=len(modes),
        high_quality=n_hq / len(fake),
        reverse_kl=reverse_kl,
        counts=tuple(int(c) for c in counts),
    )
