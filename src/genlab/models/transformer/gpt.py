"""GPT-2's network (Radford et al. 2019) with a key/value cache, and its next-token loss."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genlab.nn.attention import CausalSelfAttention, KVCache, read_mask


class MLP(nn.Module):
    """``C -> 4C -> C`` with GPT-2's tanh-approximated GELU (Hendrycks & Gimpel 2016)."""

    def __init__(self, n_embd: int, dropout: float, *, bias: bool = True) -> None:
        super().__init__()
        self.fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, T, C) -> (B, T, C)
        y = self.proj(F.gelu(self.fc(x), approximate="tanh"))
        return F.dropout(y, self.dropout) if self.training and self.dropout else y


class Block(nn.Module):
    """Pre-LayerNorm residual block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    def __init__(self, n_embd: int, n_head: int, dropout: float, *, bias: bool = True) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias=bias)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = MLP(n_embd, dropout, bias=bias)

    def forward(self, x: torch.Tensor, *, cache: KVCache | None, layer: int, mask: torch.Tensor | None) -> torch.Tensor:
        # x: (B, T, C) -> (B, T, C)
        x = x + self.attn(self.ln_1(x), cache=cache, layer=layer, mask=mask)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """The decoder-only network: token ids ``(B, T)`` -> next-token logits ``(B, T, V)``.

    Args:
        vocab_size: ``V``, token ids ``0 .. V - 1``.
        block_size: the most positions it can see.
        n_layer, n_head, n_embd, dropout, bias: see :class:`TransformerConfig`.
    """

    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int,
                 dropout: float = 0.0, *, bias: bool = True) -> None:
        super().__init__()
        self.block_size, self.n_head = block_size, n_head
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.dropout = dropout
        self.h = nn.ModuleList(Block(n_embd, n_head, dropout, bias=bias) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, bias=bias)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight       # tied input and output embeddings (Press & Wolf 2017)
        self.apply(self._init_weights)
        for name, parameter in self.named_parameters():
            if name.endswith("proj.weight"):
                # GPT-2 scales the residual projections by 1/sqrt(2 n_layer) (Radford et al. 2019, §2.3)
                nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def new_cache(self, batch: int, length: int, *, align: int = 1) -> KVCache:
        """An empty key/value cache for ``batch`` sequences of at most ``length`` positions; ``align > 1``
        makes each step after the prompt read whole blocks of ``align`` slots (see
        :data:`genlab.nn.attention.DECODE_ALIGN`: what decoding uses, so that a sequence decoded alone and
        one decoded in a batch compute the same bits)."""
        weight = self.wte.weight
        n_embd = weight.shape[1]
        return KVCache.empty(len(self.h), batch, self.n_head, length, n_embd // self.n_head,
                             device=weight.device, dtype=weight.dtype, align=align)

    def forward(self, idx: torch.Tensor, *, cache: KVCache | None = None, positions: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, T, V)`` of the token after each of ``idx (B, T)``.

        Args:
            idx: int64 token ids.
            cache: past keys/values; the caller advances it after the call.
            positions: int64 ``(B, T)`` position of each token (left padding shifts them); ``None``
                means ``past .. past + T - 1``.
            mask: bool attention mask ``(B, 1, T, past + T)`` (see :func:`genlab.nn.attention.attention_mask`);
                widened here to a block-aligned cache read (:func:`genlab.nn.attention.read_mask`).
        """
        B, T = idx.shape
        past = 0 if cache is None else cache.length
        if cache is not None:
            mask = read_mask(cache, T, mask, device=idx.device)                      # once for every layer
        if positions is None:
            positions = torch.arange(past, past + T, device=idx.device)[None]         # (1, T)
        x = self.wte(idx) + self.wpe(positions)                                       # (B, T, C)
        if self.training and self.dropout:
            x = F.dropout(x, self.dropout)
        for layer, block in enumerate(self.h):
            x = block(x, cache=cache, layer=layer, mask=mask)
        return self.lm_head(self.ln_f(x))                                             # (B, T, V)


def next_token_loss(module: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of every next token, in nats: ``tokens (B, L)`` gives ``L - 1`` targets per row."""
    logits = module(tokens[:, :-1])                                                   # (B, L-1, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
