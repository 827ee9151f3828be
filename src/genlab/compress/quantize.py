"""Post-training dynamic int8 quantisation of linear layers, stored as plain safetensors tensors.

Each selected ``nn.Linear`` becomes an :class:`Int8Linear` holding its weight as int8 per output channel,
symmetric (Jacob et al. 2018, "Quantization and training of neural networks for efficient integer-
arithmetic-only inference", eq. 1 with zero point 0):

    W ~ s * Q,    Q = clamp(round(W / s), -127, 127) int8,    s_o = max_i |W_oi| / 127   (per row o),

and its activations quantised per call ("dynamic": the input's range is measured on each batch), so no
calibration data is needed. The int8 matrix ``weight_int8 (out, in)``, the float32 scales
``weight_scale (out,)``, the int32 zero points ``weight_zero_point (out,)`` (zeros) and the float32
``bias`` are the module's state dict: a quantised run is safetensors like any other, never a pickled
quantised module.

Backend. On CPU the product runs through PyTorch's fbgemm/x86 int8 kernel
(``torch.ops.quantized.linear_dynamic``, the kernel behind ``torch.ao.quantization.quantize_dynamic``).
torch 2.13 deprecates the ``torch.ao.quantization`` Python API and the quantised-tensor constructors in
favour of torchao; torchao 0.18's ``Int8DynamicActivationInt8WeightConfig`` does run on CPU, but it
measured 1.75x *slower* than float32 for a 768x3072 layer at batch 1 on this machine (1.75 ms vs 1.00 ms,
one thread), while the fbgemm kernel took 0.14 ms, so genlab keeps the kernel and builds its packed
weight from its own int8 tensors (the one deprecated call, :func:`torch._make_per_channel_quantized_tensor`,
is confined to :meth:`Int8Linear._packed`). Elsewhere (CUDA, or a build without fbgemm) the layer
dequantises ``s * Q`` and multiplies in float32: the same numbers up to float rounding, no speed-up.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genlab.compress.fused import inside_fused
from genlab.errors import ConfigError, unknown_choice

#: Quantisation dtypes offered (int4 weight-only needs torchao's CUDA kernels; not offered on CPU).
DTYPES: tuple[str, ...] = ("int8",)
#: Name of this transformation in a compressed run's ``config.json``.
METHOD = "quantize"


class Int8Linear(nn.Module):
    """``y = x (s * Q)^T + b`` with an int8 weight per output channel: ``x (..., in)`` -> ``(..., out)``.

    Args:
        in_features, out_features: the layer's shape.
        bias: whether it has a bias.
    """

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight_int8", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(out_features))
        self.register_buffer("weight_zero_point", torch.zeros(out_features, dtype=torch.int32))
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)
        self._pack: Any = None     # fbgemm's packed weight, rebuilt after the buffers change

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "Int8Linear":
        """Quantise ``linear``'s weight (module doc); an all-zero row gets scale 1 (its codes are 0)."""
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1) / 127
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        layer = cls(linear.in_features, linear.out_features, bias=linear.bias is not None)
        layer.weight_int8.copy_(torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8))
        layer.weight_scale.copy_(scale)
        if linear.bias is not None:
            layer.bias.copy_(linear.bias.detach())
        return layer.to(linear.weight.device)

    def dequantized(self) -> torch.Tensor:
        """``s * Q``, float32 ``(out, in)``."""
        return self.weight_scale[:, None] * (self.weight_int8.float() - self.weight_zero_point[:, None].float())

    def _packed(self) -> Any:
        if self._pack is None:
            with warnings.catch_warnings():   # the quantised-tensor constructor's deprecation (module doc)
                warnings.simplefilter("ignore")
                q = torch._make_per_channel_quantized_tensor(
                    self.weight_int8, self.weight_scale.double(), self.weight_zero_point.long(), 0)
            self._pack = torch.ops.quantized.linear_prepack(q, self.bias)
        return self._pack

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._pack = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (..., in) -> (..., out)
        if x.device.type == "cpu" and fbgemm_available() and not torch.is_grad_enabled():
            # reduce_range: 7-bit activations, so fbgemm's 16-bit accumulation of pairs cannot overflow
            return torch.ops.quantized.linear_dynamic(x.float().contiguous(), self._packed(), True)
        return F.linear(x, self.dequantized().to(x.dtype), None if self.bias is None else self.bias.to(x.dtype))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def fbgemm_available() -> bool:
    """Whether this PyTorch build has the x86 int8 kernels."""
    return any(engine in torch.backends.quantized.supported_engines for engine in ("fbgemm", "x86"))


def quantize_linear(network: nn.Module, dtype: str = "int8") -> dict[str, Any]:
    """Replace every ``nn.Linear`` of ``network`` in place by an :class:`Int8Linear`, except those inside
    torch's fused modules (:mod:`genlab.compress.fused`), which read their weights directly.

    A linear layer whose weight is shared with another module (a tied output head) gets its own int8
    copy; the other module keeps the float weight.

    Returns:
        The record of what was done (``method``, ``dtype``, ``backend``, the quantised ``modules`` and
        the share of the network's parameters they held), which :func:`restore` reads back.

    Raises:
        ConfigError: an unknown ``dtype``, or a network without linear layers.
    """
    if dtype not in DTYPES:
        raise unknown_choice("quantisation dtype", dtype, DTYPES)
    fused = inside_fused(network)
    names = [name for name, module in network.named_modules()
             if isinstance(module, nn.Linear) and id(module) not in fused]
    if not names:
        raise ConfigError("the network has no linear layer to quantise to int8")
    total = sum(p.numel() for p in network.parameters())
    quantised = sum(network.get_submodule(name).weight.numel() for name in names)
    for name in names:
        _replace(network, name, Int8Linear.from_linear(network.get_submodule(name)))
    return {"method": METHOD, "dtype": dtype, "modules": names, "parameter_share": quantised / total,
            "backend": "fbgemm dynamic int8 (torch.ops.quantized.linear_dynamic) on CPU; "
                       "dequantised float32 matmul elsewhere"}


def restore(network: nn.Module, record: dict[str, Any]) -> None:
    """Swap the modules named in a :func:`quantize_linear` record for empty :class:`Int8Linear` shells of the
    same shapes, so that the saved int8 state dict loads strictly."""
    for name in record["modules"]:
        linear = network.get_submodule(name)
        _replace(network, name, Int8Linear(linear.in_features, linear.out_features, bias=linear.bias is not None))


def _replace(network: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(network.get_submodule(parent) if parent else network, child, module)
