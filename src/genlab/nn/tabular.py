"""Shared pieces of the VAE and GAN families on tables (TVAE and CTGAN, Xu et al. 2019).

The table codec's encoded row ``(width,)`` is a sequence of blocks (``codec.blocks``): ``"scalar"``
(one mode-normalised value ``alpha``) and one-hot blocks (``"modes"``, ``"categories"``, ``"missing"``).
A network outputs one raw value per encoded position; :class:`TableHeads` turns that into

- CTGAN's activations (sec. 4.3): ``tanh`` on scalars, a Gumbel-softmax (Jang et al. 2017) per one-hot
  block, differentiable, for a generator;
- TVAE's likelihood (sec. 4.4): ``N(alpha; mean, sigma^2)`` on scalars (``sigma`` a learned parameter per
  scalar) and a categorical (softmax cross-entropy) per one-hot block, summed per table column;
- draws from that likelihood, for sampling.

Conditioning by *columns shown* (as the diffusion family's table variant): a column unit is every block
of one table column; a condition is the encoded row of the conditioned values plus a mask of the units
it fixes (:meth:`TableHeads.known`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from genlab.errors import DataError

LOG_2PI = math.log(2.0 * math.pi)
ONE_HOT_KINDS = ("modes", "categories", "missing")


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    # float32 even under bf16 autocast: clamping at 1 - 1e-10 in bf16 rounds to 1 and log(-log 1) = -inf
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(shape, generator=generator, device=device).to(like.device)


class TableHeads:
    """The layout of a table codec's encoded row, with the per-block output maps of TVAE and CTGAN.

    Args:
        codec: a fitted table codec with ``categorical="onehot"`` (e.g. :class:`genlab.data.tables.TableCodec`;
            read through its ``width`` and ``blocks``, so blocks of layers take no codec type).

    Attributes:
        scalar: encoded positions of the ``scalar`` blocks, ``(S,)`` long.
        one_hot: ``(start, stop)`` of every one-hot block.
        columns: the modelled table columns (units), in row order.
        unit: ``(width,)`` long, the column unit of each encoded position.
        categories: ``(column, start, stop)`` of each ``"categories"`` block (discrete columns: CTGAN's
            conditional vector is built from these).
    """

    def __init__(self, codec: Any) -> None:
        self.width = codec.width
        scalar, one_hot, columns, unit, categories = [], [], [], [], []
        for block in codec.blocks:
            if block.column not in columns:
                columns.append(block.column)
            unit += [columns.index(block.column)] * block.width
            if block.kind == "scalar":
                scalar.append(block.start)
            elif block.kind in ONE_HOT_KINDS:
                one_hot.append((block.start, block.stop))
                if block.kind == "categories":
                    categories.append((block.column, block.start, block.stop))
            else:
                raise DataError(f"the VAE and GAN families on tables need mode scalars and one-hot blocks, "
                                f"got a {block.kind!r} block for column {block.column!r}")
        if self.width == 0:
            raise DataError("the table has no column to model (every column is an identifier)")
        self.scalar = torch.tensor(scalar, dtype=torch.long)
        self.one_hot = one_hot
        self.columns = columns
        self.unit = torch.tensor(unit, dtype=torch.long)
        self.categories = categories

    @property
    def n_scalars(self) -> int:
        """Number of scalar positions ``S``."""
        return len(self.scalar)

    @property
    def n_columns(self) -> int:
        """Number of column units ``C``."""
        return len(self.columns)

    # ------------------------------------------------------------------ generator heads (CTGAN)
    def activate(self, raw: torch.Tensor, generator: torch.Generator | None, tau: float) -> torch.Tensor:
        """CTGAN's output activations: ``raw (B, width)`` -> rows ``(B, width)``, tanh on scalars and a
        Gumbel-softmax of temperature ``tau`` on each one-hot block (noise from ``generator``)."""
        out = raw.clone()
        if self.n_scalars:
            out[:, self.scalar] = torch.tanh(raw[:, self.scalar])
        for start, stop in self.one_hot:
            logits = raw[:, start:stop]
            u = _uniform(tuple(logits.shape), generator, logits).clamp(1e-10, 1 - 1e-10)
            out[:, start:stop] = torch.softmax((logits - torch.log(-torch.log(u))) / tau, dim=1)
        return out

    # ------------------------------------------------------------------ likelihood (TVAE)
    def negative_log_likelihood(self, x: torch.Tensor, raw: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``-log p(x | z)`` per table column: ``x, raw (B, width)``, ``sigma (S,)`` -> ``(B, C)`` nats.

        Scalars: ``N(x; raw, sigma^2)``; one-hot blocks: ``-log softmax(raw)[x]``; a column's blocks add up.
        """
        B = len(x)
        per_column = x.new_zeros(B, self.n_columns)
        if self.n_scalars:
            mean, target = raw[:, self.scalar], x[:, self.scalar]                      # (B, S)
            nll = 0.5 * LOG_2PI + sigma.log() + 0.5 * ((target - mean) / sigma) ** 2
            per_column.index_add_(1, self.unit[self.scalar].to(x.device), nll)
        for start, stop in self.one_hot:
            nll = -(torch.log_softmax(raw[:, start:stop], dim=1) * x[:, start:stop]).sum(1)   # (B,)
            per_column[:, int(self.unit[start])] += nll
        return per_column

    def draw(self, raw: torch.Tensor, sigma: torch.Tensor, generator: torch.Generator | None, *,
             mean: bool) -> torch.Tensor:
        """Rows from the likelihood: ``raw (B, width)`` -> ``(B, width)``: ``raw + sigma eps`` on scalars and a
        one-hot category draw per block (``mean=True``: ``raw`` and the most probable category)."""
        out = torch.zeros_like(raw)
        if self.n_scalars:
            values = raw[:, self.scalar]
            if not mean:
                device = generator.device if generator is not None else torch.device("cpu")
                values = values + sigma * torch.randn(tuple(values.shape), generator=generator,
                                                      device=device).to(values)
            out[:, self.scalar] = values
        for start, stop in self.one_hot:
            logits = raw[:, start:stop]
            if mean:
                index = logits.argmax(1)
            else:   # Gumbel-max: argmax(logits + g) is a draw from softmax(logits)
                u = _uniform(tuple(logits.shape), generator, logits).clamp(1e-10, 1 - 1e-10)
                index = (logits - torch.log(-torch.log(u))).argmax(1)
            out[:, start:stop] = F.one_hot(index, stop - start).to(out)
        return out

    # ------------------------------------------------------------------ conditioning by columns shown
    def random_shown(self, n: int, rate: float, generator: torch.Generator | None) -> torch.Tensor:
        """Training masks ``(n, C)`` bool: in a share ``rate`` of the rows each column is shown with a
        probability drawn uniformly per row (the diffusion family's scheme); the other rows show none."""
        device = generator.device if generator is not None else torch.device("cpu")
        p = torch.rand((n, 1), generator=generator, device=device)
        shown = torch.rand((n, self.n_columns), generator=generator, device=device) < p
        return shown & (torch.rand((n, 1), generator=generator, device=device) < rate)

    def expand(self, shown: torch.Tensor) -> torch.Tensor:
        """Column masks ``(B, C)`` -> position masks ``(B, width)`` (same dtype)."""
        return shown[:, self.unit.to(shown.device)]

    def condition_input(self, x: torch.Tensor, shown: torch.Tensor) -> torch.Tensor:
        """The condition vector ``[x * shown, shown]``: ``x (B, width)``, ``shown (B, C)`` -> ``(B, width + C)``."""
        shown = shown.to(x.dtype)
        return torch.cat([x * self.expand(shown), shown], dim=1)

    def known(self, codec: Any, condition: dict[str, Any] | None) -> tuple[torch.Tensor, torch.Tensor]:
        """A parsed condition as an encoded row ``(width,)`` and its mask of shown columns ``(C,)`` bool.

        The row is the codec's own encoding of a one-row table with the conditioned values, so a condition
        is encoded exactly as training rows are.
        """
        shown = torch.zeros(self.n_columns, dtype=torch.bool)
        if not condition:
            return torch.zeros(self.width), shown
        for column in condition:
            shown[self.columns.index(column)] = True
        return torch.as_tensor(codec.encode_condition(condition)), shown
