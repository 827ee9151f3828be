"""Sample-then-check (genlab.sampling.checked_draw): drawing first and checking only the drawn token gives the
distribution of masking every disallowed token first, with temperature, top-k and top-p over the allowed
tokens, and greedy decoding takes the best allowed token."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from genlab.sampling.checked_draw import draw_checked
from genlab.sampling.constraint import TokenConstraint, checked
from genlab.sampling.decoding import GenerationConfig, generate, process_logits
from gpt_support import random_gpt

# Eight tokens; the two most likely are not allowed, so top-k and top-p must reach past them.
LOGITS = torch.tensor([2.0, 2.6, 0.3, 1.1, -0.4, 0.9, 1.7, -1.5])
ALLOWED = (2, 3, 4, 5, 6, 7)


class Only(TokenConstraint):
    """Allows a fixed set of ids in every row; counts the questions."""

    def __init__(self, ids) -> None:
        super().__init__()
        self.ids, self.asked = set(ids), 0

    def allows(self, row: int, token: int) -> bool:
        self.asked += 1
        return token in self.ids

    def fallback(self, row: int) -> None:
        self.fallbacks += 1

    def __call__(self, tokens: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        keep = torch.zeros(scores.shape[-1], dtype=torch.bool)
        keep[list(self.ids)] = True
        return scores.masked_fill(~keep, float("-inf"))

    def _replay(self, tokens: torch.Tensor) -> None:
        pass

    def _reorder(self, parent: torch.Tensor) -> None:
        pass

    def _advance(self, token: torch.Tensor) -> None:
        pass


def masked_first(config: GenerationConfig, ids=ALLOWED) -> torch.Tensor:
    """The exact probabilities of the reference: the full mask as a logits processor, then temperature, top-k
    and top-p (process_logits), then the softmax that choose draws from."""
    masked = replace_processors(config, Only(ids))
    return process_logits(LOGITS[None].clone(), None, masked, torch.zeros(1, 1, dtype=torch.long))[0].softmax(-1)


def replace_processors(config: GenerationConfig, *processors) -> GenerationConfig:
    return GenerationConfig(temperature=config.temperature, top_k=config.top_k, top_p=config.top_p,
                            logits_processors=processors)


@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, None, None), (0.7, 3, None), (1.3, None, 0.8),
                                                       (1.0, 4, 0.6), (2.0, None, 0.35)])
def test_checked_draws_follow_the_masked_distribution(temperature, top_k, top_p):
    config = GenerationConfig(temperature=temperature, top_k=top_k, top_p=top_p)
    expected = masked_first(config)
    constraint = Only(ALLOWED)
    rows, calls = 2000, 3
    counts = torch.zeros(len(LOGITS))
    generator = torch.Generator().manual_seed(0)
    tokens = torch.zeros(rows, 1, dtype=torch.long)
    for _ in range(calls):
        drawn = draw_checked(LOGITS.expand(rows, -1), tokens, [constraint], temperature=temperature, top_k=top_k,
                             top_p=top_p, generator=generator)
        counts += torch.bincount(drawn, minlength=len(LOGITS)).float()
    n = rows * calls
    assert counts[expected == 0].sum() == 0   # nothing outside the allowed set, top-k and top-p: exactly
    # Pearson's chi-square over the tokens the reference can draw; under the null its tail probability is
    # uniform, so a fixed seed fails a correct sampler with probability 1e-4 at this threshold
    live = expected > 0
    chi2 = float((((counts[live] - n * expected[live]) ** 2) / (n * expected[live])).sum())
    assert chi2 < stats.chi2.ppf(1 - 1e-4, int(live.sum()) - 1), (counts / n, expected)
    assert constraint.fallbacks == 0


def test_a_mask_that_keeps_one_token_and_greedy_take_the_best_allowed():
    expected = masked_first(GenerationConfig(top_k=1))
    drawn = draw_checked(LOGITS.expand(50, -1), torch.zeros(50, 1, dtype=torch.long), [Only(ALLOWED)], temperature=1.0,
                         top_k=1, top_p=None, generator=torch.Generator().manual_seed(0))
    assert torch.equal(drawn, torch.full((50,), int(expected.argmax())))
    assert int(expected.argmax()) == 6   # the third most likely token, past the two that are not allowed
    constraint = Only(ALLOWED)
    greedy = draw_checked(LOGITS[None], torch.zeros(1, 1, dtype=torch.long), [constraint], temperature=0.0, top_k=None,
                          top_p=None, generator=None)
    assert int(greedy) == 6 and constraint.asked == 3   # best, second best (both refused), then the third


def test_checks_stay_few_when_the_model_prefers_allowed_tokens():
    constraint = Only(range(1, 8))   # only token 0 is refused, and it is unlikely
    logits = torch.tensor([-3.0, 2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0])
    draw_checked(logits.expand(500, -1), torch.zeros(500, 1, dtype=torch.long), [constraint], temperature=1.0,
                 top_k=None, top_p=None, generator=torch.Generator().manual_seed(0))
    assert constraint.asked < 520   # about one question a row, not eight


def test_no_allowed_token_falls_back_to_the_unconstrained_draw_and_counts_it():
    constraint = Only(())
    drawn = draw_checked(LOGITS.expand(4, -1), torch.zeros(4, 1, dtype=torch.long), [constraint], temperature=1.0,
                         top_k=2, top_p=None, generator=torch.Generator().manual_seed(0))
    assert constraint.fallbacks == 4 and set(drawn.tolist()) <= {1, 0}   # the two most likely of all tokens


def test_generate_checks_draws_of_a_constraint_that_does_not_mask_and_keeps_unconstrained_draws():
    network = random_gpt(vocab=8, block=16)
    prompts = [[0]] * 6
    constraint = Only(ALLOWED)
    assert checked((constraint, lambda tokens, scores: scores)) == (constraint,)
    config = GenerationConfig(max_new_tokens=10, logits_processors=(constraint,))
    rows = generate(network, prompts, config, generator=torch.Generator().manual_seed(0))
    assert all(set(row) <= set(ALLOWED) for row in rows) and constraint.asked < 6 * 10 * 3
    free = GenerationConfig(max_new_tokens=10)
    assert generate(network, prompts, free, generator=torch.Generator().manual_seed(0)) == \
        generate(network, prompts, free, generator=torch.Generator().manual_seed(0))
