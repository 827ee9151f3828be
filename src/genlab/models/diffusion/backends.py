"""Which engine runs a diffusion model's network while it samples: the ``backend`` sampling option.

- ``"eager"``: the network in PyTorch (with the speed options ``compile``, ``bf16``, ``cuda_graphs`` of
  :mod:`genlab.sampling.cuda_graphs`); the only path on CUDA and for tables.
- ``"onnxruntime"``: the network exported once to ONNX and called at every step through onnxruntime
  (:mod:`genlab.sampling.onnx_denoiser`), CPU only. Only the network call changes, so every sampler
  (DDPM, DDIM, DPM-Solver++), guidance, class labels, captions, SDEdit and inpainting run as on the eager
  path, and the records equal the eager ones within float32 rounding (~1e-6 per call).
- ``"auto"`` (default): onnxruntime where it can run this call (:meth:`SamplingBackends.onnx_obstacle`
  is None) and the call is large enough to repay an export (:data:`AUTO_EXPORT_WORK`); eager otherwise.
  The choice depends on the call alone, never on whether a graph happens to be cached already, so a seed
  gives the same records whatever ran before it (the two paths differ by float32 rounding).

Asking for ``"onnxruntime"`` where it cannot run is a ConfigError that says why.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from genlab.config import to_dict
from genlab.errors import ConfigError, unknown_choice
from genlab.sampling.cuda_graphs import DENOISER_OPTIONS
from genlab.sampling.onnx_denoiser import (OnnxDenoiser, cached_graph, export_denoiser, graph_key,
                                           onnxruntime_available)

log = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("auto", "onnxruntime", "eager")
#: Config fields that are only ``sample``'s defaults: they do not change the network's graph.
SAMPLING_DEFAULTS = frozenset({"sampler", "sample_steps", "guidance", "backend"})
#: Network work (records x values per record x sampler steps, doubled under guidance) from which ``auto``
#: exports a graph it does not have yet. Measured (benchmarks/diffusion_speed.py, a 1M-parameter 28x28 UNet,
#: one thread, an idle 2-core EPYC): 256 images x 50 DDIM steps took 35.7 s eager and 25.3 s on onnxruntime
#: (0.71x), its first call 3.7 s more (export and session); 64 images x 50 steps (2.5 x 10^6 value-steps) took
#: 6.9 s eager. At 2 x 10^6 value-steps eager takes ~5.5 s, onnxruntime saves ~1.6 s a call, and the export is
#: repaid within about two calls of that size. Below it a call stays eager: a small call would pay more for
#: an export than it saves, and the choice must not depend on what ran before (module doc).
AUTO_EXPORT_WORK = 2 * 10 ** 6


@dataclass
class _Graph:
    """The onnxruntime call kept on a model: for which weights (their storage and version counters), under
    which graph key and thread count; ``call`` once a session is open; ``failed`` when ``auto``'s export
    failed for these weights (it is not tried again for them)."""

    weights: tuple
    key: str
    threads: int
    call: OnnxDenoiser | None = None
    failed: bool = False


class SamplingBackends:
    """The diffusion model's backend choice (a mixin of :class:`~genlab.models.diffusion.DiffusionModel`)."""

    _graph: _Graph | None = None

    def sampling_backend(self, n: int, *, condition: Any = None, **options: Any) -> str:
        """The backend ``sample(n, condition=condition, **options)`` runs: ``"onnxruntime"`` or ``"eager"``
        (module doc).

        Raises:
            ConfigError: an unknown backend, or ``"onnxruntime"`` where it cannot run (the reason is named).
        """
        backend = options.get("backend", self.config.backend)
        if backend not in BACKENDS:
            raise unknown_choice("backend", backend, BACKENDS)
        if backend == "eager":
            return "eager"
        obstacle = self.onnx_obstacle(**options)
        if backend == "onnxruntime":
            if obstacle is not None:
                raise ConfigError(f"backend='onnxruntime' cannot run this call: {obstacle}; use backend='eager' "
                                  f"or 'auto'")
            return "onnxruntime"
        if obstacle is not None:
            return "eager"
        return "onnxruntime" if self._sampling_work(n, condition, options) >= AUTO_EXPORT_WORK else "eager"

    def onnx_obstacle(self, **options: Any) -> str | None:
        """Why the onnxruntime backend cannot run a ``sample`` call with ``options``, or None if it can."""
        if not onnxruntime_available():
            return "onnxruntime is not installed (pip install 'genlab[onnx]')"
        if self.data_.modality == "tables":
            return "tables are sampled by their own loop (multinomial blocks and masks), on the eager path"
        if self.device.type != "cpu":
            return f"onnxruntime runs the network on CPU and this model is on {self.device.type}"
        speed = [name for name in DENOISER_OPTIONS if options.get(name)]
        if speed:
            return f"{', '.join(speed)} speed up the eager path"
        if any(tensor.dtype in (torch.int8, torch.uint8) for tensor in self.network_.buffers()):
            return "the network holds int8 weights, which its eager kernels multiply as int8 (the graph would not)"
        if self._graph is not None and self._graph.failed and self._graph.weights == self._weights_version():
            return "exporting this network failed (see the warning logged then)"
        return None

    def _sampling_work(self, n: int, condition: Any, options: dict[str, Any]) -> float:
        """``n x values x steps run``, doubled when guidance applies (a condition or a prompt): the network
        work of the call."""
        steps = options.get("steps", self.config.sample_steps)
        strength = options.get("strength")
        share = strength if isinstance(strength, (int, float)) and 0 < strength <= 1 else 1.0
        conditioned = condition is not None or options.get("prompt") is not None
        guided = conditioned and options.get("guidance", self.config.guidance) != 1
        return n * math.prod(self.data_.shape) * steps * share * (2 if guided else 1)

    def _weights_version(self) -> tuple:
        """Where every parameter and buffer lives and its in-place version counter: any change of the weights
        (``fine_tune``, ``load_state_dict``, a move) changes it, without hashing the weights each call."""
        tensors = [*self.network_.parameters(), *self.network_.buffers()]
        return tuple((tensor.data_ptr(), tensor._version) for tensor in tensors)

    def _graph_entry(self) -> _Graph:
        """The model's kept graph entry for its current weights and thread count (hashing the weights only
        when they changed)."""
        weights, threads = self._weights_version(), torch.get_num_threads()
        graph = self._graph
        if graph is None or graph.weights != weights:
            x, y = self._example_inputs()
            network = {k: v for k, v in to_dict(self.config).items() if k not in SAMPLING_DEFAULTS}
            salt = json.dumps({"model": network, "shape": list(self.data_.shape)}, sort_keys=True)
            graph = self._graph = _Graph(weights, graph_key(self.network_, x, y, salt), threads)
        if graph.threads != threads:   # a session runs on the threads it was opened with
            graph.call, graph.threads = None, threads
        return graph

    def _example_inputs(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One record's shape and the network's conditioning input, as ``_sample_network`` gives them:
        ``x (1, *shape)`` and caption tokens ``(1, L)``, a label ``(1,)`` or None."""
        return torch.zeros(1, *self.data_.shape), self._null_condition(1)

    def _onnx_call(self, fallback: bool) -> Callable[..., torch.Tensor]:
        """The onnxruntime call of the network for the current weights, exporting the graph if no cache holds
        it. With ``fallback`` (``auto``) a failed export is logged and the eager network returned instead."""
        graph = self._graph_entry()
        if graph.call is None:
            path = cached_graph(graph.key)
            try:
                if not path.is_file():
                    log.info("exporting the denoiser to %s (once for these weights)", path)
                    export_denoiser(self.network_.eval(), *self._example_inputs(), path)
                graph.call = OnnxDenoiser(path, threads=graph.threads)
            except Exception as error:   # the exporter and onnxruntime raise many types; auto must still sample
                if not fallback:
                    raise
                log.warning("sampling on the eager path: exporting the denoiser to ONNX failed (%s)", error)
                graph.failed = True
                return self.network_
        return graph.call
