"""Four-voice chorales as time-grid strings: datasets, the codec, transposition, MIDI/MusicXML and WAV.

A ``music`` :class:`~genlab.data.dataset.Dataset` holds chorales as object arrays ``(n,)`` of ``str``
(record shape ``()``), each in this **time-grid encoding** (the grid of DeepBach, Hadjeres et al.
2017, and Coconet, Huang et al. 2017, at eighth-note rather than sixteenth-note resolution):

- time is cut into steps of :data:`STEP` quarter notes (an eighth note); a chorale is a sequence of
  steps, and a bar line ``|`` comes before the first step of every bar (the bar position);
- every step holds four tokens, soprano, alto, tenor, bass in that order (the voice is the position
  in the group): a MIDI pitch number (``67``) for a note that starts on that step, ``_`` for a note
  held on from the step before, ``R`` for a rest.

So ``"| 67 62 59 43 _ _ _ _"`` is one quarter-note chord. A note's duration is its number of steps;
onsets and durations are rounded to the grid (sixteenth-note passing notes fall on the nearest eighth,
and of two notes on one step the first is kept). A string *parses* (:func:`parse_chorale`) when every
token is one of these, the non-bar tokens come in groups of four, no voice starts with ``_`` and it
holds at least one note.

Sources: the Bach chorales of music21's bundled corpus (``music21.corpus.getComposer("bach")``,
four-part pieces only; a piece with another number of parts is a counted skip), split by piece with the
fixed split, or a folder of MusicXML/MIDI files. Transposition augmentation (:func:`transpose_chorale`)
shifts every pitch by the same number of semitones; :func:`chorales` with ``transpose=True`` adds each
training piece in every shift of ``-5 .. +6`` semitones (all twelve keys) that keeps it inside MIDI.

Writing: :func:`to_stream` builds a music21 score (four parts) that writes ``.mid`` and ``.musicxml``;
:func:`synthesize` renders a WAV by additive synthesis in numpy (no soundfont is needed).

Sampling inside the grid: :meth:`ChoraleCodec.grammar` is a :class:`ChoraleSyntax` (each voice's pitch range
and the meters of the training pieces), which the transformer applies by default so that every sample parses.
"""

from __future__ import annotations

import io
import logging
import os
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from genlab.data.dataset import Dataset, fixed_split
from genlab.data.music_grammar import BAR_CLASS, HOLD_CLASS, PITCH_CLASS, REST_CLASS, ChoraleSyntax
from genlab.data.text import VocabularyCodec, string_array
from genlab.errors import DataError, NotSupportedError
from genlab.io import atomic_path

logger = logging.getLogger(__name__)

#: Grid resolution in quarter notes: one step is an eighth note.
STEP = 0.5
VOICES = ("soprano", "alto", "tenor", "bass")
HOLD, REST, BAR = "_", "R", "|"
#: Steps per bar when a score gives no time signature (4/4).
DEFAULT_BAR_STEPS = 8
MUSIC_SUFFIXES = (".mxl", ".musicxml", ".xml", ".mid", ".midi", ".krn")


def require_music21():
    """The ``music21`` package, or a NotSupportedError naming the extra to install."""
    try:
        import music21
    except ImportError:
        raise NotSupportedError("music needs music21: pip install 'genlab[science]'") from None
    return music21


@dataclass(frozen=True)
class Grid:
    """A parsed chorale.

    Attributes:
        pitch: int16 ``(T, 4)`` sounding MIDI pitch per step and voice, ``-1`` for a rest.
        onset: bool ``(T, 4)``: a note starts on this step (False on held steps and rests).
        bars: int64 ``(n_bars,)`` the step each bar starts on.
    """

    pitch: np.ndarray
    onset: np.ndarray
    bars: np.ndarray

    @property
    def n_steps(self) -> int:
        return len(self.pitch)


def parse_chorale(text: str) -> Grid:
    """The :class:`Grid` of a time-grid string (module doc).

    Raises:
        DataError: the string does not parse (a token outside the grammar, a step of fewer than four
            voices, a hold with nothing to hold, or no note at all).
    """
    steps: list[list[str]] = []
    bars: list[int] = []
    group: list[str] = []
    for token in text.split():
        if token == BAR:
            if group:
                raise DataError(f"a bar line inside a step after {group}")
            bars.append(len(steps))
            continue
        if token not in (HOLD, REST) and not (token.isdigit() and 0 <= int(token) <= 127):
            raise DataError(f"{token!r} is not a pitch 0-127, {HOLD!r}, {REST!r} or {BAR!r}")
        group.append(token)
        if len(group) == len(VOICES):
            steps.append(group)
            group = []
    if group:
        raise DataError(f"the last step holds {len(group)} voices, not {len(VOICES)}")
    pitch = np.full((len(steps), len(VOICES)), -1, dtype=np.int16)
    onset = np.zeros((len(steps), len(VOICES)), dtype=bool)
    for t, step in enumerate(steps):
        for v, token in enumerate(step):
            if token == HOLD:
                if t == 0 or pitch[t - 1, v] < 0:
                    raise DataError(f"step {t}: {VOICES[v]} holds a note it never started")
                pitch[t, v] = pitch[t - 1, v]
            elif token != REST:
                pitch[t, v], onset[t, v] = int(token), True
    if not onset.any():
        raise DataError("the chorale holds no note")
    return Grid(pitch=pitch, onset=onset, bars=np.asarray(bars, dtype=np.int64))


def parses(text: str) -> bool:
    """Whether ``text`` parses as a chorale (:func:`parse_chorale`)."""
    try:
        parse_chorale(text)
    except DataError:
        return False
    return True


def format_chorale(grid: Grid) -> str:
    """The time-grid string of ``grid`` (inverse of :func:`parse_chorale`)."""
    bar_starts = set(grid.bars.tolist())
    tokens = []
    for t in range(grid.n_steps):
        if t in bar_starts:
            tokens.append(BAR)
        for v in range(len(VOICES)):
            p = int(grid.pitch[t, v])
            tokens.append(REST if p < 0 else str(p) if grid.onset[t, v] else HOLD)
    return " ".join(tokens)


def whole_steps(text: str) -> str:
    """``text`` without a last step of fewer than four voices (an excerpt cut at a token budget ends
    mid-step) and without a bar line after its last step; the grammar of what is kept is not touched."""
    tokens = text.split()
    voices = [i for i, t in enumerate(tokens) if t != BAR]
    keep = len(voices) - len(voices) % len(VOICES)
    end = voices[keep - 1] + 1 if keep else 0
    return " ".join(tokens[:end])


def transpose_chorale(text: str, semitones: int) -> str:
    """``text`` with every pitch shifted by ``semitones``.

    Raises:
        DataError: a shifted pitch leaves MIDI's 0-127.
    """
    out = []
    for token in text.split():
        if token.isdigit():
            shifted = int(token) + semitones
            if not 0 <= shifted <= 127:
                raise DataError(f"pitch {token} shifted by {semitones} leaves MIDI's range 0-127")
            token = str(shifted)
        out.append(token)
    return " ".join(out)


def score_to_chorale(score: Any, name: str = "score") -> str:
    """The time-grid string of a music21 score with exactly four parts (soprano first).

    Raises:
        DataError: the score does not have four parts, or holds no note.
    """
    parts = list(score.parts)
    if len(parts) != len(VOICES):
        raise DataError(f"{name}: {len(parts)} parts; a chorale needs {len(VOICES)} (soprano, alto, tenor, bass)")
    length = max(float(p.highestTime) for p in parts)
    n_steps = max(1, int(round(length / STEP)))
    pitch = np.full((n_steps, len(VOICES)), -1, dtype=np.int16)
    onset = np.zeros((n_steps, len(VOICES)), dtype=bool)
    for v, part in enumerate(parts):
        for note in part.flatten().notes:
            if note.isChord:
                note = note.notes[-1] if v < 2 else note.notes[0]   # an upper voice keeps its top note
            start = int(round(float(note.offset) / STEP))
            end = max(start + 1, int(round(float(note.offset + note.quarterLength) / STEP)))
            if start >= n_steps or onset[start, v]:
                continue   # two notes on one step: the first is kept (module doc)
            end = min(end, n_steps)
            pitch[start:end, v] = note.pitch.midi
            onset[start, v] = True
            onset[start + 1:end, v] = False
    if not onset.any():
        raise DataError(f"{name} holds no note")
    return format_chorale(Grid(pitch=pitch, onset=onset, bars=_bar_starts(parts[0], n_steps)))


def _bar_starts(part: Any, n_steps: int) -> np.ndarray:
    measures = list(part.getElementsByClass("Measure"))
    if measures:
        starts = sorted({int(round(float(m.offset) / STEP)) for m in measures})
        return np.asarray([s for s in starts if s < n_steps], dtype=np.int64)
    return np.arange(0, n_steps, DEFAULT_BAR_STEPS, dtype=np.int64)


def _split_pieces(name: str, pieces: list[str], *, transpose: bool) -> Dataset:
    if len(pieces) < 2:
        raise DataError(f"{name}: need at least 2 usable four-part pieces to split, found {len(pieces)}")
    train, test = fixed_split(len(pieces))
    x_train = [pieces[i] for i in train]
    if transpose:
        x_train = [shifted for piece in x_train for shifted in _all_keys(piece)]
    return Dataset(name=name, modality="music", x_train=string_array(x_train),
                   x_test=string_array([pieces[i] for i in test]))


def key_shifts(keys: int) -> list[int]:
    """The semitone shifts to the ``keys`` keys nearest the written one on the circle of fifths: 0, then a fifth
    down and up (-5 and +5: one accidental more or less), then two fifths (+2, -2), ... Twelve give every key
    once (``-5 .. +6``). Neighbouring keys share six of their seven scale notes, so a few of them multiply the
    training pieces while keeping Bach's pitch-class distribution: on the corpus' training pieces against the
    held-out ones, total variation 0.021 as written, 0.026 with 3 keys, 0.052 with 5, 0.20 with all 12."""
    if not 1 <= keys <= 12:
        raise ValueError(f"keys must be 1-12 (12: every key), got {keys}")
    steps = [(k + 1) // 2 * (1 if k % 2 else -1) for k in range(keys)]    # 0, +1, -1, +2, ... fifths
    return [(7 * step + 5) % 12 - 5 for step in steps]


def _all_keys(piece: str, keys: int = 12) -> list[str]:
    """``piece`` in each of :func:`key_shifts` ``(keys)`` that keeps its pitches inside MIDI."""
    out = []
    for k in key_shifts(keys):
        try:
            out.append(transpose_chorale(piece, k))
        except DataError:
            continue
    return out


def chorales(*, n_pieces: int | None = None, transpose: bool = False) -> Dataset:
    """The four-part Bach chorales of music21's corpus as time-grid strings, split by piece.

    Args:
        n_pieces: read only the first ``n_pieces`` files (sorted by path) of the corpus; ``None`` for all.
        transpose: add every training piece in all twelve keys (module doc); the test pieces stay as written.
    """
    music21 = require_music21()
    paths = sorted(music21.corpus.getComposer("bach"), key=str)
    if n_pieces is not None:
        paths = paths[:int(n_pieces)]
    pieces = _read_pieces([(str(p), lambda p=p: music21.corpus.parse(p)) for p in paths])
    return _split_pieces("bach-chorales" if n_pieces is None else f"bach-chorales-{int(n_pieces)}", pieces,
                         transpose=transpose)


def music_folder(root: str | os.PathLike, *, transpose: bool = False) -> Dataset:
    """Every MusicXML/MIDI file under ``root`` (suffixes :data:`MUSIC_SUFFIXES`) as a chorale, split by file."""
    music21 = require_music21()
    root = Path(root)
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in MUSIC_SUFFIXES)
    pieces = _read_pieces([(str(p), lambda p=p: music21.converter.parse(p)) for p in paths])
    return _split_pieces(str(root), pieces, transpose=transpose)


def _read_pieces(sources: list[tuple[str, Any]]) -> list[str]:
    """Parse each source; a piece that is not four voices with notes is counted, skipped and logged."""
    pieces, skipped = [], 0
    for name, parse in sources:
        try:
            pieces.append(score_to_chorale(parse(), name))
        except DataError as error:
            skipped += 1
            logger.info("skipped %s", error)
        except Exception as error:   # music21 raises its own exception types for unreadable files
            skipped += 1
            logger.info("skipped %s: music21 cannot read it (%s)", name, error)
    if skipped:
        logger.warning("skipped %d of %d pieces that are not four voices with notes", skipped, len(sources))
    return pieces


# ---------------------------------------------------------------------------------------- writing
def to_stream(text: str):
    """A music21 ``Score`` of four parts from a time-grid string (writes ``.mid`` or ``.musicxml``).

    Raises:
        DataError: the string does not parse.
    """
    music21 = require_music21()
    grid = parse_chorale(text)
    score = music21.stream.Score()
    for v, voice in enumerate(VOICES):
        part = music21.stream.Part(id=voice)
        part.partName = voice.capitalize()
        t = 0
        while t < grid.n_steps:
            end = t + 1
            if grid.pitch[t, v] < 0:
                while end < grid.n_steps and grid.pitch[end, v] < 0:
                    end += 1
                element = music21.note.Rest(quarterLength=(end - t) * STEP)
            else:
                while end < grid.n_steps and not grid.onset[end, v] and grid.pitch[end, v] >= 0:
                    end += 1
                element = music21.note.Note(int(grid.pitch[t, v]), quarterLength=(end - t) * STEP)
            part.insert(t * STEP, element)
            t = end
        score.insert(0, part)
    return score


def write_midi(text: str, path: str | os.PathLike) -> Path:
    """Write the chorale ``text`` as a standard MIDI file (``.mid``); returns the path."""
    return _write(text, path, "midi")


def midi_bytes(text: str) -> bytes:
    """The chorale ``text`` as the bytes of a standard MIDI file (what :func:`write_midi` writes), for pages
    that embed it. Raises DataError when it does not parse."""
    music21 = require_music21()
    return music21.midi.translate.music21ObjectToMidiFile(to_stream(text)).writestr()


def write_musicxml(text: str, path: str | os.PathLike) -> Path:
    """Write the chorale ``text`` as MusicXML; returns the path."""
    return _write(text, path, "musicxml")


def _write(text: str, path: str | os.PathLike, fmt: str) -> Path:
    score = to_stream(text)
    with atomic_path(path) as tmp:
        score.write(fmt, fp=str(tmp))
    return Path(path)


def synthesize(text: str, *, sample_rate: int = 22_050, tempo: float = 80.0, harmonics: int = 6) -> np.ndarray:
    """Render the chorale by additive synthesis: float32 ``(n_samples,)`` in ``[-1, 1]``.

    Each note is ``sum_k a_k sin(2 pi k f t)`` over ``harmonics`` partials with ``a_k = 1/k`` (a soft,
    organ-like timbre), ``f = 440 * 2 ** ((pitch - 69) / 12)``, shaped by a 10 ms attack and a release
    over the note's last 20 %; the four voices are summed and the result peak-normalised to 0.9.
    ``tempo`` is in quarter notes per minute.
    """
    grid = parse_chorale(text)
    step_samples = int(round(sample_rate * 60.0 / tempo * STEP))
    audio = np.zeros(grid.n_steps * step_samples + 1, dtype=np.float64)
    for v in range(len(VOICES)):
        starts = np.flatnonzero(grid.onset[:, v])
        for start in starts:
            end = start + 1
            while end < grid.n_steps and not grid.onset[end, v] and grid.pitch[end, v] >= 0:
                end += 1
            n = (end - start) * step_samples
            t = np.arange(n) / sample_rate
            f = 440.0 * 2.0 ** ((int(grid.pitch[start, v]) - 69) / 12)
            tone = sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, harmonics + 1) if k * f < sample_rate / 2)
            envelope = np.minimum(1.0, t / 0.01) * np.minimum(1.0, (n - np.arange(n)) / max(1, 0.2 * n))
            audio[start * step_samples:start * step_samples + n] += tone * envelope
    peak = np.abs(audio).max()
    return (0.9 * audio / peak if peak > 0 else audio).astype(np.float32)


def write_wav(text: str, path: str | os.PathLike, *, sample_rate: int = 22_050, tempo: float = 80.0) -> Path:
    """Write :func:`synthesize`'s rendering as 16-bit mono PCM WAV; returns the path."""
    data = wav_bytes(text, sample_rate=sample_rate, tempo=tempo)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def wav_bytes(text: str, *, sample_rate: int = 22_050, tempo: float = 80.0, max_seconds: float | None = None) -> bytes:
    """:func:`synthesize`'s rendering as the bytes of a 16-bit mono PCM WAV file, cut after ``max_seconds``
    when given (a page that embeds the sound stays small); :func:`wav_seconds` gives the length."""
    audio = synthesize(text, sample_rate=sample_rate, tempo=tempo)
    if max_seconds is not None:
        audio = audio[:int(max_seconds * sample_rate)]
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def wav_seconds(data: bytes) -> float:
    """The length in seconds of the WAV file ``data`` (e.g. from :func:`wav_bytes`)."""
    with wave.open(io.BytesIO(data), "rb") as sound:
        return sound.getnframes() / sound.getframerate()


# ---------------------------------------------------------------------------------------- codec
#: A bar length (in steps) is one of the meters the codec fits when it is the meter of this share of the pieces.
METER_SHARE = 0.05


class ChoraleCodec(VocabularyCodec):
    """Chorale strings <-> token streams: one token per grid token (pitch, ``_``, ``R``, ``|``), ``eos`` last.

    Documents are one stream ``eos chorale_1 eos ...`` cut into windows of ``context`` tokens, as for
    text (:class:`~genlab.data.text.TextCodec`). ``fit`` also keeps each voice's pitch range and the meters
    (bar lengths in steps) of the training pieces, for :meth:`grammar`; a run saved without them (before the
    grammar) takes any pitch and 4/4.

    ``keys > 1`` writes every document of the stream in that many keys nearest its own on the circle of fifths
    (:func:`key_shifts`; 12: all twelve, the augmentation DeepBach and Coconet train with): more pieces to learn
    voice leading from, with the pitch-class distribution of the pieces kept. The voice ranges and meters are
    fitted on the pieces as written, so the grammar keeps samples in the voices' real ranges.
    """

    name = "chorale"
    modality = "music"

    def __init__(self, shape: tuple[int, ...] = (), *, context: int, tokens: Sequence[str] | None = None,
                 ranges: Sequence[Sequence[int]] | None = None, meters: Sequence[int] | None = None,
                 keys: int = 1) -> None:
        super().__init__(shape, context=context, tokens=tokens)
        key_shifts(keys)   # checks the count
        self.keys = keys
        self.ranges = tuple((int(lo), int(hi)) for lo, hi in ranges) if ranges else ((0, 127),) * len(VOICES)
        self.meters = tuple(int(m) for m in meters) if meters else (DEFAULT_BAR_STEPS,)

    def fit(self, x: np.ndarray) -> "ChoraleCodec":
        pieces = self.check_records(x, "training chorales")
        # every pitch 0-127 is in the vocabulary, so any transposition of a training piece encodes
        self._set_tokens([BAR, HOLD, REST] + [str(p) for p in range(128)])
        grids = []
        for piece in pieces:
            self.tokenize(piece)   # a string outside the grammar's tokens is an error now, not at encode
            try:
                grids.append(parse_chorale(piece))
            except DataError:
                continue   # kept for training; only the pieces that parse give the ranges and meters
        sounding = [np.concatenate([g.pitch[g.onset[:, v], v] for g in grids] + [np.zeros(0, np.int16)])
                    for v in range(len(VOICES))]
        self.ranges = tuple((int(p.min()), int(p.max())) if len(p) else (0, 127) for p in sounding)
        # a piece's meter: its most common bar length without its first and last bar (a pickup and the bar that
        # completes it); split bars at a repeat (6 + 2 steps in 4/4) are rarer than whole ones in every piece
        meters = []
        for g in grids:
            lengths = np.diff(np.append(g.bars, g.n_steps))
            lengths = lengths[1:-1] if len(lengths) > 2 else lengths
            values, counts = np.unique(lengths[lengths > 0], return_counts=True)
            meters += [int(values[counts.argmax()])] if len(values) else []
        values, counts = np.unique(meters, return_counts=True)
        self.meters = tuple(int(v) for v in values[counts >= METER_SHARE * counts.sum()]) or (DEFAULT_BAR_STEPS,)
        return self

    def stream(self, x: np.ndarray) -> torch.Tensor:
        """int64 ``(N,)``: ``eos chorale_1 eos ...``, each chorale in :attr:`keys` keys (class doc)."""
        if self.keys == 1:
            return super().stream(x)
        pieces = self.check_records(x, "chorales")
        return super().stream(string_array([shifted for piece in pieces for shifted in _all_keys(piece, self.keys)]))

    def grammar(self) -> ChoraleSyntax:
        """The grid's grammar over this codec's ids (:class:`ChoraleSyntax`): a voice's fitted pitch range."""
        def voices(pitch: int) -> int:
            return sum(1 << v for v, (lo, hi) in enumerate(self.ranges) if lo <= pitch <= hi)

        special = {BAR: BAR_CLASS, HOLD: HOLD_CLASS, REST: REST_CLASS}
        classes = [special[t] if t in special else PITCH_CLASS + voices(int(t)) for t in self.tokens]
        return ChoraleSyntax(classes=tuple(classes + [REST_CLASS]), eos=self.eos, meters=self.meters)

    def tokenize(self, text: str) -> list[int]:
        try:
            return [self._ids[t] for t in text.split()]
        except KeyError as error:
            raise DataError(f"{error.args[0]!r} is not a chorale token (a pitch 0-127, "
                            f"{HOLD!r}, {REST!r} or {BAR!r})") from None

    def detokenize(self, ids: Sequence[int]) -> str:
        return " ".join(self.tokens[i] for i in ids if i != self.eos)

    def state(self) -> dict[str, Any]:
        return self._state(tokens=self.tokens, ranges=[list(r) for r in self.ranges], meters=list(self.meters),
                           keys=self.keys)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "ChoraleCodec":
        return cls(context=state["context"], tokens=state["tokens"], ranges=state.get("ranges"),
                   meters=state.get("meters"), keys=int(state.get("keys", 1)))
