"""Captioned images: the image codec plus a word-level caption vocabulary, saved together.

A caption-conditioned model reads images as :class:`~genlab.data.codecs.ImageCodec` does (``z = 2x - 1``)
and captions as word ids. The vocabulary is the sorted set of words of the training captions
(:func:`genlab.data.shapes.words`: lower case, ``,`` and ``:`` as words), so it is data, saved in
``codec.json`` with the model, and a prompt with any other word is refused, naming the words.

Token layout of one caption, ``(max_words + 1,)`` int64: ``[BOS, w_1, ..., w_k, PAD, ...]``. ``BOS`` is
never padding, so the empty caption ``[BOS, PAD, ...]`` (classifier-free guidance's null condition) still
has one key for attention to read. A caption model (image to caption) writes the same layout and ends a
caption at its first ``PAD`` (:meth:`CaptionedImageCodec.captions` reads it back to words).
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np
import torch

from genlab.data.codecs import ImageCodec
from genlab.data.shapes import words
from genlab.errors import ConfigError, DataError

PAD, BOS = 0, 1
#: Ids below this are special; word ``i`` of the vocabulary is id ``i + SPECIAL``.
SPECIAL = 2


class CaptionedImageCodec(ImageCodec):
    """Images as :class:`ImageCodec` encodes them, and captions as word ids.

    Args:
        shape: image shape ``(C, H, W)``.
        vocabulary: the caption words, sorted; empty before :meth:`fit_captions`.
        max_words: the most words a caption may have.
    """

    name = "captioned_images"

    def __init__(self, shape: tuple[int, ...], vocabulary: Sequence[str] = (), max_words: int = 0) -> None:
        super().__init__(shape)
        self.vocabulary = tuple(vocabulary)
        self.max_words = max_words
        self._ids = {word: i + SPECIAL for i, word in enumerate(self.vocabulary)}

    @classmethod
    def from_captions(cls, shape: tuple[int, ...], captions: Sequence[str]) -> "CaptionedImageCodec":
        """The codec whose vocabulary and length limit are those of the training ``captions``."""
        split = [words(caption) for caption in captions]
        if not split or not any(split):
            raise DataError("caption conditioning needs captions with words; the training captions have none")
        return cls(shape, sorted({w for caption in split for w in caption}), max(len(c) for c in split))

    @property
    def vocab_size(self) -> int:
        """Number of token ids, special ones included."""
        return len(self.vocabulary) + SPECIAL

    @property
    def length(self) -> int:
        """Tokens per caption: ``BOS`` and ``max_words`` word slots."""
        return self.max_words + 1

    def check_prompt(self, prompt: Any) -> list[str]:
        """The words of a user's prompt, or a ConfigError for a non-string, an empty or over-long prompt,
        or words outside the vocabulary (naming them)."""
        if not isinstance(prompt, str):
            raise ConfigError(f"a prompt must be a string, got {prompt!r}")
        found = words(prompt)
        if not any(word.isalpha() for word in found):   # blank, or punctuation alone
            raise ConfigError(f"the prompt {prompt!r} is empty; describe a scene, e.g. "
                              f"'a small red circle at the top left'")
        unknown = sorted({w for w in found if w not in self._ids})
        if unknown:
            raise ConfigError(f"the prompt has words outside the caption vocabulary: {', '.join(unknown)}; "
                              f"known words: {', '.join(self.vocabulary)}")
        if len(found) > self.max_words:
            raise ConfigError(f"the prompt has {len(found)} words; the model was trained on captions of at "
                              f"most {self.max_words}")
        return found

    def tokens(self, captions: Sequence[str | None]) -> torch.Tensor:
        """Token ids ``(n, length)`` int64 of ``captions``; ``None`` is the empty (null) caption.

        Raises:
            ConfigError: a caption fails :meth:`check_prompt`.
        """
        out = torch.full((len(captions), self.length), PAD, dtype=torch.long)
        out[:, 0] = BOS
        for i, caption in enumerate(captions):
            if caption is not None:
                ids = [self._ids[w] for w in self.check_prompt(caption)]
                out[i, 1:1 + len(ids)] = torch.tensor(ids)
        return out

    def null_tokens(self, n: int) -> torch.Tensor:
        """``n`` empty captions ``(n, length)``: ``BOS`` then padding."""
        return self.tokens([None] * n)

    def captions(self, tokens: torch.Tensor) -> np.ndarray:
        """Caption strings, object ``(n,)``, of token rows ``(n, T)`` laid out as :meth:`tokens` writes them: the
        words after ``BOS`` up to the first ``PAD``, spaced as the training captions are (``"small red circle,
        top"``: no space before ``,`` or ``:``)."""
        out = np.empty(len(tokens), dtype=object)
        for i, row in enumerate(tokens.tolist()):
            found: list[str] = []
            for token in row[1:]:
                if token == PAD:
                    break
                found.append(self.vocabulary[token - SPECIAL] if token >= SPECIAL else "")
            out[i] = re.sub(r" ([,:])", r"\1", " ".join(w for w in found if w))
        return out

    def state(self) -> dict[str, Any]:
        return {"codec": self.name, "modality": self.modality, "shape": list(self.shape),
                "vocabulary": list(self.vocabulary), "max_words": self.max_words}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "CaptionedImageCodec":
        return cls(tuple(state["shape"]), state["vocabulary"], int(state["max_words"]))

