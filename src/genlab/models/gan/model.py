"""Generative adversarial networks: a generator ``G(z)`` against a discriminator ``D(x)``.

The minimax game of Goodfellow et al. (2014, eq. 1),

    min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))],        z ~ N(0, I),

is trained in two Trainer phases per step: ``"discriminator"`` (``n_critic`` optimiser steps, each on
a fresh batch) then ``"generator"``. Writing ``d = D(x)`` for the discriminator's logit (a critic score
for WGAN-GP) and ``softplus(a) = log(1 + e^a)``, the losses are

- ``"ns"`` (non-saturating, Goodfellow 2014 sec. 3): ``L_D = softplus(-d_real) + softplus(d_fake)``,
  ``L_G = softplus(-d_fake)`` (i.e. ``-log D(G(z))``, which keeps its gradient when ``D`` wins);
- ``"hinge"`` (Lim & Ye 2017; Miyato et al. 2018 eq. 17): ``L_D = relu(1 - d_real) + relu(1 + d_fake)``,
  ``L_G = -d_fake``;
- ``"wgan-gp"`` (Gulrajani et al. 2017, Algorithm 1): ``L_D = d_fake - d_real + lambda (||grad D(x_hat)|| - 1)^2``
  with ``x_hat`` uniformly between a real and a fake record, ``L_G = -d_fake``.

Stabilisers, all config fields: spectral normalisation of every discriminator weight (Miyato et al.
2018, ``W / sigma(W)`` with one power iteration per step); the R1 penalty ``gamma/2 E||grad_x D(x)||^2``
on real data (Mescheder et al. 2018 eq. 9); ``n_critic`` discriminator steps per generator step; Adam
betas ``(0.5, 0.999)`` (Radford et al. 2016); and PacGAN packing (Lin et al. 2018): ``D`` judges ``m``
records at once, concatenated (coordinates for points, channels for images), all real or all fake,
which penalises a generator that repeats itself.

Conditional on class labels: ``G(z, y)`` takes a learned class embedding beside ``z``; ``D`` is a
projection discriminator (Miyato & Koyama 2018 eq. 3), ``D(x, y) = psi(phi(x)) + <E(y), phi(x)>``; with
packing, ``E(y)`` is summed over the ``m`` packed labels.

Latents: ``decode(z)`` is ``G(z)`` on latent vectors ``z (n, latent_dim)`` drawn from ``N(0, I)`` (see
:attr:`GANModel.latent_shape`), so latent paths and directions (``genlab.interpolate``) work on a GAN.
There is no encoder. The sampling option ``truncation`` (psi) shrinks latents towards their mean,
``z = psi * eps`` (the truncation trick; Karras et al. 2019 eq. 2, with a mean latent of 0): fidelity up,
diversity down.

Discriminator rejection sampling (Azadi et al. 2019; ``drs=True``): a continuous generator cannot map
``N(0, I)`` onto separated modes without a thin bridge of samples between them, and on grid25 that bridge
held a third of the samples after 20,000 steps. An unpacked *rejection critic*, trained beside the game
by logistic regression of data against ``G(z)`` and never back-propagated into ``G``, estimates
``log p_data(x) / p_g(x)``; ``sample`` then keeps each draw with a probability that rises with it
(:mod:`genlab.sampling.rejection`), which removes bridges and evens out the modes. ``rejection=False``
returns the generator's own draws; ``decode`` is always ``G(z)``.

Tables (CTGAN, Xu et al. 2019 sec. 4): ``G([z, cond])`` outputs ``tanh`` scalars and Gumbel-softmax one-hot
blocks (:class:`genlab.nn.tabular.TableHeads`); ``cond`` is the conditional vector of one discrete column's
category, drawn by training-by-sampling (:class:`TrainingBySampling`), the real rows hold that category,
``D`` judges ``pack`` rows ``[x, cond]`` at once, and ``G``'s loss adds the cross-entropy of the chosen
block against ``cond``. ``sample(n, condition=...)`` feeds the (rarest) conditioned category as ``cond``
and writes every conditioned value into the rows: all rows satisfy the condition, but only that one
category conditions the other columns natively (a numeric condition, or a second category, is written
in without the rest following it).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from genlab.defaults import DataDefaults
from genlab.errors import ConfigError, NotSupportedError
from genlab.models.base import DataInfo, FitContext, GenerativeModel, class_log_prior
from genlab.models.gan.augment import diff_augment
from genlab.models.gan.config import GANConfig
from genlab.models.gan.losses import critic_loss, pack
from genlab.models.gan.networks import Discriminator, GANNetwork, Generator
from genlab.models.gan.tabular import TabularGAN, TrainingBySampling
from genlab.models.latent_variations import LatentVariations
from genlab.models.options import SampleOption
from genlab.nn.conv import ConvDecoder, ConvEncoder
from genlab.nn.embeddings import FourierFeatures
from genlab.nn.mlp import MLP
from genlab.nn.tabular import TableHeads
from genlab.sampling.latent import check_latents
from genlab.sampling.rejection import discriminator_rejection
from genlab.train import Batch, Losses, Phase, TrainConfig


class GANModel(TabularGAN, LatentVariations, GenerativeModel):
    """The ``gan`` family: ``fit``, ``sample`` (options ``truncation``, ``rejection``), ``decode`` (``G(z)``),
    save/load.

    Example:
        >>> model = GANModel(pack=4, loss="hinge").fit(genlab.datasets.load("ring8"))
        >>> x = model.sample(2500, generator=torch.Generator().manual_seed(0))        # (2500, 2)
        >>> z = np.random.default_rng(0).standard_normal((8, *model.latent_shape))
        >>> model.decode(z)                                                           # (8, 2): G(z)
    """

    family = "gan"
    config_class = GANConfig
    sample_options = frozenset({"truncation", "rejection"})
    declared_options = {
        "truncation": SampleOption("number", "truncation psi: latents drawn from N(0, psi^2 I); 1 = no truncation",
                                   1.0, 0, 2),
        "rejection": SampleOption("boolean", "discriminator rejection sampling (null: where the run trained a critic)",
                                  None, nullable=True),
    }
    supports_tables = True
    conditions_tables_jointly = False   # CTGAN's vector carries one category; the rest are written in

    def default_train_config(self) -> TrainConfig:
        """Adam at 2e-4 (Radford et al. 2016), no clipping, cosine decay to 1% and no weight EMA.

        Measured on ring8/grid25 (benchmarks/gan_vae_points.py): the decaying learning rate is what lets
        the generator settle on sharp modes, while an EMA of the weights taken while they still drift
        (0.999 at lr >= 5e-4) averaged different generators into one that hit no mode. Set
        ``ema_decay`` for long image runs, where it usually helps (Yazici et al. 2019).
        """
        return TrainConfig(steps=5000, batch_size=256, lr=2e-4, min_lr_ratio=0.01, grad_clip=None,
                           ema_decay=None, optimizer="adam")

    @classmethod
    def data_defaults(cls, info: DataInfo, x: Any) -> DataDefaults:
        """Points: PacGAN4 with rejection sampling, narrow MLPs and a high learning rate decaying 400x
        (benchmarks/gan_vae_points.py: 8/8 and 25/25 modes, 98.7 / 99.2 % high quality in 110 CPU s; at
        the DCGAN settings the generator hit 1 mode of ring8 in 2 minutes). Images: DCGAN's network at
        batch 64, but five times its learning rate: on MNIST at 150 CPU s (benchmarks/defaults.py
        --techniques, docs/defaults.md) lr 2e-4 gave Fréchet 47, 5e-4 22, 1e-3 13 and 2e-3 10; hinge loss
        with spectral normalisation (61) and an EMA of the weights (416: the averaged weights meet
        batch-norm statistics of generators that no longer exist) did worse. 1e-3 rather than 2e-3: nearly
        as good, and half as far from the rates GANs are known to train stably at. Tables keep CTGAN's
        settings."""
        if info.modality == "points":
            return DataDefaults(
                model={"pack": 4, "latent_dim": 16, "hidden": 128, "depth": 3, "drs": True},
                train={"batch_size": 512, "lr": 2e-3, "min_lr_ratio": 0.005},
                why="PacGAN4 + rejection sampling, measured on ring8/grid25")
        if info.modality == "images":
            return DataDefaults(model={"channels": 32, "latent_dim": 64},
                                train={"batch_size": 64, "lr": 1e-3, "min_lr_ratio": 0.1},
                                why="DCGAN's network at 5x its learning rate, measured on MNIST")
        return DataDefaults()

    @property
    def latent_shape(self) -> tuple[int]:
        """Shape of one latent vector, ``(latent_dim,)``; latents are ``N(0, I)``."""
        return (self.config.latent_dim,)

    def _n_classes(self, data: DataInfo) -> int:
        return data.n_classes if self.config.conditional else 0

    def _build_network(self, data: DataInfo) -> GANNetwork:
        if data.modality == "tables":
            return self._build_table_network()
        config, n_classes = self.config, self._n_classes(data)
        g_in = config.latent_dim + (config.embed_dim if n_classes else 0)
        if data.modality == "images":
            packed_shape = (data.shape[0] * config.pack, *data.shape[1:])
            g_body: nn.Module = ConvDecoder(g_in, data.shape, width=config.channels)
            d_body: nn.Module = ConvEncoder(packed_shape, config.hidden, width=config.channels)
        else:
            g_body = MLP(g_in, data.dim, hidden=config.hidden, depth=config.depth, activation="relu")
            d_body = MLP(data.dim * config.pack, config.hidden, hidden=config.hidden, depth=config.depth - 1,
                         activation="leaky_relu")
        discriminator = Discriminator(d_body, config.hidden, n_classes)
        if config.spectral_norm:
            for module in discriminator.modules():
                if isinstance(module, (nn.Linear, nn.Conv2d, nn.Embedding)):
                    spectral_norm(module)
        generator = Generator(g_body, n_classes, config.embed_dim, bounded=data.modality == "images")
        return GANNetwork(generator, discriminator, n_classes, self._build_rejection_critic(data, n_classes))

    def _build_rejection_critic(self, data: DataInfo, n_classes: int) -> Discriminator | None:
        """The unpacked critic of :attr:`GANConfig.drs`: the discriminator's body for one record (Fourier
        features in front on points), without spectral normalisation (it estimates a density ratio, it
        does not shape the generator's gradients)."""
        config = self.config
        if not config.drs:
            return None
        if data.modality == "images":
            body: nn.Module = ConvEncoder(data.shape, config.hidden, width=config.channels)
        else:
            body = nn.Sequential(
                FourierFeatures(config.drs_fourier_features, config.drs_fourier_scale),
                MLP(data.dim * (1 + config.drs_fourier_features), config.hidden, hidden=config.hidden,
                    depth=config.depth - 1, activation="leaky_relu"))
        return Discriminator(body, config.hidden, n_classes)

    def _fit_network(self, x: torch.Tensor, y: torch.Tensor | None, context: FitContext) -> None:
        if context.train.batch_size < self.config.pack:
            raise ConfigError(f"batch_size {context.train.batch_size} is smaller than pack {self.config.pack}; "
                              "the discriminator needs at least one packed group")
        if self.config.diffaugment and self.data_.modality != "images":
            raise ConfigError(f"diffaugment translates and cuts out images; this is {self.data_.modality} data")
        if self.data_.modality == "tables":
            self._tables_train = TrainingBySampling(x, TableHeads(self.codec_))
        labels = y if hasattr(self.network_, "class_log_prior") else None
        if labels is not None:
            self.network_.class_log_prior.copy_(class_log_prior(labels, self.data_.class_names))
        super()._fit_network(x, labels, context)

    def _phases(self) -> list[Phase]:
        if self.data_.modality == "tables":
            return self._table_phases()
        config = self.config
        generator_net, discriminator = self.network_.generator, self.network_.discriminator
        conditional = hasattr(self.network_, "class_log_prior")
        augment = config.diffaugment

        def seen(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
            """What the discriminator sees of images ``(B, C, H, W)``: DiffAugment's view, or them."""
            return diff_augment(x, rng) if augment else x

        def fakes(g: nn.Module, batch: Batch, rng: torch.Generator) -> torch.Tensor:
            z = torch.randn(len(batch.x), config.latent_dim, generator=rng, device=rng.device)
            return g(z.to(batch.x.device), batch.y if conditional else None)

        def discriminator_loss(module: nn.Module, batch: Batch, rng: torch.Generator) -> Losses:
            # real, fake: (B, *shape) -> packed (B/m, m*...) ; scores (B/m,) each
            y = batch.y if conditional else None
            with torch.no_grad():
                fake = fakes(generator_net, batch, rng)
            real_p, y_p = pack(seen(batch.x, rng), y, config.pack)
            fake_p, _ = pack(seen(fake, rng), y, config.pack)
            return critic_loss(config, lambda x, labels=y_p: module(x, labels), real_p, fake_p,
                               pair_labels=None if y_p is None else torch.cat([y_p, y_p]), rng=rng)

        def generator_loss(module: nn.Module, batch: Batch, rng: torch.Generator) -> Losses:
            # fake: (B, *shape) -> packed scores (B/m,)
            y = batch.y if conditional else None
            fake_p, y_p = pack(seen(fakes(module, batch, rng), rng), y, config.pack)
            d_fake = discriminator(fake_p, y_p)
            loss = F.softplus(-d_fake).mean() if config.loss == "ns" else -d_fake.mean()
            return Losses(loss)

        phases = [
            Phase("discriminator", discriminator, discriminator_loss, repeats=config.n_critic, lr=config.lr_d,
                  betas=config.betas),
            Phase("generator", generator_net, generator_loss, lr=config.lr_g, betas=config.betas),
        ]
        if self.network_.rejection_critic is not None:
            def rejection_critic_loss(module: nn.Module, batch: Batch, rng: torch.Generator) -> Losses:
                # logistic regression of data (1) against G(z) (0), one record at a time: scores (2B,)
                y = batch.y if conditional else None
                with torch.no_grad():
                    fake = fakes(generator_net, batch, rng)
                labels = None if y is None else torch.cat([y, y])[:, None]
                d_real, d_fake = module(torch.cat([batch.x, fake]), labels).chunk(2)
                return Losses(F.softplus(-d_real).mean() + F.softplus(d_fake).mean())

            phases.append(Phase("rejection_critic", self.network_.rejection_critic, rejection_critic_loss,
                                lr=config.lr_d, betas=config.betas))
        return phases

    def _sample_network(self, n: int, condition: int | None, generator: torch.Generator | None,
                        truncation: float = 1.0, rejection: bool | None = None) -> torch.Tensor:
        psi = _check_truncation(truncation)
        if rejection is not None and not isinstance(rejection, bool):
            raise ConfigError(f"rejection must be True, False or None (rejection sampling when the model has a "
                              f"rejection critic), got {rejection!r}")
        if self.data_.modality == "tables":
            return self._sample_table(n, condition, generator, psi)
        critic = self.network_.rejection_critic
        if rejection and critic is None:
            raise ConfigError("rejection=True needs a GAN trained with drs=True (it has no rejection critic)")
        if critic is None or rejection is False:
            return self._propose(n, condition, generator, psi)
        batch = max(DRS_BATCH_VALUES // math.prod(self.data_.shape), 1)

        def propose(k: int) -> tuple[torch.Tensor, torch.Tensor]:
            x, y = self._propose(k, condition, generator, psi, with_labels=True)
            return x, critic(x, None if y is None else y[:, None])

        return discriminator_rejection(propose, n, batch=batch, quantile=DRS_QUANTILE, generator=generator)

    def _propose(self, n: int, condition: int | None, generator: torch.Generator | None, psi: float,
                 *, with_labels: bool = False) -> Any:
        """``G(psi z, y)`` for ``n`` latents, labels ``y`` drawn from the class prior or fixed at
        ``condition``: ``(n, *shape)``, or ``((n, *shape), y (n,) or None)`` with ``with_labels``."""
        device = generator.device if generator is not None else torch.device("cpu")
        z = psi * torch.randn(n, self.config.latent_dim, generator=generator, device=device)
        y = None
        if hasattr(self.network_, "class_log_prior"):
            if condition is None:
                prior = self.network_.class_log_prior.exp().to(device)
                y = torch.multinomial(prior, n, replacement=True, generator=generator)
            else:
                y = torch.full((n,), condition, dtype=torch.long)
        x = self._generate(z, y)
        return (x, None if y is None else y.to(x.device)) if with_labels else x

    def _generate(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """``G(z, y)`` in eval mode: ``z (n, latent_dim)``, ``y (n,)`` -> ``(n, *shape)``."""
        device = self.device
        g = self.network_.generator
        return g(z.to(device, torch.float32), None if y is None else y.to(device))

    def latent_noise_scale(self, condition: Any, options: dict[str, Any]) -> float | None:
        """``psi`` (the truncation) on points and images without rejection sampling, unlabelled or given a
        class: then ``x = G(psi z)``."""
        if self.data_.modality not in ("points", "images") or (self.data_.class_names and condition is None):
            return None
        has_critic = getattr(self.network_, "rejection_critic", None) is not None
        if has_critic and options.get("rejection") is not False:
            return None
        return float(options.get("truncation", 1.0))

    def encode(self, x: np.ndarray, *, condition: int | str | None = None) -> np.ndarray:
        """Not defined: a GAN learns no inverse of ``G``. Work with latents instead (:meth:`decode`)."""
        raise NotSupportedError("the gan family has no encoder; start from latents z ~ N(0, I) of shape "
                                f"{self.latent_shape} and map them with decode(z)")

    def decode(self, z: np.ndarray, *, condition: int | str | None = None) -> np.ndarray:
        """Raw records ``G(z)`` from latent vectors.

        Args:
            z: float ``(n, latent_dim)`` latents; the generator was trained on ``z ~ N(0, I)``.
            condition: the class to generate (required by a class-conditional model, ignored otherwise).

        Returns:
            float32 ``(n, *shape)`` raw records.
        """
        self._check_fitted()
        if self.data_.modality == "tables":
            raise NotSupportedError("the gan family on tables has no decode (its generator also takes the "
                                    "conditional vector); use sample(n, condition=...)")
        z = check_latents(z, self.latent_shape)
        index = self.condition_index(condition)
        y = None
        if hasattr(self.network_, "class_log_prior"):
            if index is None:
                raise ConfigError("this GAN is class-conditional: pass condition= (a class index or name) "
                                  f"among {', '.join(self.data_.class_names)}")
            y = torch.full((len(z),), index, dtype=torch.long)
        with torch.no_grad():
            return self.codec_.decode(self._generate(z, y))


def _check_truncation(psi: Any) -> float:
    if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not math.isfinite(psi) or psi < 0:
        raise ConfigError(f"truncation psi must be a finite number >= 0 (1 = none, smaller = less diverse), "
                          f"got {psi!r}")
    return float(psi)


#: Discriminator rejection sampling: proposals per round (values: records x record size), and the
#: quantile of the burn-in round's critic logits taken as the bound ``M`` (see sampling.rejection).
DRS_BATCH_VALUES = 2 ** 16


DRS_QUANTILE = 0.999
