"""Memorisation: how often generated records sit closer to a training record than unseen real ones do.

A model that copies its training set scores perfectly on fidelity metrics, so closeness to the
training records is measured against a yardstick that real data provides. With Euclidean distance on
flattened raw records and ``d_train(x) = min_j ||x - T_j||`` over the training records ``T``:

- the threshold ``tau`` is the ``q``-th percentile (``q = 5``) of ``d_train`` over the held-out real
  test records: only ``q`` % of unseen real records come that close to a training record;
- ``memorised`` ``= (1/n) sum_j 1[d_train(Y_j) < tau]`` over the ``n`` generated records ``Y``: about
  ``q / 100`` for a model that generalises like fresh real data, 1 for one that copies;
- ``exact_copies`` ``= (1/n) sum_j 1[d_train(Y_j) <= rtol * median_t d_train(t)]``: the share of
  generated records equal to a training record up to rounding (``rtol = 1e-3``, relative to the
  typical test-to-train distance, so it does not depend on the data's units).

This is the "distance to closest record" test of synthetic-data privacy audits (e.g. Zhao et al.,
2021, "CTAB-GAN", Sec. 4.3; Platzer & Reutterer, 2021, "Holdout-Based Fidelity and Privacy
Assessment of Mixed-Type Synthetic Data"), with the held-out percentile as the reference. Distances
are computed once; :func:`memorisation_from_distances` turns them into scores, so bootstrap resamples
need no new distances.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from genlab.errors import ConfigError, DataError

#: Percentile of the test-to-train nearest distances below which a record counts as memorised.
PERCENTILE = 5.0
#: Distance, relative to the median test-to-train nearest distance, at or below which a record is a copy.
COPY_RTOL = 1e-3
#: Rows of the query set per block of the distance computation.
_BLOCK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class Memorisation:
    """Memorisation scores of one generated set.

    Attributes:
        memorised: share of generated records nearer to a training record than ``tau``, in ``[0, 1]``;
            about ``percentile / 100`` for fresh real data.
        exact_copies: share of generated records that equal a training record up to rounding, in ``[0, 1]``.
        threshold: ``tau``, in the records' units.
        percentile: ``q`` that set ``tau``.
    """

    memorised: float
    exact_copies: float
    threshold: float
    percentile: float

    @property
    def flagged(self) -> bool:
        """:func:`copies_training_data` of these scores."""
        return copies_training_data(memorised=self.memorised, exact_copies=self.exact_copies,
                                    percentile=self.percentile)


def copies_training_data(*, memorised: float, exact_copies: float, percentile: float = PERCENTILE) -> bool:
    """True when a model copies: over 1 % exact copies, or twice the memorised share fresh data has.

    Twice ``q / 100`` is far outside the noise of a generalising model at the usual sizes (for
    ``q = 5`` and 359 samples, 0.10 is 4.4 standard errors above 0.05).
    """
    return exact_copies > 0.01 or memorised > 2 * percentile / 100


def memorisation(*, train: np.ndarray, test: np.ndarray, fake: np.ndarray,
                 percentile: float = PERCENTILE) -> Memorisation:
    """Score ``fake`` for memorisation of ``train``, with ``test`` as the yardstick (module docstring).

    Args:
        train: ``(N, ...)`` training records (any record shape; rows are flattened).
        test: ``(M, ...)`` held-out real records of the same shape, ``M >= 1``.
        fake: ``(n, ...)`` generated records of the same shape, ``n >= 1``.
        percentile: ``q`` in ``(0, 100)``.

    Returns:
        A :class:`Memorisation`.

    Raises:
        DataError: an array is empty, holds NaN/inf, or the record shapes differ.
        ConfigError: ``percentile`` is outside ``(0, 100)``.
    """
    train_t = _records("train", train)
    test_d = nearest_distances(test, train_t, name="test")
    fake_d = nearest_distances(fake, train_t, name="fake")
    return memorisation_from_distances(test=test_d, fake=fake_d, percentile=percentile)


def memorisation_from_distances(*, test: np.ndarray, fake: np.ndarray,
                                percentile: float = PERCENTILE) -> Memorisation:
    """Scores from nearest-training-record distances of test ``(M,)`` and generated ``(n,)`` records."""
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or not 0 < percentile < 100:
        raise ConfigError(f"percentile must be a number in (0, 100), got {percentile!r}")
    threshold = float(np.percentile(test, percentile))
    copy_distance = COPY_RTOL * float(np.median(test))
    return Memorisation(
        memorised=float(np.mean(fake < threshold)),
        exact_copies=float(np.mean(fake <= copy_distance)),
        threshold=threshold,
        percentile=float(percentile),
    )


def nearest_distances(x: np.ndarray, train: np.ndarray | torch.Tensor, *, name: str = "x") -> np.ndarray:
    """Euclidean distance from each row of ``x`` ``(n, ...)`` to its nearest training row: float64 ``(n,)``."""
    train_t = train if isinstance(train, torch.Tensor) else _records("train", train)
    x_t = _records(name, x)
    if x_t.shape[1] != train_t.shape[1]:
        raise DataError(f"{name} records have {x_t.shape[1]} values but training records have {train_t.shape[1]}")
    train_sq = train_t.square().sum(dim=1)  # (N,)
    step = max(1, _BLOCK_ELEMENTS // len(train_t))
    nearest = torch.empty(len(x_t), dtype=torch.float64)
    for start in range(0, len(x_t), step):
        block = x_t[start:start + step]  # (s, D)
        sq = block.square().sum(dim=1, keepdim=True) - 2.0 * block @ train_t.T + train_sq  # (s, N)
        nearest[start:start + step] = sq.min(dim=1).values.clamp_(min=0.0).sqrt_()
    return nearest.numpy()


def _records(name: str, x: np.ndarray) -> torch.Tensor:
    """``x`` as a float64 ``(n, D)`` tensor of flattened records, or raise :class:`DataError`."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2 or len(x) == 0:
        raise DataError(f"{name} records must be a non-empty array (n, ...), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DataError(f"{name} records hold NaN or infinite values")
    return torch.from_numpy(x.reshape(len(x), -1).copy())
