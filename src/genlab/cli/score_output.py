"""Chorale samples as scores and sound, and the melody of ``--melody``: what ``genlab sample`` adds for a model
of chorales.

``--out FILE.mid`` (or ``.midi``), ``.musicxml`` or ``.wav`` writes each sample by the writers of
:mod:`genlab.data.music` (a four-part score through music21; a WAV by additive synthesis): one sample to
``FILE`` itself, ``n > 1`` to ``STEM-1.SUFFIX`` ... ``STEM-n.SUFFIX`` beside it. Every path is checked, and
every sample parsed, before the first file is written, so a refusal writes nothing.

``--melody SOURCE`` reads a soprano line to harmonise (:func:`genlab.data.melody.read_melody`: a one-part
MusicXML or MIDI file, or ``bach:NAME``) once the run is known to take one (a model of chorales).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from genlab.cli.options import refuse_existing
from genlab.data import music
from genlab.data.melody import read_melody
from genlab.errors import ConfigError, DataError

#: Output suffixes of chorale samples as files music software opens.
SCORE_SUFFIXES = (".mid", ".midi", ".musicxml", ".wav")


def score_paths(out: Path, n: int) -> list[Path]:
    """Where ``n`` samples go: ``[out]`` for one, ``STEM-1.SUFFIX`` ... ``STEM-n.SUFFIX`` beside it for more."""
    return [out] if n == 1 else [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(1, n + 1)]


def check_score_paths(out: Path, n: int, overwrite: bool) -> None:
    """Refuse before drawing when one of :func:`score_paths` exists and ``overwrite`` is off."""
    for path in score_paths(out, n):
        refuse_existing(path, overwrite)


def write_scores(records: Sequence[str], out: Path) -> list[Path]:
    """Write every chorale of ``records`` by ``out``'s suffix (module doc); returns the paths written.

    Raises:
        DataError: a sample does not parse (drawn with ``constrain='none'``); nothing is written then.
    """
    texts = [str(text) for text in records]
    for i, text in enumerate(texts, start=1):
        try:
            music.parse_chorale(text)
        except DataError as error:
            raise DataError(f"sample {i} of {len(texts)} is not a chorale score ({error}); write the samples "
                            f"to .txt or .jsonl instead") from None
    write = {".wav": music.write_wav, ".musicxml": music.write_musicxml}.get(out.suffix, music.write_midi)
    paths = score_paths(out, len(texts))
    for text, path in zip(texts, paths):
        write(text, path)
    return paths


def melody_option(model: Any, source: str) -> str:
    """The melody string of ``--melody SOURCE`` for ``model``, or a ConfigError when the model takes none."""
    if "melody" not in model.sampling_options():
        raise ConfigError(f"--melody needs a model of chorales (music) to harmonise it; this {model.family} model "
                          f"makes {model.data_.modality}")
    return read_melody(source)
