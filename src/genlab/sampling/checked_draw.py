"""Sample-then-check: draw the next token first, then ask the constraints about the drawn token only, and
draw again without it while they refuse.

This is rejection sampling from a categorical. With ``q`` the distribution after temperature and ``W`` the
set of allowed tokens, draw ``x ~ q``; if ``x`` is not in ``W``, set ``q(x) = 0`` and draw again from the
renormalised rest. Every removed token lies outside ``W``, so each draw comes from ``q`` restricted to a set
that contains ``W``, and the accepted token has the law

    P(x) = q(x) 1[x in W] / q(W),

that of masking every token outside ``W`` first, which needs all ``V`` candidates checked. Here the checks
are one plus the refused draws: about one a step when the model puts most of its mass on allowed tokens.

Top-k and top-p act on the allowed tokens, as after a masking logits processor (processors come before them,
as in Hugging Face ``generate``): the accepted set ``S`` is the nucleus (mass ``p``) of the ``k`` most likely
allowed tokens. In the order of probability (ties by id, as ``torch.sort(stable=True)``), with ``P`` the allowed
mass of ``S``'s candidates above ``x`` and ``R`` that below ``x``, ``x`` is in the nucleus iff

    (1 - p) P < p (q(x) + R)

(:func:`~genlab.sampling.decoding.process_logits` removes a token whose share of the mass from it downwards
is at most ``1 - p``). Tokens are checked down the sorted order only until the unchecked mass cannot change
the answer, which is at once for a draw much likelier than the tokens above it. A draw outside ``S`` removes
itself and every less likely token (all outside ``S``). The nucleus is judged in float64 from the float32
probabilities where ``process_logits`` sums in float32: the two differ only for a token on the nucleus' edge
to within rounding.

Greedy decoding takes the most likely token, then the next most likely, until one is allowed.

When no token the distribution can draw is allowed, each constraint's ``fallback`` is told and the row is
drawn unconstrained (with top-k and top-p over all tokens), as a masking processor leaves such a step.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from genlab.sampling.constraint import TokenConstraint


def draw_checked(scores: torch.Tensor, tokens: torch.Tensor, constraints: Sequence[TokenConstraint], *,
                 temperature: float, top_k: int | None, top_p: float | None,
                 generator: torch.Generator | None) -> torch.Tensor:
    """The next token of every row, drawn first and checked by ``constraints`` (module doc).

    Args:
        scores: float ``(B, V)`` logits after the repetition penalty and the other processors, before
            temperature (``-inf``: removed).
        tokens: int64 ``(B, T)`` the sequences so far; the constraints are brought up to them first.
        constraints: the constraints every drawn token must pass.
        temperature: softmax temperature; 0 is greedy decoding.
        top_k: keep the ``k`` most likely allowed tokens; ``None`` for all.
        top_p: keep the nucleus of mass ``p`` in ``(0, 1]`` of the allowed tokens; ``None`` for all.
        generator: randomness of the draws.

    Returns:
        int64 ``(B,)`` on ``scores``' device.
    """
    for constraint in constraints:
        constraint.update(tokens)
    B, V = scores.shape
    picks = []
    if temperature == 0:
        best = scores.argmax(-1).tolist()
        for row in range(B):
            token = _greedy(scores[row], best[row], _Checks(constraints, row))
            if token is None:
                _fallback(constraints, row)
            picks.append(best[row] if token is None else token)
        return torch.tensor(picks, dtype=torch.long, device=scores.device)
    probs = (scores.float() / temperature).softmax(-1)                              # (B, V)
    device = generator.device if generator is not None else probs.device
    probs = probs.to(device)
    first = torch.multinomial(probs, 1, generator=generator)[:, 0].tolist()         # one draw a row, as choose
    k = top_k if top_k is not None and top_k < V else None
    p = top_p if top_p is not None and top_p < 1 else None
    kept = _surely_kept(probs, torch.tensor(first, device=device), k, p).tolist()
    for row, x in enumerate(first):
        allowed = _Checks(constraints, row)
        if kept[row] and allowed(x):   # the common case: one question
            picks.append(x)
            continue
        token = _draw(probs[row], x, allowed, k, p, generator)
        if token is None:
            _fallback(constraints, row)
            token = _draw(probs[row], x, lambda t: True, k, p, generator)
        picks.append(token)
    return torch.tensor(picks, dtype=torch.long, device=scores.device)


def _surely_kept(probs: torch.Tensor, x: torch.Tensor, k: int | None, p: float | None) -> torch.Tensor:
    """bool ``(B,)``: draw ``x (B,)`` of ``probs (B, V)`` is in the top-k and top-p set of the allowed tokens
    whichever tokens above it are allowed, given that it is allowed itself (:class:`_Nucleus`)."""
    if k is None and p is None:
        return torch.ones_like(x, dtype=torch.bool)
    q = probs.gather(1, x[:, None])                                                  # (B, 1)
    ids = torch.arange(probs.shape[1], device=probs.device)
    ahead = (probs > q) | ((probs == q) & (ids < x[:, None]))                        # (B, V) ranked above x
    kept = torch.ones_like(x, dtype=torch.bool) if k is None else ahead.sum(1) < k
    if p is not None:
        kept &= (1 - p) * (probs.double() * ahead).sum(1) < p * q[:, 0].double()
    return kept


class _Checks:
    """``allowed(token)`` of one row: every constraint allows it; each token asked once a step."""

    def __init__(self, constraints: Sequence[TokenConstraint], row: int) -> None:
        self.constraints, self.row = constraints, row
        self.known: dict[int, bool] = {}

    def __call__(self, token: int) -> bool:
        if token not in self.known:
            self.known[token] = all(c.allows(self.row, token) for c in self.constraints)
        return self.known[token]


def _fallback(constraints: Sequence[TokenConstraint], row: int) -> None:
    for constraint in constraints:
        constraint.fallback(row)


def _greedy(scores: torch.Tensor, best: int, allowed: Callable[[int], bool]) -> int | None:
    """The most likely allowed token of ``scores (V,)`` (the first id among ties), or ``None``."""
    if allowed(best):
        return best
    values, order = torch.sort(scores, descending=True, stable=True)
    for value, token in zip(values.tolist(), order.tolist()):
        if value == float("-inf"):
            break
        if allowed(token):
            return token
    return None


def _draw(q: torch.Tensor, x: int, allowed: Callable[[int], bool], k: int | None, p: float | None,
          generator: torch.Generator | None) -> int | None:
    """A token of ``S`` drawn from ``q (V,)`` renormalised on ``S``, by rejection from the first draw ``x``
    (module doc); ``None`` when no drawable token is allowed.

    Drawing again from the renormalised rest after each refusal is sampling without replacement, so the redraws
    come from one exponential race instead of one ``multinomial`` call each: token ``i`` arrives at time
    ``E_i / q_i`` with ``E_i ~ Exp(1)``, and the order of arrival is a draw without replacement from ``q`` (the
    first arrival among any set of tokens left is distributed as ``q`` on that set, whatever arrived before).
    Tokens a refusal drops (all outside ``S``) are skipped in that order."""
    nucleus = None if k is None and p is None else _Nucleus(q, allowed, k, p)
    dropped, order = None, None
    while True:
        if allowed(x):
            if nucleus is None or nucleus.holds(x):
                return x
            drop = nucleus.at_and_below(x).numpy()   # x and every less likely token: all outside S
        else:
            drop = x
        if order is None:
            dropped = np.zeros(q.shape[0], dtype=bool)
            arrival = -torch.log(torch.rand(q.shape, generator=generator, device=q.device)) / q   # (V,); inf: q 0
            arrival[x] = float("inf")
            finite = int(torch.isfinite(arrival).sum())
            order = iter(torch.argsort(arrival)[:finite].tolist())
        dropped[drop] = True
        x = next((t for t in order if not dropped[t]), None)
        if x is None:
            return None


class _Nucleus:
    """Whether a token is in ``S`` (the top-``p`` nucleus of the ``k`` most likely allowed tokens of ``q``),
    checking tokens down the order of probability only as far as the answer needs (module doc)."""

    def __init__(self, q: torch.Tensor, allowed: Callable[[int], bool], k: int | None, p: float | None) -> None:
        self.q, self.allowed, self.k, self.p = q, allowed, k, p
        self.order: np.ndarray | None = None

    def holds(self, x: int) -> bool:
        k, p = self.k, self.p
        if self.order is None and bool(_surely_kept(self.q[None], torch.tensor([x], device=self.q.device), k, p)):
            return True   # even if every token above x were allowed
        self._sort()
        r = int(self.rank[x])
        if k is not None and r >= k:   # in the top k: fewer than k allowed tokens above it
            self._scan(r)
            if self.count[r] >= k:
                return False
        if p is None:
            return True
        mass, tail, kept = self.mass, self.tail, self.kept
        while True:   # bounds on P (allowed mass above x) and R (that of S's candidates below), tightened
            i = self.i
            p_low = kept[min(i, r)]
            p_high = p_low + (tail[i] - tail[r] if i < r else 0.0)
            r_low = kept[i] - kept[r + 1] if i > r + 1 else 0.0
            more = k is None or self.count[i] < k          # S may still gain tokens below the checked ones
            r_high = r_low + (tail[max(i, r + 1)] if more else 0.0)
            if (1 - p) * p_high < p * (mass[r] + r_low):
                return True
            if (1 - p) * p_low >= p * (mass[r] + r_high):
                return False
            self._scan(i + 1)

    def at_and_below(self, x: int) -> torch.Tensor:
        """int64: ``x`` and every token ranked below it."""
        return torch.from_numpy(self.order[self.rank[x]:])

    def _sort(self) -> None:
        if self.order is not None:
            return
        values, order = torch.sort(self.q.double().cpu(), descending=True, stable=True)
        self.mass, self.order = values.numpy(), order.numpy()
        self.tail = np.append(np.cumsum(self.mass[::-1])[::-1], 0.0)   # mass of ranks >= j; exact 0 past the last
        self.rank = np.empty(len(self.order), dtype=np.int64)
        self.rank[self.order] = np.arange(len(self.order))
        self.i = 0                 # ranks below i are checked
        self.count = [0]           # allowed tokens among ranks < j
        self.kept = [0.0]          # allowed mass among ranks < j that lies in the top k

    def _scan(self, j: int) -> None:
        """Check every rank below ``j``."""
        while self.i < j:
            ok = self.allowed(int(self.order[self.i]))
            top = ok and (self.k is None or self.count[-1] < self.k)
            self.count.append(self.count[-1] + ok)
            self.kept.append(self.kept[-1] + (float(self.mass[self.i]) if top else 0.0))
            self.i += 1
