"""Score a fitted model of chorales against held-out pieces; :func:`genlab.evaluate` sends ``music`` here.

The model draws ``n`` excerpts (default :data:`MUSIC_SAMPLES`) with a seeded generator, each at most
:data:`MUSIC_TOKENS` new tokens where the family takes a token budget, from the start token; each is cut
to whole steps (:func:`~genlab.data.music.whole_steps`: a token budget ends mid-step). What is measured
(definitions in :mod:`genlab.metrics.music`, against the held-out pieces):

- ``parse_rate``: share of samples in the time-grid grammar (the rest are left out of what follows);
- ``pitch_class_distance``, ``interval_distance``, ``duration_distance``: total variation between the
  parsed samples' pitch-class, melodic-interval and duration distributions and the held-out pieces';
- ``out_of_range``: share of notes outside the held-out pieces' range of their voice;
- ``crossings_per_100_beats``, ``fifths_per_100_beats``, ``octaves_per_100_beats``: voice crossings and
  parallel fifths and octaves (the voice-leading faults of chorale harmonisation) per 100 beats.

Intervals are bias-shifted percentile bootstraps (:mod:`genlab.metrics.bootstrap`): the parse rate's of
the per-sample flags, the others' of the parsed samples. The *floor* is the same metrics of real Bach:
``n`` training pieces (with repetition when there are fewer) cut to the same token budget, against the
held-out pieces, so it shows what two sets of real excerpts of this length differ by (the benchmark's bar
is a distance within twice the floor, and parallel fifths within twice Bach's rate). The same model,
data, ``n``, seed and ``n_bootstrap`` give identical numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genlab.data.dataset import Dataset
from genlab.data.music import parses, whole_steps
from genlab.data.text import string_array
from genlab.errors import DataError
from genlab.evaluation.report import LEVEL, N_BOOTSTRAP, Report
from genlab.metrics import bootstrap_intervals
from genlab.metrics.bootstrap import check_resamples
from genlab.metrics.music import compare_chorales
from genlab.models.base import GenerativeModel, check_count

#: Samples drawn when ``n`` is not given.
MUSIC_SAMPLES = 64
#: New tokens per sample at most: 256 tokens are about 50 steps, 25 beats of four voices.
MUSIC_TOKENS = 256
#: Metrics that are shares or total variations, in ``[0, 1]`` (their intervals are clipped to it).
SHARES = frozenset({"parse_rate", "pitch_class_distance", "interval_distance", "duration_distance", "out_of_range"})


def sampling_options(model: GenerativeModel) -> dict[str, Any]:
    """The ``sample`` options of the evaluation's excerpts: a token budget of :data:`MUSIC_TOKENS` where the family
    takes one."""
    return {"max_new_tokens": MUSIC_TOKENS} if "max_new_tokens" in model.sample_options else {}


def evaluate_music(model: GenerativeModel, data: Dataset, *, n: int | None = None, seed: int = 0,
                   n_bootstrap: int = N_BOOTSTRAP) -> Report:
    """Sample chorales from ``model`` and compare them with ``data``'s test pieces; see the module docstring.

    Args:
        model: a fitted model of chorale strings.
        data: ``music`` data; its test pieces are the reference, its training pieces the floor.
        n: samples (default :data:`MUSIC_SAMPLES`).
        seed: seed of the samples (``torch.Generator``), of the floor's pieces and of the bootstrap.
        n_bootstrap: bootstrap replicates per interval, ``>= 2``.
    """
    if data.modality != "music":
        raise DataError(f"the music evaluation needs chorales; {data.name} holds {data.modality}")
    n = check_count(n) if n is not None else MUSIC_SAMPLES
    n_bootstrap = check_resamples(n_bootstrap)
    options = sampling_options(model)
    budget = bool(options)
    fake = [whole_steps(str(s)) for s in model.sample(n, generator=torch.Generator().manual_seed(seed), **options)]
    reference = [str(piece) for piece in data.x_test if parses(str(piece))]
    if not reference:
        raise DataError(f"{data.name}: no held-out piece parses, so there is nothing to compare with")
    rng = np.random.default_rng(seed)
    pieces = rng.choice(len(data.x_train), size=n, replace=len(data.x_train) < n)
    real = [_excerpt(str(data.x_train[i]), MUSIC_TOKENS if budget else None) for i in sorted(pieces)]
    metrics: dict[str, float] = {}
    intervals: dict[str, tuple[float, float]] = {}

    def add(statistic, sample: np.ndarray) -> None:
        metrics.update(statistic(sample))
        found = bootstrap_intervals(statistic, sample, n_resamples=n_bootstrap, level=LEVEL, rng=rng)
        intervals.update({name: (max(low, 0.0), min(high, 1.0)) if name in SHARES else (max(low, 0.0), high)
                          for name, (low, high) in found.items()})

    flags = np.array([parses(s) for s in fake], dtype=np.float64)
    add(lambda f: {"parse_rate": float(f.mean())}, flags)
    parsed = string_array([s for s in fake if parses(s)])
    if len(parsed):
        add(lambda texts: _voice_leading(texts, reference), parsed)
    floor = {"parse_rate": float(np.mean([parses(s) for s in real]))}
    floor.update(_voice_leading([s for s in real if parses(s)], reference))
    unit = f"{MUSIC_TOKENS}-token excerpts" if budget else "whole pieces"
    notes = {"parse_rate": f"share of samples ({unit}) in the time-grid grammar",
             "pitch_class_distance": "total variation from the held-out pieces' pitch classes",
             "out_of_range": "share of notes outside the held-out range of their voice",
             "fifths_per_100_beats": "parallel fifths between any two voices; floor: real Bach excerpts"}
    if not len(parsed):
        notes["parse_rate"] += "; none parses, so no other metric"
    return Report(metrics=metrics, n_samples=n, n_real=len(reference), seed=seed, dataset=data.name,
                  intervals=intervals, floor=floor, n_bootstrap=n_bootstrap, level=LEVEL,
                  notes={k: v for k, v in notes.items() if k in metrics})


def _voice_leading(texts, reference: list[str]) -> dict[str, float]:
    """Every figure of :func:`~genlab.metrics.music.compare_chorales` but the parse rate (``texts`` all parse)."""
    figures = compare_chorales(list(texts), reference).to_dict()
    del figures["parse_rate"]
    return figures


def _excerpt(piece: str, tokens: int | None) -> str:
    """The first ``tokens`` tokens of ``piece`` cut to whole steps (the whole piece for ``None``)."""
    return piece if tokens is None else whole_steps(" ".join(piece.split()[:tokens]))
