"""What a family hands the Trainer: phases, each an optimiser over one module and a loss.

Most families have one phase (``"model"``). A GAN has two that alternate every training step,
``"discriminator"`` (``repeats`` = critic steps) then ``"generator"``. The Trainer owns the optimisers,
learning-rate schedule, clipping, EMA, checkpoints and DistributedDataParallel wrapping; a phase only
says which parameters move and what they minimise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn


@dataclass(frozen=True)
class Batch:
    """One minibatch of encoded records.

    Attributes:
        x: ``(B, *shape)`` float tensor from the codec, on the training device.
        y: ``(B,)`` int64 labels, or ``None`` for unlabelled data.
    """

    x: torch.Tensor
    y: torch.Tensor | None = None


@dataclass(frozen=True)
class Losses:
    """A phase's objective for one batch.

    Attributes:
        total: scalar tensor the optimiser minimises (differentiable).
        parts: named float values for logging (e.g. ``{"nll": 1.3}``); ``total`` is logged as the phase name.
    """

    total: torch.Tensor
    parts: dict[str, float] = field(default_factory=dict)


#: ``loss(module, batch, generator) -> Losses``. ``module`` is the phase's module, wrapped in
#: DistributedDataParallel under torchrun, so the loss must call it (``module(...)``) for gradients to be
#: synchronised. ``generator`` is a per-step ``torch.Generator`` on the training device: use it for every
#: random draw in the loss so that a resumed run repeats the same noise.
LossFn = Callable[[nn.Module, Batch, torch.Generator], Losses]


@dataclass(frozen=True)
class Phase:
    """One optimiser's part of a training step.

    Attributes:
        name: unique within a family, e.g. ``"model"``, ``"discriminator"``, ``"generator"``.
        module: the parameters this phase updates (all of ``module.parameters()``).
        loss: the objective, see :data:`LossFn`.
        repeats: optimiser steps of this phase per training step (a fresh batch each).
        lr: base learning rate; ``None`` takes ``TrainConfig.lr``.
        betas: Adam betas; ``None`` takes ``TrainConfig.betas``.
    """

    name: str
    module: nn.Module
    loss: LossFn
    repeats: int = 1
    lr: float | None = None
    betas: tuple[float, float] | None = None
