"""Captions: a diffusion model of images conditioned on the words of each image's caption through
cross-attention (:class:`~genlab.nn.cross_attention_unet.CrossAttentionUNet`; the codec
:class:`~genlab.data.captions.CaptionedImageCodec` holds the training captions' vocabulary).

The captions reach the loss as each record's caption tokens, looked up by record index
(:class:`~genlab.models.captioned.CaptionedTraining`)."""

from __future__ import annotations

import torch

from genlab.data.codecs import Codec
from genlab.errors import ConfigError
from genlab.models.base import DataInfo
from genlab.models.captioned import CaptionedTraining


class CaptionedDiffusion(CaptionedTraining):
    """The diffusion model's caption methods (a mixin of :class:`~genlab.models.diffusion.DiffusionModel`; fitting
    on captions is :class:`~genlab.models.captioned.CaptionedTraining`'s)."""

    def _make_codec(self, data: DataInfo) -> Codec:
        """The image codec with the training captions' vocabulary when fitting on captions, else the base's."""
        return self._caption_codec(data) or super()._make_codec(data)

    def _caption_tokens(self, n: int, prompt: str | list[str] | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``(n, L)`` of ``prompt`` (one string for all, or one per sample; ``None`` = the empty
        caption) and of the empty caption, checked against the vocabulary."""
        prompts = prompt if isinstance(prompt, list) else [prompt] * n
        if len(prompts) != n or None in prompts and prompt is not None:
            raise ConfigError(f"give one prompt string, or a list of {n} strings (one per sample)")
        return self.codec_.tokens(prompts), self.codec_.null_tokens(n)
