"""TabDDPM: Gaussian diffusion of a table's numbers and multinomial diffusion of its one-hot blocks
(Kotelnikov et al. 2023; the maths in :mod:`genlab.models.diffusion.model`'s docstring), with exact
conditioning by showing the conditioned columns clean."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from genlab.data.tables import TableCodec
from genlab.errors import ConfigError, DataError
from genlab.models.base import DataInfo
from genlab.sampling import multinomial
from genlab.sampling.schedules import Sampler
from genlab.train import Batch, Losses


@dataclass(frozen=True)
class TableLayout:
    """Where the parts of a table's diffusion live in the codec's encoded row ``(width,)``.

    Attributes:
        numeric: encoded columns of the ``scalar`` blocks (normal scores), Gaussian-diffused.
        categorical: ``(start, stop)`` of each one-hot block (``categories``, ``missing``), multinomial-diffused.
        label: ``(start, stop)`` of the target's one-hot block when it is the class label, else ``None``.

    The network's row is ``[numbers (len(numeric)), one-hot blocks in order]``: :attr:`width` values.
    """

    numeric: tuple[int, ...]
    categorical: tuple[tuple[int, int], ...]
    label: tuple[int, int] | None

    @classmethod
    def from_codec(cls, codec: TableCodec, label_column: str | None) -> "TableLayout":
        """The layout of ``codec.blocks``; ``label_column``'s block (if any) becomes the label."""
        numeric, categorical, label = [], [], None
        for block in codec.blocks:
            if block.kind == "scalar":
                numeric.append(block.start)
            elif block.kind in ("categories", "missing") and block.column == label_column:
                label = (block.start, block.stop)
            elif block.kind in ("categories", "missing"):
                categorical.append((block.start, block.stop))
            else:
                raise DataError(f"diffusion on tables needs quantile scores and one-hot blocks, "
                                f"got a {block.kind!r} block for column {block.column!r}")
        return cls(tuple(numeric), tuple(categorical), label)

    @property
    def n_numeric(self) -> int:
        """Number of Gaussian-diffused scores."""
        return len(self.numeric)

    @property
    def width(self) -> int:
        """Width of the network's row: the scores then every one-hot block."""
        return self.n_numeric + sum(stop - start for start, stop in self.categorical)

    @property
    def n_classes(self) -> int:
        """Categories of the label block (0 without one)."""
        return 0 if self.label is None else self.label[1] - self.label[0]

    @property
    def unit_sizes(self) -> list[int]:
        """Widths of the network row's units: 1 per score, ``K`` per one-hot block."""
        return [1] * self.n_numeric + [stop - start for start, stop in self.categorical]

    def gather(self, z: torch.Tensor) -> torch.Tensor:
        """Encoded rows ``(B, codec width)`` -> the network's row ``(B, width)`` (scores, then one-hots)."""
        return torch.cat([z[:, list(self.numeric)], *(z[:, start:stop] for start, stop in self.categorical)], dim=1)

    def split_logits(self, output: torch.Tensor) -> list[torch.Tensor]:
        """The network's categorical outputs ``(B, width - n_numeric)`` -> one ``(B, K)`` per block."""
        sizes = [stop - start for start, stop in self.categorical]
        return list(output[:, self.n_numeric:].split(sizes, dim=1)) if sizes else []


class TabularDiffusion:
    """The diffusion model's table methods (a mixin of :class:`~genlab.models.diffusion.DiffusionModel`)."""

    def _make_table_codec(self, data: DataInfo) -> TableCodec:
        """TabDDPM's encoding: numbers through their empirical CDF to normal scores (quantile
        transform), categories and missing indicators one-hot."""
        if self._learned_variance():
            raise ConfigError("diffusion on tables has a fixed reverse variance; use variance='fixed_small' "
                              "or 'fixed_large', not 'learned'")
        return TableCodec(numeric="quantile", categorical="onehot")

    def _table_layout(self, data: DataInfo | None = None) -> TableLayout:
        """The layout of ``data``'s (default: the fitted data's) table; a categorical target is the class
        label when ``conditional``."""
        codec, target = self.codec_, (data or self.data_).target
        label = None
        if self.config.conditional and target is not None and target in codec.columns \
                and "categories" in codec.spec(target):
            label = target
        return TableLayout.from_codec(codec, label)

    def _table_loss(self, module: nn.Module, batch: Batch, generator: torch.Generator) -> Losses:
        """TabDDPM's objective on encoded rows ``batch.x (B, width)``: Gaussian MSE on the scores plus
        ``T`` times the mean multinomial ``L_t`` over one-hot blocks (module doc)."""
        # x: (B, width); t: (B,); numbers (B, N); each one-hot block (B, K)
        config, schedule, layout = self.config, self.schedule, self._table_layout()
        x, device = batch.x, batch.x.device
        t = torch.randint(config.timesteps, (len(x),), generator=generator, device=generator.device).to(device)
        alpha_bar = schedule.gather(schedule.alpha_bar, t, x)                 # (B, 1)
        alpha_bar_prev = schedule.gather(schedule.alpha_bar_prev, t, x)       # (B, 1)
        x0_num = x[:, list(layout.numeric)]
        eps = torch.randn(x0_num.shape, generator=generator, device=generator.device).to(device, x.dtype)
        x0_cat = [x[:, start:stop] for start, stop in layout.categorical]
        x_t_cat = [multinomial.sample_one_hot(multinomial.log_q_xt_given_x0(multinomial.one_hot_log(block),
                                                                              alpha_bar), generator)
                   for block in x0_cat]
        y = None
        if layout.label is not None:
            y = x[:, layout.label[0]:layout.label[1]].argmax(dim=1)
            y = self.network_.classes.drop(y, config.cond_dropout, generator)
        # Conditioning training: in a share mask_rate of the rows, each unit is shown clean with a
        # probability drawn per row; the loss counts only the units left to denoise.
        units = len(layout.unit_sizes)
        rate = torch.rand((len(x), 1), generator=generator, device=generator.device)
        shown = torch.rand((len(x), units), generator=generator, device=generator.device) < rate
        shown &= torch.rand((len(x), 1), generator=generator, device=generator.device) < config.mask_rate
        shown = shown.to(device)                                                # (B, units)
        mask = shown.repeat_interleave(torch.tensor(layout.unit_sizes, device=device), dim=1).to(x.dtype)
        x_t = torch.cat([schedule.add_noise(x0_num, eps, t), *x_t_cat], dim=1)
        x_in = torch.where(mask.bool(), layout.gather(x), x_t)
        output = module(torch.cat([x_in, mask], dim=1), t, y)
        hidden = (~shown).to(x.dtype)                                           # (B, units)
        zero = x.new_zeros(())
        mse = zero
        if layout.n_numeric:
            error = (output[:, :layout.n_numeric] - schedule.target(config.prediction, x0_num, eps, t)).pow(2)
            mse = (error * hidden[:, :layout.n_numeric]).mean()
        bound = zero
        for j, (block, x_t_block, logits) in enumerate(zip(x0_cat, x_t_cat, layout.split_logits(output))):
            # L_t = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)); at t = 0 it is -log p(x_0 | x_1).
            log_true = multinomial.log_posterior(multinomial.one_hot_log(block), x_t_block, alpha_bar, alpha_bar_prev)
            # .float(): CPU autocast keeps log_softmax in bf16, too coarse for log alpha_bar sums
            log_model = multinomial.log_posterior(torch.log_softmax(logits.float(), dim=1), x_t_block, alpha_bar,
                                                  alpha_bar_prev)
            bound = bound + (multinomial.kl(log_true, log_model) * hidden[:, layout.n_numeric + j]).mean()
        if layout.categorical:
            bound = config.timesteps * bound / len(layout.categorical)
        return Losses(mse + bound, {"mse": float(mse.detach()), "multinomial": float(bound.detach())})

    def _known(self, condition: dict[str, Any] | None) -> tuple[torch.Tensor, torch.Tensor]:
        """A parsed table condition as an encoded row ``(width,)`` and the mask ``(width,)`` of the encoded
        columns it fixes (every block of each conditioned column, e.g. a number and its ``present`` flag).

        The row is the codec's own encoding of a one-row table holding the conditioned values, so a
        condition is encoded exactly as training rows are.
        """
        codec = self.codec_
        mask = torch.zeros(codec.width, dtype=torch.bool)
        if not condition:
            return torch.zeros(codec.width), mask
        for block in codec.blocks:
            if block.column in condition:
                mask[block.start:block.stop] = True
        return torch.as_tensor(codec.encode_condition(condition)), mask

    def _sample_table(self, n: int, condition: dict[str, Any] | None, generator: torch.Generator | None, *,
                      sampler: str, eta: float, steps: int, chunk: int) -> torch.Tensor:
        """``n`` encoded rows ``(n, codec.width)`` from the joint reverse process, ``condition`` imposed."""
        layout, device, width = self._table_layout(), self.device, self.codec_.width
        known, mask = self._known(condition)
        known, mask = known.to(device), mask.to(device)
        rng_device = generator.device if generator is not None else torch.device("cpu")
        if layout.label is None:
            y = None
        elif mask[layout.label[0]]:
            y = torch.full((n,), int(known[layout.label[0]:layout.label[1]].argmax()), dtype=torch.long)
        else:   # the class label from its training shares (TabDDPM samples y first, then x | y)
            spec = self.codec_.spec(self.data_.target)
            # frequencies: categories, then missing (a slot of the block only when training had missing values)
            shares = torch.tensor(spec["frequencies"][:layout.n_classes], dtype=torch.float64)
            y = torch.multinomial(shares, n, replacement=True, generator=generator if rng_device.type == "cpu"
                                  else None)
        parts = []
        for start in range(0, n, chunk):   # each chunk runs the whole reverse process with a fresh solver
            solver = self._solver(sampler, eta)
            solver.set_timesteps(steps)
            rows = min(chunk, n - start)
            part_y = None if y is None else y[start:start + rows].to(device)
            x_num, x_cat = self._reverse_table(rows, part_y, known, mask, layout, solver, generator)
            z = torch.zeros(rows, width, device=device)
            z[:, list(layout.numeric)] = x_num
            for (first, stop), block in zip(layout.categorical, x_cat):
                z[:, first:stop] = block
            if part_y is not None:
                z[:, layout.label[0]:layout.label[1]] = nn.functional.one_hot(part_y, layout.n_classes).float()
            parts.append(torch.where(mask, known, z))   # the conditioned columns hold their values exactly
        return torch.cat(parts)

    def _reverse_table(self, n: int, y: torch.Tensor | None, known: torch.Tensor, mask: torch.Tensor,
                       layout: TableLayout, solver: Sampler, generator: torch.Generator | None
                       ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Reverse ``n`` rows from noise: scores ``(n, N)`` and one-hot blocks ``[(n, K), ...]``.

        The conditioned columns are shown clean at every step, flagged in the mask input, as in training
        (module doc), so the network denoises the others from ``p(rest | condition)``; their own outputs
        are ignored (the caller writes the values in).
        """
        device = known.device
        rng_device = generator.device if generator is not None else torch.device("cpu")
        shown = layout.gather(mask[None].to(known.dtype)).expand(n, -1)       # (n, width) mask input
        clean = layout.gather(known[None]).expand(n, -1)                      # (n, width) conditioned values
        x_num = torch.randn((n, layout.n_numeric), generator=generator, device=rng_device).to(device)
        x_cat = [multinomial.sample_one_hot(torch.zeros(n, stop - start, device=device), generator)
                 for start, stop in layout.categorical]
        for t in solver.timesteps.tolist():
            alpha_bar_t, alpha_bar_prev = solver.alpha_bars(t)
            x_in = torch.where(shown.bool(), clean, torch.cat([x_num, *x_cat], dim=1))
            t_batch = torch.full((n,), t, dtype=torch.long, device=device)
            output = self.network_(torch.cat([x_in, shown], dim=1), t_batch, y)
            x_num = solver.step(output[:, :layout.n_numeric], t, x_num, generator=generator)
            x_cat = [multinomial.sample_one_hot(multinomial.log_posterior(torch.log_softmax(logits, dim=1), x_t,
                                                                          alpha_bar_t, alpha_bar_prev), generator)
                     for x_t, logits in zip(x_cat, layout.split_logits(output))]
        return x_num, x_cat
