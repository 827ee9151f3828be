"""A bidirectional transformer over caption word ids: the text side of text-to-image.

``tokens (B, L)`` int64 (a start token, then words, then the padding id ``pad_id``, 0 in
:mod:`genlab.data.captions`) ->
per-token features ``(B, L, D)`` for cross-attention and a pooled vector ``(B, D)`` (the mean over
non-pad tokens), which the UNet adds to its step embedding. Pre-norm encoder layers (token + learned
position embeddings, self-attention without a causal mask, then an MLP), as in the text encoder of
Imagen/Stable Diffusion at toy width; trained jointly with the denoiser.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class EncodedCaption:
    """What the UNet reads of a caption.

    Attributes:
        tokens: ``(B, L, D)`` per-token features.
        pooled: ``(B, D)`` mean of the non-pad token features.
        padding: ``(B, L)`` bool, ``True`` at pad positions (ignored by attention).
    """

    tokens: torch.Tensor
    pooled: torch.Tensor
    padding: torch.Tensor


class CaptionEncoder(nn.Module):
    """``tokens (B, L)`` -> :class:`EncodedCaption` of width ``width``.

    Args:
        vocab_size: token ids, special ones included.
        length: tokens per caption ``L``.
        width: feature width ``D`` (divisible by ``heads``).
        layers: encoder layers.
        heads: attention heads.
        pad_id: the token id that pads a caption (ignored by attention and pooling).
    """

    def __init__(self, vocab_size: int, length: int, *, width: int = 64, layers: int = 2, heads: int = 4,
                 pad_id: int = 0) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, width)
        self.position = nn.Parameter(torch.zeros(length, width))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)

    def forward(self, tokens: torch.Tensor) -> EncodedCaption:
        # tokens: (B, L) -> tokens (B, L, D), pooled (B, D), padding (B, L)
        padding = tokens == self.pad_id
        h = self.embed(tokens) + self.position[: tokens.shape[1]]
        h = self.norm(self.encoder(h, src_key_padding_mask=padding))
        keep = (~padding).unsqueeze(-1).to(h.dtype)                          # (B, L, 1)
        pooled = (h * keep).sum(1) / keep.sum(1)
        return EncodedCaption(h, pooled, padding)
