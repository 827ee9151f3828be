"""A plain multi-layer perceptron, the network of every family on points and table rows."""

from __future__ import annotations

from torch import nn


class MLP(nn.Sequential):
    """``Linear -> act -> ... -> Linear``: ``(B, in_features)`` -> ``(B, out_features)``.

    Args:
        in_features: input width.
        out_features: output width.
        hidden: width of every hidden layer.
        depth: number of hidden layers (0 gives a single linear map).
        activation: ``"silu"``, ``"relu"``, ``"leaky_relu"`` (slope 0.2, the GAN discriminator's) or ``"gelu"``.
    """

    ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU,
                   "leaky_relu": lambda: nn.LeakyReLU(0.2)}

    def __init__(self, in_features: int, out_features: int, *, hidden: int = 128, depth: int = 2,
                 activation: str = "silu") -> None:
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), self.ACTIVATIONS[activation]()]
            width = hidden
        layers.append(nn.Linear(width, out_features))
        super().__init__(*layers)
