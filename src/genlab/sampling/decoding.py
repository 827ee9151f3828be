"""Decoding strategies for autoregressive models: greedy, sampling (temperature, top-k, top-p) and beam
search, over a batch of prompts, with a key/value cache, and streaming.

- Temperature sampling divides the logits by ``T`` before the softmax; ``T = 0`` is greedy (argmax).
- Top-k keeps the ``k`` most likely tokens (Fan et al. 2018).
- Top-p, nucleus sampling, keeps the smallest set of tokens whose probability reaches ``p``
  (Holtzman et al. 2020, "The curious case of neural text degeneration", §3.1).
- The repetition penalty divides positive (multiplies negative) scores of tokens already in the
  sequence by ``penalty`` (Keskar et al. 2019, CTRL, §4.1).
- Beam search keeps the ``num_beams`` best partial sequences by summed log-probability; a finished
  hypothesis scores ``sum log p / length ** length_penalty`` (Wu et al. 2016, GNMT, §7), with the
  stopping rule of Hugging Face ``generate`` so results can be compared token for token.

The model is any module called as ``network(tokens (B, T), cache=, positions=, mask=) -> logits
(B, T, V)`` with ``network.new_cache(batch, length, align=)`` and ``network.block_size`` (see
:class:`genlab.models.transformer.GPT`). Prompts of different lengths are left-padded and masked.
Longer outputs than the context window slide: the last half of the window is re-encoded and decoding
continues. With ``cuda_graphs`` each one-token step has static shapes
(:class:`~genlab.sampling.cuda_graphs.StaticDecodeStep`) and, on CUDA, is replayed as a CUDA graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from genlab.errors import ConfigError
from genlab.nn.attention import DECODE_ALIGN, KVCache, attention_mask
from genlab.sampling.checked_draw import draw_checked
from genlab.sampling.constraint import TokenConstraint, checked
from genlab.sampling.cuda_graphs import StaticDecodeStep
from genlab.sampling.python_syntax import names_resolve, parses
from genlab.sampling.race import race
from genlab.sampling.text_pieces import TextPieces


@dataclass(frozen=True, kw_only=True)
class GenerationConfig:
    """How to continue a prompt.

    Attributes:
        max_new_tokens: tokens to generate after the prompt (fewer when a row ends).
        temperature: softmax temperature; ``0`` is greedy decoding.
        top_k: sample among the ``k`` most likely tokens only; ``None`` for all.
        top_p: nucleus sampling mass in ``(0, 1]``; ``None`` (or 1) for all tokens.
        repetition_penalty: ``>= 1``; 1 leaves scores alone.
        num_beams: beam width; 1 means no beam search.
        length_penalty: exponent of the length normalisation of finished beams.
        early_stopping: beam search stops once ``num_beams`` hypotheses are finished.
        stop: strings that end a row (the text is cut before them); text models only, not with beams.
        use_cache: reuse past keys and values (same output, far fewer operations).
        cuda_graphs: decode each token through a static-shape step (preallocated cache, attention over
            every slot under a mask) captured once as a CUDA graph and replayed: on CUDA at small batch
            this removes the per-kernel launch cost that bounds decoding. On a CPU model the same static
            step runs eagerly: the tokens are the same (up to float rounding of the longer attention
            reduction), with no speed-up. Needs ``use_cache``; the capture (a few tens of ms) is
            repeated for every call.
        logits_processors: callables ``processor(tokens (B, T) int64, scores (B, V) float32) -> scores``
            applied in order after the repetition penalty and before temperature, top-k and top-p, as
            Hugging Face applies its ``LogitsProcessor`` list (watermarks, constraints). ``tokens`` are
            each row's ids so far, left-padded; in beam search ``scores`` are log-probabilities. Python
            only (a callable is not JSON). A :class:`~genlab.sampling.constraint.TokenConstraint` whose full
            mask is costly is asked about the drawn token only when sampling (same distribution).
    """

    max_new_tokens: int = 256
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0
    num_beams: int = 1
    length_penalty: float = 1.0
    early_stopping: bool = False
    stop: tuple[str, ...] = ()
    use_cache: bool = True
    cuda_graphs: bool = False
    logits_processors: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty < 1:
            raise ValueError(f"repetition_penalty must be >= 1, got {self.repetition_penalty}")
        if self.num_beams < 1:
            raise ValueError(f"num_beams must be at least 1, got {self.num_beams}")
        if self.num_beams > 1 and (self.top_k is not None or self.top_p is not None or self.stop
                                   or self.temperature not in (0.0, 1.0)):
            raise ValueError("beam search is deterministic: it takes no temperature, top_k, top_p or stop")
        if any(not s for s in self.stop):
            raise ValueError("stop strings must not be empty")
        if self.cuda_graphs and not self.use_cache:
            raise ValueError("cuda_graphs replays cached decoding steps: it needs use_cache=True")
        if any(not callable(p) for p in self.logits_processors):
            raise ValueError("logits_processors must be callables (tokens, scores) -> scores")

    @property
    def greedy(self) -> bool:
        """Whether each step takes the most likely token."""
        return self.temperature == 0.0


# ----------------------------------------------------------------------------------- token choice
def process_logits(logits: torch.Tensor, seen: torch.Tensor | None, config: GenerationConfig,
                   tokens: torch.Tensor | None = None, *, skip: tuple[TokenConstraint, ...] = ()) -> torch.Tensor:
    """Apply the repetition penalty, the logits processors, temperature, top-k and top-p to ``logits
    (B, V)``; removed tokens get ``-inf``. ``seen`` is a bool ``(B, V)`` of tokens already in each
    sequence (for the penalty); ``tokens (B, T)`` the sequences so far (for the processors). Constraints
    in ``skip`` check the drawn token instead (:func:`draw_checked`, which then applies temperature, top-k
    and top-p itself): with any, they are left out and the scores are returned before temperature."""
    logits = logits.float()
    if config.repetition_penalty != 1.0 and seen is not None:
        penalised = torch.where(logits < 0, logits * config.repetition_penalty, logits / config.repetition_penalty)
        logits = torch.where(seen, penalised, logits)
    if config.logits_processors:
        if tokens is None:
            raise ValueError("logits processors need the tokens so far")
        for processor in config.logits_processors:
            logits = logits if any(processor is c for c in skip) else processor(tokens, logits)
    if config.greedy or config.num_beams > 1 or skip:
        return logits
    logits = logits / config.temperature
    if config.top_k is not None and config.top_k < logits.shape[-1]:
        kth = torch.topk(logits, config.top_k, dim=-1).values[:, -1:]                # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if config.top_p is not None and config.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1)                            # ascending
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        remove = cumulative <= 1 - config.top_p                                     # the unlikely tail
        remove[:, -1] = False                                                        # keep the best token
        logits = logits.masked_fill(remove.scatter(1, order, remove), float("-inf"))
    return logits


def choose(logits: torch.Tensor, config: GenerationConfig, generator: torch.Generator | None) -> torch.Tensor:
    """The next token ``(B,)`` from processed ``logits (B, V)``: argmax, or a draw from the softmax."""
    if config.greedy:
        return logits.argmax(-1)
    return race(logits.softmax(-1), generator)


# ----------------------------------------------------------------------------------- the decoding state
class _Context:
    """Left-padded sequences, their validity, and the cache, feeding the model one step at a time."""

    def __init__(self, network: Any, prompts: Sequence[Sequence[int]], config: GenerationConfig,
                 pad: int, device: torch.device) -> None:
        if not prompts or any(len(p) == 0 for p in prompts):
            raise ConfigError("every prompt needs at least one token (the start token)")
        self.network, self.use_cache = network, config.use_cache
        length = max(len(p) for p in prompts)
        self.tokens = torch.full((len(prompts), length), pad, dtype=torch.long, device=device)
        self.valid = torch.zeros((len(prompts), length), dtype=torch.bool, device=device)
        for row, prompt in enumerate(prompts):
            self.tokens[row, length - len(prompt):] = torch.as_tensor(list(prompt), dtype=torch.long)
            self.valid[row, length - len(prompt):] = True
        self.padded = not bool(self.valid.all())
        self.capacity = min(network.block_size, length + config.max_new_tokens)
        self.cache: KVCache | None = None
        self.static = StaticDecodeStep(network, len(prompts), self.capacity) if config.cuda_graphs else None
        self.cache_start = 0         # column of self.tokens held at cache position 0
        self.position: torch.Tensor | None = None   # (B,) position of the next token

    def append(self, token: torch.Tensor) -> None:
        """Add one token ``(B,)`` to every row."""
        self.tokens = torch.cat([self.tokens, token[:, None]], dim=1)
        self.valid = torch.cat([self.valid, torch.ones_like(self.valid[:, :1])], dim=1)

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows ``index`` (beam search)."""
        self.tokens, self.valid = self.tokens[index], self.valid[index]
        if self.position is not None:
            self.position = self.position[index]
        if self.cache is not None:
            self.cache.reorder(index)

    def next_logits(self) -> torch.Tensor:
        """Logits ``(B, V)`` of the token after the current last one."""
        length = self.tokens.shape[1]
        if self.use_cache and self.cache is not None and self.cache.length < self.capacity:
            key_valid = self.valid[:, self.cache_start:] if self.padded else None
            if self.static is not None:
                logits = self.static(self.tokens[:, -1], self.position, key_valid)   # (B, V)
            else:
                mask = attention_mask(1, self.cache.length, key_valid) if self.padded else None
                logits = self.network(self.tokens[:, -1:], cache=self.cache, positions=self.position[:, None],
                                      mask=mask)[:, -1]
            self.cache.advance(1)
            self.position = self.position + 1
            return logits
        # (Re-)encode a window: the whole sequence while it fits, else its last half-context.
        keep = length if length <= self.capacity else max(1, self.capacity // 2)
        if not self.use_cache:
            keep = min(length, self.network.block_size)
        start = length - keep
        window, valid = self.tokens[:, start:], self.valid[:, start:]
        positions = (valid.long().cumsum(1) - 1).clamp_min(0)                        # (B, keep)
        mask = attention_mask(keep, 0, valid) if self.padded else None
        cache = None
        if self.static is not None:   # the static step's cache keeps its buffers: its graph reads them there
            cache = self.static.reset()
        elif self.use_cache:
            # block-aligned reads: the very arithmetic of a row in a continuous batch (batch_decoding)
            cache = self.network.new_cache(len(window), self.capacity, align=DECODE_ALIGN)
        logits = self.network(window, cache=cache, positions=positions, mask=mask)
        if cache is not None:
            cache.advance(keep)
            self.cache, self.cache_start = cache, start
            self.position = positions[:, -1] + 1
        return logits[:, -1]

    def seen(self, vocab: int) -> torch.Tensor:
        """bool ``(B, V)``: tokens present (unpadded) in each row."""
        seen = torch.zeros(self.tokens.shape[0], vocab, dtype=torch.bool, device=self.tokens.device)
        rows = torch.arange(self.tokens.shape[0], device=self.tokens.device)[:, None].expand_as(self.tokens)
        seen[rows[self.valid], self.tokens[self.valid]] = True
        return seen


def _limit(logits: torch.Tensor, vocab_limit: int | None) -> torch.Tensor:
    if vocab_limit is not None and vocab_limit < logits.shape[-1]:
        logits = logits.clone()
        logits[:, vocab_limit:] = float("-inf")
    return logits


# ----------------------------------------------------------------------------------- greedy / sampling
def _steps(network: Any, prompts: Sequence[Sequence[int]], config: GenerationConfig,
           generator: torch.Generator | None, eos: int | None, vocab_limit: int | None,
           ended: Callable[[int, list[int]], bool] | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(token (B,), finished (B,))`` after every step of greedy decoding or sampling."""
    device = next(network.parameters()).device
    context = _Context(network, prompts, config, pad=0 if eos is None else eos, device=device)
    finished = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    new: list[list[int]] = [[] for _ in prompts]
    constraints = checked(config.logits_processors)   # those that judge the drawn token, not every candidate
    for _ in range(config.max_new_tokens):
        logits = _limit(context.next_logits(), vocab_limit)
        seen = context.seen(logits.shape[-1]) if config.repetition_penalty != 1.0 else None
        scores = process_logits(logits, seen, config, context.tokens, skip=constraints)
        token = draw_checked(scores, context.tokens, constraints, temperature=config.temperature, top_k=config.top_k,
                             top_p=config.top_p, generator=generator) if constraints else \
            choose(scores, config, generator)
        if eos is not None:
            token = torch.where(finished, torch.full_like(token, eos), token)
        context.append(token)
        done_now = finished.clone()
        if eos is not None:
            done_now |= token == eos
        if ended is not None:
            for row, value in enumerate(token.tolist()):
                if not finished[row]:
                    new[row].append(value)
                    if ended(row, new[row]):
                        done_now[row] = True
        yield token, finished
        finished = done_now
        if bool(finished.all()):
            return


@torch.inference_mode()
def generate(network: Any, prompts: Sequence[Sequence[int]], config: GenerationConfig, *,
             generator: torch.Generator | None = None, eos: int | None = None,
             vocab_limit: int | None = None, ended: Callable[[int, list[int]], bool] | None = None,
             ) -> list[list[int]]:
    """Continue every prompt; return each row's new token ids (up to, not including, ``eos``).

    Args:
        network: the autoregressive model (see the module docstring), in eval mode.
        prompts: token ids per row, each at least one token long.
        config: the decoding strategy.
        generator: randomness of sampling (unused by greedy and beam search).
        eos: token that ends a row, or ``None`` to always produce ``max_new_tokens``.
        vocab_limit: only ids below this may be generated (e.g. pixel levels, not class tokens).
        ended: ``ended(row, new_ids) -> bool`` ends a row early (stop strings).
    """
    if config.num_beams > 1:
        return beam_search(network, prompts, config, eos=eos, vocab_limit=vocab_limit)
    outputs: list[list[int]] = [[] for _ in prompts]
    for token, finished in _steps(network, prompts, config, generator, eos, vocab_limit, ended):
        for row, (value, done) in enumerate(zip(token.tolist(), finished.tolist())):
            if not done and value != eos:
                outputs[row].append(value)
    return outputs


def stream(network: Any, prompt: Sequence[int], config: GenerationConfig, detokenize: Callable[[list[int]], str],
           *, generator: torch.Generator | None = None, eos: int | None = None) -> Iterator[str]:
    """Yield the text of one continuation piece by piece as it is generated (greedy or sampling).

    A piece is the text the newest token completes; a byte-level token that ends inside a character
    is held back until the character is whole. Stop strings end the stream before they are yielded
    (:class:`~genlab.sampling.text_pieces.TextPieces`), and so does a constraint's own end of the sample (``ends``: the rest of the text
    it keeps is yielded, the token's piece is not; text already yielded past that end, such as the blank
    lines before the line that ends a Python sample, stays yielded).
    """
    if config.num_beams > 1:
        raise ConfigError("streaming needs greedy decoding or sampling, not beam search")
    pieces = TextPieces(detokenize, config.stop)
    constraints = checked(config.logits_processors)
    for token, finished in _steps(network, [list(prompt)], config, generator, eos, None, None):
        if bool(finished[0]) or (eos is not None and int(token[0]) == eos):
            break
        kept = next((text for c in constraints if (text := c.ends(0, int(token[0]))) is not None), None)
        if kept is not None:
            if len(kept) > len(pieces.sent):
                yield kept[len(pieces.sent):]
            return
        piece = pieces.add(int(token[0]))
        if piece:
            yield piece
        if pieces.stopped:
            return
    rest = pieces.flush()
    if rest:
        yield rest


# ----------------------------------------------------------------------------------- beam search
class _Hypotheses:
    """The ``num_beams`` best finished sequences of one prompt, scored ``sum log p / len ** alpha``."""

    def __init__(self, num_beams: int, length_penalty: float, early_stopping: bool) -> None:
        self.num_beams, self.length_penalty, self.early_stopping = num_beams, length_penalty, early_stopping
        self.items: list[tuple[float, list[int]]] = []

    def add(self, tokens: list[int], sum_log_probs: float, length: int) -> None:
        score = sum_log_probs / max(length, 1) ** self.length_penalty
        if len(self.items) < self.num_beams or score > self.worst:
            self.items.append((score, tokens))
            self.items.sort(key=lambda item: -item[0])
            del self.items[self.num_beams:]

    @property
    def worst(self) -> float:
        return self.items[-1][0] if self.items else float("-inf")

    def done(self, best_running: float, length: int) -> bool:
        """No running beam can beat the worst kept hypothesis any more."""
        if len(self.items) < self.num_beams:
            return False
        if self.early_stopping:
            return True
        return self.worst >= best_running / max(length, 1) ** self.length_penalty


@torch.inference_mode()
def beam_search(network: Any, prompts: Sequence[Sequence[int]], config: GenerationConfig, *,
                eos: int | None = None, vocab_limit: int | None = None) -> list[list[int]]:
    """The best beam's new tokens for every prompt (see :func:`generate`)."""
    device = next(network.parameters()).device
    K, B = config.num_beams, len(prompts)
    context = _Context(network, [p for p in prompts for _ in range(K)], config,
                       pad=0 if eos is None else eos, device=device)
    prompt_length = context.tokens.shape[1]
    scores = torch.full((B, K), -1e9, device=device)
    scores[:, 0] = 0.0                          # only the first copy of each prompt expands at step 1
    hypotheses = [_Hypotheses(K, config.length_penalty, config.early_stopping) for _ in range(B)]
    done = [False] * B
    for step in range(config.max_new_tokens):
        logits = _limit(context.next_logits(), vocab_limit)                       # (B*K, V)
        log_probs = F.log_softmax(logits.float(), dim=-1)
        if config.repetition_penalty != 1.0 or config.logits_processors:
            seen = context.seen(log_probs.shape[-1]) if config.repetition_penalty != 1.0 else None
            log_probs = process_logits(log_probs, seen, config, context.tokens)
        V = log_probs.shape[-1]
        total = (log_probs + scores.reshape(B * K, 1)).reshape(B, K * V)           # (B, K*V)
        top_scores, top_index = torch.topk(total, 2 * K, dim=1)                    # (B, 2K)
        parents, tokens = top_index // V, top_index % V
        next_scores = torch.full((B, K), -1e9, device=device)
        next_rows = torch.zeros((B, K), dtype=torch.long, device=device)
        next_tokens = torch.zeros((B, K), dtype=torch.long, device=device)
        for b in range(B):
            if done[b]:
                next_rows[b] = b * K   # keep feeding a finished prompt; its beams are ignored
                continue
            slot = 0
            for rank, (score, parent, token) in enumerate(zip(top_scores[b].tolist(), parents[b].tolist(),
                                                               tokens[b].tolist())):
                row = b * K + parent
                if eos is not None and token == eos:
                    if rank < K:
                        hypotheses[b].add(context.tokens[row, prompt_length:].tolist(), score, step + 1)
                    continue
                next_scores[b, slot], next_rows[b, slot], next_tokens[b, slot] = score, row, token
                slot += 1
                if slot == K:
                    break
            done[b] = hypotheses[b].done(float(top_scores[b].max()), step + 1)
        context.reorder(next_rows.reshape(-1))
        context.append(next_tokens.reshape(-1))
        scores = next_scores
        if all(done):
            break
    length = context.tokens.shape[1] - prompt_length
    for b in range(B):
        if not done[b]:
            for k in range(K):
                hypotheses[b].add(context.tokens[b * K + k, prompt_length:].tolist(), float(scores[b, k]), length)
    return [hypotheses[b].items[0][1] for b in range(B)]


# ----------------------------------------------------------------------------------- verification
#: Checks ``genlab sample --verify NAME`` can apply to generated text: ``python`` parses,
#: ``python-names`` parses and pyflakes finds no undefined name (:func:`~genlab.sampling.python_syntax.names_resolve`).
VERIFIERS: dict[str, Callable[[str], bool]] = {"python": parses, "python-names": names_resolve}
#: The checks each verification passes through, in order; each one's pass rate is reported.
LEVELS: dict[str, tuple[str, ...]] = {"python": ("python",), "python-names": ("python", "python-names")}


@dataclass(frozen=True)
class Verified:
    """Samples that passed a check, and how many were drawn to find them.

    Attributes:
        samples: the accepted texts (at most the number asked for).
        passed: texts that passed in total (may exceed ``len(samples)`` in the last batch).
        drawn: texts generated in total.
        levels: for each check of ``LEVELS[verify]``, the drawn texts that passed it.
    """

    samples: list[str]
    passed: int
    drawn: int
    levels: dict[str, int] = field(default_factory=dict)

    @property
    def validity(self) -> float:
        """Share of drawn texts that passed, in ``[0, 1]``."""
        return self.passed / self.drawn if self.drawn else 0.0


def sample_verified(model: Any, n: int, verify: str, *, generator: torch.Generator | None = None,
                    max_draws: int | None = None, **options: Any) -> Verified:
    """Draw text samples in batches of ``n`` until ``n`` pass ``VERIFIERS[verify]`` or ``max_draws``
    (default ``10 n``) have been drawn.

    Raises:
        ConfigError: ``verify`` is not a known check.
    """
    if verify not in VERIFIERS:
        raise ConfigError(f"unknown verification {verify!r}; choose one of: {', '.join(sorted(VERIFIERS))}")
    limit = max_draws if max_draws is not None else 10 * n
    accepted: list[str] = []
    levels = dict.fromkeys(LEVELS[verify], 0)
    drawn = 0
    while len(accepted) < n and drawn < limit:
        batch = model.sample(min(n, limit - drawn), generator=generator, **options)
        drawn += len(batch)
        for text in map(str, batch):
            passing = True
            for level in levels:   # each level only on the texts that passed the ones before
                passing = passing and VERIFIERS[level](text)
                levels[level] += passing
            if passing:
                accepted.append(text)
    return Verified(samples=accepted[:n], passed=len(accepted), drawn=drawn, levels=levels)
