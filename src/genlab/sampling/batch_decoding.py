"""Continuous batching: many text continuations decoded together, one network step per token over every
live sequence, sequences joining and leaving between steps (iteration-level scheduling, Yu et al. 2022,
"Orca", §3.1; vLLM's scheduler without paging).

Each sequence keeps what it keeps when decoded alone by :func:`~genlab.sampling.decoding.stream`: its
own token ids, its own keys and values (a row, or *slot*, of one shared
:class:`~genlab.nn.attention.SlotCache`, filled as the lone call fills its own cache, and full at the
lone call's capacity ``min(block_size, prompt + max_new_tokens)``), its own generator, temperature,
top-k, top-p, repetition penalty, stop strings and token budget. A step

1. drops cancelled sequences and admits waiting ones up to ``max_sequences``, each taking a free slot;
2. encodes the sequences that need a window exactly as the lone call does: a newcomer's prompt, or the last
   half-context once its cache is full (the sliding window of ``decoding._Context``); windows of one length
   go through the network in one call where that is bit-identical to each alone
   (:meth:`~genlab.sampling.row_exact.RowExactStep.encode`), else each alone;
3. decodes the others together in one :class:`~genlab.sampling.row_exact.RowExactStep`, attention
   included (one call over every slot), which gives each row the logits it gets alone, bit for bit;
4. chooses each sequence's token as :func:`~genlab.sampling.decoding.choose` after
   :func:`~genlab.sampling.decoding.process_logits` chooses it alone, with its own options and its own
   generator: a row with a repetition penalty, top-k or top-p is processed on its own, while temperatures,
   the softmax, the argmax and the exponential race (:func:`~genlab.sampling.race.race`) run over all
   rows at once (elementwise and row-wise kernels give each row its own bits), each row's noise drawn from
   its own generator, a few tokens ahead (:class:`~genlab.sampling.race.NoiseAhead`); the text advances
   through :class:`~genlab.sampling.text_pieces.TextPieces`.

Where a 16-row step's time went (cProfile and py-spy of the served char GPT, 2 layers of 64, on a shared
2-core CPU, rough): a little over half in the network (the linear layers as batches of one-row products, which
row-exactness requires, and attention); of the rest, per-row Python: an ``exponential_`` call per row per
token, the text a token at a time (``detokenize`` and the stop-string scan), an update object per row, and
module calls. Those are now a call per row every few tokens, a dict lookup, a named tuple and plain
functions; what is left per row is the bookkeeping of its token, text and slot.

So a sequence draws the very tokens, and sends the very pieces, that ``stream(network, prompt, config,
detokenize, generator=g, eos=eos)`` yields for it, whoever else is decoded beside it. Greedy decoding and
sampling only: beam search and logits processors (:meth:`BatchDecoder.accepts`) run one call at a time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import torch

from genlab.errors import ConfigError
from genlab.sampling.decoding import GenerationConfig, process_logits
from genlab.sampling.text_pieces import TextPieces
from genlab.sampling.race import NoiseAhead
from genlab.sampling.row_exact import RowExactStep


#: Tokens of race noise a sequence draws ahead at most, and values (tokens times vocabulary) a draw keeps under.
NOISE_DEPTH, NOISE_VALUES = 8, 65536


@dataclass(eq=False)
class DecodingSequence:
    """One continuation: its options and randomness, and its decoding state.

    Attributes:
        prompt: the token ids it continues (at least one: the start token).
        config: its decoding options (greedy or sampling).
        generator: its randomness.
        tag: the caller's (e.g. which request and choice it answers).
        tokens: prompt and drawn ids so far.
        text: its text so far, piece by piece.
        drawn: tokens drawn (``eos`` included).
        finish: ``None`` while it runs, then ``"eos"``, ``"stop"`` (a stop string), ``"length"`` (the budget)
            or ``"cancelled"``.
        slot: its row of the decoder's :class:`~genlab.nn.attention.SlotCache` while it holds a place, else
            ``None`` (freed the moment it ends or is cancelled).
        length: positions in its slot (0: not encoded yet).
        position: position embedding index of its next token.
        capacity: positions its slot may hold before the window slides (as the lone call's cache).
        noise_left: rows of race noise its slot holds drawn ahead from its generator and not yet used, ``-1``
            before the first (:class:`~genlab.sampling.race.NoiseAhead`; the generator is that much further on
            than alone).
    """

    prompt: list[int]
    config: GenerationConfig
    generator: torch.Generator | None
    tag: Any = None
    tokens: list[int] = field(default_factory=list)
    text: TextPieces | None = None
    drawn: int = 0
    finish: str | None = None
    slot: int | None = None
    length: int = 0
    position: int = 0
    capacity: int = 0
    noise_left: int = -1

    @property
    def done(self) -> bool:
        """Whether it has ended (or was cancelled)."""
        return self.finish is not None


class Update(NamedTuple):
    """What one step did to one sequence: the text pieces it made final (possibly none) and whether it ended.
    (A named tuple: made for every sequence at every step, it is built in a third of a frozen dataclass's time.)"""

    sequence: DecodingSequence
    pieces: tuple[str, ...]
    done: bool


class BatchDecoder:
    """The sequences being decoded together over one network, stepped by :meth:`step` (module doc).

    Not thread-safe: one thread adds, cancels and steps (the server's decoding loop).

    Args:
        network: a GPT-2-layout network in eval mode (see :mod:`genlab.sampling.row_exact`).
        eos: the token that ends a continuation.
        detokenize: token ids -> text.
        max_sequences: the most sequences decoded at once; more wait, first come first served.

    Raises:
        NotSupportedError: the network's step cannot be made row-exact (decode one sequence at a time).
    """

    def __init__(self, network: Any, *, eos: int, detokenize: Callable[[list[int]], str],
                 max_sequences: int = 64) -> None:
        if max_sequences < 1:
            raise ConfigError(f"max_sequences must be at least 1, got {max_sequences}")
        self.network, self.eos, self.detokenize, self.max_sequences = network, eos, detokenize, max_sequences
        self.row_step = RowExactStep(network, max_rows=max_sequences)
        self.noise: NoiseAhead | None = None   # made at the first draw, for the logits' width
        self.cache = self.row_step.new_cache()
        self.device = next(network.parameters()).device
        self._running: list[DecodingSequence] = []
        self._waiting: deque[DecodingSequence] = deque()
        #: Sequences decoded together at each batched step so far (for tests and benchmarks).
        self.batch_sizes: list[int] = []
        self._texts: dict[int, str] = {}   # token -> text, shared by the sequences' TextPieces (additive codecs)
        #: Windows encoded by each call of the network that encodes windows (for tests and benchmarks).
        self.encode_sizes: list[int] = []

    @staticmethod
    def accepts(config: GenerationConfig) -> bool:
        """Whether ``config`` decodes here: greedy or sampling with a cache, no beams, no logits processors."""
        return (config.num_beams == 1 and not config.logits_processors and config.use_cache
                and not config.cuda_graphs)

    @property
    def running(self) -> int:
        """Sequences holding a place in the batch (each with its slot of the cache)."""
        return len(self._running)

    @property
    def waiting(self) -> int:
        """Sequences waiting for a place."""
        return len(self._waiting)

    def add(self, prompt: list[int], config: GenerationConfig, *, generator: torch.Generator | None = None,
            tag: Any = None) -> DecodingSequence:
        """Queue a continuation of ``prompt``; it joins the batch at the next step with a free place.

        Raises:
            ConfigError: an empty prompt, or options this decoder does not take (:meth:`accepts`).
        """
        if not prompt:
            raise ConfigError("every prompt needs at least one token (the start token)")
        if not self.accepts(config):
            raise ConfigError("continuous batching decodes greedily or by sampling, with a cache: beam search, "
                              "logits processors and cuda_graphs decode one request at a time")
        sequence = DecodingSequence(list(prompt), config, generator, tag, tokens=list(prompt),
                                    text=TextPieces(self.detokenize, config.stop, self._texts),
                                    capacity=min(self.network.block_size, len(prompt) + config.max_new_tokens))
        self._waiting.append(sequence)
        return sequence

    def cancel(self, sequence: DecodingSequence) -> None:
        """End ``sequence`` now and free its slot; its place in the batch goes at the start of the next step."""
        if sequence.finish is None:
            sequence.finish = "cancelled"
        self._free(sequence)

    def clear(self) -> list[DecodingSequence]:
        """Drop every sequence (e.g. after the network failed); returns those that had not ended."""
        dropped = [s for s in (*self._running, *self._waiting) if not s.done]
        for sequence in dropped:
            sequence.finish = "cancelled"
        for sequence in self._running:
            self._free(sequence)
        self._running, self._waiting = [], deque()
        return dropped

    def _free(self, sequence: DecodingSequence) -> None:
        if sequence.slot is not None:
            self.cache.release(sequence.slot)
            sequence.slot = None

    @torch.inference_mode()
    def step(self) -> list[Update]:
        """One token for every sequence in the batch (after admitting waiting ones); an update each."""
        self._running = [s for s in self._running if not s.done]
        self._waiting = deque(s for s in self._waiting if not s.done)
        while self._waiting and len(self._running) < self.max_sequences:
            sequence = self._waiting.popleft()
            sequence.slot = self.cache.acquire()
            self._running.append(sequence)
        if not self._running:
            return []
        logits: list[torch.Tensor | None] = [None] * len(self._running)
        together = []
        windows: dict[int, list[int]] = {}   # window length -> the sequences encoding one of that length
        for index, sequence in enumerate(self._running):
            if 0 < sequence.length < sequence.capacity:
                together.append(index)
            else:
                windows.setdefault(self._window(sequence), []).append(index)
        for keep, indices in windows.items():
            if self.row_step.encodes_together(len(indices), keep):
                encoded = self._encode([self._running[i] for i in indices], keep)             # (W, V)
                for row, index in enumerate(indices):
                    logits[index] = encoded[row:row + 1]
            else:
                for index in indices:
                    logits[index] = self._encode([self._running[index]], keep)
        if together:
            together.sort(key=lambda i: self._running[i].slot)   # slots 0 .. B-1 in order need no idle rows
            rows = [self._running[i] for i in together]
            tokens, positions = torch.tensor([[s.tokens[-1] for s in rows], [s.position for s in rows]],
                                             dtype=torch.long, device=self.device).unbind(0)        # (B,) each
            batched = self.row_step(tokens, positions, self.cache, [s.slot for s in rows],
                                    [s.length for s in rows])                                 # (B, V)
            self.batch_sizes.append(len(rows))
            for sequence in rows:
                sequence.length += 1
                sequence.position += 1
            if len(rows) == len(self._running):   # the common step, no window encoded: one gather, if any
                if together != list(range(len(rows))):
                    order = [0] * len(rows)
                    for row, index in enumerate(together):
                        order[index] = row
                    batched = batched[order]
                logits = [batched]
            else:
                for row, index in enumerate(together):
                    logits[index] = batched[row:row + 1]
        tokens = self._choose(self._running, logits)
        advance = self._advance
        updates = [advance(sequence, token) for sequence, token in zip(self._running, tokens)]
        self._running = [s for s in self._running if not s.done]
        return updates

    @staticmethod
    def _window(sequence: DecodingSequence) -> int:
        """Tokens of the window the sequence encodes, as ``decoding._Context`` encodes a lone unpadded row:
        the whole sequence while it fits its capacity, else its last half-context."""
        length = len(sequence.tokens)
        return length if length <= sequence.capacity else max(1, sequence.capacity // 2)

    def _encode(self, sequences: list[DecodingSequence], keep: int) -> torch.Tensor:
        """Logits ``(W, V)`` after encoding each sequence's last ``keep`` tokens into its slot: alone, as the
        lone call encodes it, or several in one call where that is bit-identical
        (:meth:`~genlab.sampling.row_exact.RowExactStep.encodes_together`)."""
        window = torch.tensor([s.tokens[len(s.tokens) - keep:] for s in sequences], dtype=torch.long,
                              device=self.device)                                               # (W, keep)
        for sequence in sequences:
            sequence.length, sequence.position = keep, keep
        self.encode_sizes.append(len(sequences))
        if len(sequences) > 1:
            return self.row_step.encode(window, self.cache, [s.slot for s in sequences])
        positions = torch.arange(keep, device=self.device)[None]                                 # (1, keep)
        logits = self.network(window, cache=self.cache.row(sequences[0].slot), positions=positions, mask=None)
        return logits[:, -1]

    def _choose(self, sequences: list[DecodingSequence], logits: list[torch.Tensor]) -> list[int]:
        """Each sequence's next token from its logits (``(1, V)`` each, or one ``(B, V)`` of them all): the token
        ``choose(process_logits(...))`` picks for it alone (module doc, step 4)."""
        scores = (logits[0] if len(logits) == 1 else torch.cat(logits)).float()       # (B, V)
        configs = [sequence.config for sequence in sequences]
        plains = [_plain(config) for config in configs]
        sampled = [i for i, config in enumerate(configs) if not config.greedy]
        plain = [i for i in sampled if plains[i]]
        if plain:   # process_logits of a plain row is its division by the temperature
            temperature = torch.tensor([configs[i].temperature for i in plain], dtype=scores.dtype,
                                       device=scores.device)
            if len(plain) == len(sequences):   # the common case: no row copied out and back
                scores.div_(temperature[:, None])
            else:
                scores[plain] = scores[plain] / temperature[:, None]
        for i, config in enumerate(configs):
            if not plains[i]:
                seen = None
                if config.repetition_penalty != 1.0:
                    seen = torch.zeros(1, scores.shape[-1], dtype=torch.bool, device=scores.device)
                    seen[0, torch.tensor(sequences[i].tokens, device=scores.device)] = True
                scores[i:i + 1] = process_logits(scores[i:i + 1], seen, config)
        if len(sampled) == len(sequences):
            tokens = self._race(scores.softmax(-1), sequences)                        # (B,)
        else:
            tokens = scores.argmax(-1)                                                  # (B,) greedy rows
            if sampled:
                tokens[sampled] = self._race(scores[sampled].softmax(-1), [sequences[i] for i in sampled])
        return tokens.tolist()

    def _race(self, probs: torch.Tensor, sequences: list[DecodingSequence]) -> torch.Tensor:
        """:func:`~genlab.sampling.race.race` of ``probs (B, V)``, each row's noise from its sequence's generator,
        drawn ahead (:class:`~genlab.sampling.race.NoiseAhead`)."""
        if self.noise is None:
            vocab = probs.shape[-1]
            self.noise = NoiseAhead(vocab, max(1, min(NOISE_DEPTH, NOISE_VALUES // vocab)), device=probs.device,
                                    dtype=probs.dtype)
        left = [sequence.noise_left for sequence in sequences]
        noise = self.noise.rows([sequence.slot for sequence in sequences], left,
                                [sequence.generator for sequence in sequences])               # (B, V)
        for sequence, count in zip(sequences, left):
            sequence.noise_left = count
        return (probs / noise).argmax(-1)

    def _advance(self, sequence: DecodingSequence, token: int) -> Update:
        """Append the sequence's chosen token and advance its text."""
        sequence.tokens.append(token)
        sequence.drawn += 1
        if token != self.eos:
            text = sequence.text
            piece = text.add(token)
            if text.stopped:
                sequence.finish = "stop"
            elif sequence.drawn < sequence.config.max_new_tokens:   # the common case: on it goes
                return Update(sequence, (piece,) if piece else (), False)
            else:
                sequence.finish = "length"
            pieces = (piece,)
        else:
            sequence.finish, pieces = "eos", ()
        if sequence.finish != "stop":
            pieces += (sequence.text.flush(),)
        self._free(sequence)   # now, not when the list is next filtered
        return Update(sequence, tuple(piece for piece in pieces if piece), True)


def _plain(config: GenerationConfig) -> bool:
    """Whether ``process_logits`` does nothing to a row but divide it by the temperature (or, greedy, nothing)."""
    return config.repetition_penalty == 1.0 and config.top_k is None and config.top_p is None
