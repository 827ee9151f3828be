"""Data-parallel training across processes started by ``torchrun``.

``torchrun --nproc_per_node=N`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` in each process. When
``WORLD_SIZE > 1`` the Trainer joins the process group (gloo on CPU, NCCL on CUDA with one GPU per
process), wraps each phase's module in ``DistributedDataParallel`` so gradients are averaged over
processes, and leaves checkpoints and evaluation to rank 0. Without torchrun every helper here reports
a single process and nothing is wrapped.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from genlab.errors import ConfigError

logger = logging.getLogger(__name__)


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of training processes (1 without torchrun)."""
    return dist.get_world_size() if _initialized() else int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's index in ``[0, world_size())`` (0 without torchrun)."""
    return dist.get_rank() if _initialized() else int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """This process's index on its machine, which picks its GPU (0 without torchrun)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """Whether this process is rank 0, the one that writes files and evaluates."""
    return rank() == 0


def setup(device: str) -> torch.device:
    """Resolve the training device and join the process group under torchrun.

    Args:
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.

    Returns:
        The device of this process: ``cpu``, or ``cuda:LOCAL_RANK`` under torchrun, or the current CUDA
        device otherwise.

    Raises:
        ConfigError: when ``"cuda"`` is asked for and no GPU is visible.
    """
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no CUDA GPU is visible; use 'auto' or 'cpu'")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    distributed = world_size() > 1
    if use_cuda:
        target = torch.device("cuda", local_rank() if distributed else torch.cuda.current_device())
        torch.cuda.set_device(target)
    else:
        target = torch.device("cpu")
    if distributed and not _initialized():
        backend = "nccl" if use_cuda else "gloo"
        dist.init_process_group(backend=backend)
        logger.info("joined process group: rank %d of %d (%s)", rank(), world_size(), backend)
    return target


def wrap(module: nn.Module, device: torch.device) -> nn.Module:
    """Wrap ``module`` in DistributedDataParallel when training on several processes.

    DDP broadcasts rank 0's parameters and buffers at construction and averages gradients during
    ``backward``, so every process keeps identical weights. The module's parameters must already be on
    ``device``, and every parameter must receive a gradient in each backward pass.
    """
    if world_size() <= 1:
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)


def broadcast_float(value: float, device: torch.device) -> float:
    """Return rank 0's ``value`` on every process (identity on a single process).

    Used for the elapsed time, so that every process agrees on the time-based learning rate and on
    when the time budget ends.
    """
    if world_size() <= 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def shutdown() -> None:
    """Leave the process group if this process joined one (call once, after training)."""
    if _initialized():
        dist.destroy_process_group()
