"""The watermark key and options shared by every modality.

A key is a positive integer or a non-empty string; a string is hashed to an integer (the first 8 bytes
of its SHA-256, big-endian, top bit cleared so it fits an int64 as Hugging Face's selfhash product
needs). The key is an argument of ``sample`` and ``detect`` only: it is never written to a run
directory or a sample file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from genlab.errors import ConfigError, unknown_choice

#: Seeding schemes of the text watermark (Kirchenbauer et al. 2023, Algorithms 2 and 3).
SCHEMES = ("lefthash", "selfhash")


def key_to_int(key: int | str) -> int:
    """The integer behind ``key``: itself if a positive int (< 2**63), else a 63-bit hash of the string.

    Raises:
        ConfigError: an empty or blank string, a bool, zero, a negative or too large integer, or
            another type.
    """
    if isinstance(key, bool) or not isinstance(key, (int, str)):
        raise ConfigError(f"a watermark key is an integer or a string, got {type(key).__name__} {key!r}")
    if isinstance(key, str):
        if not key.strip():
            raise ConfigError("the watermark key is empty: pass a non-empty string or a positive integer")
        text = key.strip()
        if text.isdigit():
            return key_to_int(int(text))
        return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") & (2**63 - 1) or 1
    if not 0 < key < 2**63:
        raise ConfigError(f"an integer watermark key must be in [1, 2**63), got {key}")
    return key


@dataclass(frozen=True, kw_only=True)
class WatermarkKey:
    """The key and options a watermark marks records with (the sample processor is
    :class:`genlab.provenance.embed.Watermark`, which adds how to mark each modality).

    Attributes:
        key: the secret (see :func:`key_to_int`); the same key detects the mark.
        strength: how hard the mark is pressed; ``None`` takes the modality's default.
            Text: the KGW bias ``delta`` added to green-token logits (default 2.0).
            Tables: the share ``s`` in [0, 1] of red rows replaced, so a share ``gamma + (1 - gamma) s``
            of the rows is green (default 1.0).
        gamma: the green share of the vocabulary (text) or of row hashes (tables), in (0, 1).
        seeding_scheme: text only: ``lefthash`` (green list seeded by the previous token) or ``selfhash``
            (by the window ending at the candidate token itself, min-hash over ``context_width``).
        context_width: text only: tokens in the seeding window.
    """

    key: int | str
    strength: float | None = None
    gamma: float = 0.25
    seeding_scheme: str = "lefthash"
    context_width: int = 1

    def __post_init__(self) -> None:
        key_to_int(self.key)
        if not 0.0 < self.gamma < 1.0:
            raise ConfigError(f"watermark gamma must be in (0, 1), got {self.gamma}")
        if self.seeding_scheme not in SCHEMES:
            raise unknown_choice("seeding scheme", self.seeding_scheme, SCHEMES)
        if self.context_width < 1:
            raise ConfigError(f"watermark context_width must be at least 1, got {self.context_width}")
        if self.strength is not None and self.strength < 0:
            raise ConfigError(f"watermark strength must be >= 0, got {self.strength}")

    @property
    def seed(self) -> int:
        """The integer key."""
        return key_to_int(self.key)
