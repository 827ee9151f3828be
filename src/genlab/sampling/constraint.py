"""What decoding asks of a constraint: which token may come next in each row of the batch.

A :class:`TokenConstraint` keeps one state per row and follows the tokens decoding appends:

- ``update(tokens (B, T))`` brings every row's state up to the sequences so far, once per step before any
  question. A row that grew by one token is advanced by it; rows that beam search reordered continue the
  row they copy; anything else (the prompts, at the first step of a generation) is replayed from its start.
- ``allows(row, token) -> bool``: whether ``token`` may follow row ``row``'s sequence.
- ``ends(row, token) -> str | None``: the text of the sample (after its prompt) when the just allowed ``token``
  ends it there by the constraint's own rule, as a stop string would (the caller ends the row and keeps that
  text; what the token wrote past the end is dropped); ``None`` when it does not end it (the base: never).
- ``fallback(row)``: no token the distribution can draw is allowed in ``row``; the row is left unconstrained
  from here on, and counted in ``fallbacks``.
- ``masks``: whether the constraint gives the whole allowed set cheaply (a table lookup for a token grammar).
  Every constraint is also a logits processor ``constraint(tokens (B, T), scores (B, V)) -> scores`` with
  ``-inf`` on the tokens it removes, which beam search uses; greedy decoding and sampling use it too when
  ``masks`` is true. When it is false (Python's parser: a check costs tens of microseconds), they draw
  first and check the drawn token only (:mod:`genlab.sampling.checked_draw`), with the same distribution.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Sequence

import torch


class TokenConstraint(ABC):
    """Base of the constraints decoding checks token by token (module doc). Subclasses say how a row's
    state starts (:meth:`_replay`), follows a beam reorder (:meth:`_reorder`) and takes one token
    (:meth:`_advance`); this class decides which of them a step needs.

    Attributes:
        fallbacks: rows x steps in which no token was allowed (the row then goes unconstrained).
    """

    #: Whether :meth:`__call__` gives the whole allowed set cheaply, so sampling masks instead of checking draws.
    masks: bool = False

    def __init__(self) -> None:
        self.fallbacks = 0
        self._tokens: torch.Tensor | None = None
        self._width = 0   # the prompt's width: the generation's first tokens column

    def update(self, tokens: torch.Tensor) -> None:
        """Bring every row's state up to ``tokens`` int64 ``(B, T)`` (left-padded prompt, then the tokens
        drawn so far). Sequences shorter than the last call's start a new generation."""
        previous, self._tokens = self._tokens, tokens
        if previous is None or tokens.shape[1] <= previous.shape[1]:
            self._width = tokens.shape[1]
            self._begin(tokens)
            self._replay(tokens)
        elif tokens.shape[1] != previous.shape[1] + 1:
            self._replay(tokens)
        elif tokens.shape[0] == previous.shape[0] and torch.equal(tokens[:, :-1], previous):
            self._advance(tokens[:, -1])
        else:   # beam search kept some rows and copied others: each row continues the old row it copies
            same = (tokens[:, None, :-1] == previous[None]).all(-1)                  # (B, B_old)
            if not bool(same.any(1).all()):
                self._replay(tokens)
                return
            self._reorder(same.int().argmax(1))
            self._advance(tokens[:, -1])

    @abstractmethod
    def allows(self, row: int, token: int) -> bool:
        """Whether ``token`` may follow row ``row``'s sequence as of the last :meth:`update`."""

    def ends(self, row: int, token: int) -> str | None:
        """The sample's text when ``token``, just allowed in ``row`` (this step), ends it (module doc); ``None``
        when it does not: the base class never ends a sample."""
        return None

    @abstractmethod
    def fallback(self, row: int) -> None:
        """No drawable token is allowed in ``row``: leave the row unconstrained from now on, and count it."""

    @abstractmethod
    def __call__(self, tokens: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """The logits-processor form: ``scores (B, V)`` with ``-inf`` on the tokens removed after ``tokens (B, T)``."""

    def _begin(self, tokens: torch.Tensor) -> None:
        """A generation starts with prompts ``tokens (B, T)`` (before they are replayed)."""

    @abstractmethod
    def _replay(self, tokens: torch.Tensor) -> None:
        """Every row's state from its sequence ``tokens (B, T)``."""

    @abstractmethod
    def _reorder(self, parent: torch.Tensor) -> None:
        """Row ``i`` now continues the previous step's row ``parent[i]`` (``parent`` int64 ``(B,)``)."""

    @abstractmethod
    def _advance(self, token: torch.Tensor) -> None:
        """Every row took ``token[row]`` (int64 ``(B,)``)."""


def checked(processors: Sequence[Any]) -> tuple[TokenConstraint, ...]:
    """The constraints among logits ``processors`` that sampling checks draw by draw (``masks`` false)."""
    return tuple(p for p in processors if isinstance(p, TokenConstraint) and not p.masks)
