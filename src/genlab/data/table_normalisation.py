"""Numbers and categories of a table column -> normal-ish scores, and back (the maths of the encoding).

- Mode-specific normalisation (CTGAN: Xu et al., 2019, "Modeling Tabular Data using Conditional GAN",
  Sec. 4.2): a variational Gaussian mixture per column; a value ``x`` becomes
  ``alpha = (x - mu_k) / (4 sigma_k)`` and the one-hot of its mode ``k`` (:func:`encode_numbers`).
- Quantile normalisation: ``z = Phi^-1(F(x))``, ``F`` the piecewise-linear empirical CDF on the
  fitted quantiles (as scikit-learn's ``QuantileTransformer`` with a normal output).
- Interval scores (``categorical="normal"``, SDV's ``UniformEncoder``): categories split ``[0, 1]``
  into intervals of width their share, laid out in a given order; a category becomes
  ``Phi^-1(u)``, ``u`` uniform in its interval (:func:`interval_scores`), and a score goes back to the
  category whose interval holds ``Phi(z)`` (:func:`interval_index`).

A column's fitted parameters live in its spec (a JSON-ready dict, see :mod:`genlab.data.tables`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture

#: Modes of the fitted mixture lighter than this are dropped (CTGAN, RDT's ``ClusterBasedNormalizer``).
MODE_WEIGHT_THRESHOLD = 0.005
#: Quantile normalisation keeps ``F(x)`` inside ``[eps, 1 - eps]`` so ``Phi^-1`` stays finite.
QUANTILE_EPS = 1e-7


def fit_numeric(x: np.ndarray, *, numeric: str, n_quantiles: int, max_modes: int, mixture_rows: int,
                seed: int) -> dict[str, Any]:
    """The normalisation of numbers ``x (n,)`` (module doc): ``{"quantiles", "levels"}`` for
    ``numeric="quantile"`` (``n_quantiles`` of them at most), else the mixture's ``{"weights", "means",
    "stds"}`` (``max_modes`` components at most, fitted on at most ``mixture_rows`` values drawn with
    ``seed``)."""
    if numeric == "quantile":
        levels = np.linspace(0.0, 1.0, max(2, min(n_quantiles, len(x))))
        return {"quantiles": np.quantile(x, levels).tolist(), "levels": levels.tolist()}
    if np.unique(x).size < 2:
        return {"weights": [1.0], "means": [float(x[0])], "stds": [1.0]}
    if len(x) > mixture_rows:
        x = np.random.default_rng(seed).choice(x, mixture_rows, replace=False)
    mixture = BayesianGaussianMixture(
        n_components=min(max_modes, len(x)), weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=1e-3, max_iter=100, n_init=1, random_state=seed)
    with warnings.catch_warnings():
        # A mixture that has not converged in 100 iterations still normalises well (CTGAN's setting).
        warnings.simplefilter("ignore", ConvergenceWarning)
        mixture.fit(x.reshape(-1, 1))
    keep = mixture.weights_ > MODE_WEIGHT_THRESHOLD
    weights = mixture.weights_[keep] / mixture.weights_[keep].sum()
    return {"weights": weights.tolist(), "means": mixture.means_[keep, 0].tolist(),
            "stds": np.sqrt(mixture.covariances_[keep].reshape(-1)).tolist()}


def encode_numbers(spec: dict[str, Any], x: np.ndarray) -> list[np.ndarray]:
    """Numbers ``(n,)`` -> ``[alpha (n,), modes one-hot (n, k)]`` or ``[z (n,)]``."""
    if "quantiles" in spec:
        q, p = np.asarray(spec["quantiles"]), np.asarray(spec["levels"])
        # Average of the forward and backward interpolation, so tied quantiles map to the middle of
        # their levels (as scikit-learn's QuantileTransformer does).
        u = 0.5 * (np.interp(x, q, p) - np.interp(-x, -q[::-1], -p[::-1]))
        return [ndtri(np.clip(u, QUANTILE_EPS, 1.0 - QUANTILE_EPS))]
    w, mu, sigma = (np.asarray(spec[k]) for k in ("weights", "means", "stds"))
    log_post = np.log(w) - np.log(sigma) - 0.5 * ((x[:, None] - mu) / sigma) ** 2          # (n, k)
    alphas = (x[:, None] - mu) / (4.0 * sigma)                                             # (n, k)
    # The most probable mode among those whose |alpha| <= 0.99; a value beyond 3.96 sigma of every
    # mode takes the mode of smallest |alpha| and keeps |alpha| > 0.99 unclipped (CTGAN clips it),
    # so that decoding gives every training value back.
    covered = np.abs(alphas) <= 0.99
    k = np.where(covered.any(axis=1), np.where(covered, log_post, -np.inf).argmax(axis=1),
                 np.abs(alphas).argmin(axis=1))
    alpha = alphas[np.arange(len(x)), k]
    return [alpha, one_hot(k, len(w))]


def decode_numbers(spec: dict[str, Any], parts: list[np.ndarray]) -> np.ndarray:
    """Inverse of :func:`encode_numbers`, clipped to the training range and rounded to its resolution."""
    if "quantiles" in spec:
        x = np.interp(ndtr(parts[0][:, 0]), spec["levels"], spec["quantiles"])
    else:
        k = parts[1].argmax(axis=1)
        x = np.asarray(spec["means"])[k] + 4.0 * np.asarray(spec["stds"])[k] * parts[0][:, 0]
    x = np.clip(x, spec["low"], spec["high"])
    if spec["kind"] in ("integer", "datetime"):
        return np.round(x)
    return x if spec["decimals"] is None else np.round(x, spec["decimals"])


def category_interval(frequencies: list[float], index: int, order: list[int] | None = None) -> tuple[float, float]:
    """The CDF interval ``(a, b)`` of the category at position ``index`` of ``frequencies`` (categories
    in sorted order, then missing), under ``categorical="normal"``, the intervals laid out in ``order``
    (default: by decreasing share). A category of share 0 gets ``a == b``."""
    shares = np.asarray(frequencies, dtype=np.float64)
    order = _interval_order(shares, order)
    edges = _interval_edges(shares, order)
    rank = int(np.flatnonzero(order == index)[0])
    return float(edges[rank]), float(edges[rank + 1])


def _interval_order(shares: np.ndarray, order: list[int] | None = None) -> np.ndarray:
    """Rank -> category index: ``order`` if given, else by decreasing share (ties in sorted order)."""
    return np.asarray(order, dtype=np.int64) if order is not None else np.argsort(-shares, kind="stable")


def _interval_edges(shares: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``(k + 1,)`` edges in ``[0, 1]``: the category of rank ``j`` owns ``[edges[j], edges[j + 1])``."""
    edges = np.concatenate([[0.0], np.cumsum(shares[order])]) / shares.sum()
    edges[-1] = 1.0
    return edges


def interval_scores(frequencies: list[float], index: np.ndarray, rng: np.random.Generator,
                    order: list[int] | None = None) -> np.ndarray:
    """Category indices ``(n,)`` -> normal scores ``Phi^-1(u)``, ``u`` uniform in each category's interval."""
    shares = np.asarray(frequencies, dtype=np.float64)
    order = _interval_order(shares, order)
    edges = _interval_edges(shares, order)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    low, high = edges[rank[index]], edges[rank[index] + 1]
    u = low + rng.uniform(size=len(index)) * (high - low)
    return ndtri(np.clip(u, QUANTILE_EPS, 1.0 - QUANTILE_EPS))


def interval_index(frequencies: list[float], z: np.ndarray, order: list[int] | None = None) -> np.ndarray:
    """Normal scores ``(n,)`` -> the index of the category whose interval holds ``Phi(z)`` (categories of
    share 0 own no interval, so they never come out)."""
    shares = np.asarray(frequencies, dtype=np.float64)
    order = _interval_order(shares, order)
    order = order[shares[order] > 0]
    edges = _interval_edges(shares, order)
    rank = np.clip(np.searchsorted(edges, ndtr(z), side="right") - 1, 0, len(order) - 1)
    return order[rank]


def one_hot(index: np.ndarray, width: int) -> np.ndarray:
    """Indices ``(n,)`` -> float64 one-hot rows ``(n, width)``."""
    out = np.zeros((len(index), width))
    out[np.arange(len(index)), index] = 1.0
    return out
