"""Continuous batching in ``genlab serve``: the completions of every request to one text model decode
together, one network step a token over every live sequence (:mod:`genlab.sampling.batch_decoding`).

Per model, a decoding thread owns a :class:`~genlab.sampling.batch_decoding.BatchDecoder`. Requests
hand it their sequences (one per choice, choice ``i`` with its own generator seeded ``seed + i``) and
read back what each step made final: text pieces, the end of a choice, or the error that stopped the
model. Between steps the thread admits new sequences and drops cancelled ones, so a request joins a
batch already under way and a client that disconnects frees its places at the next step. A step wakes each
event loop at most once, and not while an earlier wake-up is still pending there: a loop that falls behind
takes several steps' events at once, and its readers write them in one send each. Each step
holds the model's lock, so the model's other routes run between steps, never during one.

With many streams live, each stream's pieces go out every few tokens rather than every token (vLLM's
``stream_interval``, here scaled by the load): with ``R`` sequences decoding, a request's events are handed
over every ``ceil(R / STREAMS_PER_STEP)`` steps that made some, so a step makes about ``STREAMS_PER_STEP``
streams' writes whatever ``R`` is. A write is the reader's wake-up, an SSE send and the client's read: the
event loop runs it holding the GIL the decoding thread needs for its next step, and the client runs it on the
same cores. A request's first events (its time to first token), a choice's end and the request's end go out
at once; the chunks a client reads are the same, only fewer writes carry them. At ``R <= STREAMS_PER_STEP``
every token goes out as it is made. (Exploration on a shared 2-core CPU, 16 streams of 128 tokens, three
interleaved runs: the client's CPU per step fell from 0.53-0.81 ms to 0.32-0.42 ms, the server's from
0.83-1.12 ms to 0.76-1.03 ms; rough figures under load.)

A model decodes here when its records are text (a token codec with ``tokenize``/``detokenize``), its
network has GPT-2's layout and passes the row-exact probe, and it carries no sample processors of its own
(a text watermark's logits processor); otherwise its completions run one at a time through
``model.sample`` / ``model.stream``, as with ``--no-continuous-batching``. Beam search and logits
processors never reach this route (``POST /v1/completions`` offers neither).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from starlette.concurrency import run_in_threadpool

from genlab.data.text import TextCodec
from genlab.errors import NotSupportedError
from genlab.sampling.batch_decoding import BatchDecoder, DecodingSequence, Update
from genlab.sampling.decoding import GenerationConfig
from genlab.serve.registry import LoadedModel

log = logging.getLogger(__name__)

#: Seconds a decoding thread waits for work before it ends (the next request starts another).
IDLE_S = 5.0
#: Streams a decoding step hands text to, about, however many are live (module doc).
STREAMS_PER_STEP = 2


class Event(NamedTuple):
    """What a step did to choice ``index`` of a request: pieces of text made final, and whether it ended (a
    named tuple: one is made per stream per step)."""

    index: int
    pieces: tuple[str, ...]
    done: bool


@dataclass(eq=False)
class Completion:
    """The sequences of one request, and what the decoding thread has answered it so far.

    The answers wait in a list, and a reader with nothing to read waits on one future that the loop's flush
    resolves: an ``asyncio.Queue`` read through ``ensure_future(queue.get())`` and ``asyncio.wait`` (a task,
    a waiter and their callbacks) cost the event loop about 13 us a stream a step, the future about 5 (16
    readers woken per step, rough), time the loop holds the GIL that the decoding thread's next step waits for.
    """

    choices: list[tuple[list[int], GenerationConfig, torch.Generator]]
    loop: asyncio.AbstractEventLoop
    cancelled: bool = False
    owner: "ModelLoop | None" = None
    _events: list[Event] = field(default_factory=list)
    _failure: BaseException | None = None
    _waiter: asyncio.Future | None = None

    async def next(self, timeout: float, disconnected: asyncio.Future | None = None) -> list[Event]:
        """The events of every step that touched this request since the last call (at least one step's; a
        reader that falls behind the decoding thread gets several steps' at once, in order).

        Raises:
            asyncio.TimeoutError: nothing came within ``timeout`` seconds.
            ConnectionResetError: ``disconnected`` finished first (the client left).
            Exception: the error that stopped the model, as the decoding thread caught it (after the events
                that came before it).
        """
        if not self._events and self._failure is None:
            waiter = self._waiter = self.loop.create_future()
            timer = self.loop.call_later(timeout, _settle, waiter, asyncio.TimeoutError())

            def left(_: asyncio.Future) -> None:
                _settle(waiter, ConnectionResetError("the client disconnected"))

            if disconnected is not None:
                disconnected.add_done_callback(left)
            try:
                await waiter
            finally:
                timer.cancel()
                if disconnected is not None:
                    disconnected.remove_done_callback(left)
                self._waiter = None
        if self._events:   # the events that came before a failure go first
            events, self._events = self._events, []
            return events
        raise self._failure

    def cancel(self) -> None:
        """Free this request's places at the decoding thread's next step (a no-op once it has ended)."""
        if not self.cancelled and self.owner is not None:
            self.cancelled = True
            self.owner.cancel(self)

    def _put(self, item: list[Event] | BaseException) -> None:
        # on the event loop: events to read, or the failure raised once they are read (nothing after it)
        if self._failure is not None:
            return
        if isinstance(item, BaseException):
            self._failure = item
        else:
            self._events.extend(item)
        if self._waiter is not None:
            _settle(self._waiter, None)

    def _deliver(self, item: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self._put, item)
        except RuntimeError:   # the request's event loop is gone: nobody reads the answer
            self.cancel()


def _settle(waiter: asyncio.Future, outcome: BaseException | None) -> None:
    """Wake a reader: with ``outcome`` raised there, or (``None``) to read what came."""
    if not waiter.done():
        if outcome is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(outcome)


class ModelLoop:
    """The decoding thread of one model: steps its decoder while any sequence is live (module doc)."""

    def __init__(self, entry: LoadedModel, decoder: BatchDecoder, codec: TextCodec) -> None:
        self.entry, self.decoder, self.codec = entry, decoder, codec
        self.disabled = False        # the row-exact probe failed after start-up (the thread count changed)
        self._wake = threading.Condition()
        self._adding: list[Completion] = []
        self._cancelling: list[Completion] = []
        self._thread: threading.Thread | None = None
        self._requests: dict[Completion, _Request] = {}
        # per event loop, the deliveries a scheduled flush will hand over (module doc: one wake-up at a time)
        self._outboxes: dict[asyncio.AbstractEventLoop, list[tuple[Completion, list[Event]]]] = {}
        self._outbox_lock = threading.Lock()

    def start(self, prompt_tokens: list[int]) -> list[int]:
        """The ids a continuation of a prompt starts from: ``eos``, then the prompt's tokens (as
        ``model.stream`` and ``model.sample`` build them)."""
        return [self.codec.eos, *prompt_tokens]

    def submit(self, completion: Completion) -> None:
        """Queue the request's sequences; they join the batch at the next step."""
        completion.owner = self
        with self._wake:
            self._adding.append(completion)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"genlab-decode-{self.entry.name}",
                                                 daemon=True)
                self._thread.start()
            self._wake.notify()

    def cancel(self, completion: Completion) -> None:
        """End the request's sequences at the next step (use :meth:`Completion.cancel`)."""
        with self._wake:
            self._cancelling.append(completion)
            self._wake.notify()

    @property
    def live(self) -> int:
        """Sequences in the batch or waiting for a place (for tests and logs)."""
        return self.decoder.running + self.decoder.waiting

    # ------------------------------------------------------------------ the decoding thread
    def _run(self) -> None:
        while True:
            with self._wake:
                while not (self._adding or self._cancelling or self.live):
                    if not self._wake.wait(IDLE_S) and not (self._adding or self._cancelling):
                        self._thread = None
                        return
            self._admit()
            if self.live:
                self._step()

    def _admit(self) -> None:
        """Hand the decoder the requests submitted and the cancellations asked for since the last step."""
        with self._wake:
            adding, self._adding = self._adding, []
            cancelling, self._cancelling = self._cancelling, []
        for completion in cancelling:
            request = self._requests.pop(completion, None)
            for sequence in request.sequences if request is not None else ():
                self.decoder.cancel(sequence)
        for completion in adding:
            if not completion.cancelled:
                self._requests[completion] = _Request([
                    self.decoder.add(prompt, config, generator=generator, tag=(completion, index))
                    for index, (prompt, config, generator) in enumerate(completion.choices)])

    def _step(self) -> None:
        try:
            with self.entry.lock:
                updates = self.decoder.step()
        except Exception as error:   # the model failed: every live request hears it, the loop goes on
            if isinstance(error, NotSupportedError):
                self.disabled = True
            log.exception("continuous batching: a step of model %r failed", self.entry.name)
            failed = {sequence.tag[0] for sequence in self.decoder.clear()}
            for completion in failed:
                request = self._requests.pop(completion, None)
                if request is not None and request.held:   # the events before the failure go first
                    completion._deliver(request.held)
                completion._deliver(error)
            return
        interval = -(-self.decoder.running // STREAMS_PER_STEP)   # steps a stream's events wait at most
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Completion, list[Event]]]] = {}
        for completion, events in _by_request(updates).items():
            request = self._requests.get(completion)
            if request is None:   # not decoding here any more: hand the events over as they are
                by_loop.setdefault(completion.loop, []).append((completion, events))
                continue
            request.held.extend(events)
            request.steps_held += 1
            ended = all(sequence.done for sequence in request.sequences)
            if ended:
                del self._requests[completion]
            if (ended or not request.written or request.steps_held >= interval
                    or any(event.done for event in events)):
                by_loop.setdefault(completion.loop, []).append((completion, request.held))
                request.held, request.steps_held, request.written = [], 0, True
        for loop, deliveries in by_loop.items():
            self._post(loop, deliveries)

    def _post(self, loop: asyncio.AbstractEventLoop, deliveries: list[tuple[Completion, list[Event]]]) -> None:
        """Hand ``deliveries`` to ``loop``: wake it only when no flush is pending there already. Waking costs
        the decoding thread a write to the loop's socket and a wait for the GIL while the loop runs, so a loop
        still busy with earlier steps takes this step's events with theirs, in order."""
        with self._outbox_lock:
            pending = self._outboxes.get(loop)
            if pending is not None:   # a flush is scheduled and has not run yet: it takes these too
                pending.extend(deliveries)
                return
            self._outboxes[loop] = list(deliveries)
        try:
            loop.call_soon_threadsafe(self._flush, loop)
        except RuntimeError:   # that event loop is gone: nobody reads the answers
            with self._outbox_lock:
                dropped = self._outboxes.pop(loop, [])
            for completion, _ in dropped:
                completion.cancel()

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        # on the event loop: every delivery posted since the flush was scheduled
        with self._outbox_lock:
            deliveries = self._outboxes.pop(loop, [])
        for completion, events in deliveries:
            completion._put(events)


@dataclass(eq=False)
class _Request:
    """A request as its decoding thread sees it: its sequences, and the events its stream has not been handed
    yet (module doc: a stream's text goes out every few tokens when many are live)."""

    sequences: list[DecodingSequence]
    held: list[Event] = field(default_factory=list)
    steps_held: int = 0          # steps whose events ``held`` holds
    written: bool = False        # whether any events were handed over (the first go out at once)


def _by_request(updates: list[Update]) -> dict[Completion, list[Event]]:
    grouped: dict[Completion, list[Event]] = {}
    for update in updates:
        if update.pieces or update.done:
            completion, index = update.sequence.tag
            grouped.setdefault(completion, []).append(Event(index, update.pieces, update.done))
    return grouped


class ContinuousBatcher:
    """A :class:`ModelLoop` per text model that can decode in batches, built at its first completion.

    Args:
        max_num_seqs: the most sequences one model decodes at once (vLLM's ``--max-num-seqs``); more wait.
    """

    def __init__(self, *, max_num_seqs: int) -> None:
        self.max_num_seqs = max_num_seqs
        self._loops: dict[str, ModelLoop | None] = {}
        self._building = threading.Lock()

    async def loop_for(self, entry: LoadedModel) -> ModelLoop | None:
        """The model's decoding loop, or ``None`` where its completions run one at a time (module doc)."""
        if entry.name not in self._loops:
            await run_in_threadpool(self._build_once, entry)
        loop = self._loops[entry.name]
        return None if loop is None or loop.disabled else loop

    def _build_once(self, entry: LoadedModel) -> None:
        with self._building:
            if entry.name not in self._loops:
                self._loops[entry.name] = self._build(entry)

    def _build(self, entry: LoadedModel) -> ModelLoop | None:
        model = entry.model
        codec, network = getattr(model, "codec_", None), getattr(model, "network_", None)
        if not isinstance(codec, TextCodec) or network is None:
            return None
        if getattr(model, "processors_", None):
            log.info("model %r: completions one at a time (its sample processors %s act on each call)",
                     entry.name, ", ".join(model.processors_))
            return None
        try:
            with entry.lock:
                decoder = BatchDecoder(network, eos=codec.eos, detokenize=codec.detokenize,
                                       max_sequences=self.max_num_seqs)
        except NotSupportedError as why:
            log.warning("model %r: completions one at a time, no continuous batching: %s", entry.name, why)
            return None
        log.info("model %r: continuous batching of up to %d sequences", entry.name, self.max_num_seqs)
        return ModelLoop(entry, decoder, codec)
