"""Model work off the event loop: seeded generators, time limits, and jobs under a model's lock."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

import torch
from starlette.concurrency import run_in_threadpool

from genlab.serve.errors import APIError
from genlab.serve.registry import LoadedModel


def seeded(seed: int) -> torch.Generator:
    """A CPU generator seeded as ``genlab sample --seed`` seeds its own."""
    return torch.Generator().manual_seed(seed)


def too_long(timeout_s: float) -> APIError:
    """The 504 of a request over its time limit."""
    return APIError(504, f"the request took longer than the server's limit of {timeout_s:g} s")


async def within(pending: Any, timeout_s: float) -> Any:
    """Await ``pending``; 504 after ``timeout_s``."""
    try:
        return await asyncio.wait_for(pending, timeout_s)
    except asyncio.TimeoutError:
        raise too_long(timeout_s) from None


async def run_job(entry: LoadedModel, job: Callable[[], Any], timeout_s: float) -> Any:
    """Run ``job`` in a worker thread holding ``entry.lock``; 504 after ``timeout_s``.

    A thread cannot be stopped from outside, so a job that times out while it computes runs to its end
    (its answer is dropped); one that times out while it waits for the lock never starts.
    """
    abandoned = threading.Event()

    def locked() -> Any:
        with entry.lock:
            if abandoned.is_set():
                return None
            return job()

    try:
        return await within(run_in_threadpool(locked), timeout_s)
    except APIError:
        abandoned.set()
        raise
