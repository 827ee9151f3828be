"""No parallel fifths or octaves: the rule of four-part writing as a sampling constraint for chorales.

Two voices move in parallel fifths (octaves) when, from one chord to the next, both move in the same direction
and the interval between them is a perfect fifth (an octave or unison, modulo the octave) before and after:
exactly what :func:`genlab.metrics.music.chorale_statistics` counts, and what textbooks of Bach's style forbid.
A chord is the sounding pitches of a step at which some voice starts a note; "before" is the previous such step.

In the time grid (:mod:`genlab.data.music`) a step's four tokens come soprano first, so when a voice's token is
drawn the voices above it in the step are known: :class:`VoiceLeading` allows a new pitch for voice ``v`` only
if it makes no parallel fifth or octave with a voice ``u < v`` already placed in the step. Every pair is judged
once, when its lower voice is drawn. A hold (``_``) or a rest never moves, so some token is always allowed and
the rule never leaves a row without a choice; the grid's own grammar (:mod:`genlab.sampling.token_grammar`)
still decides which tokens are well-formed. As a checked constraint (``masks`` false), sampling draws from the
model and checks only the drawn token, redrawing among the rest on a rejection: the distribution is the
model's, renormalised over the allowed tokens (:mod:`genlab.sampling.checked_draw`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from genlab.sampling.constraint import TokenConstraint

#: Token kinds besides a pitch (a MIDI number >= 0).
HOLD, REST, BAR, OTHER = -1, -2, -3, -4
#: Intervals modulo the octave that may not move in parallel: the unison/octave and the perfect fifth.
PERFECT = (0, 7)


@dataclass
class _Voices:
    """One row's place in the grid: the voice next in the step, the pitch each voice sounds and the chord at
    the last step with an onset (``-1`` silent), which voices started a note in the step so far."""

    voice: int
    sounding: list[int]
    before: list[int]
    onset: list[bool]
    free: bool = False     # left unconstrained after a fallback

    @classmethod
    def start(cls, voices: int) -> "_Voices":
        """A row before its first step: every voice silent."""
        return cls(0, [-1] * voices, [-1] * voices, [False] * voices)

    def copy(self) -> "_Voices":
        return _Voices(self.voice, list(self.sounding), list(self.before), list(self.onset), self.free)


def parallel(before: Sequence[int], after: Sequence[int], upper: int, lower: int) -> bool:
    """Whether voices ``upper`` and ``lower`` move in parallel fifths or octaves from chord ``before`` to chord
    ``after`` (sounding MIDI pitches, ``-1`` for a silent voice)."""
    if min(before[upper], before[lower], after[upper], after[lower]) < 0:
        return False
    move_upper, move_lower = after[upper] - before[upper], after[lower] - before[lower]
    if move_upper == 0 or move_lower == 0 or (move_upper > 0) != (move_lower > 0):
        return False
    then, now = (before[upper] - before[lower]) % 12, (after[upper] - after[lower]) % 12
    return then == now and now in PERFECT


class VoiceLeading(TokenConstraint):
    """The constraint of the module doc over a chorale codec's ids.

    Args:
        tokens: the codec's token strings by id (``|``, ``_``, ``R`` and MIDI pitch numbers); ids past them
            (``eos``) start a new chorale.
        voices: voices a step holds.

    Attributes:
        checks: drawn tokens judged; ``masked``: those refused; ``fallbacks``: as :class:`TokenConstraint`.
    """

    masks = False

    def __init__(self, tokens: Sequence[str], *, hold: str = "_", rest: str = "R", bar: str = "|",
                 voices: int = 4) -> None:
        super().__init__()
        special = {hold: HOLD, rest: REST, bar: BAR}
        self.kinds = [special.get(t, int(t) if t.isdigit() else OTHER) for t in tokens]
        self.voices = voices
        self.checks = self.masked = 0
        self._rows: list[_Voices] = []

    @classmethod
    def for_codec(cls, codec) -> "VoiceLeading":
        """The rule for a :class:`~genlab.data.music.ChoraleCodec`."""
        return cls(codec.tokens)

    def allows(self, row: int, token: int) -> bool:
        state = self._rows[row]
        pitch = self._kind(token)
        if state.free or pitch < 0:
            return True
        self.checks += 1
        after = list(state.sounding)
        after[state.voice] = pitch
        refused = any(parallel(state.before, after, upper, state.voice) for upper in range(state.voice)
                      if state.onset[upper])
        self.masked += refused
        return not refused

    def fallback(self, row: int) -> None:
        self.fallbacks += 1
        self._rows[row].free = True

    def __call__(self, tokens: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """``scores (B, V)`` with ``-inf`` on every pitch that would move in parallel (beam search's form)."""
        self.update(tokens)
        keep = torch.ones_like(scores, dtype=torch.bool)
        for row in range(scores.shape[0]):
            for token in range(min(scores.shape[1], len(self.kinds))):
                if self.kinds[token] >= 0 and not self.allows(row, token):
                    keep[row, token] = False
        return scores.masked_fill(~keep, float("-inf"))

    def _kind(self, token: int) -> int:
        return self.kinds[token] if token < len(self.kinds) else OTHER

    def _replay(self, tokens: torch.Tensor) -> None:
        self._rows = []
        for row in tokens.tolist():
            state = _Voices.start(self.voices)
            for token in row:
                state = self._after(state, token)
            self._rows.append(state)

    def _reorder(self, parent: torch.Tensor) -> None:
        self._rows = [self._rows[i].copy() for i in parent.tolist()]

    def _advance(self, token: torch.Tensor) -> None:
        self._rows = [self._after(state, t) for state, t in zip(self._rows, token.tolist())]

    def _after(self, state: _Voices, token: int) -> _Voices:
        """The row after ``token`` (a fresh row after ``eos``)."""
        kind = self._kind(token)
        if kind == OTHER:
            return _Voices.start(self.voices)
        if kind == BAR:
            return state
        if kind >= 0:
            state.sounding[state.voice], state.onset[state.voice] = kind, True
        elif kind == REST:
            state.sounding[state.voice] = -1
        state.voice += 1
        if state.voice == self.voices:     # the step is whole: a chord when some voice started a note
            if any(state.onset):
                state.before = list(state.sounding)
            state.voice, state.onset = 0, [False] * self.voices
        return state
