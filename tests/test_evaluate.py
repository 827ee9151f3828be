"""evaluate(): values, bootstrap intervals, the real floor, determinism, and a copying model flagged."""

from __future__ import annotations

import pytest
import torch

import genlab
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.evaluation import evaluate

BOOTSTRAP = 20


@pytest.fixture(scope="module")
def ring() -> Dataset:
    """ring8 cut down to 2,000 train / 400 test points so evaluation takes a fraction of a second."""
    full = genlab.datasets.load("ring8")
    return Dataset("ring8-small", "points", full.x_train[:2000], full.x_test[:400], modes=full.modes,
                   mode_std=full.mode_std)


@pytest.fixture(scope="module")
def mixture(ring, single_thread_module):
    return genlab.fit(ring, family="gaussian", n_components=8)


def test_report_carries_values_intervals_floor_and_provenance(ring, mixture):
    report = evaluate(mixture, ring, seed=3, n_bootstrap=BOOTSTRAP)
    names = {"modes_captured", "high_quality", "reverse_kl", "precision", "recall", "density", "coverage",
             "frechet", "kid", "memorised", "exact_copies", "nll"}
    assert set(report.metrics) == names and set(report.intervals) == names
    assert set(report.floor) == names - {"nll"}
    assert (report.n_samples, report.n_real, report.seed, report.n_bootstrap) == (400, 400, 3, BOOTSTRAP)
    for name, value in report.metrics.items():
        low, high = report.intervals[name]
        assert low <= value <= high, (name, low, value, high)
    assert report.metrics["modes_captured"] == 8 and report.floor["modes_captured"] == 8
    assert report.floor["precision"] > 0.9 and report.floor["exact_copies"] == 0.0
    assert report.floor["memorised"] == pytest.approx(0.05, abs=0.01)
    assert report.to_dict()["intervals"]["frechet"] == list(report.intervals["frechet"])


def test_same_seed_gives_identical_reports_and_another_seed_does_not(ring, mixture):
    first = evaluate(mixture, ring, seed=7, n_bootstrap=BOOTSTRAP).to_dict()
    again = evaluate(mixture, ring, seed=7, n_bootstrap=BOOTSTRAP).to_dict()
    other = evaluate(mixture, ring, seed=8, n_bootstrap=BOOTSTRAP).to_dict()
    assert first == again
    assert first["metrics"] != other["metrics"] and first["intervals"] != other["intervals"]


def test_refitting_with_the_same_seed_gives_identical_metrics(ring):
    reports = [evaluate(genlab.fit(ring, family="gaussian", n_components=8), ring, n_bootstrap=BOOTSTRAP)
               for _ in range(2)]
    assert reports[0].to_dict() == reports[1].to_dict()


def test_a_model_that_returns_training_records_is_flagged(ring, mixture, monkeypatch):
    def copy_training_records(n, *, condition=None, generator=None):
        rows = torch.randint(len(ring.x_train), (n,), generator=generator).numpy()
        return ring.x_train[rows]

    honest = evaluate(mixture, ring, n_bootstrap=BOOTSTRAP)
    monkeypatch.setattr(mixture, "sample", copy_training_records)
    copier = evaluate(mixture, ring, n_bootstrap=BOOTSTRAP)
    assert copier.metrics["exact_copies"] == 1.0 and copier.metrics["memorised"] == 1.0
    assert honest.metrics["exact_copies"] == 0.0 and honest.metrics["memorised"] < 0.1
    # Fidelity metrics alone would call the copier excellent: that is why memorisation is measured.
    assert copier.metrics["precision"] > 0.95


def test_bad_bootstrap_count(ring, mixture):
    with pytest.raises(ConfigError, match="bootstrap"):
        evaluate(mixture, ring, n_bootstrap=1)
