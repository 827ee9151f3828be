"""The transformer's likelihood of text: ``log p(x)`` of whole documents and the token counts behind a
perplexity, in strided windows when a document is longer than the context."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from genlab.data.smiles import SmilesCodec
from genlab.data.text import TextCodec
from genlab.errors import ConfigError, NotSupportedError


class TextLikelihood:
    """The transformer's likelihood methods (a mixin of :class:`~genlab.models.transformer.TransformerModel`)."""

    def log_prob(self, x: np.ndarray, *, condition: int | str | None = None) -> np.ndarray:
        """``log p(x)`` of each text record in nats, float64 ``(n,)`` (text models only).

        A record is a whole document: its tokens and the ``eos`` that ends it, each predicted from the
        ones before it, starting after ``eos`` (the start token), as in training. Records longer than
        ``block_size`` are scored in sliding windows (:meth:`token_log_likelihood`). Images and points
        have no log_prob here: their tokens are quantised values, and a probability of a bin is not a
        density in the raw units (:class:`NotSupportedError`, as the base contract says).
        """
        self._check_fitted()
        if not isinstance(self.codec_, TextCodec):
            return super().log_prob(x, condition=condition)   # checks the records, then NotSupportedError
        self.condition_index(condition)   # text is unlabelled: any condition is an error
        return self.token_log_likelihood(x).log_prob


    def token_log_likelihood(self, x: np.ndarray, *, max_tokens: int | None = None,
                             batch_size: int = 32) -> "TokenLogLikelihood":
        """Log-likelihood of each document and the tokens it covers, for perplexity (text models only).

        Every document is the token sequence ``eos, t_1 .. t_m, eos``; the ``m + 1`` targets after the
        first ``eos`` are scored (or the first ``max_tokens`` of them). A molecule with property prefixes is
        read after its prefix with every property ``any`` (the unconditional model); the prefix is not scored. A sequence longer than the
        context is scored in windows of ``block_size`` inputs that advance by ``block_size // 2``: the
        first window scores all its targets, each later one only the targets the previous one did not
        reach, so every token is scored once with at least half a context before it (the strided
        evaluation of Hugging Face's "Perplexity of fixed-length models" guide).

        Args:
            x: object array ``(n,)`` of ``str``.
            max_tokens: score at most this many targets per document (its opening); ``None`` for all.
            batch_size: windows per forward pass (memory only; the numbers do not change).

        Returns:
            A :class:`TokenLogLikelihood`.
        """
        self._check_fitted()
        codec = self.codec_
        if not isinstance(codec, TextCodec):
            raise NotSupportedError(f"token log-likelihoods are for text; this model makes {self.data_.modality}")
        if max_tokens is not None and max_tokens < 1:
            raise ConfigError(f"max_tokens must be a positive number of tokens, got {max_tokens!r}")
        documents = codec.check_records(x)
        block = self.network_.block_size
        stride = max(1, block // 2)
        windows: list[tuple[int, list[int], int, int]] = []   # (document, inputs, first scored, end)
        n_tokens = np.zeros(len(documents), dtype=np.int64)
        # a molecule is read after its property prefix, every property 'any': log p(x), not log p(x | bins)
        prefix = codec.prefix(None) if isinstance(codec, SmilesCodec) else []
        for row, ids in enumerate(codec.tokenize_batch(list(documents))):
            sequence = [codec.eos, *prefix, *ids, codec.eos]
            if max_tokens is not None:
                sequence = sequence[:max_tokens + 1 + len(prefix)]
            targets = len(sequence) - 1                 # target j is sequence[j + 1], seen from sequence[:j + 1]
            n_tokens[row] = targets - len(prefix)       # the prefix is context, not scored
            start, scored = 0, len(prefix)
            while scored < targets:
                end = min(start + block, targets)
                windows.append((row, sequence[start:end + 1], scored - start, end - start))
                scored = end
                start = max(0, scored + stride - block)
        log_prob = torch.zeros(len(documents), dtype=torch.float64)
        device = self.device
        with torch.no_grad():
            for first in range(0, len(windows), batch_size):
                chunk = windows[first:first + batch_size]
                width = max(len(tokens) for _, tokens, _, _ in chunk)
                # right padding: causal attention keeps it from reaching the real positions before it
                rows = torch.tensor([tokens + [codec.eos] * (width - len(tokens)) for _, tokens, _, _ in chunk],
                                    device=device)                                         # (B, W)
                logits = self.network_(rows[:, :-1]).float()                               # (B, W-1, V)
                picked = logits.log_softmax(-1).gather(-1, rows[:, 1:, None])[..., 0]      # (B, W-1)
                position = torch.arange(width - 1, device=device)[None]
                low = torch.tensor([lo for _, _, lo, _ in chunk], device=device)[:, None]
                high = torch.tensor([hi for _, _, _, hi in chunk], device=device)[:, None]
                counted = ((position >= low) & (position < high)).to(picked.dtype)       # (B, W-1)
                owner = torch.tensor([row for row, _, _, _ in chunk])
                log_prob.index_add_(0, owner, (picked * counted).sum(1).double().cpu())
        return TokenLogLikelihood(log_prob=log_prob.numpy(), n_tokens=n_tokens)


@dataclass(frozen=True)
class TokenLogLikelihood:
    """Log-likelihoods of text records under a token model, with the token counts behind them.

    Attributes:
        log_prob: float64 ``(n,)`` sum of ``log p(token | tokens before it)`` over each record's scored
            tokens, in nats.
        n_tokens: int64 ``(n,)`` tokens scored per record (the model's own tokens, ``eos`` included).
    """

    log_prob: np.ndarray
    n_tokens: np.ndarray

    @property
    def nll_per_token(self) -> float:
        """Pooled negative log-likelihood in nats per token, ``-sum log_prob / sum n_tokens``."""
        return float(-self.log_prob.sum() / self.n_tokens.sum())

    @property
    def perplexity(self) -> float:
        """``exp(nll_per_token)``."""
        return math.exp(self.nll_per_token)
