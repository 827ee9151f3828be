"""``model.sample(n, watermark=Watermark(...))``: which families and modalities carry a mark, and how.

- text from the ``transformer`` family: the KGW logits processor joins the decoding's
  ``logits_processors`` (sampling, greedy, beam search and streaming all keep it);
- tables from every family: rows thinned to a green share (:mod:`~genlab.provenance.table_watermark`);
- images from the ``diffusion`` family: a Tree-Ring key in the initial noise
  (:mod:`~genlab.provenance.image_watermark`); GANs and VAEs are not supported (no inversion of their
  sampler is built).

Anything else is a :class:`~genlab.errors.NotSupportedError` that names what is supported.
"""

from __future__ import annotations

from typing import Any

import torch

from genlab.errors import ConfigError, NotSupportedError
from genlab.provenance.image_watermark import sample_images
from genlab.provenance.keys import Watermark
from genlab.provenance.table_watermark import sample_table
from genlab.provenance.text_watermark import TextWatermark

#: What carries a watermark, for error messages.
SUPPORTED = "text from the transformer family, tables from every family, and images from the diffusion family"


def text_watermark_for(model: Any, watermark: Watermark) -> TextWatermark:
    """The KGW processor over ``model``'s vocabulary (a fitted text transformer)."""
    return TextWatermark(watermark, model.network_.wte.num_embeddings)


def check_carrier(model: Any) -> None:
    """Raise :class:`NotSupportedError` unless ``model`` makes records a watermark can be put in."""
    modality = model.data_.modality
    if modality == "tables" or (modality == "text" and model.family == "transformer") or \
            (modality == "images" and model.family == "diffusion"):
        return
    raise NotSupportedError(f"the {model.family} family's {modality} cannot carry a watermark yet; "
                            f"supported: {SUPPORTED}")


def sample_watermarked(model: Any, n: int, watermark: Watermark, *, condition: Any = None,
                       generator: torch.Generator | None = None, **options: Any) -> Any:
    """``model.sample(n, ...)`` with ``watermark`` in its records (module doc)."""
    if not isinstance(watermark, Watermark):
        raise ConfigError(f"watermark must be a genlab.provenance.Watermark, got {type(watermark).__name__}")
    check_carrier(model)
    if model.data_.modality == "tables":
        return sample_table(model, n, watermark, condition=condition, generator=generator, **options)
    if model.data_.modality == "images":
        return sample_images(model, n, watermark, condition=condition, generator=generator, **options)
    processors = tuple(options.pop("logits_processors", ())) + (text_watermark_for(model, watermark),)
    return model.sample(n, condition=condition, generator=generator, logits_processors=processors, **options)


def watermark_options(model: Any, key: int | str | None, strength: float | None = None) -> dict[str, Any]:
    """The sampling options that mark ``model``'s records with ``key`` (``genlab sample --watermark-key``).

    Text gets the KGW processor as a logits processor (so sampling, ``--verify`` and ``--stream`` all
    carry it); tables and images get ``watermark=``. Raises :class:`ConfigError` for a strength without a key and
    :class:`NotSupportedError` for a model whose records cannot carry a mark.
    """
    if key is None:
        raise ConfigError("--watermark-strength needs --watermark-key")
    watermark = Watermark(key=key, strength=strength)
    check_carrier(model)
    if model.data_.modality == "text":
        return {"logits_processors": (text_watermark_for(model, watermark),)}
    return {"watermark": watermark}
