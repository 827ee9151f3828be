"""``genlab.detect(records, key=..., model=None)``: test records for a watermark at a stated FPR.

Records decide the method: a pandas DataFrame is a table (no model needed: the mark is model-agnostic),
strings are text (the model's tokenizer and vocabulary are needed: pass the run's model), token id
sequences are text too (``vocab_size`` or a model needed), float ``(n, C, H, W)`` arrays are images
(Tree-Ring: the diffusion model is needed to invert them; per-image p-values are pooled by Fisher's
method). Every record gets a
:class:`~genlab.provenance.stats.Detection`; the ``combined`` test pools the green and scored counts of
all records (one binomial test over the whole file). A table is one record: a single row is far too
short to test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy.stats import combine_pvalues, norm

from genlab.errors import ConfigError, DataError, NotSupportedError
from genlab.provenance.embed import SUPPORTED
from genlab.provenance.image_watermark import INVERSION_STEPS, detect_images
from genlab.provenance.keys import WatermarkKey
from genlab.provenance.stats import Detection, proportion_test
from genlab.provenance.table_watermark import detect_table
from genlab.provenance.text_watermark import GreenCount, TextWatermark

#: Default false-positive rates by modality (the issue's: 1e-4 for text and tables, 1e-2 for images).
DEFAULT_FPR = {"text": 1e-4, "tables": 1e-4, "images": 1e-2}


@dataclass(frozen=True)
class DetectionReport:
    """Per-record tests, the pooled test, the false-positive rate they were judged at, and the method."""

    items: list[Detection]
    combined: Detection
    fpr: float
    method: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``detect.json`` layout: ``{"items": [...], "combined": {...}, "fpr", "method", "options"}``."""
        return {"items": [d.to_dict() for d in self.items], "combined": self.combined.to_dict(),
                "fpr": self.fpr, "method": self.method, "options": self.options}


def _modality(records: Any) -> str:
    if isinstance(records, pd.DataFrame):
        return "tables"
    if isinstance(records, str):
        raise DataError("detect takes a sequence of records; wrap a single text in a list")
    items = list(records) if not isinstance(records, np.ndarray) else records
    if isinstance(items, np.ndarray) and items.dtype != object:
        if np.issubdtype(items.dtype, np.floating):
            return "images" if items.ndim == 4 else "points"
        if np.issubdtype(items.dtype, np.integer) and items.ndim == 2:
            return "tokens"
    if len(items) and all(isinstance(r, str) for r in items):
        return "text"
    if len(items) and all(isinstance(r, (list, tuple, np.ndarray)) for r in items):
        return "tokens"
    if not len(items):
        raise DataError("no records to test")
    raise DataError(f"cannot tell what kind of records these are ({type(items[0]).__name__}); pass strings, "
                    f"token id lists or a DataFrame")


def detect(records: Any, *, key: int | str, model: Any = None, fpr: float | None = None,
           gamma: float = 0.25, seeding_scheme: str = "lefthash", context_width: int = 1,
           ignore_repeated_ngrams: bool = False, vocab_size: int | None = None) -> DetectionReport:
    """Test ``records`` for the watermark of ``key``.

    Args:
        records: a DataFrame (a table), strings (text; needs ``model``), or token id sequences (text;
            needs ``model`` or ``vocab_size``). Text is scored as the model sampled it: the start token,
            then the record's tokens.
        key: the watermark key (int or non-empty string).
        model: the fitted model that made the records (its tokenizer and vocabulary for text; checked
            against the records' modality).
        fpr: false-positive rate of each ``watermarked`` decision (default :data:`DEFAULT_FPR`).
        gamma, seeding_scheme, context_width: the options the records were marked with.
        ignore_repeated_ngrams: text: count every distinct token window once.
        vocab_size: the vocabulary size for token ids without a model.

    Raises:
        DataError / ConfigError / NotSupportedError: records of another modality than the model, an
            empty key, points, images not from a diffusion model, text or images without their model.
    """
    watermark = WatermarkKey(key=key, gamma=gamma, seeding_scheme=seeding_scheme, context_width=context_width)
    modality = _modality(records)
    if model is not None and model.data_.modality != ("text" if modality == "tokens" else modality):
        raise DataError(f"these records are {modality}; the model makes {model.data_.modality}")
    if modality == "points":
        raise NotSupportedError(f"points carry no watermark; supported: {SUPPORTED}")
    fpr = DEFAULT_FPR[modality if modality in DEFAULT_FPR else "text"] if fpr is None else float(fpr)
    if not 0 < fpr < 1:
        raise ConfigError(f"fpr must be in (0, 1), got {fpr}")
    if modality == "images":
        if model is None:
            raise ConfigError("Tree-Ring detection inverts the diffusion model that made the images: pass model= "
                              "(--run RUN)")
        items = detect_images(records, watermark, model, fpr=fpr)
        _, p = combine_pvalues([d.p_value for d in items], method="fisher")
        p = float(max(p, 1e-300))
        combined = Detection(float(norm.isf(p)), p, p <= fpr, 0, sum(d.scored for d in items), "Fisher's method")
        return DetectionReport(items, combined, fpr, "tree-ring", {"inversion_steps": INVERSION_STEPS})
    if modality == "tables":
        result = detect_table(records, watermark, fpr=fpr)
        return DetectionReport([result], result, fpr, "table-row-hash", {"gamma": gamma})
    if modality == "text":
        if model is None:
            raise ConfigError("text detection needs the model that made it (its tokenizer and vocabulary): "
                              "pass model= (--run RUN)")
        codec = model.codec_
        sequences = [[codec.eos] + codec.tokenize(text) for text in records]
    else:
        sequences = [[int(t) for t in row] for row in records]
    if vocab_size is None:
        if model is None:
            raise ConfigError("token ids need vocab_size= or the model that made them")
        vocab_size = model.token_count
    marker = TextWatermark(watermark, vocab_size)
    if any(t < 0 or t >= vocab_size for row in sequences for t in row):
        raise DataError(f"token ids must be in [0, {vocab_size})")
    counts = [marker.count(ids, ignore_repeated_ngrams=ignore_repeated_ngrams) for ids in sequences]
    return DetectionReport(
        [_test(c, watermark, fpr) for c in counts],
        _test(GreenCount(sum(c.green for c in counts), sum(c.scored for c in counts)), watermark, fpr),
        fpr, f"kgw-{seeding_scheme}",
        {"gamma": gamma, "seeding_scheme": seeding_scheme, "context_width": context_width,
         "ignore_repeated_ngrams": ignore_repeated_ngrams})


def _test(count: GreenCount, watermark: WatermarkKey, fpr: float) -> Detection:
    return proportion_test(count.green, count.scored, gamma=watermark.gamma, fpr=fpr)


def detect_tokens(sequences: Sequence[Sequence[int]], *, key: int | str, vocab_size: int, **options: Any) -> DetectionReport:
    """:func:`detect` of token id sequences (e.g. Hugging Face ``generate`` output) over ``vocab_size`` ids."""
    return detect(list(sequences), key=key, vocab_size=vocab_size, **options)
