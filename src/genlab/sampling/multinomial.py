"""Multinomial diffusion: the discrete forward process and its posterior, as pure tensor maths.

Hoogeboom et al. 2021, "Argmax Flows and Multinomial Diffusion" (sec. 4), the categorical half of
TabDDPM (Kotelnikov et al. 2023). A category ``x`` of ``K`` is a one-hot row; one forward step keeps
it with probability ``alpha_t`` and otherwise redraws it uniformly:

    q(x_t | x_{t-1}) = Cat(x_t; alpha_t x_{t-1} + (1 - alpha_t) / K),
    q(x_t | x_0)     = Cat(x_t; abar_t x_0 + (1 - abar_t) / K),                       (eq. 12)
    q(x_s | x_t, x_0) ∝ [a_ts x_t + (1 - a_ts) / K] ⊙ [abar_s x_0 + (1 - abar_s) / K],  (eq. 13)

with ``a_ts = abar_t / abar_s`` for any ``s < t`` (the composed transition from ``s`` to ``t`` has the
same form, so a sampler may stride over steps; ``s = t - 1`` is the paper's case). The reverse model
plugs the network's predicted distribution over ``x_0`` into the posterior (eq. 14):
``p(x_s | x_t) = q(x_s | x_t, x0_hat)``. ``x_0`` may be any probability row, which is what lets it
take ``x0_hat``. Everything works in log space so that probabilities near ``1e-8`` stay exact; every
function takes and returns ``(B, K)`` rows of one categorical column, with ``abar`` a float or a
``(B, 1)`` tensor.
"""

from __future__ import annotations

import math

import torch


def log_q_xt_given_x0(log_x0: torch.Tensor, alpha_bar: float | torch.Tensor) -> torch.Tensor:
    """``log q(x_t | x_0) = log(abar x_0 + (1 - abar) / K)``, ``(B, K)``, from ``log x_0 (B, K)`` (eq. 12)."""
    K = log_x0.shape[-1]
    alpha_bar = torch.as_tensor(alpha_bar, dtype=log_x0.dtype, device=log_x0.device)
    return torch.logaddexp(log_x0 + alpha_bar.log(), (1 - alpha_bar).clamp_min(1e-30).log() - math.log(K))


def log_posterior(log_x0: torch.Tensor, x_t: torch.Tensor, alpha_bar_t: float | torch.Tensor,
                  alpha_bar_s: float | torch.Tensor) -> torch.Tensor:
    """``log q(x_s | x_t, x_0)``, normalised, ``(B, K)`` (eq. 13 with ``a_ts = abar_t / abar_s``).

    Args:
        log_x0: ``(B, K)`` log-probabilities of ``x_0`` (a one-hot's log, or the network's log-softmax).
        x_t: ``(B, K)`` one-hot current categories.
        alpha_bar_t: ``abar_t``; alpha_bar_s: ``abar_s`` of the earlier step ``s < t`` (``1`` for ``s = -1``,
            where the posterior is ``x_0`` itself).
    """
    K = x_t.shape[-1]
    alpha_bar_t = torch.as_tensor(alpha_bar_t, dtype=log_x0.dtype, device=log_x0.device)
    alpha_bar_s = torch.as_tensor(alpha_bar_s, dtype=log_x0.dtype, device=log_x0.device)
    a_ts = alpha_bar_t / alpha_bar_s
    # log(a_ts x_t + (1 - a_ts) / K): x_t one-hot, so the kept category gets a_ts + (1 - a_ts) / K.
    log_step = torch.log(a_ts * x_t + (1 - a_ts) / K)
    unnormalised = log_step + log_q_xt_given_x0(log_x0, alpha_bar_s)
    return unnormalised - unnormalised.logsumexp(dim=-1, keepdim=True)


def kl(log_q: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """``KL(q || p) = sum_k q_k (log q_k - log p_k)`` per row, ``(B,)``; ``q_k = 0`` terms count 0."""
    q = log_q.exp()
    return torch.where(q > 0, q * (log_q - log_p), torch.zeros_like(q)).sum(-1)


def sample_one_hot(log_probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One category per row drawn from ``log_probs (B, K)`` (Gumbel-max), as a float one-hot ``(B, K)``."""
    device = generator.device if generator is not None else log_probs.device
    u = torch.rand(log_probs.shape, generator=generator, dtype=torch.float64, device=device)
    gumbel = -torch.log(-torch.log(u.clamp(1e-30, 1.0 - 1e-16))).to(log_probs.device, log_probs.dtype)
    index = (log_probs + gumbel).argmax(dim=-1)
    return torch.nn.functional.one_hot(index, log_probs.shape[-1]).to(log_probs.dtype)


def one_hot_log(x: torch.Tensor) -> torch.Tensor:
    """``log`` of a one-hot (or probability) row ``(B, K)``, with ``log 0`` floored at ``-70`` (``e^-70 ~ 4e-31``)."""
    return x.clamp_min(1e-30).log().clamp_min(-70.0)
