"""The fastest CPU call of a diffusion network: the network exported once to ONNX and run by onnxruntime.

A sampler calls its network ``f(x_t, t, y)`` once per step (twice under guidance), so on CPU the network
call is the cost. Eager PyTorch dispatches each operator from Python; onnxruntime runs one optimised
graph (convolutions fused with their bias and activation, the embeddings' constant parts folded). On
genlab's networks, one thread, a machine loaded by other jobs, a call ran 1.1-1.5x faster for image UNets
and about 2x for the point MLP, whole sampler calls 1.3-1.9x (``benchmarks/diffusion_speed.py`` measures
the sampler against diffusers); the outputs equal eager ones within ~1e-6.

Exporting costs seconds (``torch.export`` traces the module, onnxscript translates it: 2.4-13 s on that
machine), so the graph is exported once and cached on disk, under ``$GENLAB_CACHE/onnx`` (else
``~/.cache/genlab/onnx``), named by a SHA-256 of what makes the graph (:func:`graph_key`: the network's
class and weights, the input signature, torch's version, the opset, and the caller's own ``salt``). A
process then pays only the session (~0.1 s). The batch axis is dynamic: one graph serves every chunk,
the last smaller one and guidance's doubled batch.

Nothing here knows a family: the caller decides when this path applies
(:mod:`genlab.models.diffusion.backends`). :func:`to_onnx` is also the one export call of
``genlab export`` (:mod:`genlab.export.onnx`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genlab.io import atomic_path

#: ONNX operator set of every graph genlab writes.
OPSET = 18
#: The folder of genlab's caches (shared with the cached feature classifiers); graphs go to its ``onnx/``.
CACHE_ENV = "GENLAB_CACHE"
DEFAULT_CACHE = Path("~/.cache/genlab")
#: The packages of the ``onnx`` extra this path needs: the exporter's (onnx, onnxscript) and the runtime.
PACKAGES: tuple[str, ...] = ("onnx", "onnxscript", "onnxruntime")


def onnxruntime_available() -> bool:
    """Whether the ``onnx`` extra (onnx, onnxscript, onnxruntime) is installed."""
    return all(importlib.util.find_spec(name) is not None for name in PACKAGES)


#: Loggers whose warnings during an export are notes to torch's and onnxscript's developers, not to a user.
QUIET_LOGGERS = ("torch.onnx._internal.exporter._registration", "onnxscript.optimizer._constant_folding")


def to_onnx(module: nn.Module, args: tuple, *, input_names: list[str], output_names: list[str],
            dynamic_shapes: dict[str, Any]) -> Any:
    """``module(*args)`` traced by the dynamo-based exporter (``torch.onnx.export(..., dynamo=True)``) at
    :data:`OPSET`, with named inputs and outputs and ``dynamic_shapes`` (``torch.export.Dim`` per axis);
    returns the ``onnx.ModelProto``. The module must be in eval mode.

    The exporter's notes that ask nothing of genlab (torchvision's operators are not registered; one
    ``batch`` name shared by several inputs, or an input that is None and so absent from the graph; a
    torch-internal deprecation; onnxscript's optimiser leaving a multi-output ``Split`` unfolded, one line
    per attention layer of a caption network) are kept out of the user's terminal.
    """
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*The axis name: \w+ will not be used")
            warnings.filterwarnings("ignore", message=r".*different number of inputs than the flatten dynamic_shapes")
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
            program = torch.onnx.export(module, args, dynamo=True, input_names=input_names,
                                        output_names=output_names, dynamic_shapes=dynamic_shapes,
                                        opset_version=OPSET, optimize=True, verbose=False)
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
    return program.model_proto


class DenoiserCall(nn.Module):
    """``network(x, t, y)`` as a module whose inputs are named ``x``, ``t``, ``y`` whatever the network calls
    them (a caption network's third input is ``tokens``), so one export call fits every denoiser."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, *shape), t: (B,), y: (B,) labels, (B, L) caption tokens or None -> (B, *out)
        return self.network(x, t, y)


def graph_key(network: nn.Module, x: torch.Tensor, y: torch.Tensor | None, salt: str = "") -> str:
    """Hex SHA-256 naming the graph of ``network`` for inputs like ``x (B, *shape)`` and ``y`` (its shape
    after the batch axis, or None): the network's class, every parameter and buffer (name, dtype, shape,
    bytes), torch's version, :data:`OPSET` and ``salt`` (what else the caller knows changes the graph,
    e.g. options that are not weights)."""
    digest = hashlib.sha256()
    signature = (type(network).__module__, type(network).__qualname__, torch.__version__, OPSET, salt,
                 tuple(x.shape[1:]), str(x.dtype), None if y is None else (tuple(y.shape[1:]), str(y.dtype)))
    digest.update(repr(signature).encode())
    for name, tensor in [*network.named_parameters(), *network.named_buffers()]:
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def cached_graph(key: str) -> Path:
    """Where the graph named ``key`` is (or would be) cached (module doc)."""
    folder = Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser() / "onnx"
    return folder / f"denoiser-{key[:40]}.onnx"


def export_denoiser(network: nn.Module, x: torch.Tensor, y: torch.Tensor | None, path: Path) -> Path:
    """Export ``network(x, t, y)`` (CPU, float32, eval mode) to ``path`` with a dynamic batch axis; the file
    is written atomically. ``x (B, *shape)`` and ``y`` are example inputs: only their shapes and dtypes
    after the batch axis matter."""
    import onnx

    batch = torch.export.Dim("batch", min=1, max=65536)
    # a batch of 2: torch.export would specialise an axis of size 1 to a constant
    args: tuple = (torch.zeros((2, *x.shape[1:]), dtype=x.dtype), torch.zeros(2, dtype=torch.long),
                   None if y is None else torch.zeros((2, *y.shape[1:]), dtype=y.dtype))
    names = ["x", "t"] if y is None else ["x", "t", "y"]
    dynamic = {"x": {0: batch}, "t": {0: batch}, "y": None if y is None else {0: batch}}
    proto = to_onnx(DenoiserCall(network).eval(), args, input_names=names, output_names=["prediction"],
                    dynamic_shapes=dynamic)
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))
    return path


class OnnxDenoiser:
    """A cached graph (:func:`export_denoiser`) called as the network: ``(x, t, y) -> output`` in torch tensors.

    Args:
        path: the ``.onnx`` file.
        threads: onnxruntime's intra-op threads (genlab passes ``torch.get_num_threads()``, so both paths
            use the cores the user allowed).
    """

    def __init__(self, path: str | Path, *, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = {node.name for node in self.session.get_inputs()}
        self.threads = threads

    def __call__(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, *shape)`` float32, ``t (B,)`` int64, ``y (B,)`` or ``(B, L)`` int64 or None (CPU tensors)
        -> the network's output ``(B, *out)`` float32."""
        feeds = {"x": x.contiguous().numpy(), "t": t.contiguous().numpy()}
        if "y" in self.inputs:
            feeds["y"] = y.contiguous().numpy()
        return torch.from_numpy(self.session.run(None, feeds)[0])
