"""Helpers of ``benchmarks/watermark_images.py``: the image attacks, the detection statistics, how each
dataset is sampled, and the feature space its Fréchet distance is measured in.

Images are float32 ``(n, C, H, W)`` in ``[0, 1]`` throughout; every attack returns that layout.
"""

from __future__ import annotations

import io
import os
import tempfile
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter
from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score
from torch.nn import functional as F

from genlab.metrics.features import class_counts, feature_classifier
from genlab.metrics.shapes_judge import JudgeTraining, cached_judge
from genlab.provenance import Watermark


# --- attacks -------------------------------------------------------------------------------------------------

def gaussian_noise(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``x + N(0, sigma^2)`` per pixel, clipped to ``[0, 1]``."""
    return np.clip(x + rng.normal(0.0, sigma, x.shape), 0, 1).astype(np.float32)


def jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    """Each image through PIL's JPEG encoder at ``quality`` (grey ``L`` for one channel, else ``RGB``)."""
    out = np.empty_like(x)
    for i, image in enumerate(x):
        pixels = (np.moveaxis(image, 0, -1) * 255).round().clip(0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(buffer, format="JPEG",
                                                                                  quality=quality)
        decoded = np.asarray(Image.open(buffer), dtype=np.float32) / 255
        out[i] = decoded[None] if decoded.ndim == 2 else np.moveaxis(decoded, -1, 0)
    return out


def crop_resize(x: np.ndarray, keep: float) -> np.ndarray:
    """The central ``keep`` of each side (rounded to pixels), resized back bilinearly (with antialiasing)."""
    height, width = x.shape[-2:]
    h, w = round(keep * height), round(keep * width)
    top, left = (height - h) // 2, (width - w) // 2
    crop = torch.as_tensor(x[:, :, top:top + h, left:left + w])
    back = F.interpolate(crop, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return back.clamp(0, 1).numpy().astype(np.float32)


def blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of ``sigma`` pixels over each channel (scipy, reflected borders)."""
    return gaussian_filter(x, sigma=(0, 0, sigma, sigma)).astype(np.float32)


def attacks(*, noise_sigma: float, jpeg_quality: int, crop_keep: float, blur_sigma: float
            ) -> dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]]:
    """The attacks of the issue's bar, by the name they are reported under."""
    return {f"noise sigma {noise_sigma:g}": lambda x, rng: gaussian_noise(x, noise_sigma, rng),
            f"JPEG quality {jpeg_quality}": lambda x, rng: jpeg(x, jpeg_quality),
            f"crop {crop_keep:.0%} + resize": lambda x, rng: crop_resize(x, crop_keep),
            f"blur sigma {blur_sigma:g} px": lambda x, rng: blur(x, blur_sigma)}


# --- statistics ----------------------------------------------------------------------------------------------

def auc(score_marked: np.ndarray, score_unmarked: np.ndarray) -> float:
    """ROC AUC of detection scores (higher = more marked): marked images positive, unmarked negative."""
    labels = np.r_[np.ones(len(score_marked)), np.zeros(len(score_unmarked))]
    return float(roc_auc_score(labels, np.r_[score_marked, score_unmarked]))


def empirical_threshold(p_unmarked: np.ndarray, fpr: float) -> float:
    """The p-value threshold (flag ``p < threshold``) that flags at most ``fpr`` of the unmarked images."""
    k = int(np.floor(fpr * len(p_unmarked)))
    return float(np.sort(p_unmarked)[k]) if k < len(p_unmarked) else 1.0


def binomial(flags: np.ndarray, nominal: float | None = None) -> dict[str, Any]:
    """``k`` of ``n`` flagged, the share, its Clopper-Pearson 95 % interval, and whether ``nominal`` lies in it."""
    flags = np.asarray(flags, dtype=bool)
    k, n = int(flags.sum()), len(flags)
    interval = binomtest(k, n).proportion_ci(0.95, method="exact") if n else None
    out: dict[str, Any] = {"k": k, "n": n, "rate": k / n if n else float("nan"),
                           "ci95": [float(interval.low), float(interval.high)] if interval else None}
    if nominal is not None and interval is not None:
        out["nominal_inside"] = bool(interval.low <= nominal <= interval.high)
    return out


# --- datasets ------------------------------------------------------------------------------------------------

def conditions(data: Any, n: int) -> list[tuple[dict[str, Any], int]]:
    """How ``n`` images of ``data`` are sampled as a user would: ``[(sample options, count), ...]``.

    MNIST (labelled): class-balanced, ``condition=label`` at the run's default guidance, classes in the test
    split's shares. ``shapes`` (captioned): the first ``n`` test captions as prompts (cycled past the split).
    """
    if data.captions_test is not None:
        prompts = [str(data.captions_test[i % len(data.captions_test)]) for i in range(n)]
        return [({"prompt": prompts}, n)]
    if data.y_test is not None:
        counts = class_counts(data.y_test, n, data.n_classes)
        return [({"condition": label}, int(c)) for label, c in enumerate(counts) if c > 0]
    return [({}, n)]


def draw(model: Any, data: Any, n: int, *, key: str | None, seed: int) -> np.ndarray:
    """``n`` samples ``(n, C, H, W)`` (see :func:`conditions`), marked with ``key`` unless it is None; one
    generator seeded ``seed`` across the calls, the run's default sampler, steps and guidance."""
    generator = torch.Generator().manual_seed(seed)
    processors = [Watermark(key=key)] if key is not None else []
    return np.concatenate([model.sample(count, generator=generator, processors=processors, **options)
                           for options, count in conditions(data, n)])


def feature_space(data: Any, *, quick: bool, cache_dir: str | os.PathLike | None
                  ) -> tuple[str, Callable[[np.ndarray], np.ndarray]]:
    """``(name, features)``: the space a Fréchet distance on ``data`` is measured in.

    Labelled images: genlab's classifier trained on the data (``genlab.metrics.features``). ``shapes``: the
    shapes judge's penultimate features (``genlab.metrics.shapes_judge``; trained on real renders of every
    colour-shape pair, independent of any generator). ``quick`` trains a throw-away judge in a few steps.
    """
    if data.y_train is not None:
        classifier = feature_classifier(data, cache_dir=cache_dir)
        return f"genlab classifier features (test accuracy {classifier.test_accuracy:.3f})", classifier.features
    if data.name == "shapes":
        if quick:   # a 5-step judge must not land in the shared cache
            with tempfile.TemporaryDirectory() as scratch:
                judge = cached_judge(JudgeTraining(n_images=256, steps=5), cache_dir=scratch)
        else:
            judge = cached_judge(JudgeTraining(), cache_dir=cache_dir)
        return "shapes judge features (256-d, genlab.metrics.shapes_judge)", judge.embed
    raise ValueError(f"no feature space for {data.name}")
