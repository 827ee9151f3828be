"""The bodies of ``POST /v1/completions``: continuously batched, or one request at a time.

Either way choice ``i`` (counted across prompts, prompt-major) is the text drawn alone from seed
``seed + i``: one at a time it is ``model.sample(1, generator=seed + i, ...)`` (``model.stream`` when
streamed); batched, the same tokens come out of :mod:`genlab.serve.continuous` (see
:mod:`genlab.sampling.batch_decoding` for why they are the same, bit for bit). A streamed answer sends
``data:`` events, a last one per choice with its ``finish_reason``, then ``data: [DONE]``; a failure after
the status line travels as an error event before ``[DONE]``. A client that disconnects stops its stream
at once (:class:`EventStream`), and with it the decoding of its choices.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any, AsyncIterator, Callable, Iterator

import anyio
from starlette.responses import StreamingResponse

from genlab.sampling.decoding import GenerationConfig
from genlab.serve.continuous import Completion, ModelLoop
from genlab.serve.errors import APIError, as_api_error, error_body
from genlab.serve.jobs import run_job, seeded, too_long
from genlab.serve.registry import LoadedModel


@dataclass(frozen=True)
class CompletionJob:
    """One completions request, checked.

    Attributes:
        prompts: one prompt per choice (each prompt repeated ``n`` times, prompt-major).
        prompt_tokens: each prompt's token ids (no start token).
        seed: choice ``i`` draws from ``seed + i``.
        options: the sampling options as ``model.sample`` takes them; ``generation``: the same, parsed.
        header: the ``id``, ``object``, ``created`` and ``model`` of every answer and chunk.
        timeout_s: the time limit of the whole request.
    """

    prompts: list[str]
    prompt_tokens: list[list[int]]
    seed: int
    options: dict[str, Any]
    generation: GenerationConfig
    header: dict[str, Any]
    timeout_s: float

    @property
    def max_new_tokens(self) -> int:
        return self.generation.max_new_tokens

    @cached_property
    def chunk_start(self) -> str:
        """The JSON of a streamed chunk up to its choice's index: the header, encoded once per request."""
        header = json.dumps(self.header)[:-1]
        return f'{header}{", " if self.header else ""}"choices": [{{"index": '


class EventStream(StreamingResponse):
    """Server-sent events that stop as soon as the client disconnects.

    Starlette stops listening for a disconnect under ASGI 2.4 servers (uvicorn) and notices one only when
    a write fails, i.e. at the next piece; a batched decode would go on filling a slot for nobody until
    then. Here the stream always races the disconnect, and the body's generator is closed either way, so
    its ``finally`` (which frees the slot) runs at once.
    """

    def __init__(self, content: AsyncIterator[str]) -> None:
        super().__init__(content, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        try:
            async with anyio.create_task_group() as group:
                async def stream() -> None:
                    try:
                        await self.stream_response(send)
                    except OSError:   # the client left while a chunk was written
                        pass
                    group.cancel_scope.cancel()

                group.start_soon(stream)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            await self.body_iterator.aclose()


async def until_disconnected(receive: Callable) -> None:
    """Return once the client has disconnected (the request body must already have been read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def choices_and_usage(entry: LoadedModel, job: CompletionJob, continuations: list[str]
                      ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """OpenAI's ``choices`` and ``usage`` of a non-streamed answer."""
    codec, max_new_tokens = entry.model.codec_, job.max_new_tokens
    choices, completion_tokens = [], 0
    for index, continuation in enumerate(continuations):
        tokens = len(codec.tokenize(continuation))
        completion_tokens += tokens
        finish = "length" if tokens >= max_new_tokens else "stop"
        choices.append({"index": index, "text": continuation, "logprobs": None, "finish_reason": finish})
    prompt_tokens = sum(map(len, job.prompt_tokens))
    return choices, {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                     "total_tokens": prompt_tokens + completion_tokens}


def _chunk(job: CompletionJob, index: int, text: str, finish: str | None) -> str:
    # the very text of _event({**job.header, "choices": [{"index": index, "text": text, "logprobs": None,
    # "finish_reason": finish}]}), the header not encoded again for every token
    return (f'data: {job.chunk_start}{index}, "text": {json.dumps(text)}, "logprobs": null, '
            f'"finish_reason": {json.dumps(finish)}}}]}}\n\n')


def _event(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def _error_event(error: Exception) -> str:
    failure = as_api_error(error)
    return _event(error_body(failure.status, failure.message, failure.param))


# ---------------------------------------------------------------------------------- continuously batched
def _open(loop: ModelLoop, job: CompletionJob) -> Completion:
    completion = Completion([(loop.start(tokens), job.generation, seeded(job.seed + index))
                             for index, tokens in enumerate(job.prompt_tokens)], asyncio.get_running_loop())
    loop.submit(completion)
    return completion


async def complete_batched(entry: LoadedModel, loop: ModelLoop, job: CompletionJob, receive: Callable
                           ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Non-streamed choices decoded in the model's batch; a disconnect or the time limit frees their places."""
    completion = _open(loop, job)
    texts: list[list[str]] = [[] for _ in job.prompts]
    remaining, deadline = len(job.prompts), time.monotonic() + job.timeout_s
    disconnected = asyncio.ensure_future(until_disconnected(receive))
    try:
        while remaining:
            try:
                events = await completion.next(deadline - time.monotonic(), disconnected)
            except asyncio.TimeoutError:
                raise too_long(job.timeout_s) from None
            except ConnectionResetError:
                raise APIError(499, "the client disconnected") from None
            for event in events:
                texts[event.index].extend(event.pieces)
                remaining -= event.done
    finally:
        disconnected.cancel()
        if remaining:
            completion.cancel()
    return choices_and_usage(entry, job, ["".join(pieces) for pieces in texts])


async def stream_batched(entry: LoadedModel, loop: ModelLoop, job: CompletionJob) -> AsyncIterator[str]:
    """Streamed choices decoded together in the model's batch, their chunks sent in choice order as one at a
    time sends them: choice ``i + 1``'s pieces, decoded alongside, wait until choice ``i`` has ended."""
    codec = entry.model.codec_
    completion = _open(loop, job)
    texts: list[list[str]] = [[] for _ in job.prompts]
    held: list[list[str]] = [[] for _ in job.prompts]
    ended = [False] * len(job.prompts)
    current, deadline = 0, time.monotonic() + job.timeout_s
    try:
        while current < len(job.prompts):
            try:
                events = await completion.next(deadline - time.monotonic())
            except asyncio.TimeoutError:
                raise _stream_too_long(job.timeout_s) from None
            for event in events:
                for piece in event.pieces:
                    texts[event.index].append(piece)
                    held[event.index].append(_chunk(job, event.index, piece, None))
                if event.done:
                    ended[event.index] = True
                    # tokens as one at a time counts them: each piece tokenized on its own (in one call)
                    tokens = sum(map(len, codec.tokenize_batch(texts[event.index])))
                    finish = "length" if tokens >= job.max_new_tokens else "stop"
                    held[event.index].append(_chunk(job, event.index, "", finish))
            ready = []
            while current < len(job.prompts):
                ready.extend(held[current])
                held[current] = []
                if not ended[current]:
                    break
                current += 1
            if ready:   # the chunks of every step read at once go out in one write
                yield "".join(ready)
    except Exception as error:   # the status line is sent: the error travels as an event
        yield _error_event(error)
    finally:
        if current < len(job.prompts):
            completion.cancel()
    yield "data: [DONE]\n\n"


def _stream_too_long(timeout_s: float) -> APIError:
    return APIError(504, f"the stream took longer than the server's limit of {timeout_s:g} s")


# ---------------------------------------------------------------------------------- one at a time
def complete(entry: LoadedModel, job: CompletionJob) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Non-streamed choices drawn one after another, choice ``i`` by ``model.sample`` from seed ``seed + i``."""
    model = entry.model
    texts = [model.sample(1, generator=seeded(job.seed + index), prompt=prompt, **job.options)[0]
             for index, prompt in enumerate(job.prompts)]
    continuations = [text[len(prompt):] if text.startswith(prompt) else text
                     for prompt, text in zip(job.prompts, texts)]
    return choices_and_usage(entry, job, continuations)


async def stream_one_at_a_time(entry: LoadedModel, job: CompletionJob) -> AsyncIterator[str]:
    """Streamed choices one after another, choice ``i`` by ``model.stream`` from seed ``seed + i``, each
    piece computed in a worker thread under the model's lock."""
    deadline = time.monotonic() + job.timeout_s
    codec = entry.model.codec_
    try:
        for index, prompt in enumerate(job.prompts):
            pieces = entry.model.stream(prompt, generator=seeded(job.seed + index), **job.options)
            tokens = 0
            async for piece in _iterate(entry, pieces, deadline, job.timeout_s):
                tokens += len(codec.tokenize(piece))
                yield _chunk(job, index, piece, None)
            yield _chunk(job, index, "", "length" if tokens >= job.max_new_tokens else "stop")
    except Exception as error:   # the status line is sent: the error travels as an event
        yield _error_event(error)
    yield "data: [DONE]\n\n"


async def _iterate(entry: LoadedModel, pieces: Iterator[str], deadline: float, timeout_s: float
                   ) -> AsyncIterator[str]:
    """Pull a blocking iterator piece by piece in worker threads, one piece under the model's lock."""
    done = object()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _stream_too_long(timeout_s)
        piece = await run_job(entry, lambda: next(pieces, done), left)
        if piece is done:
            return
        yield piece
