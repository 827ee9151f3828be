"""One draw from each row of a categorical by the exponential race (the Gumbel-max trick in exponential form).

For ``p`` over ``V`` tokens and ``E_i ~ Exp(1)`` independent, ``argmax_i p_i / E_i`` is token ``i`` with
probability ``p_i / sum_j p_j``: ``E_i / p_i`` is exponential with rate ``p_i``, and the first of independent
exponential clocks to ring is clock ``i`` with probability its rate over the sum of rates. It is how
``torch.multinomial`` draws a single sample, so from the same generator state it gives the same token;
written out here so that rows with their own generators (a sequence per request in
:mod:`genlab.sampling.batch_decoding`) take their noise one row at a time and the rest of the draw at once.
"""

from __future__ import annotations

from typing import Sequence

import torch


def race(probs: torch.Tensor, generator: torch.Generator | None | Sequence[torch.Generator | None]) -> torch.Tensor:
    """One token ``(B,)`` int64 from each row of ``probs (B, V)``: ``argmax_i p_i / E_i`` (module doc), the
    token ``torch.multinomial(probs, 1, generator=generator)`` draws.

    Args:
        probs: float probabilities, rows summing to 1 (or any positive scale).
        generator: one for every row (one fill of ``(B, V)``), or a sequence of ``B``, one per row.
    """
    if generator is None or isinstance(generator, torch.Generator):
        device = generator.device if generator is not None else probs.device
        noise = torch.empty_like(probs, device=device).exponential_(1, generator=generator)       # (B, V)
    else:
        device = generator[0].device if generator[0] is not None else probs.device
        noise = torch.empty_like(probs, device=device)
        for row_noise, row_generator in zip(noise.unbind(0), generator):   # (V,) views, made in one call
            row_noise.exponential_(1, generator=row_generator)
    return (probs.to(device) / noise).argmax(-1).to(probs.device)
