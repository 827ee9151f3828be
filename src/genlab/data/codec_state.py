"""A saved codec back from its JSON state: every codec class by the name its state records.

The codec modules import :mod:`genlab.data.codecs` (their base class); this module imports them all, so
the base imports none of them and no import circle forms.
"""

from __future__ import annotations

from typing import Any

from genlab.data.captions import CaptionedImageCodec
from genlab.data.codecs import Codec, ImageCodec, ImageTokenCodec, PointCodec, PointTokenCodec
from genlab.data.music import ChoraleCodec
from genlab.data.smiles import SmilesCodec
from genlab.data.table_tokens import TableTokenCodec
from genlab.data.tables import TableCodec
from genlab.data.text import BPECodec, CharCodec
from genlab.errors import CheckpointError

#: Every codec class by its :attr:`Codec.name` (the continuous codecs by their modality).
CODEC_CLASSES: dict[str, type[Codec]] = {
    codec.name: codec for codec in (PointCodec, ImageCodec, PointTokenCodec, ImageTokenCodec, CaptionedImageCodec,
                                    CharCodec, BPECodec, TableTokenCodec, SmilesCodec, ChoraleCodec)}


def codec_from_state(state: Any) -> Codec | TableCodec:
    """Rebuild a fitted codec from its saved JSON state, rejecting unknown or incomplete state.

    The table codec is named by its ``"codec"`` key ``"table"``; states without a ``"codec"`` key (the
    continuous codecs) are keyed by their modality.

    Raises:
        CheckpointError: an unknown codec or incomplete state.
    """
    try:
        if state.get("codec") == "table":
            return TableCodec.from_state(state)
        return CODEC_CLASSES[state.get("codec", state["modality"])].from_state(state)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CheckpointError(f"codec state is incomplete or unknown ({error!s})") from None
