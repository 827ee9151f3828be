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


class NoiseAhead:
    """The race's noise for many rows, each row's drawn from its own generator ``depth`` tokens at a time.

    :func:`race` with a generator per row calls ``exponential_`` once a row a token: at 16 rows a tenth of a
    batched decoding step on CPU, each call also handing the GIL to the server's event loop. Here a row
    (a slot of the decoder) draws ``(depth, V)`` values in one call and uses one ``(V,)`` row of them a token,
    which are the values ``depth`` draws of ``(1, V)`` give from the same generator state where the kernel
    fills a tensor in order (CPU's does); :meth:`exact` probes that once per shape and thread count, and
    where it fails the caller draws a token at a time with :func:`race`. The generator ends up to
    ``depth - 1`` draws further on than the lone call leaves it (no sequence shares its generator).

    Args:
        vocab: ``V``.
        depth: tokens drawn ahead per call.
        device, dtype: of the noise (the probabilities' and the generators').
    """

    def __init__(self, vocab: int, depth: int, *, device: torch.device, dtype: torch.dtype) -> None:
        self.vocab, self.depth, self.device, self.dtype = vocab, depth, device, dtype
        self.buffer = torch.empty(0, vocab, device=device, dtype=dtype)   # (slots * depth, V)
        self._exact: tuple[int, bool] | None = None   # (threads, verdict)

    def exact(self) -> bool:
        """Whether a ``(k, V)`` draw is ``k`` draws of ``(1, V)`` for every ``k <= depth`` (at the current thread
        count), into a block of a bigger buffer as :meth:`rows` draws."""
        threads = torch.get_num_threads()
        if self._exact is None or self._exact[0] != threads:
            verdict = self.depth > 1
            for k in range(2, self.depth + 1):
                ahead, alone = (torch.Generator(self.device).manual_seed(k) for _ in range(2))
                block = torch.empty(2 * k, self.vocab, device=self.device, dtype=self.dtype)
                block[k:].exponential_(1, generator=ahead)
                one = torch.cat([torch.empty(1, self.vocab, device=self.device, dtype=self.dtype)
                                 .exponential_(1, generator=alone) for _ in range(k)])
                verdict = verdict and torch.equal(block[k:], one)
            self._exact = (threads, verdict)
        return self._exact[1]

    def rows(self, slots: Sequence[int], left: list[int], generators: Sequence[torch.Generator | None]
             ) -> torch.Tensor:
        """Noise ``(B, V)`` for the rows of ``slots``, each from its generator, as a lone :func:`race` draws it.

        ``left[b]`` counts the rows slot ``slots[b]`` holds drawn and unused, ``-1`` when the slot was just
        taken; it is updated here. A slot with none left draws ``depth`` rows at once where :meth:`exact`
        allows it (its first time ``1 + slot % depth``, so that sequences that start together refill at
        different steps), else one (always one from ``None``, the shared default generator, or from a
        generator on another device)."""
        depth = self.depth
        need = (max(slots) + 1) * depth
        if self.buffer.shape[0] < need:
            grown = torch.empty(max(need, 2 * self.buffer.shape[0]), self.vocab, device=self.device,
                                dtype=self.dtype)
            grown[:self.buffer.shape[0]] = self.buffer
            self.buffer = grown
        index = []
        for b, (slot, generator) in enumerate(zip(slots, generators)):
            end = (slot + 1) * depth
            if left[b] <= 0:
                if generator is not None and generator.device == self.device and self.exact():
                    size = depth if left[b] == 0 else 1 + slot % depth
                    self.buffer[end - size:end].exponential_(1, generator=generator)
                    left[b] = size
                else:
                    row = self.buffer[end - 1]
                    if generator is None or generator.device == self.device:
                        row.exponential_(1, generator=generator)
                    else:
                        row.copy_(torch.empty_like(row, device=generator.device).exponential_(1, generator=generator))
                    left[b] = 1
            index.append(end - left[b])
            left[b] -= 1
        return self.buffer[index]                                                          # (B, V)
