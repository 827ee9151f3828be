"""Causal multi-head self-attention (Vaswani et al. 2017, "Attention is all you need", eq. 1) with a
key/value cache for incremental decoding.

The attention itself is :func:`torch.nn.functional.scaled_dot_product_attention`, which picks a fused
kernel (flash / memory-efficient / math) for the device. The cache is preallocated to the longest
sequence a generation will reach, so each decoding step writes one slot in place instead of
concatenating (and copying) every past key and value. With ``slot`` set, a step writes at a position
held in a tensor and attends over every slot (the caller's mask hides the unwritten ones): the shapes
never change, which is what a CUDA graph needs (:mod:`genlab.sampling.cuda_graphs`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class KVCache:
    """Keys and values of every layer for the positions seen so far.

    Attributes:
        keys: per layer ``(B, nh, S_max, hs)``, filled up to ``length``.
        values: per layer ``(B, nh, S_max, hs)``, filled up to ``length``.
        length: number of positions already written.
        slot: int64 ``(T,)`` positions that :meth:`update` writes, for static shapes; ``None`` writes
            after ``length`` and returns only the filled positions.
    """

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    length: int = 0
    slot: torch.Tensor | None = None

    @classmethod
    def empty(cls, n_layer: int, batch: int, n_head: int, max_length: int, head_size: int, *,
              device: torch.device, dtype: torch.dtype) -> "KVCache":
        """A cache for ``batch`` sequences of at most ``max_length`` positions."""
        shape = (batch, n_head, max_length, head_size)
        return cls([torch.empty(shape, device=device, dtype=dtype) for _ in range(n_layer)],
                   [torch.empty(shape, device=device, dtype=dtype) for _ in range(n_layer)])

    @property
    def capacity(self) -> int:
        """The most positions the cache holds."""
        return self.keys[0].shape[2]

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write ``k, v (B, nh, T, hs)`` after the cached positions; return all ``(B, nh, length + T, hs)``.

        The layer's new positions become visible to later layers of the same step only; :meth:`advance`
        commits them once every layer has written. With ``slot`` set, ``k, v`` go to positions ``slot``
        and all ``S_max`` positions are returned (static shapes; the caller masks the unwritten ones).
        """
        if self.slot is not None:
            self.keys[layer].index_copy_(2, self.slot, k)
            self.values[layer].index_copy_(2, self.slot, v)
            return self.keys[layer], self.values[layer]
        end = self.length + k.shape[2]
        if end > self.capacity:
            raise ValueError(f"KV cache holds {self.capacity} positions; {end} were asked for")
        self.keys[layer][:, :, self.length:end] = k
        self.values[layer][:, :, self.length:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def advance(self, steps: int) -> None:
        """Commit ``steps`` positions written by every layer."""
        self.length += steps

    def reorder(self, index: torch.Tensor) -> None:
        """Keep the sequences ``index (B,)`` (beam search: each surviving beam's parent).

        In place, so the buffers keep their addresses (a captured CUDA graph reads them there)."""
        for buffer in self.keys + self.values:
            buffer.copy_(buffer.index_select(0, index))


def attention_mask(query_length: int, past: int, key_valid: torch.Tensor | None,
                   device: torch.device | None = None) -> torch.Tensor | None:
    """Boolean mask ``(B or 1, 1, T, past + T)``: ``True`` where a query may attend to a key.

    Query ``i`` (absolute position ``past + i``) sees keys ``j <= past + i`` that are not padding. A
    padded query always sees itself, so no row is empty (an empty row would give NaN that the next
    layer's values would carry into real positions). Returns ``None`` when plain causal masking
    (``is_causal``) is exact: no padding and no cached positions.

    Args:
        query_length: ``T``, new positions in this step.
        past: positions already in the cache.
        key_valid: bool ``(B, past + T)``, ``False`` at left padding; ``None`` when nothing is padded.
        device: where the mask goes when ``key_valid`` is ``None`` (else ``key_valid``'s device).
    """
    if key_valid is None and past == 0:
        return None
    device = key_valid.device if key_valid is not None else device
    rows = torch.arange(past, past + query_length, device=device)[:, None]    # (T, 1)
    cols = torch.arange(past + query_length, device=device)[None, :]          # (1, S)
    mask = (cols <= rows)[None, None]                                         # (1, 1, T, S)
    if key_valid is not None:
        mask = mask & (key_valid[:, None, None, :] | (cols == rows)[None, None])  # (B, 1, T, S)
    return mask


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position ``t`` attends to positions ``<= t``.

    Args:
        n_embd: model width ``C``.
        n_head: heads ``nh``; ``C`` must be divisible by it (head size ``hs = C / nh``).
        dropout: dropout on the attention weights and on the output projection.
        bias: whether the two projections have biases (GPT-2 does; nanoGPT's default does not).
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, *, bias: bool = True) -> None:
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd {n_embd} is not divisible by n_head {n_head}")
        self.n_head = n_head
        self.dropout = dropout
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=bias)     # queries, keys and values of every head at once
        self.proj = nn.Linear(n_embd, n_embd, bias=bias)

    def forward(self, x: torch.Tensor, *, cache: KVCache | None = None, layer: int = 0,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, T, C)`` -> ``(B, T, C)``.

        Args:
            x: the new positions.
            cache: past keys and values; this call writes its own into slot ``layer``.
            layer: this block's index in the cache.
            mask: from :func:`attention_mask`; ``None`` means plain causal attention over ``x``
                (after cached positions, when there are any, a single query needs no mask).
        """
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)          # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)          # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)          # (B, nh, T, hs)
        past = 0
        if cache is not None:
            past = cache.length
            k, v = cache.update(layer, k, v)                                     # (B, nh, past + T, hs)
        if mask is None and past > 0 and T > 1:
            mask = attention_mask(T, past, None, device=x.device)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
            is_causal=mask is None and T > 1,
        )                                                                        # (B, nh, T, hs)
        y = self.proj(y.transpose(1, 2).reshape(B, T, C))
        # F.dropout only when active: decoding is bound by per-call overhead, not arithmetic
        return F.dropout(y, self.dropout) if self.training and self.dropout else y
