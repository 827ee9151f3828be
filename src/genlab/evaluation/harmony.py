"""Harmonise held-out soprano lines with a fitted model of chorales and score the results beside Bach's.

The melodies are the soprano lines (:func:`~genlab.data.melody.soprano_line`) of the first ``n`` held-out pieces
that parse (default :data:`HARMONY_MELODIES`), each cut to its first ``bars`` bars when given; a melody outside
the model's soprano range is skipped and counted. The model harmonises each once (``sample(1, melody=...)``,
one seeded generator through all of them, the sampling ``options`` passed on). What is measured
(:mod:`genlab.metrics.harmony`): ``soprano_kept`` (share), ``lower_in_range`` (share of alto, tenor and bass
notes inside the training pieces' range of their voice), ``fifths_per_100_beats`` and ``octaves_per_100_beats``
(every parallel holds a drawn voice) and ``parse_rate``. The *floor* is the same figures of Bach's own
harmonisations of the same melodies (the held-out pieces, cut alike). Intervals are bias-shifted percentile
bootstraps over the melodies, given where every harmonisation parses. The same model, data, ``n``, ``bars``,
seed and options give identical numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genlab.data.dataset import Dataset
from genlab.data.melody import soprano_line
from genlab.data.music import BAR, parses
from genlab.errors import ConfigError, DataError
from genlab.evaluation.report import LEVEL, N_BOOTSTRAP, Report
from genlab.metrics import bootstrap_intervals
from genlab.metrics.bootstrap import check_resamples
from genlab.metrics.harmony import harmony_statistics
from genlab.metrics.music import chorale_statistics
from genlab.models.base import GenerativeModel, check_count

#: Held-out melodies harmonised when ``n`` is not given.
HARMONY_MELODIES = 16
#: Every metric is a share in ``[0, 1]`` but the faults per 100 beats.
SHARES = frozenset({"soprano_kept", "lower_in_range", "parse_rate"})


def first_bars(chorale: str, bars: int | None) -> str:
    """``chorale`` up to (not including) the bar line that opens bar ``bars + 1``; all of it for ``None``."""
    tokens = chorale.split()
    opened = [i for i, token in enumerate(tokens) if token == BAR]
    return chorale if bars is None or len(opened) <= bars else " ".join(tokens[:opened[bars]])


def evaluate_harmonisation(model: GenerativeModel, data: Dataset, *, n: int | None = None, bars: int | None = None,
                           seed: int = 0, n_bootstrap: int = N_BOOTSTRAP, **options: Any) -> Report:
    """Harmonise ``data``'s held-out soprano lines with ``model`` and compare with Bach's (module doc).

    Args:
        model: a fitted model of chorales that takes ``melody`` (:meth:`sampling_options`).
        data: ``music`` data; its test pieces give the melodies and Bach's harmonisations, its training pieces
            the voice ranges.
        n: melodies (default :data:`HARMONY_MELODIES`, fewer where fewer test pieces parse).
        bars: harmonise each melody's first ``bars`` bars (``None``: whole pieces).
        seed: seed of the sampling generator and of the bootstrap.
        n_bootstrap: bootstrap replicates per interval, ``>= 2``.
        **options: sampling options of every harmonisation (``temperature``, ``constrain``...).

    Raises:
        DataError: ``data`` is not music, no held-out piece parses, or every melody is outside the model's range.
        ConfigError: the model harmonises no melody, or ``bars`` is not positive.
    """
    if data.modality != "music":
        raise DataError(f"harmonisation needs chorales; {data.name} holds {data.modality}")
    if "melody" not in model.sampling_options():
        raise ConfigError(f"this {model.family} model of {model.data_.modality} harmonises no melody")
    if bars is not None and bars < 1:
        raise ConfigError(f"bars must be a positive number of bars, got {bars!r}")
    n = check_count(n) if n is not None else HARMONY_MELODIES
    n_bootstrap = check_resamples(n_bootstrap)
    pieces = [first_bars(str(p), bars) for p in data.x_test if parses(str(p))][:n]
    if not pieces:
        raise DataError(f"{data.name}: no held-out piece parses, so there is no melody to harmonise")
    generator = torch.Generator().manual_seed(seed)
    bach, melodies, samples = [], [], []
    for piece in pieces:
        melody = soprano_line(piece)
        try:
            drawn = model.sample(1, melody=melody, generator=generator, **options)
        except DataError:   # the melody leaves the model's soprano range (the melody itself parses)
            continue
        bach.append(piece)
        melodies.append(melody)
        samples.append(str(drawn[0]))
    if not samples:
        raise DataError(f"every one of {len(pieces)} held-out melodies is outside this model's soprano range")
    ranges = chorale_statistics([str(p) for p in data.x_train if parses(str(p))])

    def figures(rows: np.ndarray, texts: list[str]) -> dict[str, float]:
        return harmony_statistics([texts[i] for i in rows], [melodies[i] for i in rows], ranges.low,
                                  ranges.high).to_dict()

    rows = np.arange(len(samples))
    metrics = figures(rows, samples)
    intervals: dict[str, tuple[float, float]] = {}
    if metrics["parse_rate"] == 1.0:
        found = bootstrap_intervals(lambda r: figures(r, samples), rows, n_resamples=n_bootstrap, level=LEVEL,
                                    rng=np.random.default_rng(seed))
        intervals = {name: (max(low, 0.0), min(high, 1.0) if name in SHARES else high)
                     for name, (low, high) in found.items()}
    unit = f"their first {bars} bars" if bars is not None else "whole pieces"
    notes = {"soprano_kept": f"{len(samples)} held-out soprano lines ({unit})"
                             + (f" ({len(pieces) - len(samples)} outside the soprano range, skipped)"
                                if len(samples) < len(pieces) else ""),
             "lower_in_range": "alto, tenor and bass notes inside the training pieces' range of their voice",
             "fifths_per_100_beats": "parallel fifths (each holds a drawn voice); floor: Bach's harmonisations"}
    return Report(metrics=metrics, n_samples=len(samples), n_real=len(bach), seed=seed, dataset=data.name,
                  intervals=intervals, floor=figures(rows, bach), n_bootstrap=n_bootstrap if intervals else 0,
                  level=LEVEL, notes=notes)
