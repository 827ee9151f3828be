"""Seeded synthetic 2-D point sets: the mode-collapse mixtures and two curved manifolds.

Every loader draws its train split and then its test split from one ``numpy.random.Generator``
seeded with ``seed``, so the same seed always gives the same data and the two splits are independent
draws from the same distribution. Points are float32 ``(n, 2)``.
"""

from __future__ import annotations

import numpy as np

from genlab.data.dataset import Dataset

#: Standard deviation of each ring8 component (VEEGAN 2017, PacGAN 2018).
RING8_STD = 0.01
#: Standard deviation of each grid25 component (VEEGAN 2017, PacGAN 2018).
GRID25_STD = 0.05
#: Gaussian noise added to each moons coordinate.
MOONS_NOISE = 0.05
#: Gaussian noise added to each swiss-roll coordinate, before the 1/10 scaling.
SWISSROLL_NOISE = 0.5


def ring8(n_train: int = 10_000, n_test: int = 2_500, seed: int = 0) -> Dataset:
    """Eight equal-weight Gaussians on the unit circle, at angles ``2πk/8``, each with std 0.01.

    The ring benchmark of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018), Table 1.

    Returns:
        Unlabelled points: ``x_train`` float32 ``(n_train, 2)``, ``x_test`` float32 ``(n_test, 2)``,
        ``modes`` float32 ``(8, 2)``, ``mode_std`` 0.01.
    """
    angles = 2 * np.pi * np.arange(8) / 8
    modes = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return _mixture("ring8", modes, RING8_STD, n_train, n_test, seed)


def grid25(n_train: int = 10_000, n_test: int = 2_500, seed: int = 0) -> Dataset:
    """Twenty-five equal-weight Gaussians on the grid ``{-4, -2, 0, 2, 4}²``, each with std 0.05.

    The grid benchmark of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018), Table 1.

    Returns:
        Unlabelled points: ``x_train`` float32 ``(n_train, 2)``, ``x_test`` float32 ``(n_test, 2)``,
        ``modes`` float32 ``(25, 2)``, ``mode_std`` 0.05.
    """
    ticks = np.arange(-4.0, 5.0, 2.0)
    modes = np.stack(np.meshgrid(ticks, ticks, indexing="ij"), axis=-1).reshape(-1, 2)
    return _mixture("grid25", modes, GRID25_STD, n_train, n_test, seed)


def moons(n_train: int = 10_000, n_test: int = 2_500, seed: int = 0) -> Dataset:
    """Two interleaving half circles (scikit-learn ``make_moons``, noise 0.05), labelled by moon.

    Returns:
        ``x_*`` float32 ``(n, 2)`` in about ``[-1, 2] x [-0.5, 1]``; ``y_*`` int64 ``(n,)``:
        0 = ``"upper"`` moon, 1 = ``"lower"`` moon.
    """
    from sklearn.datasets import make_moons

    rng = np.random.default_rng(seed)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = make_moons(n, noise=MOONS_NOISE, random_state=_sklearn_seed(rng))
        return x.astype(np.float32), y.astype(np.int64)

    x_train, y_train = draw(n_train)
    x_test, y_test = draw(n_test)
    return Dataset(name="moons", modality="points", x_train=x_train, x_test=x_test,
                   y_train=y_train, y_test=y_test, class_names=("upper", "lower"))


def swissroll(n_train: int = 10_000, n_test: int = 2_500, seed: int = 0) -> Dataset:
    """A 2-D swiss roll: columns 0 and 2 of scikit-learn ``make_swiss_roll`` (noise 0.5), scaled by 1/10.

    Returns:
        Unlabelled points: ``x_*`` float32 ``(n, 2)`` within about ``±1.6``, with noise std 0.05.
    """
    from sklearn.datasets import make_swiss_roll

    rng = np.random.default_rng(seed)

    def draw(n: int) -> np.ndarray:
        x, _ = make_swiss_roll(n, noise=SWISSROLL_NOISE, random_state=_sklearn_seed(rng))  # (n, 3)
        return (x[:, [0, 2]] / 10).astype(np.float32)

    x_train = draw(n_train)
    x_test = draw(n_test)
    return Dataset(name="swissroll", modality="points", x_train=x_train, x_test=x_test)


def _mixture(name: str, modes: np.ndarray, std: float, n_train: int, n_test: int, seed: int) -> Dataset:
    """Draw train then test from the equal-weight isotropic Gaussian mixture on ``modes`` ``(k, d)``."""
    rng = np.random.default_rng(seed)

    def draw(n: int) -> np.ndarray:
        component = rng.integers(len(modes), size=n)  # (n,)
        return (modes[component] + std * rng.standard_normal((n, modes.shape[1]))).astype(np.float32)

    x_train = draw(n_train)
    x_test = draw(n_test)
    return Dataset(name=name, modality="points", x_train=x_train, x_test=x_test,
                   modes=modes.astype(np.float32), mode_std=std)


def _sklearn_seed(rng: np.random.Generator) -> int:
    """A ``random_state`` for scikit-learn drawn from ``rng``, so one seed drives every split."""
    return int(rng.integers(2**31 - 1))
