"""Magnitude pruning: global unstructured (zeros in place) or structured (hidden units removed).

Unstructured (Han et al. 2015, "Learning both weights and connections"): the ``amount`` share of the
weights of every linear and convolution layer with the smallest ``|w|``, ranked globally across layers,
is set to zero by ``torch.nn.utils.prune.global_unstructured`` (L1); the masks stay on while the network
fine-tunes (pruned weights stay zero), then ``prune.remove`` makes them permanent. The tensors keep their
shapes: the file and the dense kernels are no smaller or faster, only sparser.

Structured (Li et al. 2017, "Pruning filters for efficient ConvNets", applied to hidden units): in every
pair of linear layers joined by an element-wise activation (a GPT block's MLP ``fc -> GELU -> proj``,
the hidden layers of a plain MLP) the ``amount`` share of hidden units ``j`` with the smallest
``||W_in[j, :]||_2 * ||W_out[:, j]||_2`` is removed: rows of the first layer (and its bias), columns of
the second. The matrices shrink, so the network is smaller and faster; the new widths are recorded so
that :func:`restore` rebuilds the same shapes before the weights load.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from genlab.compress.fused import inside_fused
from genlab.errors import ConfigError

#: Name of this transformation in a compressed run's ``config.json``.
METHOD = "prune"
#: Modules between two linear layers that act element-wise, so hidden unit ``j`` stays unit ``j``.
_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.SiLU, nn.GELU, nn.Tanh, nn.Identity, nn.Dropout)


def check_amount(amount: Any) -> float:
    """``amount`` as a float in ``(0, 1)``, or a ConfigError."""
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 < amount < 1:
        raise ConfigError(f"the pruning amount must be a share strictly between 0 and 1, got {amount!r}")
    return float(amount)


def prunable(network: nn.Module) -> list[tuple[nn.Module, str]]:
    """``(module, "weight")`` of every linear and convolution layer (embeddings and norms are kept, and the
    linear sublayers of torch's fused modules, :mod:`genlab.compress.fused`)."""
    fused = inside_fused(network)
    return [(m, "weight") for m in network.modules()
            if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)) and id(m) not in fused]


def global_magnitude(network: nn.Module, amount: float) -> list[tuple[nn.Module, str]]:
    """Attach global L1 masks zeroing the ``amount`` share of prunable weights; returns the pruned
    parameters for :func:`make_permanent`. (A weight tied to another module is pruned once, here.)"""
    parameters = prunable(network)
    if not parameters:
        raise ConfigError("the network has no linear or convolution layer to prune")
    prune.global_unstructured(parameters, pruning_method=prune.L1Unstructured, amount=check_amount(amount))
    return parameters


def make_permanent(parameters: list[tuple[nn.Module, str]]) -> float:
    """Fold the masks into the weights (``prune.remove``); returns the share of those weights now zero."""
    zeros = total = 0
    for module, name in parameters:
        prune.remove(module, name)
        weight = getattr(module, name)
        zeros, total = zeros + int((weight == 0).sum()), total + weight.numel()
    return zeros / total


def hidden_pairs(network: nn.Module) -> list[tuple[str, str]]:
    """Names ``(first, second)`` of linear layers joined by an element-wise activation: GPT MLPs (``fc``,
    ``proj``) and consecutive linear layers of an ``nn.Sequential``."""
    pairs = []
    for name, module in network.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(getattr(module, "fc", None), nn.Linear) and isinstance(getattr(module, "proj", None), nn.Linear) \
                and module.fc.out_features == module.proj.in_features:
            pairs.append((f"{prefix}fc", f"{prefix}proj"))
        if isinstance(module, nn.Sequential):
            children = list(module.named_children())
            linear = [i for i, (_, child) in enumerate(children) if isinstance(child, nn.Linear)]
            for a, b in zip(linear, linear[1:]):
                if all(isinstance(children[k][1], _ELEMENTWISE) for k in range(a + 1, b)):
                    pairs.append((f"{prefix}{children[a][0]}", f"{prefix}{children[b][0]}"))
    return pairs


def structured(network: nn.Module, amount: float) -> dict[str, list[int]]:
    """Remove the ``amount`` share of hidden units of every :func:`hidden_pairs` pair (module doc), in place.

    Returns:
        ``{module name: [in_features, out_features]}`` of every resized layer, for :func:`restore`.

    Raises:
        ConfigError: ``amount`` outside ``(0, 1)``, or a network with no such pair (e.g. a convolutional UNet).
    """
    amount = check_amount(amount)
    pairs = hidden_pairs(network)
    if not pairs:
        raise ConfigError("structured pruning removes hidden units between linear layers and this network "
                          "has none; use unstructured pruning (without --structured)")
    shapes: dict[str, list[int]] = {}
    for first_name, second_name in pairs:
        first, second = network.get_submodule(first_name), network.get_submodule(second_name)
        if first.out_features != second.in_features:   # already resized as the second of another pair
            continue
        width = first.out_features
        keep_count = max(1, width - math.floor(amount * width + 0.5))
        score = first.weight.detach().norm(dim=1) * second.weight.detach().norm(dim=0)       # (width,)
        keep = score.topk(keep_count).indices.sort().values
        new_first, new_second = _resized(first, rows=keep), _resized(second, cols=keep)
        _replace(network, first_name, new_first)
        _replace(network, second_name, new_second)
        shapes[first_name] = [new_first.in_features, new_first.out_features]
        shapes[second_name] = [new_second.in_features, new_second.out_features]
    return shapes


def restore(network: nn.Module, shapes: dict[str, list[int]]) -> None:
    """Give the layers named in ``shapes`` those ``[in, out]`` sizes (fresh weights, overwritten on loading)."""
    for name, (in_features, out_features) in shapes.items():
        old = network.get_submodule(name)
        _replace(network, name, nn.Linear(in_features, out_features, bias=old.bias is not None))


def _resized(linear: nn.Linear, *, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> nn.Linear:
    """A copy of ``linear`` keeping output units ``rows`` and/or input units ``cols``."""
    weight = linear.weight.detach()
    bias = None if linear.bias is None else linear.bias.detach()
    if rows is not None:
        weight, bias = weight[rows], None if bias is None else bias[rows]
    if cols is not None:
        weight = weight[:, cols]
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None).to(weight.device)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    return new


def _replace(network: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(network.get_submodule(parent) if parent else network, child, module)
