"""Variational autoencoders: an encoder ``q(z|x)``, a decoder ``p(x|z)`` and the evidence lower bound.

Kingma & Welling (2014, eq. 10) with the prior ``p(z) = N(0, I)`` and a diagonal Gaussian posterior
``q(z|x) = N(mu(x), diag exp(logvar(x)))``:

    ELBO(x) = E_q[log p(x|z)] - beta * KL(q(z|x) || p(z)),
    KL      = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j),

estimated with one reparameterised draw ``z = mu + exp(logvar / 2) * eps``, ``eps ~ N(0, I)``; ``beta``
is Higgins et al.'s (2017) weight (1 = the plain bound, > 1 favours disentangled latents).

Two training aids against posterior collapse (a decoder that ignores ``z`` and explains the data by its
own variance, with ``q(z|x) = p(z)``), both config fields and both leaving the logged ELBO the true one:

- KL warm-up (Bowman et al. 2016 sec. 3.1; Sønderby et al. 2016): the KL weight rises linearly from 0 to
  ``beta`` over ``kl_warmup`` steps, so the encoder carries information before the KL term prices it.
  On ring8 without it a learned-variance decoder collapsed within the first steps (posterior std 1.0
  in every dimension, 0.2 % high-quality samples); with 1,000 steps of warm-up all 8 modes were found.
- free bits (Kingma et al. 2016 eq. 15): the training loss charges ``sum_j max(lambda, E_x KL_j)``,
  so no dimension is pushed all the way to the prior (on grid25 without it one of two latent
  dimensions collapsed and the decoder explained one coordinate by its noise alone: its means hit 5 of
  the 25 modes).

Likelihoods ``p(x|z)``, in model space (the codec's standardised points, or images in ``[-1, 1]``):

- ``"gaussian"``: ``N(x; m(z), diag s(z)^2)`` with a learned per-coordinate scale
  ``s = min_std + softplus(.)`` (the default for points);
- ``"bernoulli"``: pixel intensities ``t = (x + 1) / 2`` in ``[0, 1]`` scored by
  ``sum t log p + (1 - t) log(1 - p)`` (the default for images). For gray levels this is the usual
  MNIST convention, not a normalised density on ``[0, 1]^D``; exactly normalised for binary images.
  It is reported in model space (``- D log 2``) so that ``log_prob`` adds the codec's ``D log 2`` back.

``log_prob`` is the importance-weighted bound of Burda et al. (2016, eq. 8),
``log 1/k sum_i p(x, z_i) / q(z_i|x)`` with ``z_i ~ q(z|x)``: a lower bound on ``log p(x)`` that equals
the ELBO for ``k = 1`` and rises towards ``log p(x)`` as ``k`` grows.

Conditional on class labels (Sohn et al. 2015): both ``q(z|x, y)`` and ``p(x|z, y)`` take a learned class
embedding, so ``z`` carries what the label does not (style), and ``decode(encode(x, c), c')`` transfers it.

Tables (TVAE, Xu et al. 2019 sec. 4.4): MLPs on the table codec's rows (mode scalars, one-hot blocks); the
decoder's likelihood is ``N(alpha; mean, sigma^2)`` per scalar (``sigma`` learned per column) and a
categorical per one-hot block (:class:`genlab.nn.tabular.TableHeads`). It is a conditional VAE on *shown
columns*: encoder and decoder take ``c = [x * shown, shown]``; in half the training rows a random subset of
columns is shown (their likelihood terms dropped), so the decoder learns ``p(rest | shown)``, and
``sample(n, condition={column: value})`` shows the conditioned columns and writes their values into the
rows (exact, no rejection). ``encode``, ``decode`` and ``log_prob`` are not defined on tables.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from genlab.defaults import DataDefaults
from genlab.errors import ConfigError
from genlab.models.base import DataInfo, FitContext, GenerativeModel, class_log_prior
from genlab.models.latent_variations import LatentVariations
from genlab.models.options import SampleOption
from genlab.models.vae.config import VAEConfig
from genlab.models.vae.ex_post import FittedPrior
from genlab.models.vae.networks import VAENetwork, iwae_bound
from genlab.models.vae.tabular import TabularVAE
from genlab.nn.conv import ConvDecoder, ConvEncoder
from genlab.nn.mlp import MLP
from genlab.sampling.latent import check_latents
from genlab.train import Batch, Callback, Losses, Phase, TrainConfig, TrainState


#: Training records whose posterior means the ex-post mixture is fitted to (a seeded subset beyond this).
PRIOR_RECORDS = 30_000


class _WarmupClock(Callback):
    """Keeps :attr:`VAEModel._kl_progress` at the share of the training budget that the coming step
    completes, ``(step + 1) / steps`` or ``elapsed / max_time`` (the larger when both are set, as training
    stops at whichever ends first), which the KL warm-up reads. The Trainer restores step and elapsed time
    on resume; calling the loss outside training (validation, tests) never moves it."""

    def __init__(self, model: "VAEModel") -> None:
        self.model = model

    def on_train_start(self, trainer: Any, state: TrainState) -> None:
        self._update(state)

    def on_step_end(self, trainer: Any, state: TrainState) -> None:
        self._update(state)

    def _update(self, state: TrainState) -> None:
        shares = [(state.step + 1) / state.total_steps] if state.total_steps else []
        if state.max_time:
            shares.append(state.elapsed / state.max_time)
        self.model._kl_progress = min(1.0, max(shares))


class VAEModel(TabularVAE, LatentVariations, GenerativeModel):
    """The ``vae`` family: ``fit``, ``sample`` (options ``mean``, ``temperature``), ``encode``, ``decode``,
    ``log_prob`` (IWAE), save/load.

    Example:
        >>> model = VAEModel(latent_dim=8).fit(genlab.datasets.load("digits"))
        >>> z = model.encode(x, condition=3)                  # (n, 8) posterior means
        >>> model.decode(z, condition=5)                      # the same style, drawn as a 5
        >>> model.log_prob(x, condition=3, samples=1000)      # IWAE bound, nats per record
    """

    family = "vae"
    config_class = VAEConfig
    sample_options = frozenset({"mean", "temperature", "prior"})
    declared_options = {
        "mean": SampleOption("boolean", "decode to the likelihood's mean instead of drawing from it", False),
        "temperature": SampleOption("number", "prior temperature: latents drawn from N(0, t^2 I)", 1.0, 0, 5),
        "prior": SampleOption("string", "where latents come from: the mixture fitted to the training encodings "
                              "(gmm, where the run has one) or N(0, I) (standard)", "standard",
                              choices=("gmm", "standard"), modalities=("points", "images")),
    }
    supports_tables = True
    encodes_records = True
    #: Training steps completed, the KL warm-up's clock (set by :class:`_WarmupClock` during ``fit``).
    _kl_progress: float = 1.0

    def default_train_config(self) -> TrainConfig:
        """AdamW at 3e-3, cosine decay to 1%, 3,000 steps of 256 records.

        Measured on ring8 (modes of std 0.014 in model space), seed 0, 3,000 steps: at 1e-3 decaying to
        1e-4 the decoder's scale was still 0.05 when training stopped (a 2-D latent, 128 wide: 3 %
        high-quality samples); 3e-3 decaying to 3e-5 brought it to 0.015 (the default network: 8 modes,
        23 % high quality). 1e-2 gave 44 % but produced NaN in a longer run of a deeper network.
        """
        return TrainConfig(steps=3000, batch_size=256, lr=3e-3, min_lr_ratio=0.01)

    @classmethod
    def data_defaults(cls, info: DataInfo, x: Any) -> DataDefaults:
        """Points: a 2-D latent, a deeper decoder and free bits (benchmarks/gan_vae_points.py: all modes of
        ring8 and grid25, where the defaults collapsed the posterior) at the family's lr 3e-3: the
        benchmark's 5e-3, tuned for 3,000 steps, gave NaN samples after 120 CPU s on ring8. Images: batch
        128 at lr 2e-3 (benchmarks/mnist_families.py), sampled from the ex-post mixture prior: on MNIST at
        150 CPU s the same fit drawn from N(0, I) scored Fréchet 77 and conditional accuracy 0.86, from the
        mixture 14.6 and 0.99, and beta 0.5 (sharper reconstructions, the mixture covering the aggregate
        posterior that a weaker KL leaves further from N(0, I)) 10.5 and 0.99 (benchmarks/defaults.py
        --techniques, docs/defaults.md). Tables keep TVAE's settings."""
        if info.modality == "points":
            return DataDefaults(model={"latent_dim": 2, "hidden": 256, "depth": 4, "free_bits": 1.0},
                                why="measured on ring8/grid25")
        if info.modality == "images":
            return DataDefaults(model={"prior": "gmm", "beta": 0.5}, train={"batch_size": 128, "lr": 2e-3},
                                why="ex-post mixture prior and beta 0.5, measured on MNIST")
        return DataDefaults()

    @property
    def latent_shape(self) -> tuple[int]:
        """Shape of one latent vector, ``(latent_dim,)``; the prior is ``N(0, I)``."""
        return (self.config.latent_dim,)

    def _likelihood(self, data: DataInfo) -> str:
        likelihood = self.config.likelihood
        if likelihood == "auto":
            return "bernoulli" if data.modality == "images" else "gaussian"
        if likelihood == "bernoulli" and data.modality != "images":
            raise ConfigError("the bernoulli likelihood needs images with intensities in [0, 1]; "
                              f"for {data.modality} choose likelihood='gaussian' or 'auto'")
        return likelihood

    def _build_network(self, data: DataInfo) -> VAENetwork:
        if data.modality == "tables":
            return self._build_table_network()
        config = self.config
        n_classes = data.n_classes if config.conditional else 0
        likelihood = self._likelihood(data)
        outputs = 2 if likelihood == "gaussian" else 1
        z_in = config.latent_dim + (config.embed_dim if n_classes else 0)
        if data.modality == "images":
            encoder_body: nn.Module = ConvEncoder(data.shape, config.hidden, width=config.channels)
            decoder_body: nn.Module = ConvDecoder(z_in, (outputs * data.shape[0], *data.shape[1:]),
                                                  width=config.channels)
        else:
            encoder_body = MLP(data.dim, config.hidden, hidden=config.hidden, depth=config.depth - 1)
            decoder_body = MLP(z_in, outputs * data.dim, hidden=config.hidden, depth=config.depth)
        fitted_prior = None
        if config.prior == "gmm":
            fitted_prior = FittedPrior(max(n_classes, 1), config.prior_components, config.latent_dim)
        return VAENetwork(encoder_body, decoder_body, features=config.hidden, latent_dim=config.latent_dim,
                          n_classes=n_classes, embed_dim=config.embed_dim, likelihood=likelihood,
                          min_std=config.min_std, fitted_prior=fitted_prior)

    @property
    def _conditional(self) -> bool:
        return hasattr(self.network_, "class_log_prior")

    def _fit_network(self, x: torch.Tensor, y: torch.Tensor | None, context: FitContext) -> None:
        labels = y if self._conditional else None
        if labels is not None:
            self.network_.class_log_prior.copy_(class_log_prior(labels, self.data_.class_names))
        if self.config.kl_warmup > 0:
            context = replace(context, callbacks=[*context.callbacks, _WarmupClock(self)])
        super()._fit_network(x, labels, context)
        if self.data_.modality != "tables" and self.network_.fitted_prior is not None:
            self._fit_prior(x, labels, seed=context.train.seed)

    def _fit_prior(self, x: torch.Tensor, labels: torch.Tensor | None, *, seed: int) -> None:
        """Fit the ex-post mixture to the posterior means of up to :data:`PRIOR_RECORDS` training records
        (a seeded subset; per class for a conditional model)."""
        rows = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:PRIOR_RECORDS]
        network, means = self.network_, []
        with torch.no_grad():
            for chunk in rows.split(1024):
                mu, _ = network.encode(x[chunk].to(self.device), None if labels is None else labels[chunk].to(self.device))
                means.append(mu.cpu())
        groups = None if labels is None else labels[rows].cpu().numpy()
        network.fitted_prior.fit(torch.cat(means).numpy(), groups, seed=seed)

    def _phases(self) -> list[Phase]:
        if self.data_.modality == "tables":
            return self._table_phases()
        config, conditional = self.config, self._conditional

        def negative_elbo(module: nn.Module, batch: Batch, generator: torch.Generator) -> Losses:
            # x: (B, *shape); eps: (B, L); loss = mean over records of -log p(x|z) + weight * KL (nats)
            eps = torch.randn(len(batch.x), config.latent_dim, generator=generator, device=generator.device)
            log_px, kl_dims = module(batch.x, batch.y if conditional else None, eps.to(batch.x))
            recon, kl_dims = -log_px.mean(), kl_dims.mean(0)              # (), (L,): batch means
            kl = kl_dims.sum()
            # Free bits: a dimension's KL below lambda costs lambda, so no gradient pushes it to the prior.
            penalised = kl_dims.clamp(min=config.free_bits).sum() if config.free_bits > 0 else kl
            weight = config.beta
            if config.kl_warmup > 0:                          # share p of the budget: beta min(1, p / warm-up)
                weight = config.beta * min(1.0, self._kl_progress / config.kl_warmup)
            return Losses(recon + weight * penalised,
                          {"recon": float(recon.detach()), "kl": float(kl.detach()), "kl_weight": weight,
                           "elbo": float(-(recon + kl).detach())})

        return [Phase("model", self.network_, negative_elbo)]

    def _labels(self, n: int, index: int | None, generator: torch.Generator | None, *,
                draw: bool) -> torch.Tensor | None:
        """Labels ``(n,)`` of a conditional model: the given class, a draw from the class prior, or an error."""
        if not self._conditional:
            return None
        if index is not None:
            return torch.full((n,), index, dtype=torch.long, device=self.device)
        if not draw:
            raise ConfigError("this VAE is class-conditional: pass condition= (a class index or name) among "
                              f"{', '.join(self.data_.class_names)}")
        device = generator.device if generator is not None else torch.device("cpu")
        prior = self.network_.class_log_prior.exp().to(device)
        return torch.multinomial(prior, n, replacement=True, generator=generator).to(self.device)

    def sampling_options(self) -> dict[str, SampleOption]:
        """The declared options, ``prior`` defaulting to the run's (``gmm`` where it fitted a mixture)."""
        options = super().sampling_options()
        if "prior" in options:
            options["prior"] = replace(options["prior"], default=self.config.prior)
        return options

    def _sample_network(self, n: int, condition: int | None, generator: torch.Generator | None,
                        mean: bool = False, temperature: float = 1.0, prior: str | None = None) -> torch.Tensor:
        """``z = tau * eps`` with ``eps ~ N(0, I)`` (``prior="standard"``) or ``z = m_yk + tau C_yk eps`` from the
        ex-post mixture (``prior="gmm"``, the default of a run that fitted one), then ``x ~ p(x|z)``
        (Gaussian), or ``E[x|z]`` with ``mean=True`` and for Bernoulli images (whose gray levels are the
        Bernoulli means).

        ``tau`` is the sampling option ``temperature`` (the reduced-temperature samples of Kingma & Dhariwal
        2018, Glow): 1 draws from the model; below 1 leaves out the prior's tails, trading diversity for
        fidelity, as the GAN's truncation. On MNIST (``benchmarks/mnist_families.py``) 0.9 raised the
        conditional VAE's conditional accuracy from 0.933 to 0.960 and cut its recall from 0.79 to 0.72."""
        if not isinstance(mean, bool):
            raise ConfigError(f"sampling option mean must be true or false, got {mean!r}")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
                or not math.isfinite(temperature) or temperature < 0:
            raise ConfigError("sampling option temperature must be a finite number >= 0 (1 = the model's own "
                              f"samples, smaller = less diverse), got {temperature!r}")
        if self.data_.modality == "tables":
            return self._sample_table(n, condition, generator, mean=mean, temperature=temperature)
        network = self.network_
        prior = self.config.prior if prior is None else prior
        if prior not in ("gmm", "standard"):
            raise ConfigError(f"sampling option prior must be 'gmm' or 'standard', got {prior!r}")
        if prior == "gmm" and (network.fitted_prior is None or not network.fitted_prior.is_fitted):
            raise ConfigError("prior='gmm' needs a VAE fitted with prior='gmm' (this run has no fitted mixture); "
                              "sample with prior='standard'")
        device = generator.device if generator is not None else torch.device("cpu")
        y = self._labels(n, condition, generator, draw=True)
        if prior == "gmm":
            groups = torch.zeros(n, dtype=torch.long, device=self.device) if y is None else y
            z = network.fitted_prior.sample(groups, generator, temperature)
        else:
            eps = torch.randn(n, self.config.latent_dim, generator=generator, device=device).to(self.device)
            z = temperature * eps
        params = network.decode(z, y)
        x = network.mean(params)
        if network.likelihood == "gaussian" and not mean:
            eps = torch.randn(x.shape, generator=generator, device=device).to(x)
            x = x + network.scale(params) * eps
        return x

    def latent_noise_scale(self, condition: Any, options: dict[str, Any]) -> float | None:
        """The prior temperature ``tau`` on points and images with ``mean=True`` and the ``N(0, I)`` prior,
        unlabelled or given a class: then ``x = E[x | tau eps]`` (latents from the ex-post mixture are not a
        scaled standard normal)."""
        if self.data_.modality not in ("points", "images") or (self.data_.class_names and condition is None):
            return None
        if options.get("prior", self.config.prior) != "standard":
            return None
        return float(options.get("temperature", 1.0)) if options.get("mean") is True else None

    def encode(self, x: np.ndarray, *, condition: int | str | None = None) -> np.ndarray:
        """Posterior means ``mu(x)`` of ``q(z|x)``.

        Args:
            x: raw records ``(n, *shape)``.
            condition: their class (required by a class-conditional model).

        Returns:
            float32 ``(n, latent_dim)``.
        """
        self._check_fitted()
        self._check_not_table("encode")
        index = self.condition_index(condition)
        z = self.codec_.encode(x).to(self.device)
        with torch.no_grad():
            mu, _ = self.network_.encode(z, self._labels(len(z), index, None, draw=False))
        return mu.cpu().numpy()

    def decode(self, z: np.ndarray, *, condition: int | str | None = None) -> np.ndarray:
        """Raw records ``E[x|z]`` (the decoder's mean) from latents.

        Args:
            z: float ``(n, latent_dim)``; the prior is ``N(0, I)``.
            condition: the class to draw (required by a class-conditional model).

        Returns:
            float32 ``(n, *shape)`` raw records.
        """
        self._check_fitted()
        self._check_not_table("decode")
        z = check_latents(z, self.latent_shape).to(self.device)
        index = self.condition_index(condition)
        with torch.no_grad():
            params = self.network_.decode(z, self._labels(len(z), index, None, draw=False))
            return self.codec_.decode(self.network_.mean(params))

    def log_prob(self, x: np.ndarray, *, condition: int | str | None = None, samples: int | None = None,
                 generator: torch.Generator | None = None) -> np.ndarray:
        """The IWAE lower bound on ``log p(x)`` (or ``log p(x | c)``), nats per raw record, float64 ``(n,)``.

        Args:
            x: raw records ``(n, *shape)``.
            condition: class of ``x`` for ``log p(x | c)``; ``None`` marginalises a conditional model over
                the class prior, ``log sum_c pi_c p(x | c)`` (each term bounded by IWAE).
            samples: importance samples ``k`` (default ``config.iwae_samples``); larger is tighter.
            generator: source of the importance draws; ``None`` uses a fixed seed (0), so repeated calls
                agree.
        """
        self._check_fitted()
        self._check_not_table("log_prob")
        k = self.config.iwae_samples if samples is None else samples
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"samples must be a positive integer, got {k!r}")
        index = self.condition_index(condition)
        z = self.codec_.encode(x).to(self.device)
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        with torch.no_grad():
            log_p = self._iwae(z, index, k, generator)
        return log_p.double().cpu().numpy() + self.codec_.log_abs_det_jacobian()

    def _iwae(self, x: torch.Tensor, index: int | None, k: int, generator: torch.Generator) -> torch.Tensor:
        """Chunked :func:`iwae_bound` of model-space ``x (n, *shape)``, marginalising classes when asked: ``(n,)``."""
        network, chunk = self.network_, max(1, 16384 // k)
        classes: list[int | None] = [index]
        if self._conditional and index is None:
            classes = list(range(len(network.class_log_prior)))
        per_class = []
        for c in classes:
            bounds = []
            for rows in x.split(chunk):
                y = None if c is None else torch.full((len(rows),), c, dtype=torch.long, device=x.device)
                bounds.append(iwae_bound(network, rows, y, k, generator))
            per_class.append(torch.cat(bounds))
        if len(classes) == 1:
            return per_class[0]
        return torch.logsumexp(torch.stack(per_class, 1) + network.class_log_prior, dim=1)
