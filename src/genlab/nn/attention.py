"""Causal multi-head self-attention (Vaswani et al. 2017, "Attention is all you need", eq. 1) with a
key/value cache for incremental decoding.

The attention itself is :func:`torch.nn.functional.scaled_dot_product_attention`, which picks a fused
kernel (flash / memory-efficient / math) for the device. The cache is preallocated to the longest
sequence a generation will reach, so each decoding step writes one slot in place instead of
concatenating (and copying) every past key and value. With ``slot`` set, a step writes at a position
held in a tensor and attends over every slot (the caller's mask hides the unwritten ones): the shapes
never change, which is what a CUDA graph needs (:mod:`genlab.sampling.cuda_graphs`).

Block-aligned reads (``align``, :data:`DECODE_ALIGN`): a decoding step after the prompt reads its keys and
values in whole blocks of ``align`` slots, the slots past the sequence hidden by the mask, so it computes
the same thing whether it runs alone or as one row of a batch whose longest sequence reads more blocks
(:class:`SlotCache`, :mod:`genlab.sampling.row_exact`). Measured on torch 2.13's CPU kernel of
``scaled_dot_product_attention`` at one thread: a row's output is the same, bit for bit, whatever the
batch beside it and however many further masked blocks of 16 it reads, while an unpadded read of ``L``
keys differs from a padded one in its last bits for most ``L`` (the softmax and the value product reduce a
vector tail differently). With more threads the kernel splits the keys of a small batch (one or two rows
on two threads) among them, so a lone row's bits differ from its bits in a larger batch. The row-exact
probe checks all this on the machine at hand, not by trust.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: Slots per block of a decoding step's aligned read (module doc); 16 floats also suit the CUDA kernels.
DECODE_ALIGN = 16


def round_up(n: int, multiple: int) -> int:
    """The least multiple of ``multiple`` that is ``>= n``."""
    return -(-n // multiple) * multiple


@dataclass
class KVCache:
    """Keys and values of every layer for the positions seen so far.

    Attributes:
        keys: per layer ``(B, nh, S_max, hs)``, filled up to ``length``.
        values: per layer ``(B, nh, S_max, hs)``, filled up to ``length``.
        length: number of positions already written.
        slot: int64 ``(T,)`` positions that :meth:`update` writes, for static shapes; ``None`` writes
            after ``length`` and returns only the filled positions.
        align: ``> 1`` makes a step after the first (``length > 0``) read its keys in whole blocks of
            ``align`` slots (module doc; :meth:`read_length`); the caller masks the unwritten ones.
    """

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    length: int = 0
    slot: torch.Tensor | None = None
    align: int = 1

    @classmethod
    def empty(cls, n_layer: int, batch: int, n_head: int, max_length: int, head_size: int, *,
              device: torch.device, dtype: torch.dtype, align: int = 1) -> "KVCache":
        """A cache for ``batch`` sequences of at most ``max_length`` positions, in whole blocks of ``align``
        (zero-filled when ``align > 1``: a masked slot still meets its value, and 0 * NaN is NaN)."""
        shape = (batch, n_head, round_up(max_length, align), head_size)
        make = torch.zeros if align > 1 else torch.empty
        return cls([make(shape, device=device, dtype=dtype) for _ in range(n_layer)],
                   [make(shape, device=device, dtype=dtype) for _ in range(n_layer)], align=align)

    @property
    def capacity(self) -> int:
        """The most positions the cache holds."""
        return self.keys[0].shape[2]

    def read_length(self, steps: int) -> int:
        """How many slots :meth:`update` returns for ``steps`` new positions: ``length + steps``, rounded up
        to whole blocks of ``align`` once the cache holds a prompt."""
        end = self.length + steps
        return round_up(end, self.align) if self.length > 0 else end

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write ``k, v (B, nh, T, hs)`` after the cached positions; return ``(B, nh, read_length(T), hs)``.

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
        read = self.read_length(k.shape[2])
        return self.keys[layer][:, :, :read], self.values[layer][:, :, :read]

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


def read_mask(cache: KVCache, query_length: int, mask: torch.Tensor | None,
              device: torch.device | None = None) -> torch.Tensor | None:
    """The mask of a step that writes ``query_length`` positions into ``cache``: ``mask`` (or the causal mask,
    see :func:`attention_mask`) widened with ``False`` to the slots a block-aligned read returns
    (:meth:`KVCache.read_length`); ``mask`` itself when the read is not aligned.

    Returns:
        bool ``(B or 1, 1, T, read_length(T))``, or ``mask`` unchanged.
    """
    past = cache.length
    if cache.align == 1 or past == 0 or cache.slot is not None:
        return mask
    read = cache.read_length(query_length)
    if mask is None:   # causal: query past + i sees slots <= past + i, which leaves the unwritten ones out
        device = cache.keys[0].device if device is None else device
        rows = torch.arange(past, past + query_length, device=device)[:, None]      # (T, 1)
        return (torch.arange(read, device=device)[None, :] <= rows)[None, None]     # (1, 1, T, read)
    if mask.shape[-1] == read:
        return mask
    hidden = mask.new_zeros(*mask.shape[:-1], read - mask.shape[-1])                # (B, 1, T, unwritten)
    return torch.cat([mask, hidden], dim=-1)


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
            if mask is None or mask.shape[-1] != cache.read_length(T):
                mask = read_mask(cache, T, mask, device=x.device)   # GPT.forward makes it once for all layers
            k, v = cache.update(layer, k, v)                                     # (B, nh, S, hs), S >= past + T
        if mask is None and past > 0 and T > 1:
            mask = attention_mask(T, past, None, device=x.device)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
            is_causal=mask is None and T > 1,
        )                                                                        # (B, nh, T, hs)
        y = self.proj(y.transpose(1, 2).reshape(B, T, C))
        # F.dropout only when active: decoding is bound by per-call overhead, not arithmetic
        return F.dropout(y, self.dropout) if self.training and self.dropout else y


class SlotCache:
    """Keys and values of many sequences decoded together, one row (slot) each, in one buffer per layer.

    A sequence takes a free slot when it joins and gives it back when it ends; the buffers grow (doubling,
    rows copied) when every slot is taken, so memory follows the most sequences live at once. A decoding
    step reads the first ``R`` rows at once (``R`` = the highest slot in use + 1, as :meth:`acquire` hands
    out the lowest free slot) and each row's first whole blocks of ``align`` slots (:mod:`genlab.nn.attention`).

    Args:
        n_layer, n_head, head_size: of the network.
        max_length: the most positions a sequence holds (the context), rounded up to whole blocks.
        align: slots per block of a read.
        device, dtype: of the buffers.

    Attributes:
        keys, values: per layer ``(N, nh, S, hs)``, ``N`` rows, ``S = round_up(max_length, align)``.
    """

    def __init__(self, n_layer: int, n_head: int, max_length: int, head_size: int, *, device: torch.device,
                 dtype: torch.dtype, align: int = DECODE_ALIGN) -> None:
        self.n_layer, self.n_head, self.head_size, self.align = n_layer, n_head, head_size, align
        self.length = round_up(max_length, align)
        self.device, self.dtype = device, dtype
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self._free: list[int] = []
        self._grow(1)

    @property
    def rows(self) -> int:
        """``N``, slots allocated (free or taken)."""
        return self.keys[0].shape[0]

    def _grow(self, rows: int) -> None:
        # zeros, not empty: a masked slot still meets its value, and 0 * NaN is NaN
        shape = (rows, self.n_head, self.length, self.head_size)
        old = self.rows if self.keys else 0
        grown = [torch.zeros(shape, device=self.device, dtype=self.dtype) for _ in range(2 * self.n_layer)]
        for new, buffer in zip(grown, self.keys + self.values):
            new[:old] = buffer
        self.keys, self.values = grown[:self.n_layer], grown[self.n_layer:]
        self._free = sorted(set(self._free) | set(range(old, rows)))

    def acquire(self) -> int:
        """The lowest free slot (the buffers double when none is free)."""
        if not self._free:
            self._grow(2 * self.rows)
        return self._free.pop(0)

    def release(self, slot: int) -> None:
        """Give ``slot`` back. Its stale keys and values stay: a later sequence overwrites what it reads and
        masks the rest, which then weighs exactly 0 (finite values times ``exp(-inf) = 0``)."""
        self._free.append(slot)
        self._free.sort()

    def row(self, slot: int) -> KVCache:
        """An empty :class:`KVCache` over slot ``slot`` (views ``(1, nh, S, hs)``, block-aligned reads): a
        prompt is encoded through it exactly as into a lone sequence's own cache. Valid until the buffers
        grow (the next :meth:`acquire`)."""
        return KVCache([k[slot:slot + 1] for k in self.keys], [v[slot:slot + 1] for v in self.values],
                       align=self.align)
