"""``genlab.evaluate``: score a fitted model against held-out real records.

The model draws as many records as the real test split holds (or ``n``), with a seeded generator, and
every metric compares those with the test split, never the training split. What is measured depends on
the data:

- ``mode_*``: mode coverage (VEEGAN/PacGAN protocol) for synthetic mixtures that know their modes;
- ``precision/recall/density/coverage``: Naeem et al. 2020, k=5, on raw records (flattened images);
- ``frechet``: Fréchet distance between Gaussians fitted to raw records (pixels for images, so it is
  *not* FID; a learned feature extractor arrives with the image families);
- ``nll``: mean negative log-likelihood of the test records in nats per record, as a continuous density
  in the raw units, where the family has a likelihood (no dequantisation, so not bits per dimension).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from genlab.data.dataset import Dataset
from genlab.errors import NotSupportedError
from genlab.metrics import frechet_distance, mode_coverage, prdc
from genlab.models.base import GenerativeModel, check_count


@dataclass(frozen=True)
class Report:
    """Metric values of one evaluation and how they were obtained.

    Attributes:
        metrics: metric name -> value.
        n_samples: generated records compared.
        n_real: real test records compared.
        seed: seed of the sampling generator.
        dataset: name of the real data.
    """

    metrics: dict[str, float]
    n_samples: int
    n_real: int
    seed: int
    dataset: str
    notes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready form, as written to ``metrics.json``."""
        return {"metrics": self.metrics, "n_samples": self.n_samples, "n_real": self.n_real,
                "seed": self.seed, "dataset": self.dataset, "notes": self.notes}


def evaluate(model: GenerativeModel, data: Dataset, *, n: int | None = None, seed: int = 0) -> Report:
    """Sample from ``model`` and compare with ``data``'s test split; see the module docstring."""
    real = data.x_test
    n = check_count(n) if n is not None else len(real)
    model.codec_.check_records(real[:1], f"{data.name} test records")
    fake = model.sample(n, generator=torch.Generator().manual_seed(seed))
    metrics: dict[str, float] = {}
    notes: dict[str, str] = {}
    if data.modes is not None:
        modes = mode_coverage(fake=fake, modes=data.modes, std=data.mode_std)
        metrics.update({"modes_captured": float(modes.modes_captured),
                        "high_quality": modes.high_quality, "reverse_kl": modes.reverse_kl})
    flat_real, flat_fake = real.reshape(len(real), -1), fake.reshape(n, -1)
    scores = prdc(real=flat_real, fake=flat_fake, k=5)
    metrics.update({"precision": scores.precision, "recall": scores.recall,
                    "density": scores.density, "coverage": scores.coverage})
    metrics["frechet"] = frechet_distance(real=flat_real, fake=flat_fake)
    notes["frechet"] = "pixel space" if data.modality == "images" else "raw coordinates"
    try:
        nll = -float(np.mean(model.log_prob(real)))
    except NotSupportedError:
        pass
    else:
        metrics["nll"] = nll
    return Report(metrics=metrics, n_samples=n, n_real=len(real), seed=seed, dataset=data.name, notes=notes)
