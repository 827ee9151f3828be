"""Discriminator rejection sampling (Azadi et al. 2019): keep a generator's draws in proportion to
``p_data / p_g``, as estimated by a logistic critic.

A critic ``D`` trained to tell data (label 1) from generated records (label 0) by logistic regression
has, at its optimum, the logit ``d(x) = log p_data(x) - log p_g(x)`` (Goodfellow et al. 2014, prop. 1).
Rejection sampling with proposal ``p_g`` and acceptance ``min(1, exp(d(x) - M))`` returns draws of
``p_g(x) min(1, exp(d(x) - M))``, which is ``p_data`` when ``M >= max_x d(x)``.

``M`` is estimated once, from a burn-in batch of proposals, as the ``quantile`` of their logits. The
largest logit would be exact rejection (if the critic were exact), but one outlying logit then makes
every other draw rare: on ring8 one seed's critic set a bound that kept 1 draw in ~500, and another's
kept too few to finish. A quantile below 1 caps the few records above it at acceptance 1, so at least
a ``1 - quantile`` share of each round is kept and sampling always ends, for a little exactness. The
paper instead raises ``M`` whenever a batch beats it and shifts the acceptance by a per-batch
``gamma``; a fixed ``M`` keeps every round's acceptance rule, and so the distribution returned, the same.

The module is pure tensor maths: the generator and critic come in as one ``propose`` callable.
"""

from __future__ import annotations

from typing import Callable

import torch


def acceptance_probabilities(logits: torch.Tensor, log_bound: float) -> torch.Tensor:
    """``min(1, exp(d - M))``: ``logits (k,)`` and ``M`` -> float32 ``(k,)`` in ``(0, 1]``."""
    return torch.exp((logits.double() - log_bound).clamp(max=0.0)).float()


def discriminator_rejection(propose: Callable[[int], tuple[torch.Tensor, torch.Tensor]], n: int, *,
                            batch: int, quantile: float = 0.999,
                            generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``n`` records by discriminator rejection sampling.

    Args:
        propose: ``propose(k)`` -> records ``(k, *shape)`` from the generator and the critic's logits
            ``(k,)``, on any device; it draws its own randomness (from the same ``generator``).
        n: records to return.
        batch: proposals per round; the first round is the burn-in that sets ``M`` (and is used too).
        quantile: ``M`` as this quantile of the burn-in logits, in ``(0, 1)``.
        generator: source of the acceptance draws.

    Returns:
        ``(n, *shape)`` accepted records, in the order they were proposed.
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must lie in (0, 1), got {quantile}")
    rng_device = generator.device if generator is not None else torch.device("cpu")
    kept: list[torch.Tensor] = []
    count, log_bound = 0, None
    while count < n:
        x, logits = propose(batch)
        logits = logits.detach().cpu()
        if log_bound is None:
            log_bound = float(torch.quantile(logits.double(), quantile))
        accept = torch.rand(len(logits), generator=generator, device=rng_device).cpu() < \
            acceptance_probabilities(logits, log_bound)
        chosen = x[accept.to(x.device)]
        kept.append(chosen)
        count += len(chosen)
    return torch.cat(kept)[:n]
