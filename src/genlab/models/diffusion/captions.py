"""Captions: a diffusion model of images conditioned on the words of each image's caption through
cross-attention (:class:`~genlab.nn.cross_attention_unet.CrossAttentionUNet`; the codec
:class:`~genlab.data.captions.CaptionedImageCodec` holds the training captions' vocabulary).

The captions reach the loss as each record's caption tokens, looked up by record index; they are set by
``fit`` and ``fine_tune`` from a captioned Dataset (``shapes``) and dropped when training ends."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from genlab.data.captions import CaptionedImageCodec
from genlab.data.codecs import Codec
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.models.base import DataInfo, FitContext


class CaptionedDiffusion:
    """The diffusion model's caption methods (a mixin of :class:`~genlab.models.diffusion.DiffusionModel`)."""

    _train_captions = None
    _train_tokens = None

    def fit(self, data: Dataset | Any, **kwargs: Any) -> Any:
        """:meth:`GenerativeModel.fit`; with ``captions`` and a captioned Dataset of images, the model
        conditions on the captions (module doc) and ignores labels."""
        self._train_captions = (data.captions_train if self.config.captions and isinstance(data, Dataset)
                                and data.modality == "images" else None)
        try:
            return super().fit(data, **kwargs)
        finally:
            self._train_captions = self._train_tokens = None

    def fine_tune(self, data: Dataset, **kwargs: Any) -> Any:
        """:meth:`GenerativeModel.fine_tune`; a caption-trained model fine-tunes on ``data``'s captions."""
        self._train_captions = (data.captions_train if self._captioned() and isinstance(data, Dataset) else None)
        if self._captioned() and self._train_captions is None:
            raise ConfigError("this model was trained on captions: fine-tune it on a captioned dataset (e.g. shapes)")
        try:
            return super().fine_tune(data, **kwargs)
        finally:
            self._train_captions = self._train_tokens = None

    def _make_codec(self, data: DataInfo) -> Codec:
        """The image codec with the training captions' vocabulary when fitting on captions, else the base's."""
        if self._train_captions is not None:
            return CaptionedImageCodec.from_captions(data.shape, self._train_captions)
        return super()._make_codec(data)

    def _captioned(self) -> bool:
        return isinstance(self.codec_, CaptionedImageCodec)

    def _fit_network(self, x: torch.Tensor, y: torch.Tensor | None, context: FitContext) -> None:
        """Captioned data: each record's label is its index, whose caption tokens the loss looks up; the
        periodic validation (which has no captions) is off. Otherwise the base's fit."""
        if not self._captioned():
            return super()._fit_network(x, y, context)
        self._train_tokens = self.codec_.tokens(list(self._train_captions))   # (n, L)
        super()._fit_network(x, torch.arange(len(x)), replace(context, validation=None))

    def _caption_tokens(self, n: int, prompt: str | list[str] | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``(n, L)`` of ``prompt`` (one string for all, or one per sample; ``None`` = the empty
        caption) and of the empty caption, checked against the vocabulary."""
        prompts = prompt if isinstance(prompt, list) else [prompt] * n
        if len(prompts) != n or None in prompts and prompt is not None:
            raise ConfigError(f"give one prompt string, or a list of {n} strings (one per sample)")
        return self.codec_.tokens(prompts), self.codec_.null_tokens(n)
