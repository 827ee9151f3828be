"""The captioner's network: a small convolutional image encoder whose feature map is the prefix a GPT decoder
reads before the caption's words (a prefix language model, as in SimVLM, Wang et al. 2022, and ClipCap,
Mokady et al. 2021, here trained from scratch).

    form:   luma Y (B, 1, H, W) --conv, conv/2, conv/2, pool--> (B, c, G, G)
    colour: image (B, C, H, W) --average pool to G/2 x G/2, 1x1 conv, SiLU, 1x1 conv, upsample x2--> (B, c, G, G)
    prefix = flatten(form + colour) (B, G*G, c) + p_img;   words (B, T) --wte + wpe--> (B, T, c)
    [prefix; words] --GPT blocks, prefix-LM mask--> ln_f, lm_head on the word positions --> logits (B, T, V)

The encoder splits form from colour, as JPEG keeps luma at full resolution and chroma coarser: shapes are read
from the luma ``Y = 0.299 R + 0.587 G + 0.114 B`` alone, at full resolution, and colour from the mean pixel of
each cell of a coarser grid (8 x 8 pixels at 32 x 32), pointwise, so a shape's features are the same in every
colour and the colour map is too coarse to outline a shape. A single RGB stack entangles them: fitted for 300 s
on ``shapes``, whose training split never renders six colour-shape pairs, it captioned a held-out pair right in
25 % of the one-object images (a red triangle called a star), against nearly all seen pairs; form from luma
with colour per 4 x 4 cell gave 34 %, and 85 % with caption noise, where colour per 8 x 8 cell gave 97 %: the
finer colour map still traced each shape's outline, in its colour (``benchmarks/captioning.py``;
docs/text_to_image.md).

Under the prefix-LM mask every image position sees every other, and each word sees the whole image and the
words before it, so ``logits[:, t]`` is ``p(w_{t+1} | image, w_<=t)``. The encoder keeps a stride of 4 before
pooling to ``G x G`` (8 x 8 for 32 x 32 images): each prefix position covers a 4-pixel square, finer than the
smallest ``shapes`` object (7 pixels), so shape and place survive into the prefix. A learned *null prefix* stands
for "no image": training shows it in place of some images, so the same network is also the unconditional
caption model ``p(w_{t+1} | w_<=t)`` that classifier-free guidance extrapolates away from
(:mod:`genlab.models.transformer.captioning`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genlab.models.transformer.gpt import GPT

#: Side ``G`` of the feature map the encoder pools to: ``G * G`` prefix positions.
PREFIX_GRID = 8


def _conv(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1),
                         nn.GroupNorm(math.gcd(8, c_out), c_out), nn.SiLU())


class CaptionNetwork(nn.Module):
    """Images ``(B, C, H, W)`` in ``[-1, 1]`` and caption tokens ``(B, T)`` -> next-word logits ``(B, T, V)``.

    Args:
        channels: image channels ``C``.
        vocab_size: ``V``, caption token ids ``0 .. V - 1``.
        length: the most caption tokens (the decoder's positions).
        n_layer, n_head, n_embd, dropout, bias: the decoder's sizes (:class:`TransformerConfig`); ``n_embd``
            is also the encoder's width.
    """

    def __init__(self, channels: int, vocab_size: int, length: int, n_layer: int, n_head: int, n_embd: int,
                 dropout: float = 0.0, *, bias: bool = True) -> None:
        super().__init__()
        half = max(n_embd // 2, 1)
        self.form = nn.Sequential(_conv(1, half, 1), _conv(half, n_embd, 2), _conv(n_embd, n_embd, 2),
                                  nn.AdaptiveAvgPool2d(PREFIX_GRID))
        self.colour = nn.Sequential(nn.AdaptiveAvgPool2d(PREFIX_GRID // 2), nn.Conv2d(channels, n_embd, 1), nn.SiLU(),
                                    nn.Conv2d(n_embd, n_embd, 1), nn.Upsample(scale_factor=2))
        luma = torch.tensor([0.299, 0.587, 0.114]) if channels == 3 else torch.full((channels,), 1 / channels)
        self.register_buffer("luma", luma.view(1, channels, 1, 1), persistent=False)
        self.image_position = nn.Parameter(torch.randn(PREFIX_GRID * PREFIX_GRID, n_embd) * 0.02)
        self.null_prefix = nn.Parameter(torch.zeros(PREFIX_GRID * PREFIX_GRID, n_embd))
        self.decoder = GPT(vocab_size, length, n_layer, n_head, n_embd, dropout, bias=bias)

    @property
    def length(self) -> int:
        """The most caption tokens the decoder reads."""
        return self.decoder.block_size

    def prefix(self, images: torch.Tensor) -> torch.Tensor:
        """The image prefix ``(B, G * G, c)`` of images ``(B, C, H, W)``; compute it once per image and pass
        it to :meth:`forward` at every decoding step."""
        luma = (images * self.luma).sum(1, keepdim=True)                     # (B, 1, H, W)
        features = self.form(luma) + self.colour(images)                     # (B, c, G, G)
        return features.flatten(2).transpose(1, 2) + self.image_position      # (B, G*G, c)

    def null(self, batch: int) -> torch.Tensor:
        """The null prefix ``(batch, G * G, c)``: no image."""
        return self.null_prefix.expand(batch, -1, -1)

    def forward(self, images: torch.Tensor | None, tokens: torch.Tensor, *,
                prefix: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, T, V)`` of the word after each of ``tokens (B, T)``, given ``images`` or their
        :meth:`prefix`."""
        prefix = self.prefix(images) if prefix is None else prefix
        P, T = prefix.shape[1], tokens.shape[1]
        decoder = self.decoder
        words = decoder.wte(tokens) + decoder.wpe(torch.arange(T, device=tokens.device))[None]
        x = torch.cat([prefix, words], dim=1)                                # (B, P + T, c)
        if self.training and decoder.dropout:
            x = nn.functional.dropout(x, decoder.dropout)
        allowed = torch.ones(P + T, P + T, dtype=torch.bool, device=x.device).tril()
        allowed[:, :P] = True                                                # every position sees the whole image
        for layer, block in enumerate(decoder.h):
            x = block(x, cache=None, layer=layer, mask=allowed[None, None])
        return decoder.lm_head(decoder.ln_f(x[:, P:]))                      # (B, T, V)
