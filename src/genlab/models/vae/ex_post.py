"""Ex-post density estimation: a Gaussian mixture fitted to the encodings of the training set, sampled
instead of ``N(0, I)``.

A VAE's aggregate posterior ``q(z) = E_x q(z|x)`` rarely fills the prior ``N(0, I)``: the KL term pulls
``q(z|x)`` towards it, the likelihood pulls the encodings apart, and where the two disagree the prior
puts mass on regions no training image encodes to. Decoding such latents gives the blurred, off-manifold
images that make prior samples worse than reconstructions. Ghosh et al. (2020, "From variational to
deterministic autoencoders", sec. 4) fit a Gaussian mixture to the training set's posterior means after
training and sample the decoder from it; pythae calls it the "GMM sampler". The decoder is unchanged; only
where its latents come from is.

For a class-conditional VAE the mixture is fitted per class (``z`` carries style, and the styles of a
1 and an 8 differ), so ``p(z | y) = sum_k pi_yk N(z; m_yk, S_yk)``.

The mixture is stored in the network's buffers (:class:`FittedPrior`), so it travels with the run's weights.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


class FittedPrior(nn.Module):
    """A Gaussian mixture per group (class, or one group for an unconditional model) over latents.

    Buffers (zeros until :meth:`fit`, which :attr:`fitted` records):
        log_weights: ``(G, K)`` log mixture weights ``log pi_gk``.
        means: ``(G, K, L)`` component means ``m_gk``.
        scale_tril: ``(G, K, L, L)`` Cholesky factors ``C_gk`` of the covariances ``S_gk = C C^T``.
        fitted: ``()`` 1 once fitted.

    Args:
        groups: ``G``, the classes of a conditional model or 1.
        components: ``K`` per group.
        latent_dim: ``L``.
    """

    def __init__(self, groups: int, components: int, latent_dim: int) -> None:
        super().__init__()
        self.register_buffer("log_weights", torch.full((groups, components), -math.log(components)))
        self.register_buffer("means", torch.zeros(groups, components, latent_dim))
        self.register_buffer("scale_tril", torch.eye(latent_dim).expand(groups, components, -1, -1).clone())
        self.register_buffer("fitted", torch.zeros(()))

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted)

    def fit(self, z: np.ndarray, groups: np.ndarray | None, *, seed: int) -> None:
        """Fit each group's mixture to its encodings by EM (scikit-learn, full covariances, k-means start).

        Args:
            z: ``(N, L)`` posterior means of training records.
            groups: ``(N,)`` group index of each record (its class), or ``None`` for one group.
            seed: seed of the k-means initialisation.
        """
        from sklearn.mixture import GaussianMixture

        n_groups, k, dim = self.means.shape
        groups = np.zeros(len(z), dtype=np.int64) if groups is None else np.asarray(groups)
        for g in range(n_groups):
            rows = z[groups == g].astype(np.float64)
            if len(rows) < 2 * dim:         # too few of this group to estimate a covariance: pool every group
                rows = z.astype(np.float64)
            components = max(1, min(k, len(rows) // (2 * dim)))
            mixture = GaussianMixture(components, covariance_type="full", reg_covar=1e-4, random_state=seed,
                                      max_iter=200).fit(rows)
            log_w = np.full(k, -np.inf)
            log_w[:components] = np.log(mixture.weights_)
            means = np.zeros((k, dim))
            means[:components] = mixture.means_
            tril = np.broadcast_to(np.eye(dim), (k, dim, dim)).copy()
            tril[:components] = np.linalg.cholesky(mixture.covariances_)
            self.log_weights[g] = torch.from_numpy(log_w)
            self.means[g] = torch.from_numpy(means)
            self.scale_tril[g] = torch.from_numpy(tril)
        self.fitted.fill_(1)

    def sample(self, groups: torch.Tensor, generator: torch.Generator | None, temperature: float = 1.0) -> torch.Tensor:
        """``z = m_gk + tau C_gk eps`` with ``k ~ pi_g`` and ``eps ~ N(0, I)``.

        Args:
            groups: ``(n,)`` group of each draw (long).
            generator: source of the component and noise draws (on its own device).
            temperature: ``tau``, scaling each component's spread (1 = the fitted mixture).

        Returns:
            ``(n, L)`` latents on this module's device.
        """
        device = generator.device if generator is not None else torch.device("cpu")
        weights = self.log_weights[groups].exp().to(device)                       # (n, K)
        k = torch.multinomial(weights, 1, generator=generator).squeeze(1).to(self.means.device)
        eps = torch.randn(len(groups), self.means.shape[-1], generator=generator, device=device).to(self.means)
        tril = self.scale_tril[groups, k]                                        # (n, L, L)
        return self.means[groups, k] + temperature * (tril @ eps.unsqueeze(-1)).squeeze(-1)
