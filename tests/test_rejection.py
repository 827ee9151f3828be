"""Discriminator rejection sampling: the acceptance rule, and that it recovers a target density from a
proposal when given the exact log density ratio."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.sampling.rejection import acceptance_probabilities, discriminator_rejection

MU, SIGMA = 0.5, 0.6


def normal_proposal(g: torch.Generator):
    """Proposal N(0, 1) with the exact log ratio to the target N(0.5, 0.6^2), which is bounded above."""
    def propose(k: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(k, 1, generator=g)
        log_ratio = (-0.5 * ((x - MU) / SIGMA) ** 2 - math.log(SIGMA) + 0.5 * x ** 2).squeeze(1)
        return x, log_ratio
    return propose


def test_acceptance_is_exp_of_the_logit_below_the_bound_and_one_above():
    p = acceptance_probabilities(torch.tensor([-3.0, -1.0, 0.0, 2.0]), log_bound=0.0)
    torch.testing.assert_close(p, torch.tensor([math.exp(-3.0), math.exp(-1.0), 1.0, 1.0]))


def test_exact_log_ratio_turns_a_standard_normal_into_the_target_normal():
    kept = discriminator_rejection(normal_proposal(torch.Generator().manual_seed(0)), 20_000, batch=10_000,
                                   quantile=0.9999, generator=torch.Generator().manual_seed(1))
    assert kept.shape == (20_000, 1)
    # the proposal has mean 0 and std 1
    assert float(kept.mean()) == pytest.approx(MU, abs=0.02)
    assert float(kept.std()) == pytest.approx(SIGMA, abs=0.02)


def test_a_lower_quantile_needs_fewer_proposals_and_stays_close():
    def run(quantile: float) -> tuple[int, torch.Tensor]:
        g = torch.Generator().manual_seed(0)
        propose, calls = normal_proposal(g), []
        kept = discriminator_rejection(lambda k: calls.append(k) or propose(k), 20_000, batch=2_000,
                                       quantile=quantile, generator=g)
        return len(calls), kept

    (exact_calls, _), (calls, kept) = run(0.9999), run(0.8)
    assert calls < exact_calls
    assert float(kept.mean()) == pytest.approx(MU, abs=0.05)
    assert float(kept.std()) == pytest.approx(SIGMA, abs=0.05)


def test_same_seed_gives_the_same_draws_and_bad_quantiles_are_refused():
    def draws(seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return discriminator_rejection(lambda k: (torch.randn(k, 2, generator=g), torch.randn(k, generator=g)),
                                       50, batch=64, generator=g)

    assert torch.equal(draws(3), draws(3)) and not torch.equal(draws(3), draws(4))
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="quantile"):
            discriminator_rejection(lambda k: (torch.zeros(k, 1), torch.zeros(k)), 5, batch=8, quantile=bad)
