"""Exponential moving average of a model's weights (Polyak & Juditsky 1992).

Sampling from the averaged weights is usually better than from the last ones, most visibly for
diffusion models and GANs (Ho et al. 2020, sec. 4; Karras et al. 2018, sec. 4).
"""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """A shadow copy of every entry of ``model.state_dict()``, averaged after each training step.

    Floating entries (parameters and buffers) follow ``ema = decay * ema + (1 - decay) * value`` and
    are kept in at least float32 so that a bfloat16 model still averages precisely. Other entries (e.g.
    BatchNorm's ``num_batches_tracked``) are copied as they are, so :meth:`state_dict` loads strictly into
    the model.

    Args:
        model: the network to average; the shadow starts as a copy of its current state, on its device.
        decay: weight of the old average per step, in ``(0, 1)``.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {name: _shadow_copy(value) for name, value in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current state into the average."""
        for name, value in model.state_dict().items():
            average = self.shadow[name]
            if average.is_floating_point():
                average.mul_(self.decay).add_(value.to(average.dtype), alpha=1.0 - self.decay)
            else:
                average.copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Return the averaged state as CPU tensors, keyed like ``model.state_dict()``."""
        return {name: value.detach().to("cpu", copy=True) for name, value in self.shadow.items()}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Replace the average by ``state`` (keys must match exactly).

        Raises:
            KeyError: when the keys differ from the model's.
        """
        if set(state) != set(self.shadow):
            missing = sorted(set(self.shadow) - set(state))
            unexpected = sorted(set(state) - set(self.shadow))
            raise KeyError(f"EMA keys differ: missing {missing[:5]}, unexpected {unexpected[:5]}")
        for name, average in self.shadow.items():
            average.copy_(state[name])


def _shadow_copy(value: torch.Tensor) -> torch.Tensor:
    """Detached copy of ``value``, promoted to at least float32 when floating."""
    copy = value.detach().clone()
    if copy.is_floating_point():
        copy = copy.to(torch.promote_types(copy.dtype, torch.float32))
    return copy
