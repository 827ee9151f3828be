"""CTGAN (Xu et al. 2019): the GAN on tables, with its conditional vector and training-by-sampling."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from genlab.errors import ConfigError
from genlab.models.gan.losses import critic_loss, pack
from genlab.models.gan.networks import Discriminator, GANNetwork, Generator
from genlab.nn.mlp import MLP
from genlab.nn.tabular import TableHeads
from genlab.train import Batch, Losses, Phase


#: Temperature of the generator's Gumbel-softmax on one-hot blocks (CTGAN's ``tau = 0.2``).
TABLE_TAU = 0.2


class TrainingBySampling:
    """CTGAN's conditional vector and training-by-sampling (Xu et al. 2019, sec. 4.3).

    Discrete columns are the codec's ``"categories"`` blocks; the conditional vector ``(B, K)`` is the
    concatenation of their one-hots with exactly one 1 (one column, one category). For training a pair
    (column ``j``, category ``k``) is drawn with ``P = 1/J * log(1 + count_jk) / sum_k' log(1 + count_jk')``
    (a column uniformly, a category by its log-frequency), then a real row holding that category.

    Args:
        x: encoded training rows ``(N, W)``.
        heads: the codec's :class:`~genlab.nn.tabular.TableHeads`.
    """

    def __init__(self, x: torch.Tensor, heads: TableHeads) -> None:
        self.x = x
        offsets, log_p, rows, starts, counts, positions = [], [], [], [], [], []
        offset, total = 0, 0
        for _, start, stop in heads.categories:
            index = x[:, start:stop].argmax(1)                                    # (N,)
            count = torch.bincount(index, minlength=stop - start)                 # (K_j,)
            weight = torch.log1p(count.double())
            log_p.append((weight / weight.sum() / len(heads.categories)).log())
            for k in range(stop - start):
                members = (index == k).nonzero().squeeze(1)
                rows.append(members)
                starts.append(total)
                counts.append(len(members))
                total += len(members)
                offsets.append(offset + k)
                positions.append(start + k)
            offset += stop - start
        self.log_p = torch.cat(log_p) if log_p else torch.zeros(0, dtype=torch.float64)   # (P,)
        self.rows = torch.cat(rows) if rows else torch.zeros(0, dtype=torch.long)
        self.starts = torch.tensor(starts, dtype=torch.long)
        self.counts = torch.tensor(counts, dtype=torch.long)
        self.offsets = torch.tensor(offsets, dtype=torch.long)
        self.width = offset

    def draw(self, n: int, generator: torch.Generator, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` conditional vectors ``(n, K)`` and real rows ``(n, W)`` that satisfy them (uniform real rows
        and an empty vector when the table has no discrete column)."""
        rng_device = generator.device
        if self.width == 0:
            index = torch.randint(len(self.x), (n,), generator=generator, device=rng_device).cpu()
            return torch.zeros(n, 0, device=device), self.x[index].to(device)
        pair = torch.multinomial(self.log_p.exp().to(rng_device), n, replacement=True, generator=generator).cpu()
        u = torch.rand(n, generator=generator, device=rng_device).cpu()
        pick = self.starts[pair] + (u * self.counts[pair]).long()
        real = self.x[self.rows[pick]]
        cond = torch.zeros(n, self.width)
        cond[torch.arange(n), self.offsets[pair]] = 1.0
        return cond.to(device), real.to(device)


class TabularGAN:
    """The GAN's table methods (a mixin of :class:`~genlab.models.gan.GANModel`)."""

    # ------------------------------------------------------------------ tables (CTGAN)
    def _build_table_network(self) -> GANNetwork:
        """CTGAN's networks: ``G([z, cond]) -> raw (B, W)`` (activated by :meth:`TableHeads.activate`) and a
        packed ``D([x, cond] * pack)``."""
        config, heads = self.config, TableHeads(self.codec_)
        if config.drs:
            raise ConfigError("drs (discriminator rejection sampling) is for points and images; "
                              "the gan family on tables conditions with CTGAN's vector instead")
        k = sum(stop - start for _, start, stop in heads.categories)
        g_body = MLP(config.latent_dim + k, heads.width, hidden=config.hidden, depth=config.depth, activation="relu")
        d_body = MLP((heads.width + k) * config.pack, config.hidden, hidden=config.hidden, depth=config.depth - 1,
                     activation="leaky_relu")
        discriminator = Discriminator(d_body, config.hidden, 0)
        if config.spectral_norm:
            for module in discriminator.modules():
                if isinstance(module, nn.Linear):
                    spectral_norm(module)
        return GANNetwork(Generator(g_body, 0, config.embed_dim, bounded=False), discriminator, 0)

    def _table_phases(self) -> list[Phase]:
        config, heads, tbs = self.config, TableHeads(self.codec_), self._tables_train
        generator_net, discriminator = self.network_.generator, self.network_.discriminator

        def fakes(g: nn.Module, cond: torch.Tensor, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
            # cond: (B, K) -> raw (B, W), activated rows (B, W)
            z = torch.randn(len(cond), config.latent_dim, generator=rng, device=rng.device).to(cond)
            raw = g(torch.cat([z, cond], dim=1))
            return raw, heads.activate(raw, rng, TABLE_TAU)

        def discriminator_loss(module: nn.Module, batch: Batch, rng: torch.Generator) -> Losses:
            # training-by-sampling: cond (B, K), real rows holding the cond's category (B, W); packed (B/m, m(W+K))
            cond, real = tbs.draw(len(batch.x), rng, batch.x.device)
            with torch.no_grad():
                _, fake = fakes(generator_net, cond, rng)
            real_p, _ = pack(torch.cat([real, cond], dim=1), None, config.pack)
            fake_p, _ = pack(torch.cat([fake, cond], dim=1), None, config.pack)
            return critic_loss(config, module, real_p, fake_p, pair_labels=None, rng=rng)

        def generator_loss(module: nn.Module, batch: Batch, rng: torch.Generator) -> Losses:
            # adversarial term + CTGAN's cross-entropy of the conditioned block against the cond's category
            cond, _ = tbs.draw(len(batch.x), rng, batch.x.device)
            raw, fake = fakes(module, cond, rng)
            fake_p, _ = pack(torch.cat([fake, cond], dim=1), None, config.pack)
            d_fake = discriminator(fake_p)
            adversarial = F.softplus(-d_fake).mean() if config.loss == "ns" else -d_fake.mean()
            ce = raw.new_zeros(())
            offset = 0
            for _, start, stop in heads.categories:   # cond is zero outside the chosen column's block
                target = cond[:, offset:offset + stop - start]
                ce = ce - (torch.log_softmax(raw[:, start:stop], dim=1) * target).sum(1).mean()
                offset += stop - start
            return Losses(adversarial + ce, {"adversarial": float(adversarial.detach()), "cond_ce": float(ce.detach())})

        return [
            Phase("discriminator", discriminator, discriminator_loss, repeats=config.n_critic, lr=config.lr_d,
                  betas=config.betas),
            Phase("generator", generator_net, generator_loss, lr=config.lr_g, betas=config.betas),
        ]

    def _table_cond(self, n: int, condition: dict[str, Any] | None, heads: TableHeads,
                    generator: torch.Generator | None) -> torch.Tensor:
        """Conditional vectors ``(n, K)`` for sampling.

        Conditioned discrete columns: the one whose requested category is rarest in training (the
        generator saw one active column at a time). Otherwise CTGAN's unconditional draw: a discrete
        column uniformly, a category by its training share (not log-share), so the marginals are the data's.
        """
        k = sum(stop - start for _, start, stop in heads.categories)
        cond = torch.zeros(n, k)
        if k == 0:
            return cond
        offsets, shares, offset = [], [], 0
        for column, start, stop in heads.categories:
            offsets.append(offset)
            shares.append(self.codec_.spec(column)["frequencies"][:stop - start])
            offset += stop - start
        names = [column for column, _, _ in heads.categories]
        chosen = [(shares[j][self.codec_.spec(column)["categories"].index(condition[column])], j)
                  for j, column in enumerate(names) if condition and column in condition]
        if chosen:
            _, j = min(chosen)
            category = self.codec_.spec(names[j])["categories"].index(condition[names[j]])
            cond[:, offsets[j] + category] = 1.0
            return cond
        probs = torch.cat([torch.tensor(share, dtype=torch.float64) / len(names) for share in shares])   # (P,)
        rng_device = generator.device if generator is not None else torch.device("cpu")
        pick = torch.multinomial(probs.to(rng_device), n, replacement=True, generator=generator).cpu()
        cond[torch.arange(n), pick] = 1.0
        return cond

    def _sample_table(self, n: int, condition: dict[str, Any] | None, generator: torch.Generator | None,
                      psi: float) -> torch.Tensor:
        """Encoded rows ``(n, W)``: ``G([psi z, cond])`` activated (a category draw per one-hot block), with the
        conditioned columns' values written in, so every row satisfies ``condition``."""
        heads, device = TableHeads(self.codec_), self.device
        cond = self._table_cond(n, condition, heads, generator).to(device)
        rng_device = generator.device if generator is not None else torch.device("cpu")
        z = psi * torch.randn(n, self.config.latent_dim, generator=generator, device=rng_device)
        raw = self.network_.generator(torch.cat([z.to(device), cond], dim=1))
        rows = heads.activate(raw, generator, TABLE_TAU)   # decoding's argmax of a Gumbel-softmax: a category draw
        known, shown = heads.known(self.codec_, condition)
        return torch.where(heads.expand(shown[None]).to(device), known.to(device), rows)
