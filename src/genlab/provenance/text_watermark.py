"""The KGW text watermark (Kirchenbauer et al. 2023, "A Watermark for Large Language Models") as a
genlab logits processor, with green lists identical to Hugging Face's ``WatermarkLogitsProcessor``.

At every step a pseudo-random *green list* of ``int(V * gamma)`` token ids is drawn from a seed and
``delta`` is added to their logits, so watermarked text holds more green tokens than the ``gamma``
share chance gives; detection counts them (one-proportion test, :mod:`genlab.provenance.stats`).

Seeds (as transformers 5.24, for the same key, scheme, context width and vocabulary size):

- green list of a seed: torch's CPU generator, ``manual_seed(seed % (2**64 - 1))``,
  ``randperm(V)[:int(V * gamma)]``;
- ``lefthash`` (Algorithm 2): ``seed = key * previous_token`` (Python integers);
- ``selfhash`` (Algorithm 3): a fixed table ``P = randperm(1_000_003)`` drawn after ``manual_seed(key)``;
  for the window ``w`` of the last ``context_width`` tokens *ending at the candidate token itself*,
  ``seed = min_i(key * (P[w_i] + 1) * (P[w_-1] + 1))`` in wrapping int64 arithmetic. A candidate is
  biased only if it is in its own green list; as in the paper and Hugging Face, only the 40 best
  candidates are tried.

The green lists are always drawn on the CPU generator and moved to the scores' device, so a CUDA
model marks text exactly as a CPU one does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import torch

from genlab.provenance.keys import WatermarkKey

#: Default KGW bias ``delta`` (the paper's and Hugging Face's 2.0).
DEFAULT_DELTA = 2.0
#: Size of the selfhash permutation table (a prime, as in Hugging Face).
TABLE_SIZE = 1_000_003
#: Candidates tried per step by selfhash (Hugging Face's and the original repository's 40).
SELFHASH_CANDIDATES = 40


@dataclass(frozen=True)
class GreenCount:
    """Green tokens among the scored ones of one token sequence."""

    green: int
    scored: int


class TextWatermark:
    """Green lists of one key over a vocabulary of ``vocab_size`` ids; called as a logits processor.

    Args:
        watermark: key, ``gamma``, seeding scheme, context width; ``strength`` is the bias ``delta``.
        vocab_size: ``V``, the width of the model's scores (the network's vocabulary, class tokens included).
    """

    def __init__(self, watermark: WatermarkKey, vocab_size: int) -> None:
        self.key = watermark.seed
        self.gamma = watermark.gamma
        self.delta = DEFAULT_DELTA if watermark.strength is None else float(watermark.strength)
        self.scheme = watermark.seeding_scheme
        self.context_width = watermark.context_width
        self.vocab_size = vocab_size
        self.green_size = int(vocab_size * watermark.gamma)
        self._table: torch.Tensor | None = None
        self._green = lru_cache(maxsize=8192)(self._green_mask)

    # ------------------------------------------------------------------ seeds and green lists
    @property
    def table(self) -> torch.Tensor:
        """The selfhash permutation table, int64 ``(TABLE_SIZE,)`` (drawn once, on first use)."""
        if self._table is None:
            generator = torch.Generator().manual_seed(self.key)
            self._table = torch.randperm(TABLE_SIZE, generator=generator)
        return self._table

    def seed(self, window: Sequence[int]) -> int:
        """The generator seed of a window of token ids (its last ``context_width`` matter)."""
        window = list(window)[-self.context_width:]
        if self.scheme == "lefthash":
            return self.key * int(window[-1])
        ids = torch.tensor(window, dtype=torch.long)
        a = self.table[ids % TABLE_SIZE] + 1
        b = self.table[ids[-1] % TABLE_SIZE] + 1
        return int((self.key * a * b).min())     # int64 products wrap, as in Hugging Face

    def _green_mask(self, seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed % (2**64 - 1))
        mask = torch.zeros(self.vocab_size, dtype=torch.bool)
        mask[torch.randperm(self.vocab_size, generator=generator)[:self.green_size]] = True
        return mask

    def green_mask(self, window: Sequence[int]) -> torch.Tensor:
        """bool ``(V,)``: the green list seeded by ``window`` (CPU; cached)."""
        return self._green(self.seed(window))

    # ------------------------------------------------------------------ marking
    def __call__(self, tokens: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Add ``delta`` to the green tokens of every row: ``tokens (B, T)`` int64, ``scores (B, V)``."""
        if tokens.shape[1] < self.context_width:   # Hugging Face skips seeding then too
            return scores
        if scores.shape[-1] != self.vocab_size:
            raise ValueError(f"scores have {scores.shape[-1]} tokens; this watermark was built for {self.vocab_size}")
        recent = tokens[:, -self.context_width:].tolist()
        if self.scheme == "lefthash":
            masks = torch.stack([self.green_mask(row) for row in recent])              # (B, V)
        else:
            masks = torch.zeros(scores.shape, dtype=torch.bool)
            order = scores.sort(dim=-1, descending=True).indices[:, :SELFHASH_CANDIDATES].tolist()
            for b, (row, candidates) in enumerate(zip(recent, order)):
                for c in candidates:
                    if self.green_mask(row + [c])[c]:
                        masks[b, c] = True
        return scores + self.delta * masks.to(scores.device, scores.dtype)

    # ------------------------------------------------------------------ detection
    def count(self, ids: Sequence[int], *, ignore_repeated_ngrams: bool = False) -> GreenCount:
        """Green and scored tokens of one sequence, as Hugging Face's ``WatermarkDetector`` counts them.

        Every window of ``n = context_width + 1`` ids (``context_width`` for selfhash, whose window
        ends at the scored token) scores its last id against the green list of its seed. With
        ``ignore_repeated_ngrams`` each distinct window counts once (repeated text is not evidence).
        """
        ids = [int(i) for i in ids]
        selfhash = self.scheme == "selfhash"
        n = self.context_width + 1 - int(selfhash)
        windows = Counter(tuple(ids[i:i + n]) for i in range(len(ids) - n + 1))
        green_of = {w: bool(self.green_mask(w if selfhash else w[:-1])[w[-1]]) for w in windows}
        if ignore_repeated_ngrams:
            return GreenCount(green=sum(green_of.values()), scored=len(windows))
        return GreenCount(green=sum(k * green_of[w] for w, k in windows.items()), scored=sum(windows.values()))
