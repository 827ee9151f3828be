"""Soprano lines to harmonise: a melody as a one-voice time grid, read from a file or a Bach chorale, and the
layout of the chorale that harmonises it.

A **melody string** is the soprano of the chorale grid (:mod:`genlab.data.music`): a bar line ``|`` before
every bar and one token per step of :data:`~genlab.data.music.STEP` quarter notes (an eighth note), a MIDI
pitch where a note starts, ``_`` where it is held, ``R`` for a rest: ``"| 67 _ 69 _ 71 _ _ _"`` is one bar of
4/4, G4 and A4 as quarter notes and B4 as a half note. :func:`soprano_line` takes it from a chorale string.

Sources (:func:`read_melody`):

- a MusicXML or MIDI file, read with music21: one part, one note at a time (no chord, no second voice), every
  note starting and ending on the grid (a multiple of an eighth note); a tied note is one held note; the bars
  are the file's measures (every 8 steps where it has none);
- ``bach:NAME``: the soprano of the piece ``NAME`` of music21's Bach corpus (``bach:bwv269``), in the grid as
  the training chorales are made (:func:`~genlab.data.music.score_to_chorale`: onsets rounded to the grid).

**Harmonisation.** The chorale grid puts the soprano first in every step, so a chorale whose bars and steps
are the melody's is the token sequence

    | s_1 a_1 t_1 b_1  s_2 a_2 t_2 b_2 ...  | ...  eos

in which every position is known before decoding: a bar line, a soprano token or ``eos`` (the melody's, one
token allowed) or a lower voice (drawn). Forcing the known tokens while the model draws the others keeps the
melody note for note, and since the soprano comes first in its step, each chord's alto, tenor and bass are drawn
seeing their own soprano note and everything before it (not the melody still to come: the model reads left to
right; :mod:`genlab.sampling.layout`). :func:`harmony_layout` gives, for each position, the
ids allowed there (:class:`HarmonyLayout`): inside the grammar, a lower voice takes a pitch in its fitted range
(:attr:`~genlab.data.music.ChoraleCodec.ranges`), ``R``, or ``_`` where it sounds a step before, so every
harmonisation parses and keeps its voices in range; the melody's bars need not be the training meters (the
layout fixes them). A soprano note outside the model's soprano range is an error naming it.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genlab.data.music import (BAR, DEFAULT_BAR_STEPS, HOLD, REST, STEP, VOICES, ChoraleCodec, parse_chorale,
                               require_music21, score_to_chorale)
from genlab.errors import DataError

#: A built-in melody: ``bach:NAME`` is the soprano of ``NAME`` in music21's Bach corpus.
BACH_PREFIX = "bach:"
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def pitch_name(midi: int) -> str:
    """Scientific pitch name of a MIDI number: ``60`` is ``C4``, ``70`` is ``Bb4``."""
    return f"{PITCH_NAMES[midi % 12]}{midi // 12 - 1}"


@dataclass(frozen=True)
class Melody:
    """A parsed melody string.

    Attributes:
        pitch: int16 ``(T,)`` sounding MIDI pitch per step, ``-1`` for a rest.
        onset: bool ``(T,)``: a note starts on this step.
        bars: int64 ``(n_bars,)`` the step each bar starts on (the first is 0).
    """

    pitch: np.ndarray
    onset: np.ndarray
    bars: np.ndarray

    @property
    def n_steps(self) -> int:
        return len(self.pitch)

    def bar_of(self, step: int) -> int:
        """The bar (from 1) that holds ``step``."""
        return int(np.searchsorted(self.bars, step, side="right"))


def parse_melody(text: str) -> Melody:
    """The :class:`Melody` of a melody string (module doc).

    Raises:
        DataError: a token is not a pitch 0-127, ``_``, ``R`` or ``|``; it does not open with ``|``; a ``_`` has
            no note to hold; two bar lines have no step between them; or it holds no note.
    """
    if not isinstance(text, str):
        raise DataError(f"a melody is a string of bar lines and one token a step, got {type(text).__name__}")
    tokens = text.split()
    if not tokens or tokens[0] != BAR:
        raise DataError(f"a melody string opens with a bar line {BAR!r} (e.g. '| 67 _ 69 _'), got {text[:20]!r}")
    pitch: list[int] = []
    onset: list[bool] = []
    bars: list[int] = []
    for token in tokens:
        if token == BAR:
            if bars and bars[-1] == len(pitch):
                raise DataError(f"the melody has an empty bar (two bar lines) before step {len(pitch)}")
            bars.append(len(pitch))
        elif token == HOLD:
            if not pitch or pitch[-1] < 0:
                raise DataError(f"step {len(pitch)} of the melody holds a note it never started")
            pitch.append(pitch[-1])
            onset.append(False)
        elif token == REST:
            pitch.append(-1)
            onset.append(False)
        elif token.isdigit() and 0 <= int(token) <= 127:
            pitch.append(int(token))
            onset.append(True)
        else:
            raise DataError(f"{token!r} in the melody is not a pitch 0-127, {HOLD!r}, {REST!r} or {BAR!r}")
    if bars[-1] == len(pitch):
        raise DataError("the melody ends with a bar line and no step after it")
    if not any(onset):
        raise DataError("the melody holds no note")
    return Melody(pitch=np.asarray(pitch, dtype=np.int16), onset=np.asarray(onset, dtype=bool),
                  bars=np.asarray(bars, dtype=np.int64))


def format_melody(melody: Melody) -> str:
    """The melody string of ``melody`` (inverse of :func:`parse_melody`)."""
    starts = set(melody.bars.tolist())
    tokens = []
    for t in range(melody.n_steps):
        if t in starts:
            tokens.append(BAR)
        p = int(melody.pitch[t])
        tokens.append(REST if p < 0 else str(p) if melody.onset[t] else HOLD)
    return " ".join(tokens)


def soprano_line(chorale: str) -> str:
    """The melody string of a chorale's soprano: its bar lines and the first token of every step.

    Raises:
        DataError: ``chorale`` does not parse.
    """
    grid = parse_chorale(chorale)
    bars = grid.bars if len(grid.bars) and grid.bars[0] == 0 else np.append(0, grid.bars)
    return format_melody(Melody(pitch=grid.pitch[:, 0], onset=grid.onset[:, 0], bars=bars.astype(np.int64)))


# ---------------------------------------------------------------------------------------- reading
def read_melody(source: str | os.PathLike) -> str:
    """The melody string of a MusicXML/MIDI file or of ``bach:NAME`` (module doc).

    Raises:
        DataError: the file is missing or music21 cannot read it; it has more than one part, a chord, two notes
            at once, or a note off the eighth-note grid (the note is named); no such Bach piece.
    """
    if isinstance(source, str) and source.startswith(BACH_PREFIX):
        return bach_melody(source[len(BACH_PREFIX):])
    return melody_file(source)


def bach_melody(name: str) -> str:
    """The soprano of the piece ``name`` (a file name without suffix, e.g. ``bwv269``) of music21's Bach corpus.

    Raises:
        DataError: no such piece (close names are suggested), or it is not four voices.
    """
    music21 = require_music21()
    pieces = {Path(str(p)).name.rsplit(".", 1)[0]: p for p in music21.corpus.getComposer("bach")}
    if name not in pieces:
        close = difflib.get_close_matches(name, list(pieces), n=3)
        hint = f"; did you mean {', '.join(BACH_PREFIX + c for c in close)}?" if close else ""
        raise DataError(f"no piece {name!r} in music21's Bach corpus of {len(pieces)} pieces (names like "
                        f"{BACH_PREFIX}bwv269){hint}")
    return soprano_line(score_to_chorale(music21.corpus.parse(pieces[name]), f"{BACH_PREFIX}{name}"))


def melody_file(path: str | os.PathLike) -> str:
    """The melody string of a one-part MusicXML or MIDI file (module doc; raises as :func:`read_melody`)."""
    music21 = require_music21()
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such melody file (a MusicXML or MIDI file, or {BACH_PREFIX}NAME)")
    try:
        score = music21.converter.parse(str(path))
    except Exception as error:   # music21 raises its own exception types for files it cannot read
        raise DataError(f"{path.name}: music21 cannot read it as music ({type(error).__name__}: {error})") from None
    parts = list(getattr(score, "parts", ())) or [score]
    if len(parts) != 1:
        raise DataError(f"{path.name}: {len(parts)} parts; a melody is one part (the soprano line alone)")
    notes = list(parts[0].stripTies().flatten().notes)   # a tied note is one note held on
    if not notes:
        raise DataError(f"{path.name} holds no note")
    measures = sorted({int(round(float(m.offset) / STEP)) for m in parts[0].getElementsByClass("Measure")})
    spans = []
    for k, note in enumerate(notes, start=1):
        offset, length = float(note.offset), float(note.quarterLength)
        where = f"bar {1 + sum(m <= offset / STEP for m in measures[1:])}" if measures else f"beat {offset:g}"
        if note.isChord:
            names = " ".join(p.nameWithOctave for p in note.pitches)
            raise DataError(f"{path.name}: note {k} ({where}) is a chord ({names}); a melody is one note at a time")
        label = f"{path.name}: note {k} ({pitch_name(note.pitch.midi)}, {where})"
        if length <= 0:
            raise DataError(f"{label} is a grace note; the grid's notes last at least an eighth note")
        start, end = _on_grid(offset, label, "starts"), _on_grid(offset + length, label, "ends")
        if spans and start < spans[-1][1]:
            raise DataError(f"{label} starts before the note before it ends: two voices sound at once; "
                            f"a melody is one voice")
        spans.append((start, end, note.pitch.midi))
    n_steps = max(spans[-1][1], int(round(float(parts[0].highestTime) / STEP)))   # with a closing rest
    bars = [m for m in measures if m < n_steps] or list(range(0, n_steps, DEFAULT_BAR_STEPS))
    bars = bars if bars[0] == 0 else [0, *bars]
    pitch = np.full(n_steps, -1, dtype=np.int16)
    onset = np.zeros(n_steps, dtype=bool)
    for start, end, midi in spans:
        pitch[start:end], onset[start] = midi, True
    return format_melody(Melody(pitch=pitch, onset=onset, bars=np.asarray(bars, dtype=np.int64)))


def _on_grid(quarters: float, label: str, verb: str) -> int:
    """``quarters`` in grid steps, or a DataError saying that ``label`` ``verb`` off the eighth-note grid."""
    steps = quarters / STEP
    if abs(steps - round(steps)) > 1e-6:
        raise DataError(f"{label} {verb} at {quarters:g} quarter notes, off the grid's eighth-note steps "
                        f"(every note must start and end on an eighth)")
    return int(round(steps))


# ---------------------------------------------------------------------------------------- the layout
@dataclass(frozen=True)
class HarmonyLayout:
    """What each position of a harmonisation's sample may hold (module doc), for
    :class:`~genlab.sampling.layout.LayoutProcessor`.

    Attributes:
        allowed: bool ``(L + 1, V)``: the ids allowed at sample position ``j`` (one id where the melody fixes the
            token; the last row is ``eos``), leaving out ``hold`` at a lower voice.
        previous: int64 ``(L + 1,)``: at a lower voice, the position of the same voice's token one step earlier,
            where ``hold`` is allowed only if that token is in ``sounding``; ``-1`` elsewhere.
        hold: the id of ``_``.
        sounding: bool ``(V,)``: ids after which a voice sounds (a pitch, ``_``).
    """

    allowed: torch.Tensor
    previous: torch.Tensor
    hold: int
    sounding: torch.Tensor

    @property
    def length(self) -> int:
        """Tokens of the sample, ``eos`` included (``L + 1``)."""
        return len(self.previous)


def harmony_layout(melody: str, codec: ChoraleCodec, *, grammar: bool = True) -> HarmonyLayout:
    """The :class:`HarmonyLayout` of the chorale that harmonises ``melody`` with ``codec``'s ids.

    Args:
        melody: a melody string (module doc).
        codec: the fitted chorale codec of the model that harmonises it.
        grammar: keep the lower voices in the grammar (a pitch in the voice's fitted range, ``R``, or ``_`` where
            it sounds); ``False`` lets them take any pitch, ``_`` or ``R`` (the bars and soprano stay forced).

    Raises:
        DataError: the melody does not parse, or a note is outside ``codec``'s soprano range (named with its
            position).
    """
    line = parse_melody(melody)
    low, high = codec.ranges[0]
    for k, step in enumerate(np.flatnonzero(line.onset), start=1):
        p = int(line.pitch[step])
        if not low <= p <= high:
            raise DataError(f"melody note {k} ({pitch_name(p)}, MIDI {p}, bar {line.bar_of(int(step))}) is "
                            f"{'below' if p < low else 'above'} this model's soprano range {pitch_name(low)}-"
                            f"{pitch_name(high)} (MIDI {low}-{high}); transpose the melody into it")
    ids = {token: i for i, token in enumerate(codec.tokens)}
    vocab = codec.vocab_size
    pitches = np.array([t.isdigit() for t in codec.tokens] + [False])                      # (V,) over ids, eos last
    midi = np.array([int(t) if t.isdigit() else -1 for t in codec.tokens] + [-1])
    sounding = pitches.copy()
    sounding[ids[HOLD]] = True
    voices = []
    for lo, hi in codec.ranges[1:]:
        row = pitches & (midi >= lo) & (midi <= hi) if grammar else pitches.copy()
        row[ids[REST]] = True
        row[ids[HOLD]] = not grammar
        voices.append(row)
    soprano = format_melody(line).split()
    rows, previous = [], []
    last = [-1] * len(VOICES)   # position of each lower voice's token in the step before
    for token in soprano:
        forced = np.zeros(vocab, dtype=bool)
        forced[ids[token]] = True
        rows.append(forced)
        previous.append(-1)
        if token == BAR:
            continue
        for v, row in enumerate(voices, start=1):
            rows.append(row)
            previous.append(last[v] if grammar else -1)
            last[v] = len(rows) - 1
    end = np.zeros(vocab, dtype=bool)
    end[codec.eos] = True
    rows.append(end)
    previous.append(-1)
    return HarmonyLayout(allowed=torch.from_numpy(np.stack(rows)), previous=torch.tensor(previous, dtype=torch.long),
                         hold=ids[HOLD], sounding=torch.from_numpy(sounding))
