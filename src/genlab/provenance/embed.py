"""``model.sample(n, processors=[Watermark(key=...)])``: which records carry a mark, and how.

:class:`Watermark` is a sample processor (:mod:`genlab.models.hooks`), so the model contract knows
nothing of it. What it asks of a model is read from the model's declared options, not its family:

- text whose sampler takes ``logits_processors`` (the transformer): the KGW processor joins them
  (sampling, greedy, beam search and streaming all keep it);
- tables, from every family: rows thinned to a green share (:mod:`~genlab.provenance.table_watermark`);
- images whose sampler takes an ``initial_noise`` it can invert (diffusion): a Tree-Ring key in that
  noise (:mod:`~genlab.provenance.image_watermark`).

Anything else is a :class:`~genlab.errors.NotSupportedError` that names what is supported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genlab.errors import ConfigError, NotSupportedError
from genlab.models.hooks import Draw, SampleProcessor, SampleRequest
from genlab.provenance.image_watermark import marked_noise
from genlab.provenance.keys import WatermarkKey
from genlab.provenance.table_watermark import thinned_rows
from genlab.provenance.text_watermark import TextWatermark

#: What carries a watermark, for error messages.
SUPPORTED = ("text from the transformer (a sampler that takes logits processors), tables from every family, and "
             "images from diffusion (an initial noise its sampler can invert)")


def text_watermark_for(model: Any, watermark: WatermarkKey) -> TextWatermark:
    """The KGW processor over ``model``'s vocabulary (a fitted text transformer)."""
    return TextWatermark(watermark, model.token_count)


def check_carrier(model: Any) -> None:
    """Raise :class:`NotSupportedError` unless ``model`` makes records a watermark can be put in."""
    modality, options = model.data_.modality, model.sample_options
    if modality == "tables" or (modality == "text" and "logits_processors" in options) or \
            (modality == "images" and "initial_noise" in options):
        return
    raise NotSupportedError(f"the {model.family} family's {modality} cannot carry a watermark yet; "
                            f"supported: {SUPPORTED}")


@dataclass(frozen=True, kw_only=True)
class Watermark(WatermarkKey, SampleProcessor):
    """A watermark key as a sample processor: ``model.sample(n, processors=[Watermark(key="secret")])``
    marks the records (module doc); the same key detects the mark (:func:`genlab.detect`)."""

    slot = "watermark"
    order = 50

    def check(self, model: Any) -> None:
        check_carrier(model)

    def __call__(self, draw: Draw, n: int, request: SampleRequest) -> Any:
        model = request.model
        if model.data_.modality == "tables":
            return thinned_rows(lambda k: draw(k, request), n, self, request.generator)
        if model.data_.modality == "images":
            return draw(n, request.with_options(initial_noise=marked_noise(model, n, self, request.generator)))
        marker = text_watermark_for(model, self)
        return draw(n, request.with_options(logits_processors=(*request.options.get("logits_processors", ()), marker)))


def watermark_options(model: Any, key: int | str | None, strength: float | None = None) -> dict[str, Any]:
    """The sampling options that mark ``model``'s records with ``key`` (``genlab sample --watermark-key``).

    Text gets the KGW processor as a logits processor (so sampling, ``--verify`` and ``--stream`` all
    carry it); tables and images get ``processors=[Watermark(...)]``. Raises :class:`ConfigError` for a
    strength without a key and :class:`NotSupportedError` for a model whose records cannot carry a mark.
    """
    if key is None:
        raise ConfigError("--watermark-strength needs --watermark-key")
    watermark = Watermark(key=key, strength=strength)
    check_carrier(model)
    if model.data_.modality == "text":
        return {"logits_processors": (text_watermark_for(model, watermark),)}
    return {"processors": [watermark]}
