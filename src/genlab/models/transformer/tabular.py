"""The transformer on tables: one token per column, order-agnostic training, exact conditioning by a prefix
(the maths in :mod:`genlab.models.transformer.model`'s docstring)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from genlab.data.table_tokens import TableTokenCodec
from genlab.models.base import DataInfo
from genlab.sampling.cuda_graphs import StaticDecodeStep
from genlab.sampling.decoding import GenerationConfig, choose, process_logits
from genlab.train import Batch, Losses


class TabularTransformer:
    """The transformer's table methods (a mixin of :class:`~genlab.models.transformer.TransformerModel`)."""

    def _make_table_codec(self, data: DataInfo) -> TableTokenCodec:
        """One token per column: categories, or a number's atom or quantile bin (module doc)."""
        return TableTokenCodec(self.config.bins)

    # ------------------------------------------------------------------ tables
    def _column_log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """``log p`` of every token within its own column's id range: logits ``(..., V)`` -> ``(..., V)``;
        ``bos`` gets ``-inf``. (A segment-wise log-softmax.)"""
        out = torch.full_like(logits, float("-inf"))
        for start, stop in self.codec_.ranges:
            out[..., start:stop] = logits[..., start:stop].log_softmax(-1)
        return out

    def _table_loss(self, module: nn.Module, batch: Batch, generator: torch.Generator) -> Losses:
        """Order-agnostic next-token likelihood (module doc): each row in a random column order, every
        prefix scored on every column it does not hold yet."""
        tokens = batch.x[:, 1:]                                                        # (B, C) column order
        B, C = tokens.shape
        device = tokens.device
        keys = torch.rand(B, C, generator=generator, device=generator.device).to(device)
        order = keys.argsort(dim=1)                                                    # (B, C) column at each step
        rank = order.argsort(dim=1)                                                    # (B, C) step of each column
        inputs = torch.cat([batch.x[:, :1], tokens.gather(1, order)[:, :-1]], dim=1)   # (B, C) bos + C-1 known
        positions = torch.zeros_like(inputs)                     # one position for all: a prefix is a set
        log_p = self._column_log_probs(module(inputs, positions=positions))            # (B, C, V)
        picked = log_p.gather(2, tokens[:, None, :].expand(B, C, C))                   # (B, step, column)
        unknown = (rank[:, None, :] >= torch.arange(C, device=device)[None, :, None]).to(picked.dtype)
        per_step = -(picked * unknown).sum(2) / unknown.sum(2)                         # (B, C) mean over unknown
        nll = per_step.mean()
        return Losses(nll, {"nll": float(nll.detach())})

    def _sample_table(self, n: int, condition: dict[str, Any] | None, config: GenerationConfig,
                      generator: torch.Generator | None) -> torch.Tensor:
        """``n`` rows of ``token + u`` ``(n, C)`` float64 (``u``: position inside a number's bin, see
        :class:`~genlab.data.table_tokens.TableTokenCodec`). Conditioned columns come first in the prompt
        (their token, and ``u`` that decodes to the exact value); the rest are drawn in the table's order,
        each from its own id range."""
        codec: TableTokenCodec = self.codec_
        C = codec.sequence_length
        known = codec.encode_values(condition or {})                  # {position 1..C: token + u}
        free = [j for j in range(1, C + 1) if j not in known]
        prompt = [codec.bos] + [int(math.floor(known[j])) for j in sorted(known)]
        out = torch.empty(n, C, dtype=torch.float64)
        for j, value in known.items():
            out[:, j - 1] = value
        if free:
            gen_device = generator.device if generator is not None else torch.device("cpu")
            u = torch.rand(n, len(free), generator=generator, device=gen_device, dtype=torch.float64).cpu()
            tokens = self._draw_tokens(n, prompt, [j - 1 for j in free], config, generator)  # (n, len(free))
            out[:, [j - 1 for j in free]] = tokens.double() + u
        return out

    @torch.inference_mode()
    def _draw_tokens(self, n: int, prompt: list[int], columns: list[int], config: GenerationConfig,
                     generator: torch.Generator | None) -> torch.Tensor:
        """Draw ``columns`` (0-based) one after another after ``prompt``, each restricted to its id range;
        int64 ``(n, len(columns))`` on the CPU."""
        network, device = self.network_, self.device
        step = StaticDecodeStep(network, n, len(prompt) + len(columns)) if config.cuda_graphs else None
        cache = step.cache if step is not None else network.new_cache(n, len(prompt) + len(columns))
        x = torch.tensor(prompt, device=device)[None].expand(n, -1)                    # (n, P)
        drawn = []
        for column in columns:
            if step is not None and x.shape[1] == 1:
                logits = step(x[:, 0], torch.zeros_like(x[:, 0]), None)                # (n, V)
            else:
                logits = network(x, cache=cache, positions=torch.zeros_like(x))[:, -1]  # (n, V)
            cache.advance(x.shape[1])
            start, stop = self.codec_.ranges[column]
            outside = torch.ones(logits.shape[-1], dtype=torch.bool, device=device)
            outside[start:stop] = False
            logits = process_logits(logits.masked_fill(outside, float("-inf")), None, config)
            token = choose(logits, config, generator)                                  # (n,)
            drawn.append(token.cpu())
            x = token[:, None]
        return torch.stack(drawn, dim=1)
