"""Fast sampling on CUDA: a static-shape decoding step for the transformer and an accelerated denoiser
for diffusion, both replayable as CUDA graphs.

Small models at small batch are bound by kernel *launches*, not arithmetic: GPT-2-124M decoding one
token runs ~200 kernels of a few microseconds each, and Python plus the launches cost more than the
GPU work. A CUDA graph (``torch.cuda.CUDAGraph``) records the launches of one call once and replays them
with a single launch; it needs every shape and every memory address to stay the same from call to call.

- :class:`StaticDecodeStep` makes one decoding step of a :class:`~genlab.models.transformer.GPT`
  static: the key/value cache is preallocated and zeroed, the new token's slot is an int64 tensor
  (:attr:`genlab.nn.attention.KVCache.slot`), and attention runs over *every* slot with a mask that
  hides those not yet written. On CUDA the step is captured on first use and replayed; on CPU the same
  step runs eagerly (identical tokens, no speed-up), which is how the tests check it without a GPU.
- :class:`Denoiser` wraps a diffusion network call ``network(x, t, y)``: bf16 autocast, ``torch.compile``,
  and on CUDA a graph per input shape with static input buffers. It is kept per network
  (:func:`denoiser`) so repeated ``sample`` calls reuse the capture and the compiled code.

Replays write the same output buffer, so both return a copy. Neither is thread-safe: two threads
sampling from one network at once would share buffers.
"""

from __future__ import annotations

import logging
import time
import weakref
from typing import Any, Callable

import torch
from torch import nn

from genlab.errors import ConfigError
from genlab.nn.attention import KVCache

logger = logging.getLogger(__name__)

#: Sampling options of the diffusion family that :func:`denoiser` reads.
DENOISER_OPTIONS: tuple[str, ...] = ("cuda_graphs", "compile", "bf16")

#: Cache slots come in multiples of this: the memory-efficient attention kernel wants the mask's last
#: dimension aligned to 16 (the extra slots are never written and stay masked).
_SLOT_ALIGN = 16


def _capture(fn: Callable[[], Any], warmup: int = 2) -> tuple[torch.cuda.CUDAGraph, Any]:
    """Run ``fn`` ``warmup`` times on a side stream (cuBLAS workspaces, kernel choice, compilation),
    then record it as a CUDA graph; return the graph and ``fn``'s output, which every replay rewrites."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph, out


# ----------------------------------------------------------------------------------- transformer
class StaticDecodeStep:
    """One decoding step of ``batch`` sequences with every shape fixed, replayed as a CUDA graph on CUDA.

    The caller fills :attr:`cache` (its prompt, eagerly, with the usual ``length``-based writes) and
    then calls the step once per token; the step writes the token's keys and values at slot
    ``cache.length`` and the caller advances the cache, exactly as with a dynamic cache.

    Args:
        network: a :class:`~genlab.models.transformer.GPT` (``new_cache``, ``forward(idx, cache=,
            positions=, mask=)``), in eval mode.
        batch: sequences decoded together.
        length: the most positions the cache must hold.
        graph: capture a CUDA graph; default: when the network is on CUDA.
    """

    def __init__(self, network: nn.Module, batch: int, length: int, *, graph: bool | None = None) -> None:
        self.network = network
        slots = -(-length // _SLOT_ALIGN) * _SLOT_ALIGN
        self.cache = network.new_cache(batch, slots)
        for buffer in self.cache.keys + self.cache.values:
            buffer.zero_()   # masked slots still meet the values: 0 * NaN of uninitialised memory is NaN
        device = self.cache.keys[0].device
        self.graph = device.type == "cuda" if graph is None else graph
        self._token = torch.zeros(batch, 1, dtype=torch.long, device=device)          # (B, 1)
        self._position = torch.zeros(batch, 1, dtype=torch.long, device=device)       # (B, 1)
        self._slot = torch.zeros(1, dtype=torch.long, device=device)                  # (1,)
        self._valid = torch.ones(batch, slots, dtype=torch.bool, device=device)       # (B, S) not padding
        self._padded = False
        self._slots = torch.arange(slots, device=device)                               # (S,)
        # the same buffers, written at the slot held in self._slot (see KVCache.slot)
        self._static_cache = KVCache(self.cache.keys, self.cache.values, slot=self._slot)
        self._replay: torch.cuda.CUDAGraph | None = None
        self._logits: torch.Tensor | None = None
        self.capture_seconds = 0.0

    def reset(self) -> KVCache:
        """Empty the cache (to re-encode a window) without moving its buffers; return it."""
        self.cache.length = 0
        return self.cache

    def _forward(self) -> torch.Tensor:
        # query at slot s sees written slots <= s that are not padding (and always itself, as attention_mask)
        here = self._slots == self._slot                                               # (S,)
        mask = (self._slots <= self._slot) & (self._valid | here)                      # (B, S)
        logits = self.network(self._token, cache=self._static_cache, positions=self._position,
                              mask=mask[:, None, None, :])                             # (B, 1, V)
        return logits[:, -1]

    def __call__(self, token: torch.Tensor, position: torch.Tensor, key_valid: torch.Tensor | None) -> torch.Tensor:
        """Logits ``(B, V)`` after ``token (B,)`` at ``position (B,)``, written at slot ``cache.length``.

        Args:
            token: int64 ids of the newest token of each row.
            position: int64 position embedding index of that token (left padding shifts it).
            key_valid: bool ``(B, cache.length + 1)``, ``False`` at padding; ``None`` when nothing is padded.
        """
        if self.cache.length >= self._slots.numel():
            raise ValueError(f"the static cache holds {self._slots.numel()} positions; it is full")
        self._token.copy_(token[:, None])
        self._position.copy_(position[:, None])
        self._slot.fill_(self.cache.length)
        if key_valid is not None:
            self._valid[:, :key_valid.shape[1]].copy_(key_valid)
            self._valid[:, key_valid.shape[1]:] = True
            self._padded = True
        elif self._padded:
            self._valid.fill_(True)
            self._padded = False
        if not self.graph:
            return self._forward()
        if self._replay is None:
            start = time.perf_counter()
            self._replay, self._logits = _capture(self._forward)
            torch.cuda.synchronize()
            self.capture_seconds = time.perf_counter() - start
            logger.debug("captured a decoding step (batch %d, %d slots) in %.1f ms",
                         len(self._token), self._slots.numel(), 1e3 * self.capture_seconds)
        self._replay.replay()
        return self._logits.clone()


# ----------------------------------------------------------------------------------- diffusion
#: Captured denoiser graphs per network: (parameter addresses, {(compile, bf16, input shapes): graph,
#: static inputs, output}). Nothing in a value refers to the network, so a dropped network frees them.
_GRAPHS: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple[int, ...], dict]]" = weakref.WeakKeyDictionary()


class Denoiser:
    """A diffusion network's call ``network(x, t, y) -> output``, made faster on request.

    Args:
        network: the denoiser, in eval mode.
        cuda_graphs: on CUDA, replay the call from a CUDA graph with static input buffers, one per input
            shape (the whole batch, a smaller last chunk and classifier-free guidance's doubled batch
            each get their own). Graphs are kept per network across ``sample`` calls and dropped when
            its parameters move; ignored on CPU.
        compile: run the network through ``torch.compile`` (compiled on the first call, which is slow;
            later wrappers of the same network reuse the compiled code).
        bf16: run it under bfloat16 autocast; the output is returned as float32 for the solver.
    """

    def __init__(self, network: nn.Module, *, cuda_graphs: bool = False, compile: bool = False,
                 bf16: bool = False) -> None:
        self.network, self.cuda_graphs, self.compile, self.bf16 = network, cuda_graphs, compile, bf16
        self._call = torch.compile(network, dynamic=False) if compile else network
        self._graphs: dict = {}
        if cuda_graphs:
            fingerprint = _fingerprint(network)
            kept = _GRAPHS.get(network)
            if kept is None or kept[0] != fingerprint:
                kept = _GRAPHS[network] = (fingerprint, {})
            self._graphs = kept[1]

    def _run(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if not self.bf16:
            return self._call(x, t, y)
        # cache_enabled=False: weight casts cached during a capture would not outlive it
        with torch.autocast(x.device.type, dtype=torch.bfloat16, cache_enabled=False):
            return self._call(x, t, y).float()

    def __call__(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, *shape)``, ``t (B,)`` int64 steps, ``y (B,)`` labels or ``None`` -> output ``(B, *out)``."""
        if not (self.cuda_graphs and x.device.type == "cuda"):
            return self._run(x, t, y)
        key = (self.compile, self.bf16, tuple(x.shape), x.dtype, tuple(t.shape), None if y is None else tuple(y.shape))
        if key not in self._graphs:
            start = time.perf_counter()
            inputs = [x.clone(), t.clone(), None if y is None else y.clone()]
            graph, out = _capture(lambda: self._run(*inputs))
            torch.cuda.synchronize()
            self._graphs[key] = graph, inputs, out
            logger.debug("captured the denoiser for inputs %s in %.1f ms", key, 1e3 * (time.perf_counter() - start))
        graph, inputs, out = self._graphs[key]
        for static, new in zip(inputs, (x, t, y)):
            if static is not None:
                static.copy_(new)
        graph.replay()
        return out.clone()


def _fingerprint(network: nn.Module) -> tuple[int, ...]:
    """Addresses of the parameters and buffers: a graph reads them there, so a moved network needs new graphs."""
    return tuple(tensor.data_ptr() for tensor in [*network.parameters(), *network.buffers()])


def denoiser(network: nn.Module, **options: Any) -> Callable[..., torch.Tensor]:
    """The call of ``network`` that sampling should use, given the sampling options :data:`DENOISER_OPTIONS`
    (other keys of ``options`` are ignored).

    Without any of them (or all ``False``) this is ``network`` itself: default sampling is unchanged.
    Otherwise a :class:`Denoiser`.

    Raises:
        ConfigError: an option that is not ``True``/``False``.
    """
    flags = {}
    for name in DENOISER_OPTIONS:
        value = options.get(name, False)
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be True or False, got {value!r}")
        flags[name] = value
    return Denoiser(network, **flags) if any(flags.values()) else network
