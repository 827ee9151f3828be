"""Statistics of four-voice chorales in the time-grid encoding, and their distances to held-out Bach.

Every statistic is computed in numpy on the parsed grid (:func:`genlab.data.music.parse_chorale`;
music21 reads and writes the scores, but its ``voiceLeading`` checks take about a second a chorale):

- pitch-class histogram: the share of note onsets on each of the 12 pitch classes;
- interval distribution: melodic intervals between consecutive notes of one voice, in semitones,
  clipped to ``-12 .. +12`` (25 bins);
- duration distribution: note lengths in grid steps (eighth notes), clipped to ``1 .. 16``;
- distances: total variation ``1/2 sum |p - q|`` between a set's distribution and the held-out one's;
- voice ranges: share of notes outside the reference's lowest-to-highest pitch of that voice;
- crossings: steps where a voice sounds below the voice written under it, per 100 beats;
- parallel fifths and octaves: at each chord change (a step where some voice starts a note), a pair of
  voices that both move in the same direction from a perfect fifth (or octave/unison), modulo the
  octave, to another, per 100 beats (a beat is a quarter note, two steps);
- parse rate: share of strings that parse back through the codec's grammar.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Sequence

import numpy as np

from genlab.data.music import STEP, VOICES, Grid, parse_chorale, parses

MAX_INTERVAL = 12
MAX_DURATION = 16


def _notes(grid: Grid, voice: int) -> tuple[np.ndarray, np.ndarray]:
    """Pitches ``(n,)`` and durations in steps ``(n,)`` of one voice's notes."""
    starts = np.flatnonzero(grid.onset[:, voice])
    ends = []
    for start in starts:
        end = start + 1
        while end < grid.n_steps and not grid.onset[end, voice] and grid.pitch[end, voice] >= 0:
            end += 1
        ends.append(end)
    return grid.pitch[starts, voice].astype(np.int64), np.asarray(ends, dtype=np.int64) - starts


@dataclass(frozen=True)
class ChoraleStatistics:
    """Pooled statistics of a set of chorales (module doc).

    Attributes:
        pitch_classes: float64 ``(12,)``; intervals: float64 ``(25,)`` for ``-12 .. +12``; durations:
        float64 ``(16,)`` for ``1 .. 16`` steps; low, high: int ``(4,)`` lowest and highest pitch per voice;
        crossings, fifths, octaves: per 100 beats; beats: beats covered; parse_rate: in ``[0, 1]``.
    """

    pitch_classes: np.ndarray
    intervals: np.ndarray
    durations: np.ndarray
    low: np.ndarray
    high: np.ndarray
    crossings: float
    fifths: float
    octaves: float
    beats: float
    parse_rate: float


def chorale_statistics(texts: Sequence[str]) -> ChoraleStatistics:
    """:class:`ChoraleStatistics` of the strings that parse (the rest only lower ``parse_rate``)."""
    grids = [parse_chorale(t) for t in texts if parses(t)]
    if not grids:
        raise ValueError("no chorale in the set parses")
    pcs, intervals, durations = np.zeros(12), np.zeros(2 * MAX_INTERVAL + 1), np.zeros(MAX_DURATION)
    low, high = np.full(len(VOICES), 127), np.zeros(len(VOICES), dtype=np.int64)
    crossings = fifths = octaves = 0
    steps = 0
    for grid in grids:
        steps += grid.n_steps
        for v in range(len(VOICES)):
            pitch, length = _notes(grid, v)
            if not len(pitch):
                continue
            np.add.at(pcs, pitch % 12, 1)
            np.add.at(intervals, np.clip(np.diff(pitch), -MAX_INTERVAL, MAX_INTERVAL) + MAX_INTERVAL, 1)
            np.add.at(durations, np.clip(length, 1, MAX_DURATION) - 1, 1)
            low[v], high[v] = min(low[v], pitch.min()), max(high[v], pitch.max())
        sounding = grid.pitch >= 0
        below = (grid.pitch[:, :-1] < grid.pitch[:, 1:]) & sounding[:, :-1] & sounding[:, 1:]
        crossings += int(below.any(1).sum())
        changes = np.flatnonzero(grid.onset.any(1))
        chords = grid.pitch[changes]                                            # (n_changes, 4)
        for a, b in combinations(range(len(VOICES)), 2):
            before, after = chords[:-1], chords[1:]
            ok = (before[:, [a, b]] >= 0).all(1) & (after[:, [a, b]] >= 0).all(1)
            move_a, move_b = after[:, a] - before[:, a], after[:, b] - before[:, b]
            similar = ok & (move_a != 0) & (move_b != 0) & (np.sign(move_a) == np.sign(move_b))
            then, now = (before[:, a] - before[:, b]) % 12, (after[:, a] - after[:, b]) % 12
            fifths += int((similar & (then == 7) & (now == 7)).sum())
            octaves += int((similar & (then == 0) & (now == 0)).sum())
    beats = steps * STEP
    per_100 = 100.0 / beats
    return ChoraleStatistics(pitch_classes=pcs / pcs.sum(), intervals=intervals / max(1, intervals.sum()),
                             durations=durations / durations.sum(), low=low, high=high,
                             crossings=crossings * per_100, fifths=fifths * per_100, octaves=octaves * per_100,
                             beats=beats, parse_rate=len(grids) / len(texts))


def _tv(p: np.ndarray, q: np.ndarray) -> float:
    return float(0.5 * np.abs(p - q).sum())


@dataclass(frozen=True)
class ChoraleComparison:
    """A set of chorales against held-out Bach (module doc); distances are total variation in ``[0, 1]``."""

    pitch_class_distance: float
    interval_distance: float
    duration_distance: float
    out_of_range: float
    crossings_per_100_beats: float
    fifths_per_100_beats: float
    octaves_per_100_beats: float
    parse_rate: float

    def to_dict(self) -> dict[str, float]:
        """The figures as a JSON-ready dict."""
        return asdict(self)


def compare_chorales(texts: Sequence[str], reference: Sequence[str]) -> ChoraleComparison:
    """Statistics of ``texts`` against those of ``reference`` (the held-out chorales)."""
    ours, theirs = chorale_statistics(texts), chorale_statistics(reference)
    outside = total = 0
    for text in texts:
        if not parses(text):
            continue
        grid = parse_chorale(text)
        for v in range(len(VOICES)):
            pitch, _ = _notes(grid, v)
            outside += int(((pitch < theirs.low[v]) | (pitch > theirs.high[v])).sum())
            total += len(pitch)
    return ChoraleComparison(
        pitch_class_distance=_tv(ours.pitch_classes, theirs.pitch_classes),
        interval_distance=_tv(ours.intervals, theirs.intervals),
        duration_distance=_tv(ours.durations, theirs.durations),
        out_of_range=outside / max(1, total), crossings_per_100_beats=ours.crossings,
        fifths_per_100_beats=ours.fifths, octaves_per_100_beats=ours.octaves, parse_rate=ours.parse_rate)
