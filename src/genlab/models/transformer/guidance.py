"""Classifier-free guidance for a transformer conditioned by prefix tokens (molecules' property bins).

Training shows each property's ``any`` token in place of its bin half the time (``property_dropout``,
:mod:`genlab.data.smiles`), so one network is both the conditional model ``p(x_t | x_<t, c)`` and the
unconditional one ``p(x_t | x_<t)``. Guidance samples each token from logits extrapolated away from the
unconditional ones (Ho & Salimans 2022, eq. 6, on next-token logits as Sanchez et al. 2023, "Stay on topic with
classifier-free guidance", do for language models):

    l~ = l(x_<t, any) + s (l(x_<t, c) - l(x_<t, any)),      s = ``guidance`` (1: plain conditional),

which is proportional to ``p(x_t | x_<t) (p(x_t | x_<t, c) / p(x_t | x_<t))^s``: the condition's likelihood ratio
raised to ``s``. The unconditional rows are the same rows with every bin token read as its property's ``any``
(:meth:`genlab.data.smiles.SmilesCodec.unconditioned_ids`), decoded beside them in one batch of ``2B`` rows
with its own cache, so a guided step costs one forward pass of twice the rows.
"""

from __future__ import annotations

import torch
from torch import nn

from genlab.errors import ConfigError
from genlab.nn.attention import KVCache
from genlab.sampling.decoding import GenerationConfig

#: Guidance scale for a molecule sampled with a property condition when none is given (1: plain conditional).
#: ``benchmarks/molecules.py`` measures 1, 2 and 3 side by side (docs/molecules_music.md); on the 20-minute
#: MOSES model QED moved 0.73 / 1.58 / 2.19 std between its low and high bins, with the low bin's validity
#: 0.906 / 0.871 / 0.790: 2 is the least guidance that moves QED by the 1 std issue #23 asks for.
MOLECULE_GUIDANCE = 2.0


def guide(network: nn.Module, unconditioned: list[int], scale: float, config: GenerationConfig) -> nn.Module:
    """``network`` guided at ``scale`` for decoding with ``config``; ``network`` itself at
    scale 1. ``unconditioned``: each id's id in the unconditional rows.

    Raises:
        ConfigError: beam search or CUDA graphs, which keep one cache row per sample.
    """
    if scale == 1:
        return network
    if config.num_beams > 1 or config.cuda_graphs:
        raise ConfigError("guidance decodes two rows per sample: it does not go with num_beams > 1 or cuda_graphs; "
                          "pass guidance=1")
    return GuidedNetwork(network, torch.tensor(unconditioned), scale)


class GuidedNetwork(nn.Module):
    """A decoding network ``(B, T) -> (B, T, V)`` whose logits are guided (module doc); it holds the wrapped
    network, so decoding reads its parameters and ``block_size`` through it.

    Args:
        network: the transformer, ``forward(idx, *, cache, positions, mask)`` and ``new_cache``.
        unconditioned: int64 ``(V,)``, each id's id in the unconditional rows.
        scale: the guidance scale ``s`` (``>= 0``; 0 is the unconditional model, 1 the conditional one).
    """

    def __init__(self, network: nn.Module, unconditioned: torch.Tensor, scale: float) -> None:
        super().__init__()
        self.network, self.scale = network, float(scale)
        self.register_buffer("unconditioned", unconditioned.to(next(network.parameters()).device), persistent=False)

    @property
    def block_size(self) -> int:
        return self.network.block_size

    def new_cache(self, batch: int, length: int, *, align: int = 1) -> KVCache:
        """The wrapped network's cache for the ``2 * batch`` rows a guided step runs (conditional rows first)."""
        return self.network.new_cache(2 * batch, length, align=align)

    def forward(self, idx: torch.Tensor, *, cache: KVCache | None = None, positions: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """Guided logits ``(B, T, V)`` of the token after each of ``idx (B, T)`` (the wrapped network's arguments,
        its cache holding ``2B`` rows)."""
        rows = torch.cat([idx, self.unconditioned[idx]])                                   # (2B, T)
        if positions is not None:
            positions = positions.repeat(2, 1)
        if mask is not None and mask.shape[0] > 1:
            mask = mask.repeat(2, 1, 1, 1)
        conditional, unconditional = self.network(rows, cache=cache, positions=positions, mask=mask).chunk(2)
        return unconditional + self.scale * (conditional - unconditional)
