"""The contract every family passes: one list of cases, one set of checks (see test_contract.py).

A case names a family, its options, tiny training settings and the data it is checked on. New
families add their cases here and inherit every check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

import genlab
from genlab.data.dataset import Dataset
from genlab.models.base import DataInfo


def small_points(n: int = 600) -> Dataset:
    """A labelled 2-D set (moons), cut down so every family fits it in a second."""
    full = genlab.datasets.load("moons")
    return Dataset("moons-small", "points", full.x_train[:n], full.x_test[:200], full.y_train[:n],
                   full.y_test[:200], full.class_names)


def small_images(n: int = 400) -> Dataset:
    """Labelled 8x8 digits, cut down."""
    full = genlab.datasets.load("digits")
    return Dataset("digits-small", "images", full.x_train[:n], full.x_test[:100], full.y_train[:n],
                   full.y_test[:100], full.class_names)


def small_text(n: int = 48) -> Dataset:
    """Unlabelled code snippets, one document each (text records are strings)."""
    documents = np.empty(n, dtype=object)
    documents[:] = [f"def f{i}(x):\n    return x * {i % 9} + {i % 5}\n" for i in range(n)]
    return Dataset("code-small", "text", documents[: n - 8], documents[n - 8:])


@dataclass(frozen=True)
class Case:
    """One family configuration checked against the contract."""

    id: str
    family: str
    data: Callable[[], Dataset]
    options: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)

    def fit(self, **train_overrides: Any) -> genlab.models.GenerativeModel:
        return genlab.fit(self.data(), family=self.family, train={**self.train, **train_overrides}, **self.options)


CASES = [
    Case("gaussian-em-points", "gaussian", small_points, {"n_components": 2}),
    Case("gaussian-diag-em-images", "gaussian", small_images, {"n_components": 1, "covariance": "diag"}),
    Case("diffusion-points", "diffusion", small_points, {"timesteps": 50, "hidden": 32, "depth": 2},
         {"steps": 20, "batch_size": 64}),
    Case("diffusion-learned-v-points", "diffusion", small_points,
         {"timesteps": 50, "hidden": 32, "depth": 2, "variance": "learned", "prediction": "v", "schedule": "linear"},
         {"steps": 20, "batch_size": 64}),
    Case("diffusion-images", "diffusion", small_images, {"timesteps": 50, "channels": [8, 16], "blocks": 1},
         {"steps": 5, "batch_size": 16}),
    Case("gaussian-adam-points", "gaussian", small_points, {"n_components": 3, "solver": "adam"},
         {"steps": 30, "batch_size": 64}),
    Case("gaussian-adam-images", "gaussian", small_images,
         {"n_components": 1, "solver": "adam", "conditional": False}, {"steps": 10, "batch_size": 32}),
    Case("gan-hinge-sn-pack-conditional-points", "gan", small_points,
         {"latent_dim": 8, "hidden": 32, "depth": 2, "loss": "hinge", "spectral_norm": True, "pack": 2},
         {"steps": 10, "batch_size": 32}),
    Case("gan-wgan-gp-points", "gan", small_points,
         {"latent_dim": 8, "hidden": 32, "depth": 2, "loss": "wgan-gp", "n_critic": 2, "conditional": False},
         {"steps": 10, "batch_size": 32}),
    Case("gan-r1-drs-conditional-images", "gan", small_images,
         {"latent_dim": 8, "hidden": 32, "channels": 8, "r1": 1.0, "pack": 2, "drs": True},
         {"steps": 5, "batch_size": 16}),
    Case("gan-drs-pack-points", "gan", small_points,
         {"latent_dim": 8, "hidden": 32, "depth": 2, "pack": 2, "drs": True, "drs_fourier_features": 4},
         {"steps": 10, "batch_size": 32}),
    Case("vae-conditional-points", "vae", small_points,
         {"latent_dim": 2, "hidden": 32, "depth": 2, "iwae_samples": 8}, {"steps": 20, "batch_size": 64}),
    Case("vae-images", "vae", small_images,
         {"latent_dim": 4, "hidden": 32, "channels": 8, "iwae_samples": 4, "conditional": False},
         {"steps": 5, "batch_size": 16}),
    Case("transformer-text", "transformer", small_text, {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16},
         {"steps": 10, "batch_size": 16}),
    Case("transformer-digits-tokens", "transformer", small_images, {"n_layer": 1, "n_head": 2, "n_embd": 16},
         {"steps": 5, "batch_size": 16}),
]


def unfitted(model_class: type, info: DataInfo, **options: Any) -> Any:
    """A model with a freshly built, seeded network and no training: enough to call its phases."""
    model = model_class(**options)
    torch.manual_seed(0)
    model.network_, model.data_ = model._build_network(info), info
    return model


def finite(array: np.ndarray) -> bool:
    return bool(np.isfinite(array).all())


def valid_records(x: np.ndarray, modality: str) -> bool:
    """Sampled records are finite float32, or strings for text."""
    if modality == "text":
        return x.dtype == object and all(isinstance(record, str) for record in x)
    return x.dtype == np.float32 and finite(x)
