"""The UNet of :mod:`genlab.nn.unet` with cross-attention from image features to caption tokens.

``x (B, C, H, W)``, ``t (B,)``, caption ``tokens (B, L)`` -> ``(B, out_channels, H, W)``. The caption goes
through a :class:`~genlab.nn.caption_encoder.CaptionEncoder`; its pooled vector joins the step embedding
of every residual block, and after every residual block a cross-attention layer (Rombach et al. 2022,
"High-Resolution Image Synthesis with Latent Diffusion Models", sec. 3.3) lets each pixel read the
caption tokens:

    h <- h + W_o softmax((GN(h) W_q) (c W_k)^T / sqrt(d)) (c W_v),    c = the caption's token features,

with pad tokens masked out. In the coarsest ``self_attention_levels`` resolutions (and the middle) a
self-attention layer follows each cross-attention, ``h <- h + W_o softmax(q k^T / sqrt(d)) v`` over the
pixels of ``GN(h)``, so that what is drawn in one place can depend on what is drawn elsewhere (how many
objects there are, which one is left of the other) in one layer, where 3x3 convolutions need a stack of
them. This is the self-attention of Stable Diffusion's transformer blocks, kept to the small feature maps
where it is cheap (64 pixels at 8x8). On ``shapes`` at equal time it did not pay (docs/text_to_image.md),
so it is off by default. Two coordinate channels (``x`` and ``y`` in ``[-1, 1]``, CoordConv, Liu et al.
2018) join the input, so that words such as "top left" can bind to places without the network having to
infer position from the zero padding of its convolutions. The residual blocks, patching and skip layout
are :class:`~genlab.nn.unet.UNet`'s (its :class:`~genlab.nn.unet.ResBlock` is reused).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from genlab.nn.caption_encoder import CaptionEncoder, EncodedCaption
from genlab.nn.embeddings import TimeEmbedding
from genlab.nn.unet import ResBlock, _norm


class CrossAttention(nn.Module):
    """``h (B, C, H, W)`` attends to caption tokens ``(B, L, D)``; returns ``h`` plus the attended values.

    The output projection starts at zero, so a new layer begins as the identity.
    """

    def __init__(self, channels: int, context_dim: int, heads: int) -> None:
        super().__init__()
        self.norm = _norm(channels)
        self.attention = nn.MultiheadAttention(channels, heads, kdim=context_dim, vdim=context_dim, batch_first=True)
        nn.init.zeros_(self.attention.out_proj.weight)
        nn.init.zeros_(self.attention.out_proj.bias)

    def forward(self, h: torch.Tensor, caption: EncodedCaption) -> torch.Tensor:
        # h: (B, C, H, W); caption.tokens: (B, L, D) -> (B, C, H, W)
        b, c, height, width = h.shape
        query = self.norm(h).flatten(2).transpose(1, 2)                      # (B, HW, C)
        attended, _ = self.attention(query, caption.tokens, caption.tokens, key_padding_mask=caption.padding,
                                     need_weights=False)
        return h + attended.transpose(1, 2).reshape(b, c, height, width)


class SelfAttention(nn.Module):
    """``h (B, C, H, W)`` attends to its own pixels; returns ``h`` plus the attended values.

    The output projection starts at zero, so a new layer begins as the identity.
    """

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.norm = _norm(channels)
        self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)
        nn.init.zeros_(self.attention.out_proj.weight)
        nn.init.zeros_(self.attention.out_proj.bias)

    def forward(self, h: torch.Tensor, caption: EncodedCaption) -> torch.Tensor:
        # h: (B, C, H, W) -> (B, C, H, W); the caption is not read (the signature is a stage layer's)
        b, c, height, width = h.shape
        pixels = self.norm(h).flatten(2).transpose(1, 2)                     # (B, HW, C)
        attended, _ = self.attention(pixels, pixels, pixels, need_weights=False)
        return h + attended.transpose(1, 2).reshape(b, c, height, width)


class CrossAttentionUNet(nn.Module):
    """Caption-conditioned denoising UNet.

    Args:
        in_channels: image channels ``C``.
        out_channels: output channels (``C``, or ``2 C`` for a learned variance).
        vocab_size, length: caption token ids and tokens per caption.
        channels: width at each resolution, full to coarsest; each must be divisible by ``heads``.
        blocks: residual blocks per resolution on the way down (one more on the way up).
        patch: pixel blocks folded into channels (see :class:`~genlab.nn.unet.UNet`).
        caption_width, caption_layers: width and depth of the caption encoder.
        heads: attention heads of the caption encoder and of every attention layer.
        self_attention_levels: coarsest resolutions (and the middle, when > 0) whose stages also
            self-attend; 0 = none.
    """

    def __init__(self, in_channels: int, out_channels: int, *, vocab_size: int, length: int,
                 channels: tuple[int, ...] = (32, 64), blocks: int = 1, patch: int = 1, caption_width: int = 64,
                 caption_layers: int = 2, heads: int = 4, self_attention_levels: int = 0) -> None:
        super().__init__()
        self.patch = patch
        in_channels, out_channels = in_channels * patch ** 2, out_channels * patch ** 2
        emb_dim = 4 * channels[0]
        self.caption = CaptionEncoder(vocab_size, length, width=caption_width, layers=caption_layers, heads=heads)
        self.time = TimeEmbedding(emb_dim, frequencies=channels[0])
        self.pooled = nn.Linear(caption_width, emb_dim)
        self.conv_in = nn.Conv2d(in_channels + 2, channels[0], 3, padding=1)   # + the two coordinate channels

        def stage(width_in: int, width_out: int, level: int) -> nn.ModuleList:
            """A residual block, cross-attention to the caption and, at the coarse levels, self-attention."""
            layers = [ResBlock(width_in, width_out, emb_dim), CrossAttention(width_out, caption_width, heads)]
            if level >= len(channels) - self_attention_levels:
                layers.append(SelfAttention(width_out, heads))
            return nn.ModuleList(layers)

        self.down = nn.ModuleList()
        skips = [channels[0]]
        width = channels[0]
        for level, ch in enumerate(channels):
            for _ in range(blocks):
                self.down.append(stage(width, ch, level))
                width = ch
                skips.append(width)
            if level < len(channels) - 1:
                self.down.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
                skips.append(width)
        middle = len(channels) - 1
        self.middle = nn.ModuleList([stage(width, width, middle), stage(width, width, middle)])
        self.up = nn.ModuleList()
        for level, ch in reversed(list(enumerate(channels))):
            for _ in range(blocks + 1):
                self.up.append(stage(width + skips.pop(), ch, level))
                width = ch
            if level > 0:
                self.up.append(nn.Conv2d(width, width, 3, padding=1))   # after a 2x nearest upsample
        self.norm_out = _norm(width)
        self.conv_out = nn.Conv2d(width, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        # x: (B, C, H, W), t: (B,), tokens: (B, L) -> (B, out_channels, H, W)
        caption = self.caption(tokens)
        emb = self.time(t) + self.pooled(caption.pooled)                       # (B, E)
        if self.patch > 1:
            x = F.pixel_unshuffle(x, self.patch)                                # (B, C p^2, H/p, W/p)
        b, _, height, width = x.shape
        ys = torch.linspace(-1, 1, height, device=x.device, dtype=x.dtype)
        xs = torch.linspace(-1, 1, width, device=x.device, dtype=x.dtype)
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")).expand(b, -1, -1, -1)   # (B, 2, H', W')
        h = self.conv_in(torch.cat([x, grid], dim=1))
        skips = [h]

        def run(layer: nn.Module, h: torch.Tensor) -> torch.Tensor:
            if isinstance(layer, nn.ModuleList):
                block, *attention = layer
                h = block(h, emb)
                for attend in attention:
                    h = attend(h, caption)
                return h
            return layer(h)

        for layer in self.down:
            h = run(layer, h)
            skips.append(h)
        for layer in self.middle:
            h = run(layer, h)
        for layer in self.up:
            if isinstance(layer, nn.ModuleList):
                h = run(layer, torch.cat([h, skips.pop()], dim=1))
            else:
                h = layer(F.interpolate(h, scale_factor=2, mode="nearest"))
        out = self.conv_out(F.silu(self.norm_out(h)))
        return F.pixel_shuffle(out, self.patch) if self.patch > 1 else out
