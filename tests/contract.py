"""The contract every family passes: one list of cases, one set of checks (see test_contract.py).

A case names a family, its options, tiny training settings and the data it is checked on. New
families add their cases here and inherit every check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import genlab
from genlab.data.dataset import Dataset


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
    Case("gaussian-adam-points", "gaussian", small_points, {"n_components": 3, "solver": "adam"},
         {"steps": 30, "batch_size": 64}),
    Case("gaussian-adam-images", "gaussian", small_images,
         {"n_components": 1, "solver": "adam", "conditional": False}, {"steps": 10, "batch_size": 32}),
]


def finite(array: np.ndarray) -> bool:
    return bool(np.isfinite(array).all())
