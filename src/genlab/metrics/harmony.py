"""How harmonisations of given melodies keep them, and how their voices move (:mod:`genlab.data.melody`).

For harmonisations ``x_i`` of melodies ``m_i`` (melody strings) and a pitch range per lower voice:

- ``soprano_kept``: share of the ``x_i`` that parse and whose soprano line (bar lines and the soprano's tokens,
  :func:`~genlab.data.melody.soprano_line`) is ``m_i`` exactly;
- ``lower_in_range``: share of the alto, tenor and bass notes of the parsed ``x_i`` inside their voice's range;
- ``fifths_per_100_beats``, ``octaves_per_100_beats``: parallel fifths and octaves of the parsed ``x_i``
  (:func:`~genlab.metrics.music.chorale_statistics`); the melody is given, so every pair of voices that moves in
  parallel holds at least one drawn voice, and the figures are the drawn voices' faults;
- ``parse_rate``: share of the ``x_i`` that parse.

The same figures of Bach's own harmonisations of the same melodies are the reference to set them beside.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from genlab.data.melody import format_melody, parse_melody, soprano_line
from genlab.data.music import VOICES, parse_chorale, parses
from genlab.metrics.music import chorale_statistics


@dataclass(frozen=True)
class HarmonyStatistics:
    """Figures of a set of harmonisations (module doc); shares in ``[0, 1]``, faults per 100 beats."""

    soprano_kept: float
    lower_in_range: float
    fifths_per_100_beats: float
    octaves_per_100_beats: float
    parse_rate: float

    def to_dict(self) -> dict[str, float]:
        """The figures as a JSON-ready dict."""
        return asdict(self)


def harmony_statistics(samples: Sequence[str], melodies: Sequence[str], low: Sequence[int],
                       high: Sequence[int]) -> HarmonyStatistics:
    """:class:`HarmonyStatistics` of ``samples[i]`` harmonising ``melodies[i]``.

    Args:
        samples: chorale strings.
        melodies: melody strings, one per sample.
        low, high: the lowest and highest pitch of each of the four voices (the soprano's is not read).

    Raises:
        ValueError: ``samples`` is empty, or not as long as ``melodies``, or no sample parses.
    """
    if not len(samples) or len(samples) != len(melodies):
        raise ValueError(f"{len(samples)} samples for {len(melodies)} melodies; give one melody per sample")
    parsed = [str(s) for s in samples if parses(str(s))]
    if not parsed:
        raise ValueError("no harmonisation parses")
    kept = [parses(str(s)) and soprano_line(str(s)) == format_melody(parse_melody(str(m)))
            for s, m in zip(samples, melodies)]
    inside = total = 0
    for text in parsed:
        grid = parse_chorale(text)
        for v in range(1, len(VOICES)):
            pitch = grid.pitch[grid.onset[:, v], v]
            inside += int(((pitch >= low[v]) & (pitch <= high[v])).sum())
            total += len(pitch)
    faults = chorale_statistics(parsed)
    return HarmonyStatistics(soprano_kept=float(np.mean(kept)), lower_in_range=inside / max(1, total),
                             fifths_per_100_beats=faults.fifths, octaves_per_100_beats=faults.octaves,
                             parse_rate=len(parsed) / len(samples))
