"""``genlab.evaluate``: score a fitted model against held-out real records.

The model draws samples with a seeded generator and every metric compares them with the data's *test*
split, never the training split; beside each value the :class:`Report` gives, where it makes sense, a
bootstrap interval and the *real-vs-real floor* (the same metric with real records in place of the
samples: what a perfect model scores at this sample size). Each modality has its own branch
(:func:`branch` names it):

- points and images (:mod:`genlab.evaluation.points_images`): mode coverage, precision/recall/density/
  coverage, Fréchet distance, KID, memorisation, likelihood, and for labelled images the same in
  genlab's classifier feature space plus conditional accuracy;
- captioned images, i.e. images drawn from captions (:mod:`genlab.evaluation.captions`): binding accuracy
  read by the shapes judge, and a Fréchet distance in its features;
- image captions, i.e. captions written of images (:mod:`genlab.evaluation.captioning`): the captions read
  against the test images' own, per attribute and whole;
- tables (:mod:`genlab.evaluation.tables`): quality, detection, efficacy, privacy;
- text (:mod:`genlab.evaluation.text`): validity, distinct-n, copying, perplexity;
- smiles (:mod:`genlab.evaluation.molecules`): MOSES's validity, uniqueness, novelty, internal diversity,
  filters, QED/logP/SA and a Fréchet descriptor distance;
- music (:mod:`genlab.evaluation.music`): parse rate, distances of pitch-class, interval and duration
  distributions to held-out chorales, and voice-leading faults per 100 beats.

The same model, data, ``n``, seed and ``n_bootstrap`` give identical numbers.
"""

from __future__ import annotations

import os

from genlab.data.captions import CaptionedImageCodec
from genlab.data.dataset import Dataset
from genlab.errors import DataError
from genlab.evaluation.captioning import evaluate_captioner
from genlab.evaluation.captions import evaluate_captions
from genlab.evaluation.molecules import evaluate_smiles
from genlab.evaluation.music import evaluate_music
from genlab.evaluation.points_images import evaluate_points_images
from genlab.evaluation.report import LEVEL, N_BOOTSTRAP, Report
from genlab.evaluation.tables import evaluate_table
from genlab.evaluation.text import evaluate_text
from genlab.models.base import GenerativeModel

__all__ = ["BRANCHES", "LEVEL", "N_BOOTSTRAP", "Report", "branch", "evaluate"]

#: The evaluation branches (:func:`branch`), each scoring one modality with its own metrics.
BRANCHES = ("points", "images", "captioned_images", "image_captions", "tables", "text", "smiles", "music")


def branch(model: GenerativeModel, data: Dataset) -> str:
    """The branch of :data:`BRANCHES` that scores ``model`` on ``data``: the data's modality, or
    ``"captioned_images"`` for images that the model draws from captions (its codec reads them), or
    ``"image_captions"`` for a model that writes captions of images (its records are text).

    Raises:
        DataError: the model makes another modality than the data holds.
    """
    info = getattr(model, "data_", None)   # what the model was fitted on, where it says
    made = data.modality if info is None else info.modality
    if made != data.modality:
        raise DataError(f"the model makes {made}; {data.name} holds {data.modality}: evaluate it on {made}")
    if data.modality == "images" and isinstance(getattr(model, "codec_", None), CaptionedImageCodec):
        return "image_captions" if model.record_modality == "text" else "captioned_images"
    return data.modality


def evaluate(model: GenerativeModel, data: Dataset, *, n: int | None = None, seed: int = 0,
             n_bootstrap: int = N_BOOTSTRAP, feature_cache: str | os.PathLike | None = None) -> Report:
    """Sample from ``model`` and compare with ``data``'s test split, by the branch of ``data``'s modality.

    Args:
        model: a fitted model of ``data``'s modality and record shape.
        data: the real data; its test split is the reference, its training split the floor and the
            memorisation reference.
        n: generated records (default: the size of the test split; for text, molecules, music and
            captions the default of their module, e.g. :data:`genlab.evaluation.text.TEXT_SAMPLES`).
        seed: seed of the samples (``torch.Generator``), the floor's real subset and the bootstrap.
        n_bootstrap: bootstrap replicates per interval, ``>= 2`` (tables have no intervals and ignore it).
        feature_cache: folder of cached image feature classifiers (labelled images) and of the shapes judge
            (captioned images); ``None`` reads ``$GENLAB_CACHE``, else ``~/.cache/genlab/classifiers``.

    Returns:
        A :class:`Report`.
    """
    kind = branch(model, data)
    if kind == "tables":
        return evaluate_table(model, data, n=n, seed=seed)
    if kind == "image_captions":
        return evaluate_captioner(model, data, n=n, seed=seed, n_bootstrap=n_bootstrap)
    if kind == "captioned_images":
        return evaluate_captions(model, data, n=n, seed=seed, n_bootstrap=n_bootstrap, feature_cache=feature_cache)
    if kind in ("points", "images"):
        return evaluate_points_images(model, data, n=n, seed=seed, n_bootstrap=n_bootstrap,
                                      feature_cache=feature_cache)
    score = {"text": evaluate_text, "smiles": evaluate_smiles, "music": evaluate_music}[kind]
    return score(model, data, n=n, seed=seed, n_bootstrap=n_bootstrap)
