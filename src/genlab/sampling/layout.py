"""Decoding inside a layout fixed before the first token: which ids each position of a sample may hold.

Where a sample's shape is known in advance, part of it given and the rest to draw (a chorale harmonising a
given soprano, :mod:`genlab.data.melody`), a logits processor that allows at position ``j`` only the ids of
``allowed[j]`` keeps every given token (it is the only id allowed at its position) and draws every other token
from the model's conditional on all the tokens before it, given or drawn, renormalised over what the layout
allows there. A drawn token does not see the given tokens that come after it: a left-to-right model cannot, so
this is the model's own left-to-right draw with the given tokens in place, not the posterior over the drawn
tokens given all the given ones.

One rule looks back: a *continuation* id (a held note, ``_``) is allowed at ``j`` only where the token at an
earlier position ``previous[j]`` is one of ``sounding`` (the same voice sounds a step before), so what the
layout allows depends on the row's own draw; it is one gather per step, whatever the length.
"""

from __future__ import annotations

import torch


class LayoutProcessor:
    """Logits processor ``(tokens (B, T), scores (B, V)) -> scores`` that gives ``-inf`` to every id the layout
    does not allow at the next position (module doc).

    A row's sample starts after the prompt (the width of ``tokens`` at the first call), so position ``j`` is the
    ``j``-th new token; every row is at the same position (decoding appends one token to every row), so beam
    search's reordering of rows needs no bookkeeping. The last position should allow only ``eos``, so that
    decoding with ``max_new_tokens = len(allowed)`` ends there.

    Args:
        allowed: bool ``(L, V)``, the ids allowed at each position.
        previous: int64 ``(L,)``, the earlier position whose token decides ``continuation`` at each position
            (``-1``: ``allowed`` alone decides).
        continuation: the id allowed where the token at ``previous[j]`` is in ``sounding``.
        sounding: bool ``(V,)``.
    """

    def __init__(self, allowed: torch.Tensor, previous: torch.Tensor, continuation: int,
                 sounding: torch.Tensor) -> None:
        assert allowed.dim() == 2 and previous.shape == allowed.shape[:1] and sounding.shape == allowed.shape[1:]
        assert bool((previous < torch.arange(len(previous))).all()), "previous must point back"
        self.allowed, self.previous, self.continuation, self.sounding = allowed, previous, continuation, sounding
        self._width: int | None = None

    def __call__(self, tokens: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self._width is None:
            self._width = tokens.shape[1]
            self.allowed, self.sounding = self.allowed.to(scores.device), self.sounding.to(scores.device)
        j = tokens.shape[1] - self._width
        if j >= len(self.allowed):
            raise ValueError(f"the layout has {len(self.allowed)} positions; decoding asked for position {j}")
        allowed = self.allowed[j].expand_as(scores)                                      # (B, V)
        back = int(self.previous[j])
        if back >= 0:
            allowed = allowed.clone()
            allowed[:, self.continuation] = self.sounding[tokens[:, self._width + back]]
        return scores.masked_fill(~allowed, float("-inf"))
