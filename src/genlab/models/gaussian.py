"""The density baseline: a (class-conditional) Gaussian mixture, fitted by EM or by Adam.

With ``n_components=1`` this is the simplest generative model there is: learn the mean and covariance,
sample ``x = mu + L eps`` with ``Sigma = L L^T`` and ``eps ~ N(0, I)``. With ``K`` components,

    p(x | c) = sum_k w_ck N(x; mu_ck, Sigma_ck),        p(x) = sum_c pi_c p(x | c),

where ``c`` is the class label when the data has labels (one mixture per class, prior ``pi`` from the
class counts) and a single dummy class otherwise.

Two solvers reach the same parameters:

- ``em``: expectation-maximisation (Dempster, Laird & Rubin 1977; Bishop, PRML §9.2) in float64,
  initialised by k-means++ seeding and Lloyd iterations, best of ``n_init`` restarts. Exact and fast.
- ``adam``: maximum likelihood by minibatch gradient descent through the Trainer, with the
  covariance kept positive definite by the parameterisation ``L = tril(A, -1) + diag(exp(diag A))``.
  Slower, but it streams minibatches and runs under torchrun like every other family.

On a table the family is the Gaussian copula (see :mod:`genlab.models.copula` for the maths): the
table codec maps each column to standard-normal scores through its empirical CDF (categories through
their interval of the CDF over categories, as SDV's ``GaussianCopulaSynthesizer``), the network holds
a zero-mean Gaussian whose covariance is the scores' correlation matrix (closed form, one component),
and ``sample(n, condition={column: value})`` conditions that Gaussian exactly, with no rejection.
With a categorical target and ``conditional=True`` (the default, as for labelled points) there is one
copula per target class, each with its own marginals (the codec's ``strata``) and correlation, and
the class prior from the class counts; ``conditional=False`` fits one copula to the whole table.
``covariance="diag"`` makes the columns independent (within a class).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from typing import Any

import torch
from torch import nn

import numpy as np
from scipy.special import ndtri
from scipy.stats import norm

from genlab.data.table_normalisation import category_interval
from genlab.data.tables import TableCodec
from genlab.defaults import DataDefaults
from genlab.errors import ConfigError, DataError
from genlab.models import copula
from genlab.models.base import DataInfo, FitContext, GenerativeModel, class_log_prior
from genlab.train import Batch, Losses, Phase, TrainConfig

LOG_2PI = math.log(2.0 * math.pi)


def bic_components(x: np.ndarray, *, max_components: int = 32, patience: int = 3, max_records: int = 4000,
                   seed: int = 0) -> int:
    """The number of full-covariance mixture components ``K`` that minimises the Bayesian information
    criterion ``BIC = -2 log L + p log n`` (Schwarz 1978) on ``x (n, d)``, fitted by scikit-learn's EM.

    ``K`` grows from 1 until the BIC has not improved for ``patience`` values or reaches
    ``max_components``; at most ``max_records`` rows (a seeded subset) are used, which keeps the search
    to seconds on 2-D data. BIC is unchanged by an affine map of ``x``, so raw records serve as well as
    standardised ones.
    """
    from sklearn.mixture import GaussianMixture

    rows = np.random.default_rng(seed).permutation(len(x))[:max_records]
    sample = np.asarray(x, dtype=np.float64)[rows]
    best_k, best_bic = 1, np.inf
    for k in range(1, min(max_components, len(sample)) + 1):
        bic = GaussianMixture(k, covariance_type="full", reg_covar=1e-6, random_state=seed).fit(sample).bic(sample)
        if bic < best_bic:
            best_k, best_bic = k, bic
        elif k - best_k >= patience:
            break
    return best_k


@dataclass(frozen=True, kw_only=True)
class GaussianConfig:
    """Options of the Gaussian mixture family.

    Attributes:
        n_components: mixture components ``K`` per class (1 = a single Gaussian).
        covariance: ``"full"`` covariance matrices or ``"diag"`` (independent coordinates).
        solver: ``"em"`` (closed-form updates) or ``"adam"`` (gradient descent via the Trainer).
        max_iter: EM iterations per restart.
        tol: EM stops when the mean log-likelihood per record improves by less than this.
        n_init: EM restarts; the one with the highest likelihood is kept.
        reg_covar: added to every covariance diagonal (in model space) so it stays invertible.
        conditional: fit one mixture per class when the data has labels.
    """

    n_components: int = 1
    covariance: Literal["full", "diag"] = "full"
    solver: Literal["em", "adam"] = "em"
    max_iter: int = 200
    tol: float = 1e-6
    n_init: int = 3
    reg_covar: float = 1e-6
    conditional: bool = True

    def __post_init__(self) -> None:
        if self.n_components < 1:
            raise ValueError(f"n_components must be at least 1, got {self.n_components}")
        if self.max_iter < 1 or self.n_init < 1:
            raise ValueError("max_iter and n_init must be at least 1")
        if self.reg_covar < 0 or self.tol < 0:
            raise ValueError("reg_covar and tol must be non-negative")


class GaussianMixtureNetwork(nn.Module):
    """Parameters of ``C`` class-conditional mixtures of ``K`` Gaussians in ``D`` dimensions.

    Parameters (all unconstrained, so gradient descent needs no projection):
        class_logits: ``(C,)``, ``pi = softmax(class_logits)`` (a zero buffer when ``C = 1``).
        logits: ``(C, K)``, ``w_c = softmax(logits_c)`` (a zero buffer when ``K = 1``).
        means: ``(C, K, D)``.
        scale_raw: ``(C, K, D, D)`` for full covariance, ``L = tril(A, -1) + diag(exp(diag A))``;
        log_scale: ``(C, K, D)`` for diagonal covariance, ``sigma = exp(log_scale)``.
    """

    def __init__(self, n_classes: int, n_components: int, dim: int, covariance: str) -> None:
        super().__init__()
        self.full = covariance == "full"
        # A softmax over one entry is constant, so with one class (or one component) the logits are
        # buffers, not parameters: every parameter of the network then receives a gradient.
        self._weights("class_logits", torch.zeros(n_classes))
        self._weights("logits", torch.zeros(n_classes, n_components))
        self.means = nn.Parameter(torch.zeros(n_classes, n_components, dim))
        if self.full:
            self.scale_raw = nn.Parameter(torch.zeros(n_classes, n_components, dim, dim))
        else:
            self.log_scale = nn.Parameter(torch.zeros(n_classes, n_components, dim))

    def _weights(self, name: str, value: torch.Tensor) -> None:
        if value.shape[-1] > 1:
            self.register_parameter(name, nn.Parameter(value))
        else:
            self.register_buffer(name, value)

    def scale(self) -> torch.Tensor:
        """``L (C, K, D, D)`` lower-triangular with positive diagonal, or ``sigma (C, K, D)`` when diagonal."""
        if not self.full:
            return self.log_scale.exp()
        return torch.tril(self.scale_raw, -1) + torch.diag_embed(torch.diagonal(self.scale_raw, dim1=-2, dim2=-1).exp())

    def set_from_moments(self, class_log_probs: torch.Tensor, log_weights: torch.Tensor,
                         means: torch.Tensor, scale: torch.Tensor) -> None:
        """Load fitted values: ``scale`` is ``L`` (full) or ``sigma`` (diag), shaped like :meth:`scale`."""
        with torch.no_grad():
            self.class_logits.copy_(class_log_probs)
            self.logits.copy_(log_weights)
            self.means.copy_(means)
            if self.full:
                diag = torch.diagonal(scale, dim1=-2, dim2=-1).log()
                self.scale_raw.copy_(torch.tril(scale, -1) + torch.diag_embed(diag))
            else:
                self.log_scale.copy_(scale.log())

    def component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log N(x; mu_ck, Sigma_ck)`` for every class and component: ``x (B, D)`` -> ``(B, C, K)``."""
        C, K, D = self.means.shape
        log_n = gaussian_log_prob(x, self.means.reshape(C * K, D), self.scale().reshape(C * K, *self.scale().shape[2:]))
        return log_n.reshape(-1, C, K)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """``log p(x)`` ``(B,)`` for ``x (B, D)``; with labels ``y (B,)``, the joint ``log p(x, y)``."""
        joint = self.joint_log_prob(x)                                   # (B, C)
        if y is None:
            return torch.logsumexp(joint, dim=1)
        return joint.gather(1, y[:, None]).squeeze(1)

    def joint_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log pi_c + log p(x | c)`` for every class: ``x (B, D)`` -> ``(B, C)``."""
        log_w = torch.log_softmax(self.logits, dim=-1)                  # (C, K)
        log_px_c = torch.logsumexp(log_w + self.component_log_prob(x), dim=-1)
        return torch.log_softmax(self.class_logits, dim=0) + log_px_c

    def sample(self, n: int, condition: int | None, generator: torch.Generator | None) -> torch.Tensor:
        """``n`` draws ``(n, D)``: class ``c ~ pi`` (or fixed), component ``k ~ w_c``, ``x = mu_ck + L_ck eps``."""
        C, K, D = self.means.shape
        rng_device = generator.device if generator is not None else torch.device("cpu")
        if condition is None:
            classes = torch.multinomial(torch.softmax(self.class_logits, 0).to(rng_device), n,
                                        replacement=True, generator=generator)
        else:
            classes = torch.full((n,), condition, dtype=torch.long, device=rng_device)
        weights = torch.softmax(self.logits, -1).to(rng_device)[classes]     # (n, K)
        components = torch.multinomial(weights, 1, generator=generator).squeeze(1)
        eps = torch.randn(n, D, generator=generator, device=rng_device)
        flat = (classes * K + components).to(self.means.device)
        eps = eps.to(self.means.device, self.means.dtype)
        means = self.means.reshape(C * K, D)
        scale = self.scale().reshape(C * K, *self.scale().shape[2:])
        x = torch.empty_like(eps)
        for index in flat.unique():   # at most C*K groups, so no (n, D, D) gather of scale matrices
            rows = flat == index
            noise = eps[rows] @ scale[index].T if self.full else eps[rows] * scale[index]
            x[rows] = means[index] + noise
        return x


def gaussian_log_prob(x: torch.Tensor, means: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Log-density of every point under every Gaussian: ``x (B, D)`` -> ``(B, G)``.

    ``log N(x; mu, L L^T) = -1/2 (D log 2 pi + ||L^{-1}(x - mu)||^2) - sum log diag L``.

    Args:
        x: ``(B, D)`` points.
        means: ``(G, D)``.
        scale: ``(G, D, D)`` lower-triangular Cholesky factors, or ``(G, D)`` standard deviations.
    """
    D = x.shape[-1]
    if scale.dim() == 2:
        z = (x[:, None, :] - means[None]) / scale[None]                   # (B, G, D)
        return -0.5 * (D * LOG_2PI + (z * z).sum(-1)) - scale.log().sum(-1)
    diff = (x[None, :, :] - means[:, None, :]).transpose(1, 2)            # (G, D, B): B solves per factor
    z = torch.linalg.solve_triangular(scale, diff, upper=False)          # (G, D, B)
    log_det = torch.diagonal(scale, dim1=-2, dim2=-1).log().sum(-1)       # (G,)
    return (-0.5 * (D * LOG_2PI + (z * z).sum(1)) - log_det[:, None]).T


@dataclass(frozen=True)
class MixtureFit:
    """One EM result: log-weights ``(K,)``, means ``(K, D)``, scale ``(K, D, D)`` or ``(K, D)``, and the
    mean log-likelihood per record it reached."""

    log_weights: torch.Tensor
    means: torch.Tensor
    scale: torch.Tensor
    mean_log_likelihood: float


def fit_mixture_em(x: torch.Tensor, config: GaussianConfig, generator: torch.Generator) -> MixtureFit:
    """Fit a ``K``-component mixture to ``x (n, D)`` by EM, keeping the best of ``n_init`` restarts."""
    x = x.double()
    best: MixtureFit | None = None
    for _ in range(config.n_init):
        fit = _em_once(x, config, generator)
        if best is None or fit.mean_log_likelihood > best.mean_log_likelihood:
            best = fit
    return best


def _em_once(x: torch.Tensor, config: GaussianConfig, generator: torch.Generator) -> MixtureFit:
    """One EM run from a k-means initialisation (float64 ``x (n, D)``)."""
    centres = _kmeans(x, min(config.n_components, len(x)), generator)
    K = config.n_components
    labels = torch.cdist(x, centres).argmin(1)
    resp = torch.nn.functional.one_hot(labels, K).double()                # (n, K) hard start
    previous = -math.inf
    for _ in range(config.max_iter):
        log_weights, means, scale = _m_step(x, resp, config)
        joint = gaussian_log_prob(x, means, scale) + log_weights          # (n, K) E-step
        log_lik = torch.logsumexp(joint, dim=1)
        resp = (joint - log_lik[:, None]).exp()
        mean_log_lik = float(log_lik.mean())
        if abs(mean_log_lik - previous) < config.tol:
            break
        previous = mean_log_lik
    log_weights, means, scale = _m_step(x, resp, config)
    mean_log_lik = float(torch.logsumexp(gaussian_log_prob(x, means, scale) + log_weights, 1).mean())
    return MixtureFit(log_weights, means, scale, mean_log_lik)


def _m_step(x: torch.Tensor, resp: torch.Tensor, config: GaussianConfig) -> tuple[torch.Tensor, ...]:
    """Maximum-likelihood weights, means and scales given responsibilities ``resp (n, K)``."""
    n, D = x.shape
    counts = resp.sum(0) + 10 * torch.finfo(x.dtype).eps                  # (K,) never exactly 0
    log_weights = (counts / n).log()
    means = (resp.T @ x) / counts[:, None]                                # (K, D)
    if config.covariance == "diag":
        var = (resp.T @ (x * x)) / counts[:, None] - means * means + config.reg_covar
        return log_weights, means, var.clamp_min(config.reg_covar).sqrt()
    diff = x[None] - means[:, None]                                       # (K, n, D)
    cov = torch.einsum("kn,kni,knj->kij", resp.T, diff, diff) / counts[:, None, None]
    cov = cov + config.reg_covar * torch.eye(D, dtype=x.dtype)
    return log_weights, means, torch.linalg.cholesky(cov)


def _kmeans(x: torch.Tensor, k: int, generator: torch.Generator, iterations: int = 10) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007) then Lloyd iterations: ``(k, D)`` centres."""
    first = torch.randint(len(x), (1,), generator=generator)
    centres = x[first]
    for _ in range(1, k):
        nearest = torch.cdist(x, centres).min(1).values ** 2
        probs = nearest / nearest.sum() if nearest.sum() > 0 else torch.full_like(nearest, 1.0 / len(x))
        centres = torch.cat([centres, x[torch.multinomial(probs, 1, generator=generator)]])
    for _ in range(iterations):
        labels = torch.cdist(x, centres).argmin(1)
        for j in range(k):
            members = x[labels == j]
            if len(members):
                centres[j] = members.mean(0)
    return centres


class GaussianMixtureModel(GenerativeModel):
    """The density baseline family ``gaussian``: ``fit``, ``sample``, ``log_prob``, save/load.

    Example:
        >>> model = GaussianMixtureModel(n_components=8).fit(genlab.datasets.load("ring8"))
        >>> x = model.sample(2500, generator=torch.Generator().manual_seed(0))   # (2500, 2)
    """

    family = "gaussian"
    config_class = GaussianConfig
    supports_tables = True

    def default_train_config(self) -> TrainConfig:
        """Adam settings that fit a mixture in a few thousand steps (used by ``solver="adam"``)."""
        return TrainConfig(steps=3000, batch_size=512, lr=0.02, warmup_steps=50, min_lr_ratio=0.01)

    @classmethod
    def data_defaults(cls, info: DataInfo, x: Any) -> DataDefaults:
        """Points: as many components as the Bayesian information criterion picks (:func:`bic_components`;
        ring8 gets 8, a single Gaussian scored 3 % high-quality samples there). Images: ``reg_covar``
        1e-3, because pixels that never vary (the corners of digits) would otherwise get a variance near 0
        and make the held-out likelihood meaningless (measured on digits: NLL +1.6e4 at 1e-6). Tables: the
        copula, one component."""
        if info.modality == "points":
            return DataDefaults(model={"n_components": bic_components(np.asarray(x))},
                                why="components chosen by BIC")
        if info.modality == "images":
            return DataDefaults(model={"reg_covar": 1e-3}, why="pixels that never vary need a variance floor")
        return DataDefaults()

    def _make_table_codec(self, data: DataInfo) -> TableCodec:
        """The copula's codec: normal scores through empirical CDFs (numbers) and CDF intervals
        (categories), per class of a categorical target when ``conditional``."""
        if self.config.n_components != 1 or self.config.solver != "em":
            raise ConfigError("on tables the gaussian family is a Gaussian copula: one component fitted in closed "
                              f"form (n_components=1, solver=em), got n_components={self.config.n_components}, "
                              f"solver={self.config.solver}")
        strata = data.target if (self.config.conditional and data.class_names) else None
        return TableCodec(numeric="quantile", categorical="normal", strata=strata)

    def _n_classes(self, data: DataInfo) -> int:
        if data.modality == "tables":   # one copula per stratum (class of the target), else one
            return len(self.codec_.spec(self.codec_.strata)["categories"]) if self.codec_.strata else 1
        return data.n_classes if (self.config.conditional and data.n_classes) else 1

    def _build_network(self, data: DataInfo) -> GaussianMixtureNetwork:
        dim = self.codec_.width if data.modality == "tables" else data.dim
        return GaussianMixtureNetwork(self._n_classes(data), self.config.n_components, dim, self.config.covariance)

    def _fit_network(self, x: torch.Tensor, y: torch.Tensor | None, context: FitContext) -> None:
        if self.data_.modality == "tables":
            self._fit_copula(x)
            return
        flat = x.flatten(1)
        classes = y if (y is not None and self.network_.class_logits.numel() > 1) else torch.zeros(len(x), dtype=torch.long)
        generator = torch.Generator().manual_seed(context.train.seed)
        if self.config.solver == "em":
            self._fit_em(flat, classes, generator)
        else:
            self._init_for_adam(flat, classes, generator)
            super()._fit_network(x, classes, context)

    def _class_names(self) -> tuple[str, ...]:
        """Names of the classes the mixtures are fitted per (one unnamed class when unconditional)."""
        return self.data_.class_names if self.network_.class_logits.numel() > 1 else ("all",)

    def _fit_em(self, x: torch.Tensor, classes: torch.Tensor, generator: torch.Generator) -> None:
        prior = class_log_prior(classes, self._class_names())   # checks every class has records
        fits = [fit_mixture_em(x[classes == c], self.config, generator) for c in range(len(prior))]
        self.network_.set_from_moments(
            prior,
            torch.stack([f.log_weights for f in fits]),
            torch.stack([f.means for f in fits]),
            torch.stack([f.scale for f in fits]),
        )
        self.history_ = [{"class": c, "mean_log_likelihood": f.mean_log_likelihood} for c, f in enumerate(fits)]

    def _fit_copula(self, z: torch.Tensor) -> None:
        """Per stratum ``c``: ``R_c``, the correlation of its rows' normal scores ``z (n_c, D)`` (identity
        with ``covariance="diag"``; the stratum's own score is uncorrelated, being constant in truth), and
        the class prior ``pi_c`` from the stratum shares."""
        n, D = z.shape
        if D == 0:
            raise DataError("the table has no column to model (every column is an identifier)")
        codec = self.codec_
        strata = codec.strata_index(z.numpy()) if codec.strata else np.zeros(n, dtype=np.int64)
        C = self.network_.class_logits.numel()
        shares = np.bincount(strata, minlength=C) / n
        scales = []
        for c in range(C):
            if self.config.covariance == "diag" or (strata == c).sum() < 2:
                r = np.eye(D)
            else:
                r = copula.correlation(z.numpy()[strata == c], self.config.reg_covar)
                if codec.strata:
                    j = self._strata_coordinate()
                    r[j, :], r[:, j], r[j, j] = 0.0, 0.0, 1.0
            r = torch.from_numpy(r)
            scales.append(torch.linalg.cholesky(r) if self.config.covariance == "full" else torch.ones(D))
        self.network_.set_from_moments(torch.from_numpy(np.log(np.maximum(shares, 1e-300))), torch.zeros(C, 1),
                                       torch.zeros(C, 1, D), torch.stack(scales)[:, None])
        self.history_ = [{"rows": n, "scores": D, "copulas": C}]

    def copula_covariance(self, stratum: int = 0) -> torch.Tensor:
        """Copula ``stratum``'s correlation matrix ``R (D, D)``, float64, from the stored Cholesky factor."""
        scale = self.network_.scale()[stratum, 0].double()
        return scale @ scale.T if scale.dim() == 2 else torch.diag(scale * scale)

    def _strata_coordinate(self) -> int:
        return next(b.start for b in self.codec_.blocks if b.column == self.codec_.strata)

    def _boxes(self, condition: dict[str, Any], stratum: int | None) -> tuple[dict[int, tuple[float, float]], float]:
        """The condition as latent boxes of copula ``stratum``, and the log-Jacobian of its continuous
        points (``log dF/dx - log phi(z)``, summed); ``None`` boxes when the condition is impossible there."""
        boxes, log_jacobian = {}, 0.0
        for column, value in condition.items():
            for box in self.codec_.latent_boxes(column, value, stratum):
                if box.empty:
                    return None, -np.inf
                boxes[box.index] = (box.low, box.high)
                if box.point:
                    log_jacobian += self.codec_.point_log_density(column, value, stratum) - norm.logpdf(box.low)
        return boxes, log_jacobian

    def _sample_copula(self, n: int, condition: dict[str, Any] | None,
                       generator: torch.Generator | None) -> torch.Tensor:
        """``n`` encoded rows ``(n, D)`` float64 given ``condition`` (module doc of :mod:`copula`)."""
        codec, condition = self.codec_, dict(condition or {})
        C = self.network_.class_logits.numel()
        strata = codec.strata
        fixed = condition.pop(strata, None) if strata else None
        if fixed is not None:
            candidates = [codec.spec(strata)["categories"].index(fixed)]
        else:
            candidates = list(range(C))
        log_prior = torch.log_softmax(self.network_.class_logits.double(), 0)
        log_w = torch.full((C,), -torch.inf, dtype=torch.float64)
        boxes = {}
        for c in candidates:
            boxes[c], log_jacobian = self._boxes(condition, c if strata else None)
            if boxes[c] is not None:
                log_w[c] = log_prior[c] + (0.0 if len(candidates) == 1 else
                                           copula.log_likelihood(self.copula_covariance(c), boxes[c]) + log_jacobian)
        if not torch.isfinite(log_w).any():
            shown = {**condition, **({strata: fixed} if fixed is not None else {})}
            raise DataError(f"the condition {shown} has probability zero under this model: no training row of "
                            f"{'that class' if fixed is not None else 'any class'} has such values")
        if len(candidates) == 1:
            classes = torch.full((n,), candidates[0], dtype=torch.long)
        else:
            classes = torch.multinomial(torch.softmax(log_w, 0).float(), n, replacement=True, generator=generator)
        z = torch.zeros(n, codec.width, dtype=torch.float64)
        for c in classes.unique().tolist():
            rows = classes == c
            z[rows] = copula.sample(self.copula_covariance(c), int(rows.sum()), boxes[c], generator)
            if strata:   # the class's own score: the middle of its interval (uncorrelated within the class)
                spec = codec.spec(strata)
                a, b = category_interval(spec["frequencies"], c, spec.get("order"))
                z[rows, self._strata_coordinate()] = float(ndtri(0.5 * (a + b)))
        return z

    def _init_for_adam(self, x: torch.Tensor, classes: torch.Tensor, generator: torch.Generator) -> None:
        """Start each component's mean at a random training record of its class; unit scales."""
        network = self.network_
        with torch.no_grad():
            network.class_logits.copy_(class_log_prior(classes, self._class_names()))
            for c in range(network.class_logits.numel()):
                members = x[classes == c]
                picks = torch.randint(len(members), (network.means.shape[1],), generator=generator)
                network.means[c].copy_(members[picks])

    def _phases(self) -> list[Phase]:
        conditional = self.network_.class_logits.numel() > 1

        def negative_log_likelihood(module: nn.Module, batch: Batch, generator: torch.Generator) -> Losses:
            # x: (B, D) flattened records; loss = -mean log p(x[, y]) in nats per record
            nll = -module(batch.x.flatten(1), batch.y if conditional else None).mean()
            return Losses(nll, {"nll": float(nll.detach())})

        return [Phase("model", self.network_, negative_log_likelihood)]

    def _sample_network(self, n: int, condition: int | dict[str, Any] | None, generator: torch.Generator | None,
                        **options: object) -> torch.Tensor:
        if self.data_.modality == "tables":
            return self._sample_copula(n, condition, generator)
        if condition is not None and self.network_.class_logits.numel() == 1:
            condition = None   # trained with conditional=False: every class shares the one mixture
        return self.network_.sample(n, condition, generator).reshape(n, *self.data_.shape)

    def _log_prob_network(self, z: torch.Tensor, condition: int | None) -> torch.Tensor:
        z = z.flatten(1).to(self.device)
        if condition is None or self.network_.class_logits.numel() == 1:
            return self.network_(z)
        joint = self.network_.joint_log_prob(z)
        return joint[:, condition] - torch.log_softmax(self.network_.class_logits, 0)[condition]
