"""Score a model that draws images from captions; :func:`genlab.evaluate` sends captioned images here.

The model draws one image for each of ``n`` test captions (default: up to :data:`CAPTION_SAMPLES`, chosen
with the seed), prompted with the caption at its own guidance, from one seeded generator. An independent
judge (:mod:`genlab.metrics.shapes_judge`: a CNN trained on real renders of every colour-shape pair,
:data:`JUDGE_TRAINING`, cached beside the image classifiers) reads each image, and the caption's own
scene (:func:`~genlab.metrics.shapes_judge.caption_truth`) is the truth:

- ``binding_accuracy``: share of samples the judge reads as exactly the caption's scene, every
  attribute of every object right, and its cell (one object) or relation (two) too
  (:func:`~genlab.metrics.shapes_judge.scene_correct`); ``binding_accuracy_one`` / ``_two`` for captions
  of one / two objects, ``binding_accuracy_held_out`` for captions naming a colour-shape pair that
  training never rendered (compositional generalisation);
- ``frechet``: Fréchet distance between the judge's features of the samples and of the real renders of
  the same captions.

Intervals are bias-shifted percentile bootstraps of the per-sample hits; ``frechet`` has none (each
replicate would cost two eigendecompositions of 256 x 256 matrices, about a second on a CPU). The
*floor* is the real renders of the same captions judged the same way (the judge's own ceiling: a perfect
model scores it), and for ``frechet`` as many training renders against the same real renders. Only
``shapes`` captions are understood (others are a DataError). The same model, data, ``n``, seed and
``n_bootstrap`` give identical numbers.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.nn import functional as F

from genlab.data.dataset import Dataset
from genlab.data.shapes import is_held_out
from genlab.evaluation.report import LEVEL, N_BOOTSTRAP, Report, check_captioned, hit_rates, seeded_rows
from genlab.metrics import frechet_distance
from genlab.metrics.bootstrap import check_resamples
from genlab.metrics.shapes_judge import JudgeTraining, cached_judge, caption_truth, scene_correct
from genlab.models.base import GenerativeModel

#: Captions (one sample each) when ``n`` is not given and the test split has more.
CAPTION_SAMPLES = 256
#: How the judge is trained the first time (the text-to-image benchmark's settings, about a CPU minute).
JUDGE_TRAINING = JudgeTraining()
#: Side of the renders the judge was trained on; other sizes are box-filtered to it.
JUDGE_SIDE = 32


def evaluate_captions(model: GenerativeModel, data: Dataset, *, n: int | None = None, seed: int = 0,
                      n_bootstrap: int = N_BOOTSTRAP, feature_cache: str | os.PathLike | None = None) -> Report:
    """Draw an image for each of ``n`` test captions and judge it against its caption; see the module docstring.

    Args:
        model: a fitted model that samples images from captions (``sample(n, prompt=[...])``).
        data: captioned images (``shapes``); its test captions prompt the model, its test renders are the floor.
        n: captions, one sample each (default: :data:`CAPTION_SAMPLES`, or the test split if smaller).
        seed: seed of the samples (``torch.Generator``), of the captions chosen and of the bootstrap.
        n_bootstrap: bootstrap replicates per interval, ``>= 2``.
        feature_cache: folder of the cached judge; ``None`` reads ``$GENLAB_CACHE``, else
            ``~/.cache/genlab/classifiers``.

    Raises:
        ConfigError: data without captions. DataError: captions outside the ``shapes`` grammar.
    """
    check_captioned(data, "draws images from captions")
    n_bootstrap = check_resamples(n_bootstrap)
    rows, rng = seeded_rows(len(data.x_test), n, seed, default=CAPTION_SAMPLES)
    n = len(rows)
    captions, real = [str(c) for c in data.captions_test[rows]], data.x_test[rows]
    objects, relation = caption_truth(np.asarray(captions, dtype=object))
    judge = cached_judge(JUDGE_TRAINING, cache_dir=feature_cache)
    fake = np.asarray(model.sample(n, prompt=captions, generator=torch.Generator().manual_seed(seed)), dtype=np.float32)
    fake_hits, real_hits = (scene_correct(judge.predict(_judge_size(x)), objects, relation).astype(np.float64)
                            for x in (fake, real))
    one = relation < 0
    held = np.array([any(o[0] >= 0 and is_held_out(o[0], o[1]) for o in scene) for scene in objects])
    groups = {"binding_accuracy": np.ones(n, dtype=bool), "binding_accuracy_one": one, "binding_accuracy_two": ~one,
              "binding_accuracy_held_out": held}
    metrics, intervals, floor = hit_rates({name: (fake_hits, real_hits, subset) for name, subset in groups.items()},
                                          n_bootstrap=n_bootstrap, rng=rng)
    features_real, features_fake = judge.embed(_judge_size(real)), judge.embed(_judge_size(fake))
    train_rows = rng.choice(len(data.x_train), size=min(n, len(data.x_train)), replace=False)
    metrics["frechet"] = frechet_distance(real=features_real, fake=features_fake)
    floor["frechet"] = frechet_distance(real=features_real,
                                        fake=judge.embed(_judge_size(data.x_train[np.sort(train_rows)])))
    notes = {"binding_accuracy": "share the shapes judge reads as the caption's exact scene; floor: real renders",
             "binding_accuracy_held_out": "captions naming a colour-shape pair never rendered in training",
             "frechet": "shapes judge features, samples vs real renders of the same captions"}
    return Report(metrics=metrics, n_samples=n, n_real=n, seed=seed, dataset=data.name, intervals=intervals,
                  floor=floor, n_bootstrap=n_bootstrap, level=LEVEL,
                  notes={k: v for k, v in notes.items() if k in metrics})


def _judge_size(images: np.ndarray) -> np.ndarray:
    """Images ``(n, 3, H, W)`` in ``[0, 1]`` box-filtered to the judge's side (unchanged when already there)."""
    if images.shape[-1] == JUDGE_SIDE:
        return images
    return F.adaptive_avg_pool2d(torch.as_tensor(images), JUDGE_SIDE).numpy()
