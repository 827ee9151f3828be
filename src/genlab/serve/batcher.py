"""Micro-batching: concurrent sample requests for one model and the same options run as one call.

Requests are collected for up to ``wait_s`` after the first one arrives, or until ``max_batch``
records are waiting (Ray Serve's ``batch_wait_timeout_s`` and ``max_batch_size``), then drawn together
and split back in order. Each request keeps its own seed, and a record drawn in a batch equals the
record drawn alone, because a batch is only formed where a record is a deterministic function of noise
that can be drawn per request before one network call:

- a family whose ``latent_noise_scale`` gives a scale ``s``: ``sample`` is ``decode(s z)`` with
  ``z ~ N(0, I)`` drawn from each request's generator exactly as ``sample`` draws it (a GAN on points and
  images without rejection sampling, ``x = G(psi z)``; a VAE with ``mean=True``, ``x = E[x | tau eps]``).

Everything else runs one request per call through ``model.sample``: the transformer draws every
token of a batch from one generator, the diffusion samplers' per-step noise and the DDIM/DPM start
noise are drawn inside ``sample`` (a per-request start noise would need a hook in the diffusion
family), tables draw categories from one generator, and a GAN's rejection sampling keeps a varying
share of each round. Those requests still queue per model, so they never run concurrently on one
network.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from starlette.concurrency import run_in_threadpool

from genlab.models.base import GenerativeModel
from genlab.serve.registry import LoadedModel


def batchable(model: GenerativeModel, condition: Any, options: dict[str, Any]) -> bool:
    """Whether ``model.sample`` with these arguments draws each record from per-request latent noise
    alone (the family says so through ``latent_noise_scale``), so that requests may share one network call."""
    return model.latent_noise_scale(condition, options) is not None


def draw_batch(model: GenerativeModel, counts: list[int], seeds: list[int], condition: Any,
               options: dict[str, Any]) -> list[np.ndarray]:
    """Records of several requests from one decoder call: ``counts[i]`` records from seed ``seeds[i]``
    each, equal to ``model.sample(counts[i], generator=Generator().manual_seed(seeds[i]), ...)``
    (up to float rounding of a larger matrix product)."""
    scale = model.latent_noise_scale(condition, options)
    latents = [scale * torch.randn(n, *model.latent_shape, generator=torch.Generator().manual_seed(seed))
               for n, seed in zip(counts, seeds)]
    records = model.decode(torch.cat(latents).numpy(), condition=condition)
    return np.split(records, np.cumsum(counts)[:-1])


@dataclass
class _Pending:
    n: int
    seed: int
    done: asyncio.Future


@dataclass
class _Queue:
    items: list[_Pending] = field(default_factory=list)
    records: int = 0
    full: asyncio.Event = field(default_factory=asyncio.Event)


class MicroBatcher:
    """Collects sample requests per ``(model, condition, options)`` and runs them in batches.

    Args:
        wait_s: how long to collect after the first request of a batch.
        max_batch: the most records in one batch; a request above it runs alone. ``1`` turns
            batching off (every request its own call).
    """

    def __init__(self, *, wait_s: float, max_batch: int) -> None:
        self.wait_s, self.max_batch = wait_s, max_batch
        self._queues: dict[tuple[str, str], _Queue] = {}
        #: Batch sizes (requests per model call) of the batches run so far, for tests and benchmarks.
        self.sizes: list[int] = []

    async def submit(self, entry: LoadedModel, n: int, seed: int, condition: Any,
                     options: dict[str, Any]) -> Any:
        """The ``n`` records of one request: raw records as ``model.sample`` returns them."""
        model = entry.model
        if self.max_batch <= 1 or n >= self.max_batch or not batchable(model, condition, options):
            return await self._run(entry, lambda: model.sample(
                n, condition=condition, generator=torch.Generator().manual_seed(seed), **options), 1)
        key = (entry.name, json.dumps([condition, options], sort_keys=True, default=str))
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue()
            asyncio.get_running_loop().create_task(self._collect(entry, key, queue, condition, options))
        pending = _Pending(n, seed, asyncio.get_running_loop().create_future())
        queue.items.append(pending)
        queue.records += n
        if queue.records >= self.max_batch:
            queue.full.set()
        return await pending.done

    async def _collect(self, entry: LoadedModel, key: tuple[str, str], queue: _Queue, condition: Any,
                       options: dict[str, Any]) -> None:
        try:
            await asyncio.wait_for(queue.full.wait(), self.wait_s)
        except asyncio.TimeoutError:
            pass
        if self._queues.get(key) is queue:
            del self._queues[key]   # later requests start the next batch
        batches, current, size = [], [], 0
        for item in queue.items:    # cut at max_batch records
            if current and size + item.n > self.max_batch:
                batches.append(current)
                current, size = [], 0
            current.append(item)
            size += item.n
        batches.append(current)
        for batch in batches:
            live = [item for item in batch if not item.done.done()]   # a timed-out request is dropped
            if not live:
                continue
            try:
                parts = await self._run(entry, lambda: draw_batch(entry.model, [i.n for i in live],
                                                                  [i.seed for i in live], condition, options),
                                        len(live))
            except Exception as error:
                for item in live:
                    if not item.done.done():
                        item.done.set_exception(error)
                continue
            for item, part in zip(live, parts):
                if not item.done.done():
                    item.done.set_result(part)

    async def _run(self, entry: LoadedModel, job: Any, requests: int) -> Any:
        def locked() -> Any:
            with entry.lock:
                return job()

        result = await run_in_threadpool(locked)
        self.sizes.append(requests)
        return result
