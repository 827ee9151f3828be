"""The chorale grid's grammar as a finite state machine, the constraint
:meth:`genlab.data.music.ChoraleCodec.grammar` offers (its states and what each token class does to them)."""

from __future__ import annotations

from dataclasses import dataclass

#: Voices a step holds: soprano, alto, tenor, bass (:data:`genlab.data.music.VOICES`).
N_VOICES = 4
#: Token classes of :class:`ChoraleSyntax`; a pitch's class is ``PITCH_CLASS`` plus the bit set of the
#: voices whose range holds it.
BAR_CLASS, HOLD_CLASS, REST_CLASS, PITCH_CLASS = 0, 1, 2, 3


@dataclass(frozen=True)
class ChoraleSyntax:
    """The grid's grammar as a finite state machine over token classes, for constrained sampling
    (:mod:`genlab.sampling.token_grammar` compiles it into one allowed-token vector per state).

    A sample opens with ``|``; a step is four voice tokens, each a pitch in its voice's range, ``R``, or ``_``
    where the voice sounds. The first bar (a pickup) holds 1 to ``max(meters)`` steps, the second one of
    ``meters`` (the meter), every later one the meter, or splits it in two bars (6 + 2 steps at a repeat in
    4/4, as Bach's scores do). The sample ends (``eos``) only where a bar line may come after a whole bar, once
    a note has started: so every sample parses. A state is ``(bar, meter, due, steps, voice, sounding, note)``:
    bar 0 before the first ``|``, 1 the pickup, 2 the bar that fixes the meter, 3 any later one; the meter (0
    while open); the steps the bar must hold (0 while open); whole steps so far; the voice next in the step;
    a bit per voice that sounds; whether a note has started.

    Attributes:
        classes: the class of each token id (``BAR_CLASS`` ...); the ``eos`` id's is not read.
        eos: the end-of-sample id.
        meters: the bar lengths in steps a sample may take.
    """

    classes: tuple[int, ...]
    eos: int
    meters: tuple[int, ...]
    name: str = "chorale grammar"
    start: tuple = (0, 0, 0, 0, 0, 0, False)

    def step(self, state: tuple, cls: int) -> tuple | None:
        """The state after a token of class ``cls``, or ``None`` where the grammar does not allow it."""
        bar, meter, due, steps, voice, sounding, note = state
        if cls == BAR_CLASS:
            if bar == 0:
                return 1, 0, 0, 0, 0, 0, False
            if voice or not steps or (bar == 2 and steps not in self.meters) or steps < due < meter:
                return None   # mid-step, an empty bar, no meter, or the second half of a split bar cut again
            if bar < 3:
                return bar + 1, steps * (bar == 2), steps * (bar == 2), 0, 0, sounding, note
            return 3, meter, meter if steps == due else meter - steps, 0, 0, sounding, note
        if bar == 0 or (voice == 0 and steps >= (due or max(self.meters))):
            return None   # before the first bar line, or the bar is full and its bar line comes first
        bit = 1 << voice
        if cls == HOLD_CLASS:
            if not sounding & bit:
                return None
        elif cls == REST_CLASS:
            sounding &= ~bit
        elif cls >= PITCH_CLASS and (cls - PITCH_CLASS) & bit:
            sounding, note = sounding | bit, True
        else:
            return None
        voice = (voice + 1) % N_VOICES
        return bar, meter, due, steps + (voice == 0), voice, sounding, note

    def accepts(self, state: tuple) -> bool:
        """Whether a sample may end in ``state``."""
        bar, _, due, steps, voice, _, note = state
        return note and bar > 0 and voice == 0 and (steps == due if due else steps in self.meters)
