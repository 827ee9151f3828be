"""Text and code metrics: validity, distinct-n, perplexity and verbatim copying of the training text.

- ``validity``: the share of texts that are syntactically valid Python, ``ast.parse`` being the judge
  (the Python 3 grammar of the running interpreter). It scores *completions*: what the text evaluation
  (:mod:`genlab.evaluation.text`) calls a completion is the prompt ``"def "`` followed by the model's
  continuation, cut before the first line that starts at column 0 (a letter, ``_``, ``@`` or ``#``
  there ends a top-level function) or after a fixed number of tokens. Nothing is added: a completion
  that stops at the prompt or the signature (``"def "``, ``"def f(x):"``) has no body, and ``ast.parse``
  rejects it, so it counts as invalid; so does one cut by the token budget in the middle of a statement.
- ``distinct_n`` (Li et al. 2016, "A diversity-promoting objective function for neural conversation
  models", §4.3, "distinct-1/distinct-2"): the number of *distinct* n-grams in all texts together divided
  by the *total* number of n-grams in them, in ``[0, 1]``; 1 means no n-gram repeats anywhere. Li et al.
  count words; here a text is split into word tokens by :data:`WORD` (runs of letters, digits and
  ``_``, and every other non-space character on its own), the same for every tokenizer, so models with
  a character and a BPE vocabulary are compared on the same units. The value falls with the amount of
  text (more text, more repeats), so it is compared with real text of the same size (the floor).
- ``perplexity = exp(total nll / total tokens)`` (Jelinek et al. 1977; Jurafsky & Martin, "Speech and
  Language Processing", 3rd ed., §3.3): the exponential of the mean negative log-likelihood per token in
  nats. Tokens are the model's own, so perplexities of models with different tokenizers do not compare.
- ``copied_ngrams``: the share of a text's character n-grams (``n = 50``) that occur verbatim in the
  training text, and ``copied_texts``: the share of texts of at least ``n`` characters that occur whole
  in it. Fifty characters is most of a line of code: an accidental match needs a common idiom or a
  licence header, so real held-out text is the yardstick (the floor). N-grams are compared through
  64-bit polynomial hashes of their code points; a false match has probability about
  ``len(train) / 2**64`` per n-gram.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from genlab.errors import DataError
from genlab.sampling.python_syntax import parses

#: Word tokens of distinct-n: identifiers/numbers, or any single other non-space character.
WORD = re.compile(r"\w+|[^\w\s]")
#: Characters per n-gram of the copying metrics.
COPY_CHARS = 50
_HASH_BASE = np.uint64(1_000_003)


def validity(texts: Iterable[str]) -> float:
    """Share of ``texts`` that parse as Python (module docstring), in ``[0, 1]``.

    Raises:
        DataError: no texts.
    """
    flags = [parses(text) for text in texts]
    if not flags:
        raise DataError("validity needs at least one text")
    return sum(flags) / len(flags)


def words(text: str) -> list[str]:
    """The word tokens of ``text`` that distinct-n counts (:data:`WORD`)."""
    return WORD.findall(text)


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """The ``len(tokens) - n + 1`` contiguous n-grams of ``tokens`` (none when it is shorter than ``n``)."""
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Li et al.'s distinct-n of ``texts`` pooled: distinct n-grams / all n-grams, in ``[0, 1]``.

    Word tokens as :func:`words` splits them; n-grams do not cross from one text into the next.
    Texts with fewer than ``n`` words add nothing; when no text has an n-gram the value is 0.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    grams = [gram for text in texts for gram in ngrams(words(text), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def perplexity(log_prob: np.ndarray, n_tokens: np.ndarray) -> float:
    """``exp(-sum log_prob / sum n_tokens)``: per-document log-likelihoods (nats) and token counts."""
    return math.exp(nll_per_token(log_prob, n_tokens))


def nll_per_token(log_prob: np.ndarray, n_tokens: np.ndarray) -> float:
    """Negative log-likelihood per token in nats, pooled over documents: ``-sum log_prob / sum n_tokens``.

    Args:
        log_prob: float ``(n,)`` log-likelihood of each document in nats.
        n_tokens: int ``(n,)`` tokens scored in each document.

    Raises:
        DataError: the shapes differ or no token was scored.
    """
    log_prob, n_tokens = np.asarray(log_prob, dtype=np.float64), np.asarray(n_tokens, dtype=np.float64)
    if log_prob.shape != n_tokens.shape or n_tokens.sum() <= 0:
        raise DataError(f"need one token count per log-likelihood and some tokens; got shapes {log_prob.shape} "
                        f"and {n_tokens.shape} with {n_tokens.sum():g} tokens")
    return float(-log_prob.sum() / n_tokens.sum())


@dataclass(frozen=True, eq=False)
class CopyIndex:
    """The hashed character n-grams of a training text, to look up generated text in (module docstring).

    Build it with :meth:`from_texts`; :meth:`count` and :meth:`contains` answer queries.

    Attributes:
        hashes: uint64 sorted hashes of every ``n``-character window of the training documents.
        text: the training documents joined by NUL, for whole-text lookups.
        n: characters per window.
    """

    hashes: np.ndarray
    text: str
    n: int = COPY_CHARS

    @classmethod
    def from_texts(cls, texts: Iterable[str], n: int = COPY_CHARS) -> "CopyIndex":
        """Index the ``n``-character windows of ``texts``, joined by NUL (a window across two texts holds
        a NUL, which generated text does not)."""
        text = "\0".join(texts)
        return cls(np.sort(_window_hashes(text, n)), text, n)

    def count(self, text: str) -> tuple[int, int]:
        """``(copied, total)``: of the ``n``-character windows of ``text``, how many occur in the index."""
        hashes = _window_hashes(text, self.n)
        if not len(hashes):
            return 0, 0
        where = np.searchsorted(self.hashes, hashes).clip(max=max(len(self.hashes) - 1, 0))
        found = self.hashes[where] == hashes if len(self.hashes) else np.zeros(len(hashes), dtype=bool)
        return int(found.sum()), len(hashes)

    def contains(self, text: str) -> bool:
        """Whether ``text`` occurs verbatim in the indexed training text."""
        return text in self.text


def copying(texts: Sequence[str], index: CopyIndex) -> np.ndarray:
    """Per-text copying counts, int64 ``(len(texts), 3)``: copied windows, windows, and whether the text
    (of at least ``index.n`` characters) occurs whole in the training text (1/0; 0 when shorter).

    :func:`copying_scores` turns rows of it (or a bootstrap redraw of its rows) into the two shares.
    """
    rows = np.zeros((len(texts), 3), dtype=np.int64)
    for row, text in enumerate(texts):
        copied, total = index.count(text)
        rows[row, :2] = copied, total
        rows[row, 2] = int(total > 0 and copied == total and index.contains(text))
    return rows


def copying_scores(rows: np.ndarray) -> dict[str, float]:
    """``copied_ngrams`` (pooled share of windows found) and ``copied_texts`` (share of texts of at least
    ``n`` characters found whole) from :func:`copying` rows ``(m, 3)``; 0 where nothing is long enough."""
    windows, long_enough = rows[:, 1].sum(), (rows[:, 1] > 0).sum()
    return {"copied_ngrams": float(rows[:, 0].sum() / windows) if windows else 0.0,
            "copied_texts": float(rows[:, 2].sum() / long_enough) if long_enough else 0.0}


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)


def _window_hashes(text: str, n: int) -> np.ndarray:
    """uint64 ``(len(text) - n + 1,)`` polynomial hashes ``sum_j c[i + j] * B**(n - 1 - j)`` mod ``2**64``.

    Built by doubling (windows of 1, 2, 4, ... characters, then joined along the binary digits of ``n``),
    about ``2 log2(n)`` passes over the text instead of ``n``.
    """
    codes = _codes(text)
    if len(codes) < n:
        return np.zeros(0, dtype=np.uint64)
    powers = {1: codes}
    with np.errstate(over="ignore"):    # arithmetic modulo 2**64 is the point
        width = 1
        while 2 * width <= n:
            shorter = powers[width]
            powers[2 * width] = shorter[:-width] * _shift(width) + shorter[width:]
            width *= 2
        hashes, length = None, 0
        for width in sorted(powers, reverse=True):
            if n & width:
                if hashes is None:
                    hashes, length = powers[width], width
                    continue
                count = len(codes) - (length + width) + 1
                hashes = hashes[:count] * _shift(width) + powers[width][length:length + count]
                length += width
    return hashes


def _shift(width: int) -> np.uint64:
    """``B ** width`` modulo ``2**64``."""
    return np.uint64(pow(int(_HASH_BASE), width, 2 ** 64))
