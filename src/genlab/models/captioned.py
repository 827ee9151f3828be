"""Fitting on captioned images: a family that reads captions (diffusion draws images from them, the transformer
writes them) mixes :class:`CaptionedTraining` in before :class:`~genlab.models.base.GenerativeModel`.

``fit`` on a captioned Dataset of images (``shapes``), with the family's ``captions`` option on, keeps the training
captions in ``_train_captions`` while the model trains (the family's ``_make_codec`` takes ``_caption_codec``, a
:class:`~genlab.data.captions.CaptionedImageCodec` of their vocabulary, when there is one); ``_fit_network`` then gives each record its index
as its label and the caption tokens ``_train_tokens (n, L)`` for the loss to look them up. The periodic
validation, whose records have no captions, is off. Both are dropped when training ends.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from genlab.data.captions import CaptionedImageCodec
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.models.base import DataInfo, FitContext


class CaptionedTraining:
    """``fit``, ``fine_tune`` and ``_fit_network`` of a family that reads captions (module doc)."""

    _train_captions = None
    _train_tokens = None

    @property
    def reads_captions(self) -> bool:
        """Whether the model was fitted on captions (its codec holds their vocabulary)."""
        return isinstance(self.codec_, CaptionedImageCodec)

    def _caption_codec(self, data: DataInfo) -> CaptionedImageCodec | None:
        """While fitting on captions, the codec holding the training captions' vocabulary; else ``None`` (the
        family's own codec)."""
        if self._train_captions is None:
            return None
        return CaptionedImageCodec.from_captions(data.shape, self._train_captions)

    def fit(self, data: Dataset | Any, **kwargs: Any) -> Any:
        """:meth:`GenerativeModel.fit`; with ``captions`` and a captioned Dataset of images, on the captions too
        (labels are then ignored)."""
        self._train_captions = (data.captions_train if self.config.captions and isinstance(data, Dataset)
                                and data.modality == "images" else None)
        try:
            return super().fit(data, **kwargs)
        finally:
            self._train_captions = self._train_tokens = None

    def fine_tune(self, data: Dataset, **kwargs: Any) -> Any:
        """:meth:`GenerativeModel.fine_tune`; a model fitted on captions fine-tunes on ``data``'s captions."""
        self._train_captions = data.captions_train if self.reads_captions and isinstance(data, Dataset) else None
        if self.reads_captions and self._train_captions is None:
            raise ConfigError("this model was trained on captions: fine-tune it on a captioned dataset (e.g. shapes)")
        try:
            return super().fine_tune(data, **kwargs)
        finally:
            self._train_captions = self._train_tokens = None

    def _fit_network(self, x: torch.Tensor, y: torch.Tensor | None, context: FitContext) -> None:
        """On captions, each record's label is its index, whose caption tokens the loss looks up in
        ``_train_tokens``, and no periodic validation; otherwise the base's fit."""
        if not self.reads_captions:
            return super()._fit_network(x, y, context)
        self._train_tokens = self.codec_.tokens(list(self._train_captions))   # (n, L)
        super()._fit_network(x, torch.arange(len(x)), replace(context, validation=None))
