"""Scoring a model of points or images against held-out real records (``genlab.evaluate``'s branch for both).

The model draws as many records as the real test split holds (or ``n``), with a seeded generator, and
every metric compares those with the test split, never the training split. What is measured depends on
the data:

- ``modes_captured/high_quality/reverse_kl``: mode coverage (VEEGAN/PacGAN protocol) for synthetic
  mixtures that know their modes;
- ``precision/recall/density/coverage``: Naeem et al. 2020, k=5, on raw records (flattened images);
- ``frechet``: Fréchet distance between Gaussians fitted to raw records (pixels for images);
- ``kid``: unbiased squared MMD with the cubic polynomial kernel (Bińkowski et al. 2018) on the same
  raw records;
- for *labelled images* (at least 2 classes, sides of at least 4 pixels) those six are computed instead
  in the feature space of genlab's own classifier (:mod:`genlab.metrics.features`: a small CNN trained
  on the training split and cached, its test accuracy given in ``notes``), so ``frechet`` and ``kid``
  are FID and KID with that network in place of Inception-v3; they are comparable between runs of one
  dataset, not with published FID values;
- ``conditional_accuracy`` (labelled images, models trained with the data's classes): the share of
  samples generated for class ``y`` that the classifier calls ``y``; its floor is the classifier's test
  accuracy. For these models *every* metric uses class-conditional samples, ``n`` split over the classes
  in the test split's label proportions (largest remainders), drawn class by class from the one seeded
  generator; a model that ignores its condition (e.g. ``conditional=False``) scores about ``1/K``;
- ``memorised/exact_copies``: share of samples nearer to a training record than 95 % of real test
  records are, and share of verbatim copies (see :mod:`genlab.metrics.memorisation`), always in raw
  record (pixel) space;
- ``nll``: mean negative log-likelihood of the test records in nats per record, as a continuous density
  in the raw units, where the family has a likelihood (no dequantisation, so not bits per dimension).

Every value comes with a bootstrap 95 % percentile interval (samples and test records redrawn
independently, ``n_bootstrap`` times, from ``numpy.random.default_rng(seed)``; for precision, recall,
density and coverage the per-record terms are redrawn with the k-NN radii fixed, KID leaves out
pairs of copies, and each interval is shifted by the bootstrap's own bias estimate, see
:mod:`genlab.metrics.bootstrap`) and, where it makes
sense, the *real-vs-real floor*: the same metric with a random subset of the training split (as many
records as there are samples) in place of the samples, i.e. what a perfect model would score at this
sample size. The floor of the memorisation metrics uses the test records as the "samples" (about
``percentile / 100`` memorised by construction, no copies); ``nll`` has no floor. The same model,
data, ``n``, seed and ``n_bootstrap`` give identical numbers.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from genlab.data.dataset import Dataset
from genlab.errors import DataError, NotSupportedError
from genlab.evaluation.report import LEVEL, N_BOOTSTRAP, Report
from genlab.metrics import (bootstrap_intervals, frechet_distance, kernel_distance, kernel_distance_replicates,
                            memorisation_from_distances, mode_coverage, nearest_distances, percentile_interval,
                            prdc_from_terms, prdc_per_record)
from genlab.metrics.bootstrap import check_resamples
from genlab.metrics.features import FeatureClassifier, class_counts, feature_classifier, sample_per_class
from genlab.models.base import GenerativeModel, check_count
from genlab.nn.classifier import MIN_SIDE

#: Nearest neighbours behind precision, recall, density and coverage (Naeem et al., 2020).
K = 5
#: Metrics that cannot be negative: their intervals are clipped at 0 (the bias shift of a skewed
#: bootstrap distribution can push the lower end below it). KID can be negative, being unbiased.
NON_NEGATIVE = frozenset({"reverse_kl", "frechet"})
#: Seed of the image feature classifier: fixed, so evaluating with another seed reuses the cached one.
CLASSIFIER_SEED = 0


def evaluate_points_images(model: GenerativeModel, data: Dataset, *, n: int | None = None, seed: int = 0,
                           n_bootstrap: int = N_BOOTSTRAP,
                           feature_cache: str | os.PathLike | None = None) -> Report:
    """Sample from ``model`` and compare with ``data``'s test split of points or images; see the module docstring.

    Args:
        model: a fitted model of ``data``'s modality and record shape.
        data: the real data; its test split is the reference, its training split the floor and the
            memorisation reference.
        n: generated records (default: the size of the test split).
        seed: seed of the samples (``torch.Generator``), the floor's training subset and the bootstrap.
        n_bootstrap: bootstrap replicates per interval, ``>= 2``.
        feature_cache: folder of cached image feature classifiers (labelled images only); ``None`` reads
            ``$GENLAB_CACHE``, else ``~/.cache/genlab/classifiers``.

    Returns:
        A :class:`Report`.
    """
    if data.modality not in ("points", "images"):
        raise DataError(f"the points and images evaluation needs points or images; {data.name} holds "
                        f"{data.modality}")
    real = data.x_test
    n = check_count(n) if n is not None else len(real)
    n_bootstrap = check_resamples(n_bootstrap)
    model.codec_.check_records(real[:1], f"{data.name} test records")
    classifier = _image_classifier(data, feature_cache)
    conditional = classifier is not None and model.data_.class_names == data.class_names
    generator = torch.Generator().manual_seed(seed)
    if conditional:
        fake, fake_labels = sample_per_class(model, class_counts(data.y_test, n, data.n_classes), generator=generator)
    else:
        fake = model.sample(n, generator=generator)
    rng = np.random.default_rng(seed)
    flat_real, flat_fake = real.reshape(len(real), -1), fake.reshape(n, -1)
    floor_rows = rng.choice(len(data.x_train), size=min(n, len(data.x_train)), replace=False)   # as many as samples
    flat_floor = data.x_train[floor_rows].reshape(len(floor_rows), -1)
    # Fidelity metrics compare vectors: classifier features for labelled images, else the raw records.
    if classifier is None:
        vec_real, vec_fake, vec_floor = flat_real, flat_fake, flat_floor
    else:
        vec_real, vec_fake, vec_floor = (classifier.features(x) for x in (real, fake, data.x_train[floor_rows]))
    metrics: dict[str, float] = {}
    intervals: dict[str, tuple[float, float]] = {}
    floor: dict[str, float] = {}

    def add(statistic, *samples: np.ndarray, floor_samples: tuple[np.ndarray, ...] | None) -> None:
        """Value, bootstrap interval and (with ``floor_samples``) floor of one group of metrics."""
        metrics.update(statistic(*samples))
        for name, (low, high) in bootstrap_intervals(statistic, *samples, n_resamples=n_bootstrap, level=LEVEL,
                                                     rng=rng).items():
            intervals[name] = (max(low, 0.0), high) if name in NON_NEGATIVE else (low, high)
        if floor_samples is not None:
            floor.update(statistic(*floor_samples))

    if data.modes is not None:
        add(lambda f: _mode_metrics(data, f), flat_fake, floor_samples=(flat_floor,))
    add(_prdc_metrics, *prdc_per_record(real=vec_real, fake=vec_fake, k=K),
        floor_samples=prdc_per_record(real=vec_real, fake=vec_floor, k=K))
    add(_frechet_metrics, vec_real, vec_fake, floor_samples=(vec_real, vec_floor))
    metrics["kid"] = kernel_distance(real=vec_real, fake=vec_fake)
    intervals["kid"] = percentile_interval(
        kernel_distance_replicates(real=vec_real, fake=vec_fake, n_resamples=n_bootstrap, rng=rng),
        estimate=metrics["kid"], level=LEVEL)
    floor["kid"] = kernel_distance(real=vec_real, fake=vec_floor)
    train = data.x_train.reshape(len(data.x_train), -1)
    test_d = nearest_distances(flat_real, train, name="test")  # (n_real,)
    add(_memorisation_metrics, test_d, nearest_distances(flat_fake, train, name="fake"),
        floor_samples=(test_d, test_d))
    try:
        log_p = model.log_prob(real)
    except NotSupportedError:
        pass
    else:
        add(_nll_metrics, log_p, floor_samples=None)
    if conditional:
        # Per-sample hit indicators, so the bootstrap redraws samples; the floor is the test accuracy.
        add(_conditional_metrics, (classifier.predict(fake) == fake_labels).astype(np.float64),
            floor_samples=((classifier.predict(real) == data.y_test).astype(np.float64),))

    space = "pixel space" if data.modality == "images" else "raw coordinates"
    notes = {"frechet": space, "kid": space, "memorised": "share nearer to train than 95% of test records"}
    if classifier is not None:
        space = f"genlab classifier features (test acc {classifier.test_accuracy:.1%})"
        notes.update(dict.fromkeys(("precision", "recall", "density", "coverage", "frechet", "kid"), space),
                     memorised="pixel space; share nearer to train than 95% of test records")
    if conditional:
        notes["conditional_accuracy"] = (f"share the genlab classifier (test acc {classifier.test_accuracy:.1%}) "
                                         f"assigns to the requested class")
    return Report(metrics=metrics, n_samples=n, n_real=len(real), seed=seed, dataset=data.name,
                  intervals=intervals, floor=floor, n_bootstrap=n_bootstrap, level=LEVEL, notes=notes)


def _mode_metrics(data: Dataset, fake: np.ndarray) -> dict[str, float]:
    """Mode coverage of generated points against the data's known modes."""
    modes = mode_coverage(fake=fake, modes=data.modes, std=data.mode_std)
    return {"modes_captured": float(modes.modes_captured), "high_quality": modes.high_quality,
            "reverse_kl": modes.reverse_kl}


def _prdc_metrics(real_terms: np.ndarray, fake_terms: np.ndarray) -> dict[str, float]:
    """Precision, recall, density and coverage from per-record terms."""
    scores = prdc_from_terms(real_terms, fake_terms, k=K)
    return {"precision": scores.precision, "recall": scores.recall, "density": scores.density,
            "coverage": scores.coverage}


def _frechet_metrics(real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    """Fréchet distance of flattened records."""
    return {"frechet": frechet_distance(real=real, fake=fake)}


def _memorisation_metrics(test_d: np.ndarray, fake_d: np.ndarray) -> dict[str, float]:
    """``memorised`` and ``exact_copies`` from nearest-training-record distances."""
    scores = memorisation_from_distances(test=test_d, fake=fake_d)
    return {"memorised": scores.memorised, "exact_copies": scores.exact_copies}


def _nll_metrics(log_p: np.ndarray) -> dict[str, float]:
    """Mean negative log-likelihood in nats per record."""
    return {"nll": -float(np.mean(log_p))}


def _conditional_metrics(hits: np.ndarray) -> dict[str, float]:
    """``conditional_accuracy`` from per-sample indicators (1.0 where the classifier agrees with the condition)."""
    return {"conditional_accuracy": float(np.mean(hits))}


def _image_classifier(data: Dataset, cache_dir: str | os.PathLike | None) -> FeatureClassifier | None:
    """The feature classifier of labelled images (at least 2 classes, sides of at least 4), else ``None``."""
    if data.modality != "images" or data.n_classes < 2 or min(data.shape[1:]) < MIN_SIDE:
        return None
    return feature_classifier(data, cache_dir=cache_dir, seed=CLASSIFIER_SEED)
