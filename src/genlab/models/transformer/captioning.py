"""Captions of images: the transformer fitted on captioned images (``shapes``) learns ``p(caption | image)``,
a captioner, by next-word likelihood over a prefix language model
(:class:`~genlab.models.transformer.caption_network.CaptionNetwork`):

    loss = -1/N sum_i sum_{t <= end_i} log p(w_{i,t} | image_i, w_{i,<t})

where ``end_i`` is the first padding token of caption ``i`` (its end; the padding after it is not scored). A share
``label_dropout`` of the training images is replaced by the network's null prefix, so the network also learns
the captions' own language model ``p(w_t | w_<t)``, and sampling guides away from it (classifier-free guidance,
Ho & Salimans 2022, on next-word logits as :mod:`genlab.models.transformer.guidance` does for molecules; for
captions, Kornblith et al. 2023, "Guiding image captioning models toward more specific captions"):

    l~ = l(w_<t, null) + s (l(w_<t, image) - l(w_<t, null)),      s = ``guidance``,

proportional to ``p(w_t | w_<t) (p(w_t | w_<t, image) / p(w_t | w_<t))^s``. With ``s > 1`` the image's evidence
outweighs the training captions' word statistics, which never show "red" before "triangle" when no red
triangle is rendered. Training's *caption noise* attacks the same bias at its source: a share
``caption_noise`` of the words the decoder reads (never those it predicts) are random vocabulary words, so the
word before "triangle" is sometimes "red" and the decoder learns to read the shape off the image. On ``shapes``
at 300 s (``benchmarks/captioning.py``, docs/text_to_image.md) noise 0.4 named held-out pairs right in 85 % of
one-object images, against 34 % without noise, where guidance 2 had reached 51 %; with the noise, guidance
no longer helped (82 % at 2; with today's coarser colour map 97 % at 1, 94 % at 2), so
:data:`CAPTION_GUIDANCE` is 1 and guidance stays an option.
The codec is :class:`~genlab.data.captions.CaptionedImageCodec`: images as the image codec reads them, the
caption words as ids of the training captions' vocabulary.

``sample(n, image=...)`` returns ``n`` caption strings: for one image ``(C, H, W)`` or ``(1, C, H, W)`` in
``[0, 1]``, ``n`` captions of it; for ``(n, C, H, W)``, one caption each. Decoding is greedy unless
``temperature`` is given (a caption is a description: its most likely words are what a user asks for;
temperature, top-k, top-p and the repetition penalty act as for text). A caption ends at its end token or
after the codec's most words. Each step re-reads the whole caption (captions are a dozen words: a cache
would save little); the image prefix is computed once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from genlab.config import from_dict
from genlab.data.captions import BOS, PAD, SPECIAL
from genlab.errors import ConfigError
from genlab.models.base import DataInfo
from genlab.models.captioned import CaptionedTraining
from genlab.models.hooks import SampleRequest
from genlab.models.options import SampleOption
from genlab.models.transformer.caption_network import CaptionNetwork
from genlab.sampling.decoding import GenerationConfig, choose, process_logits
from genlab.train import Batch, Losses, Phase

#: Captions decoded in one forward pass (memory only; the captions do not change with it).
CAPTION_BATCH = 256
#: Decoding options a captioner takes (``image`` aside); the rest of the text options are for free text.
CAPTION_OPTIONS = ("temperature", "top_k", "top_p", "repetition_penalty", "guidance", "logits_processors")
#: Guidance scale of a captioner when none is given (1: the plain conditional model).
CAPTION_GUIDANCE = 1.0


class ImageCaptioning(CaptionedTraining):
    """The transformer's caption methods (a mixin of :class:`~genlab.models.transformer.TransformerModel`; fitting
    on captions is :class:`~genlab.models.captioned.CaptionedTraining`'s)."""

    @property
    def record_modality(self) -> str:
        """``"text"`` for a captioner (its samples are captions), else the data's modality."""
        return "text" if self.reads_captions else super().record_modality

    def sampling_options(self) -> dict[str, SampleOption]:
        """A captioner's declared options: the decoding options it takes, greedy by default, and its guidance;
        other models' as the family declares them."""
        declared = super().sampling_options()
        if not self.reads_captions:
            return declared
        options = {name: self.declared_options[name] for name in CAPTION_OPTIONS if name in self.declared_options}
        options["temperature"] = replace(options["temperature"], default=0.0)
        options["guidance"] = replace(options["guidance"], default=CAPTION_GUIDANCE, modalities=None,
                                      help="classifier-free guidance away from the captions' own language model "
                                           "(1 = plain conditional; genlab.models.transformer.captioning)")
        return dict(sorted(options.items()))

    def _caption_network(self, data: DataInfo) -> CaptionNetwork:
        config = self.config
        return CaptionNetwork(data.shape[0], self.codec_.vocab_size, self.codec_.length, config.n_layer,
                              config.n_head, config.n_embd, config.dropout, bias=config.bias)

    def _caption_phases(self) -> list[Phase]:
        tokens_of, dropout, noise = self._train_tokens, self.config.label_dropout, self.config.caption_noise
        vocab = self.codec_.vocab_size

        def negative_log_likelihood(module: torch.nn.Module, batch: Batch, generator: torch.Generator) -> Losses:
            # batch.x: (B, C, H, W) images in [-1, 1]; batch.y: (B,) record indices
            tokens = tokens_of[batch.y.cpu()].to(batch.x.device)                      # (B, L)
            prefix = module.prefix(batch.x)                                          # (B, P, c)
            if dropout > 0:                                                          # the unconditional model too
                dropped = torch.rand(len(prefix), generator=generator, device=generator.device) < dropout
                prefix = torch.where(dropped.to(prefix.device)[:, None, None], module.null(len(prefix)), prefix)
            inputs = tokens[:, :-1]
            if noise > 0:                                                            # read the image, not the words
                shape, device = inputs.shape, generator.device
                swap = (torch.rand(shape, generator=generator, device=device) < noise).to(inputs.device)
                other = torch.randint(SPECIAL, vocab, shape, generator=generator, device=device).to(inputs.device)
                inputs = torch.where(swap & (inputs >= SPECIAL), other, inputs)
            logits = module(None, inputs, prefix=prefix)                             # (B, L-1, V)
            targets = tokens[:, 1:].masked_fill((tokens[:, 1:] == PAD).cumsum(1) > 1, -100)   # score the end once
            nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
            return Losses(nll, {"nll": float(nll.detach())})

        return [Phase("model", self.network_, negative_log_likelihood)]

    def _draw(self, n: int, request: SampleRequest) -> Any:
        """A captioner's draw: ``n`` caption strings (module doc); other models draw as the base does."""
        if not self.reads_captions:
            if "image" in request.options:
                raise ConfigError(f"image= is for a captioner (a transformer fitted on captioned images, e.g. "
                                  f"shapes); this model makes {self.data_.modality}")
            return super()._draw(n, request)
        self.check_sample_options(request.options)
        options = dict(request.options)
        images = self._caption_images(options.pop("image", None), n)
        unknown = sorted(set(options) - set(CAPTION_OPTIONS))
        if unknown:
            raise ConfigError(f"a captioner takes no {', '.join(unknown)}; its options: image, "
                              f"{', '.join(CAPTION_OPTIONS)}")
        guidance = float(options.pop("guidance", CAPTION_GUIDANCE))
        if guidance < 0:
            raise ConfigError(f"guidance must be >= 0 (1: the plain conditional model), got {guidance}")
        config = from_dict(GenerationConfig, {"temperature": 0.0, **options}, what="generation")
        with torch.no_grad():
            tokens = [self._caption_tokens(images[s:s + CAPTION_BATCH], config, guidance, request.generator)
                      for s in range(0, n, CAPTION_BATCH)]
        return np.concatenate([self.codec_.captions(t) for t in tokens])

    def _caption_images(self, image: Any, n: int) -> torch.Tensor:
        """The images to caption as the network reads them, ``(n, C, H, W)``: one image repeated ``n``
        times, or ``n`` images."""
        if image is None:
            raise ConfigError("this model writes captions of images: give the image to caption (image=...; "
                              "genlab sample RUN --image PICTURE)")
        array = np.asarray(image, dtype=np.float32)
        array = array[None] if array.ndim == len(self.data_.shape) else array
        if array.shape[1:] != tuple(self.data_.shape) or len(array) not in (1, n):
            raise ConfigError(f"image must be one picture of shape {tuple(self.data_.shape)} or {n} of them "
                              f"(one caption each), got an array of shape {np.shape(image)}")
        encoded = torch.as_tensor(self.codec_.encode(array)).to(self.device)
        return encoded.expand(n, *encoded.shape[1:]) if len(encoded) == 1 else encoded

    def _caption_tokens(self, images: torch.Tensor, config: GenerationConfig, guidance: float,
                        generator: torch.Generator | None) -> torch.Tensor:
        """Token rows ``(B, T)`` of one caption of each of ``images (B, C, H, W)``, ``T <= codec.length``,
        guided at scale ``guidance`` (module doc; the conditional and unconditional rows in one batch)."""
        network = self.network_
        prefix = network.prefix(images)
        if guidance != 1:
            prefix = torch.cat([prefix, network.null(len(images))])               # (2B, P, c)
        tokens = torch.full((len(images), 1), BOS, dtype=torch.long, device=images.device)
        ended = torch.zeros(len(images), dtype=torch.bool, device=images.device)
        vocab = self.codec_.vocab_size
        for _ in range(network.length - 1):
            logits = network(None, tokens if guidance == 1 else tokens.repeat(2, 1), prefix=prefix)[:, -1].float()
            if guidance != 1:
                conditional, unconditional = logits.chunk(2)
                logits = unconditional + guidance * (conditional - unconditional)    # (B, V)
            logits[:, BOS] = float("-inf")                                           # a caption starts once
            seen = torch.zeros(len(tokens), vocab, dtype=torch.bool, device=tokens.device).scatter_(1, tokens, True)
            word = choose(process_logits(logits, seen, config, tokens), config, generator)
            word = word.masked_fill(ended, PAD)
            tokens = torch.cat([tokens, word[:, None]], dim=1)
            ended |= word == PAD
            if bool(ended.all()):
                break
        return tokens.cpu()
