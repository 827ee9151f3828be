"""The one input check every sample-quality metric runs on its arrays."""

from __future__ import annotations

import numpy as np

from genlab.errors import DataError


def feature_matrix(name: str, x: np.ndarray, *, min_rows: int = 1, why: str = "") -> np.ndarray:
    """Return ``x`` as a contiguous, writable float64 ``(n, d)`` array, or raise :class:`DataError`.

    Args:
        name: what the array is ("real features", "fake", ...), for the message.
        x: the array, ``(n, d)`` with ``d >= 1``.
        min_rows: the fewest rows the metric can work with.
        why: the reason for ``min_rows`` ("for a covariance"), for the message.
    """
    try:
        x = np.array(x, dtype=np.float64, copy=True, order="C")
    except (TypeError, ValueError) as err:
        raise DataError(f"{name} must be a numeric array (n, d): {err}") from None
    if x.ndim != 2 or x.shape[1] == 0:
        raise DataError(f"{name} must be a 2-D array (n, d) with d >= 1, got shape {x.shape}")
    if len(x) == 0:
        raise DataError(f"{name} are empty: no points, shape {x.shape}")
    if len(x) < min_rows:
        raise DataError(f"{name} need at least {min_rows} points{' ' + why if why else ''}, got {len(x)}")
    if not np.isfinite(x).all():
        raise DataError(f"{name} hold NaN or infinite values")
    return x


def same_dimension(real: np.ndarray, fake: np.ndarray) -> None:
    """Raise :class:`DataError` unless both feature sets have the same number of columns."""
    if real.shape[1] != fake.shape[1]:
        raise DataError(f"real features have dimension {real.shape[1]} but fake have {fake.shape[1]}")
