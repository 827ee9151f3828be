"""The text of a continuation piece by piece, as streaming sends it (:func:`genlab.sampling.decoding.stream`, and
each sequence of :mod:`genlab.sampling.batch_decoding`): what the newest token made final, holding back a
character not yet whole and a tail that may still become a stop string."""

from __future__ import annotations

from typing import Callable


class TextPieces:
    """The text of one continuation, piece by piece, as :func:`~genlab.sampling.decoding.stream` yields it.

    :meth:`add` takes each new token id (never ``eos``) and returns the text that became final: a piece
    ends at the text the newest token completes, a byte-level token that ends inside a character is held
    back until the character is whole, and so is the longest tail that could still become a stop string.
    Once a stop string appears, :attr:`stopped` is set and the text before it is the last piece. At the end
    of decoding (``eos`` or the token budget), :meth:`flush` returns what was held back. A ``detokenize``
    with a true ``additive`` attribute (text of ``ids + [t]`` = text of ``ids`` + text of ``[t]``, as
    :meth:`genlab.data.text.CharCodec.detokenize`) grows the text a token at a time, not from every id.
    """

    def __init__(self, detokenize: Callable[[list[int]], str], stop: tuple[str, ...] = (),
                 texts: dict[int, str] | None = None) -> None:
        self.detokenize, self.stop = detokenize, stop
        self.additive = bool(getattr(detokenize, "additive", False))
        #: token id -> its text, for an additive ``detokenize`` (may be shared by every continuation of one
        #: vocabulary: a batch of 16 spent a tenth of its step detokenizing a token at a time)
        self.texts = {} if texts is None else texts
        self.ids: list[int] = []
        self.text = self.sent = ""   # the text so far (additive), and what was sent of it
        self.stopped = False

    def add(self, token: int) -> str:
        """The newly final text after ``token`` (may be empty)."""
        self.ids.append(token)
        if self.additive:
            piece = self.texts.get(token)
            if piece is None:
                piece = self.texts[token] = self.detokenize([token])
            text = self.text = self.text + piece
            if not self.stop and not text.endswith("\ufffd"):   # the common case: nothing to hold back
                piece, self.sent = text[len(self.sent):], text
                return piece
        else:
            text = self.detokenize(self.ids)
        cut = min((text.find(s) for s in self.stop if s in text), default=-1) if self.stop else -1
        if cut >= 0:
            self.stopped = True
            return text[len(self.sent):cut] if cut > len(self.sent) else ""
        if text.endswith("\ufffd"):
            return ""
        # hold back the longest tail that could still become a stop string
        hold = max((k for s in self.stop for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
        ready = text[:len(text) - hold]
        if len(ready) <= len(self.sent):
            return ""
        piece, self.sent = ready[len(self.sent):], ready
        return piece

    def flush(self) -> str:
        """What is left to send once decoding has ended without a stop string."""
        text = self.text if self.additive else self.detokenize(self.ids)
        return text[len(self.sent):] if len(text) > len(self.sent) else ""
