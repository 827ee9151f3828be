"""Layers compression must leave alone: the linear sublayers of torch's fused modules.

``nn.MultiheadAttention`` passes ``out_proj.weight`` to ``F.multi_head_attention_forward`` instead of
calling ``out_proj``, and ``nn.TransformerEncoderLayer`` reads ``linear1.weight``/``linear2.weight`` on its
fast path; so a sublayer swapped for an int8 one breaks them (no ``.weight``), and a pruning mask, which
is applied when a layer runs its own forward, is never re-applied there (a second backward through the
first step's graph fails). Their linear sublayers stay float and unpruned; the caption encoder and the
cross-attention of the captioned UNet are built from such modules.
"""

from __future__ import annotations

from torch import nn

#: torch modules that read their linear sublayers' weights directly.
FUSED = (nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)


def inside_fused(network: nn.Module) -> set[int]:
    """``id`` of every module of ``network`` that lies inside one of the :data:`FUSED` modules."""
    inside: set[int] = set()
    for module in network.modules():
        if isinstance(module, FUSED):
            inside |= {id(sub) for sub in module.modules() if sub is not module}
    return inside
