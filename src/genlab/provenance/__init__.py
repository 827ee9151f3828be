"""Provenance: watermark what genlab generates, detect the mark with a measured error rate, and
attribute samples to the training records nearest them.

- :class:`Watermark` (embed.py; its key and options in keys.py): ``model.sample(n, processors=[Watermark(key=...)])``.
- text_watermark.py: KGW green lists identical to Hugging Face's ``WatermarkLogitsProcessor``.
- table_watermark.py: keyed row hashes, green rows kept by resampling.
- stats.py: the one-proportion test (z-score, exact binomial p-value).
- detect.py: :func:`detect` of records of any supported modality; embed.py: the sample processor.
"""

from genlab.provenance.embed import Watermark
from genlab.provenance.keys import WatermarkKey, key_to_int

__all__ = ["Watermark", "WatermarkKey", "key_to_int"]
