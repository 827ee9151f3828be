"""``genlab.evaluate``: score a fitted model against held-out real records.

The model draws samples with a seeded generator and every metric compares them with the data's *test*
split, never the training split; beside each value the :class:`Report` gives, where it makes sense, a
bootstrap interval and the *real-vs-real floor* (the same metric with real records in place of the
samples: what a perfect model scores at this sample size). Each modality has its own branch:

- points and images (:mod:`genlab.evaluation.points_images`): mode coverage, precision/recall/density/
  coverage, Fréchet distance, KID, memorisation, likelihood, and for labelled images the same in
  genlab's classifier feature space plus conditional accuracy;
- tables (:mod:`genlab.evaluation.tables`): quality, detection, efficacy, privacy;
- text (:mod:`genlab.evaluation.text`): validity, distinct-n, copying, perplexity.

The same model, data, ``n``, seed and ``n_bootstrap`` give identical numbers.
"""

from __future__ import annotations

import os

from genlab.data.dataset import Dataset
from genlab.evaluation.points_images import evaluate_points_images
from genlab.evaluation.report import LEVEL, N_BOOTSTRAP, Report
from genlab.evaluation.tables import evaluate_table
from genlab.evaluation.text import evaluate_text
from genlab.models.base import GenerativeModel

__all__ = ["LEVEL", "N_BOOTSTRAP", "Report", "evaluate"]


def evaluate(model: GenerativeModel, data: Dataset, *, n: int | None = None, seed: int = 0,
             n_bootstrap: int = N_BOOTSTRAP, feature_cache: str | os.PathLike | None = None) -> Report:
    """Sample from ``model`` and compare with ``data``'s test split, by the branch of ``data``'s modality.

    Args:
        model: a fitted model of ``data``'s modality and record shape.
        data: the real data; its test split is the reference, its training split the floor and the
            memorisation reference.
        n: generated records (default: the size of the test split; for text
            :data:`genlab.evaluation.text.TEXT_SAMPLES`).
        seed: seed of the samples (``torch.Generator``), the floor's real subset and the bootstrap.
        n_bootstrap: bootstrap replicates per interval, ``>= 2`` (tables have no intervals and ignore it).
        feature_cache: folder of cached image feature classifiers (labelled images only); ``None`` reads
            ``$GENLAB_CACHE``, else ``~/.cache/genlab/classifiers``.

    Returns:
        A :class:`Report`.
    """
    if data.modality == "tables":
        return evaluate_table(model, data, n=n, seed=seed)
    if data.modality == "text":
        return evaluate_text(model, data, n=n, seed=seed, n_bootstrap=n_bootstrap)
    return evaluate_points_images(model, data, n=n, seed=seed, n_bootstrap=n_bootstrap, feature_cache=feature_cache)
