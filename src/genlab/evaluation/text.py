"""Score a fitted text model against held-out documents; :func:`genlab.evaluate` sends text here.

The model draws ``n`` samples (default :data:`TEXT_SAMPLES`) with a seeded generator, each at most
:data:`COMPLETION_TOKENS` new tokens. For Python code (:func:`code_language`) a sample is a *function
completion*: the prompt ``"def "`` and the continuation, cut before the first line that starts at
column 0 (:data:`CODE_STOP`, the dedent that ends a top-level function) or at the token budget; other
text starts from the start token, uncut. What is measured (definitions in :mod:`genlab.metrics.text`):

- ``validity`` (code only): share of completions that ``ast.parse`` accepts;
- ``distinct_1/2/3``: distinct word n-grams / all word n-grams, pooled over the samples (Li et al. 2016);
- ``copied_ngrams`` / ``copied_texts``: share of the samples' 50-character windows found verbatim in the
  training documents, and share of samples (of 50 characters or more) found whole in them;
- ``nll_per_token`` and ``perplexity``: negative log-likelihood in nats per model token and its
  exponential, pooled over the opening :data:`NLL_TOKENS` tokens of up to :data:`NLL_DOCUMENTS` test
  documents (chosen with the seed when there are more), each read from the start token, in sliding
  windows when longer than the context (:meth:`~genlab.models.transformer.TransformerModel.token_log_likelihood`).
  Documents with characters outside a character vocabulary have probability 0; they are left out and
  counted in the note.

Intervals are bias-shifted percentile bootstraps (:mod:`genlab.metrics.bootstrap`): the samples are
redrawn through their per-sample terms (validity flags, n-gram lists, copy counts), the documents
through their (log-likelihood, token count) pairs. The *floor* is the same metric on real held-out text
cut by the same rule: for code, the real top-level functions of the test documents (``def `` at a line
start) cut at the same stop and token budget (so it shows what truncation alone costs a perfect model);
otherwise passages of the same token length from random places in the test documents. As many snippets
as samples are drawn when there are enough. Perplexity has no floor. The same model, data, ``n``,
seed and ``n_bootstrap`` give identical numbers.
"""

from __future__ import annotations

import re
import string
from typing import Any

import numpy as np
import torch

from genlab.data.dataset import Dataset
from genlab.errors import DataError, NotSupportedError
from genlab.evaluation.report import LEVEL, N_BOOTSTRAP, Report
from genlab.metrics import bootstrap_intervals
from genlab.metrics.bootstrap import check_resamples
from genlab.metrics.text import (COPY_CHARS, CopyIndex, copying, copying_scores, ngrams, nll_per_token, parses,
                                 words)
from genlab.models.base import GenerativeModel, check_count

#: Samples drawn when ``n`` is not given (issue 5 scores 200 completions).
TEXT_SAMPLES = 200
#: New tokens per sample at most (after the prompt).
COMPLETION_TOKENS = 256
#: The prompt of a function completion.
CODE_PROMPT = "def "
#: Stop strings of a function completion: a line that starts at column 0 with a letter, ``_``, ``@`` or
#: ``#`` ends a top-level function (its body is indented). The completion is cut before the newline.
CODE_STOP = tuple("\n" + c for c in string.ascii_letters + "_@#")
#: Distinct-n orders reported.
DISTINCT_N = (1, 2, 3)
#: Test documents and tokens per document behind the held-out likelihood (its cost is bounded by these).
NLL_DOCUMENTS = 64
NLL_TOKENS = 512
#: Test documents inspected by :func:`code_language`, and the share of them that must parse.
CODE_CHECK_DOCUMENTS = 50
CODE_SHARE = 0.9
#: Metrics that are shares, in ``[0, 1]`` (their intervals are clipped to it).
SHARES = frozenset({"validity", "copied_ngrams", "copied_texts", *(f"distinct_{k}" for k in DISTINCT_N)})
_TOP_LEVEL_DEF = re.compile(r"(?m)^def ")


def code_language(data: Dataset) -> str | None:
    """``"python"`` when ``data`` is Python code, else ``None``.

    Python means the built-in ``pystdlib`` corpus, or a corpus where at least :data:`CODE_SHARE` of
    (the first :data:`CODE_CHECK_DOCUMENTS`) test documents parse and one defines a top-level function
    (prose of one word per document would parse, but defines nothing).
    """
    if data.name.startswith("pystdlib"):
        return "python"
    documents = [str(doc) for doc in data.x_test[:CODE_CHECK_DOCUMENTS]]
    if not documents or not any(_TOP_LEVEL_DEF.search(doc) for doc in documents):
        return None
    return "python" if sum(map(parses, documents)) >= CODE_SHARE * len(documents) else None


def sampling_options(language: str | None) -> dict[str, Any]:
    """The ``sample`` options of the evaluation's samples: a function completion for Python, else free text."""
    options: dict[str, Any] = {"max_new_tokens": COMPLETION_TOKENS}
    if language == "python":
        options.update(prompt=CODE_PROMPT, stop=CODE_STOP)
    return options


def evaluate_text(model: GenerativeModel, data: Dataset, *, n: int | None = None, seed: int = 0,
                  n_bootstrap: int = N_BOOTSTRAP) -> Report:
    """Sample from a text ``model`` and compare with ``data``'s test documents; see the module docstring.

    Args:
        model: a fitted text model (``sample`` with ``prompt``/``stop``/``max_new_tokens``, and
            ``token_log_likelihood`` where it has a likelihood).
        data: text data; its test documents are the reference, its training documents the copy reference.
        n: samples (default :data:`TEXT_SAMPLES`).
        seed: seed of the samples (``torch.Generator``), the real snippets, the documents and the bootstrap.
        n_bootstrap: bootstrap replicates per interval, ``>= 2``.

    Returns:
        A :class:`~genlab.evaluation.Report`.
    """
    if data.modality != "text":
        raise DataError(f"the text evaluation needs text data; {data.name} holds {data.modality}")
    n = check_count(n) if n is not None else TEXT_SAMPLES
    n_bootstrap = check_resamples(n_bootstrap)
    language = code_language(data)
    fake = [str(text) for text in model.sample(n, generator=torch.Generator().manual_seed(seed),
                                                **sampling_options(language))]
    rng = np.random.default_rng(seed)
    real = real_snippets(data.x_test, n, codec=model.codec_, language=language, rng=rng)
    metrics: dict[str, float] = {}
    intervals: dict[str, tuple[float, float]] = {}
    floor: dict[str, float] = {}

    def add(statistic, sample: np.ndarray, floor_sample: np.ndarray | None) -> None:
        """Value, bootstrap interval and (with ``floor_sample``) floor of one group of metrics."""
        metrics.update(statistic(sample))
        for name, (low, high) in bootstrap_intervals(statistic, sample, n_resamples=n_bootstrap, level=LEVEL,
                                                     rng=rng).items():
            # the bias shift may carry an end past the metric's range (distinct-n of 0.99 and above)
            intervals[name] = (max(low, 0.0), min(high, 1.0) if name in SHARES else high)
        if floor_sample is not None and len(floor_sample):
            floor.update(statistic(floor_sample))

    notes = {f"distinct_{k}": "word n-grams, pooled over samples" for k in DISTINCT_N}
    if language == "python":
        add(lambda flags: {"validity": float(flags.mean())}, np.array([parses(t) for t in fake], dtype=float),
            np.array([parses(t) for t in real], dtype=float))
        notes["validity"] = (f"share of {CODE_PROMPT!r} completions (cut at a column-0 line or "
                             f"{COMPLETION_TOKENS} tokens) that ast.parse accepts")
    add(_distinct_metrics, _ngram_rows(fake), _ngram_rows(real))
    index = CopyIndex.from_texts(str(doc) for doc in data.x_train)
    add(copying_scores, copying(fake, index), copying(real, index) if real else None)
    notes["copied_ngrams"] = f"{COPY_CHARS}-character windows found verbatim in the training text"
    notes["copied_texts"] = f"samples of {COPY_CHARS}+ characters found whole in the training text"
    likelihood = _held_out_likelihood(model, data, rng)
    if likelihood is not None:
        terms, used, skipped = likelihood
        add(_likelihood_metrics, terms, None)
        left_out = f", {skipped} left out (characters outside the vocabulary)" if skipped else ""
        notes["nll_per_token"] = (f"nats per model token: first {NLL_TOKENS} tokens of {used} test "
                                  f"documents{left_out}")
        notes["perplexity"] = "exp(nll_per_token); only comparable between models with one tokenizer"
    return Report(metrics=metrics, n_samples=n, n_real=len(real), seed=seed, dataset=data.name,
                  intervals=intervals, floor=floor, n_bootstrap=n_bootstrap, level=LEVEL, notes=notes)


def real_snippets(documents: np.ndarray, n: int, *, codec: Any, language: str | None,
                  rng: np.random.Generator, max_tokens: int = COMPLETION_TOKENS,
                  stop: tuple[str, ...] = CODE_STOP) -> list[str]:
    """Up to ``n`` pieces of real text cut like the samples (module docstring), for the floor.

    Args:
        documents: object array of held-out documents.
        n: snippets wanted.
        codec: the model's text codec (``tokenize``/``detokenize``), so snippets have as many tokens as
            samples may have.
        language: ``"python"`` for function completions, else ``None`` for passages.
        rng: chooses the functions or the passages' starts.
        max_tokens: tokens after the prompt at most, as the samples' ``max_new_tokens``.
        stop: a function is cut before the first of these (``()``: at the token budget only, for a caller
            that cuts it another way).
    """
    documents = [str(doc) for doc in documents]
    if language == "python":
        starts = [(row, match.start()) for row, doc in enumerate(documents) for match in _TOP_LEVEL_DEF.finditer(doc)]
    else:
        lengths = np.array([len(doc) for doc in documents], dtype=np.int64)
        if lengths.sum() == 0:
            return []
        offsets = rng.integers(0, lengths.sum(), size=n)
        ends = np.cumsum(lengths)
        rows = np.searchsorted(ends, offsets, side="right")
        starts = [(int(row), int(offset - (ends[row] - lengths[row]))) for row, offset in zip(rows, offsets)]
    if language == "python" and len(starts) > n:
        starts = [starts[i] for i in sorted(rng.choice(len(starts), size=n, replace=False))]
    prompt = CODE_PROMPT if language == "python" else ""
    snippets = []
    for row, start in starts:
        # a token is rarely longer than 16 characters, so this much text holds the token budget
        text = documents[row][start + len(prompt):start + len(prompt) + 16 * max_tokens]
        try:
            ids = codec.tokenize(text)[:max_tokens]
        except DataError:
            continue   # characters the model cannot write: it could never produce this snippet
        continuation = codec.detokenize(ids)
        if language == "python":
            cuts = [continuation.find(s) for s in stop if s in continuation]
            continuation = continuation[:min(cuts)] if cuts else continuation
        snippets.append(prompt + continuation)
    return snippets


def _ngram_rows(texts: list[str]) -> np.ndarray:
    """Object array ``(len(texts),)``: per text, a tuple of its word n-gram lists for each order of
    :data:`DISTINCT_N` (the per-sample terms the distinct-n bootstrap redraws)."""
    rows = np.empty(len(texts), dtype=object)
    for i, text in enumerate(texts):
        tokens = words(text)
        rows[i] = tuple(ngrams(tokens, k) for k in DISTINCT_N)
    return rows


def _distinct_metrics(rows: np.ndarray) -> dict[str, float]:
    """``distinct_k`` for each order, pooled over the rows of :func:`_ngram_rows`."""
    scores = {}
    for position, k in enumerate(DISTINCT_N):
        grams = [gram for row in rows for gram in row[position]]
        scores[f"distinct_{k}"] = len(set(grams)) / len(grams) if grams else 0.0
    return scores


def _held_out_likelihood(model: GenerativeModel, data: Dataset,
                         rng: np.random.Generator) -> tuple[np.ndarray, int, int] | None:
    """``(terms (m, 2) of log-likelihood and token count, documents used, documents left out)``, or
    ``None`` when the model has no likelihood."""
    scorer = getattr(model, "token_log_likelihood", None)
    if scorer is None:
        return None
    documents = [str(doc) for doc in data.x_test]
    if len(documents) > NLL_DOCUMENTS:
        documents = [documents[i] for i in sorted(rng.choice(len(documents), size=NLL_DOCUMENTS, replace=False))]
    readable = []
    for doc in documents:
        try:
            model.codec_.tokenize(doc)
        except DataError:
            continue
        readable.append(doc)
    if not readable:
        return None
    try:
        result = scorer(np.array(readable, dtype=object), max_tokens=NLL_TOKENS)
    except NotSupportedError:
        return None
    terms = np.stack([result.log_prob, result.n_tokens.astype(np.float64)], axis=1)   # (m, 2)
    return terms, len(readable), len(documents) - len(readable)


def _likelihood_metrics(terms: np.ndarray) -> dict[str, float]:
    """Pooled ``nll_per_token`` and ``perplexity`` from ``(log-likelihood, tokens)`` rows."""
    nll = nll_per_token(terms[:, 0], terms[:, 1])
    return {"nll_per_token": nll, "perplexity": float(np.exp(nll))}
