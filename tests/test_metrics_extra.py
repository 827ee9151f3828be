"""KID, memorisation and the bootstrap against known answers and brute-force references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from genlab.errors import ConfigError, DataError
from genlab.metrics import (bootstrap_intervals, copies_training_data, kernel_distance, kernel_distance_replicates,
                            memorisation, memorisation_from_distances, percentile_interval, prdc, prdc_from_terms,
                            prdc_per_record)


def kid_brute_force(x: np.ndarray, y: np.ndarray, ix: np.ndarray | None = None, iy: np.ndarray | None = None) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b/d + 1)^3 by explicit loops over pairs of distinct records.

    ``ix``/``iy`` give each row's original index: pairs of copies of one original record are left out.
    """
    d = x.shape[1]
    ix = np.arange(len(x)) if ix is None else ix
    iy = np.arange(len(y)) if iy is None else iy

    def k(a, b):
        return (float(a @ b) / d + 1.0) ** 3

    def within(z, index):
        pairs = [(a, b) for a, b in itertools.permutations(range(len(z)), 2) if index[a] != index[b]]
        return sum(k(z[a], z[b]) for a, b in pairs) / len(pairs)

    across = sum(k(a, b) for a in x for b in y) / (len(x) * len(y))
    return within(x, ix) + within(y, iy) - 2.0 * across


# --- KID -------------------------------------------------------------------------------------------


def test_kid_known_answer_for_two_point_masses():
    # d = 1, real at 1, fake at 0: k(1,1) = 8, k(0,0) = 1, k(1,0) = 1, so MMD^2 = 8 + 1 - 2 = 7 exactly.
    assert kernel_distance(real=np.ones((3, 1)), fake=np.zeros((4, 1))) == pytest.approx(7.0, abs=1e-12)
    assert kernel_distance(real=np.ones((3, 1)), fake=np.ones((5, 1))) == pytest.approx(0.0, abs=1e-12)


def test_kid_matches_brute_force():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(0.5, 1.2, size=(9, 3))
    assert kernel_distance(real=x, fake=y) == pytest.approx(kid_brute_force(x, y), rel=1e-12)


def test_kid_blocks_give_the_same_answer(monkeypatch):
    from genlab.metrics import kid

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(25, 4))
    whole = kernel_distance(real=x, fake=y)
    monkeypatch.setattr(kid, "_BLOCK_ELEMENTS", 50)
    assert kernel_distance(real=x, fake=y) == pytest.approx(whole, rel=1e-12)


def test_kid_is_unbiased_for_one_distribution():
    # The V-statistic (diagonal kept) averages about +2.7 here (measured); the unbiased one averages 0.
    rng = np.random.default_rng(2)
    values = [kernel_distance(real=rng.normal(size=(10, 2)), fake=rng.normal(size=(10, 2))) for _ in range(300)]
    assert abs(np.mean(values)) < 3 * np.std(values) / np.sqrt(len(values))


def test_kid_grows_with_the_shift():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(300, 2))
    scores = [kernel_distance(real=real, fake=rng.normal(shift, 1.0, size=(300, 2))) for shift in (0.0, 0.5, 1.0)]
    assert scores[0] < 0.01 < scores[1] < scores[2]


def test_kid_replicates_leave_out_pairs_of_copies():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(6, 2)), rng.normal(size=(5, 2))
    replicates = kernel_distance_replicates(real=x, fake=y, n_resamples=3, rng=np.random.default_rng(9))
    draws = np.random.default_rng(9)
    ix, iy = draws.integers(0, 6, size=(3, 6)), draws.integers(0, 5, size=(3, 5))
    expected = [kid_brute_force(x[ix[b]], y[iy[b]], ix[b], iy[b]) for b in range(3)]
    np.testing.assert_allclose(replicates, expected, rtol=1e-12)


@pytest.mark.parametrize("real, fake, message", [
    (np.zeros((1, 2)), np.zeros((3, 2)), "at least 2"),
    (np.zeros((3, 2)), np.zeros((3, 3)), "dimension"),
    (np.array([[0.0, np.nan], [1.0, 1.0]]), np.zeros((3, 2)), "NaN"),
    (np.zeros(3), np.zeros((3, 1)), "2-D"),
])
def test_kid_bad_input(real, fake, message):
    with pytest.raises(DataError, match=message):
        kernel_distance(real=real, fake=fake)


# --- memorisation ----------------------------------------------------------------------------------


def test_memorisation_hand_case():
    test = np.arange(1.0, 101.0)  # 5th percentile 5.95 (linear), median 50.5 -> copy distance 0.0505
    scores = memorisation_from_distances(test=test, fake=np.array([0.0, 5.0, 6.0, 10.0]))
    assert scores.threshold == pytest.approx(5.95)
    assert scores.memorised == 0.5 and scores.exact_copies == 0.25 and scores.flagged


def test_verbatim_copies_are_flagged_and_fresh_draws_are_not():
    rng = np.random.default_rng(5)
    train, test = rng.normal(size=(2000, 3)), rng.normal(size=(500, 3))
    copied = memorisation(train=train, test=test, fake=train[rng.choice(2000, 500)])
    fresh = memorisation(train=train, test=test, fake=rng.normal(size=(500, 3)))
    assert copied.memorised == 1.0 and copied.exact_copies == 1.0 and copied.flagged
    assert 0.02 < fresh.memorised < 0.09 and fresh.exact_copies == 0.0 and not fresh.flagged


def test_memorisation_works_on_images_and_checks_shapes():
    rng = np.random.default_rng(6)
    train = rng.random((50, 1, 4, 4))
    scores = memorisation(train=train, test=rng.random((20, 1, 4, 4)), fake=train[:10])
    assert scores.exact_copies == 1.0
    with pytest.raises(DataError, match="values"):
        memorisation(train=train, test=rng.random((20, 1, 4, 4)), fake=rng.random((5, 1, 3, 3)))
    with pytest.raises(ConfigError, match="percentile"):
        memorisation(train=train, test=train, fake=train, percentile=100)


def test_copies_rule():
    assert not copies_training_data(memorised=0.06, exact_copies=0.0)
    assert copies_training_data(memorised=0.11, exact_copies=0.0)
    assert copies_training_data(memorised=0.0, exact_copies=0.02)


# --- bootstrap -------------------------------------------------------------------------------------


def mean_statistic(x: np.ndarray) -> dict[str, float]:
    return {"mean": float(np.mean(x))}


def test_bootstrap_interval_of_a_mean_matches_the_normal_theory_width():
    x = np.random.default_rng(7).normal(size=400)
    low, high = bootstrap_intervals(mean_statistic, x, n_resamples=400, rng=np.random.default_rng(0))["mean"]
    assert low < x.mean() < high
    assert high - low == pytest.approx(2 * 1.96 * x.std() / 20, rel=0.2)


def test_bootstrap_is_seeded():
    x = np.random.default_rng(8).normal(size=50)
    a = bootstrap_intervals(mean_statistic, x, n_resamples=20, rng=np.random.default_rng(1))
    b = bootstrap_intervals(mean_statistic, x, n_resamples=20, rng=np.random.default_rng(1))
    c = bootstrap_intervals(mean_statistic, x, n_resamples=20, rng=np.random.default_rng(2))
    assert a == b and a != c


def test_percentile_interval_is_shifted_onto_the_estimate_and_survives_infinity():
    values = np.arange(101.0)  # median 50
    assert percentile_interval(values, estimate=40.0) == (2.0 - 10.0, 98.0 - 10.0)
    low, high = percentile_interval(np.array([1.0, 2.0, np.inf, np.inf, np.inf]), estimate=np.inf)
    assert low == 1.0 and high == np.inf


@pytest.mark.parametrize("kwargs, message", [({"n_resamples": 1}, ">= 2"), ({"level": 95}, "level")])
def test_bootstrap_bad_arguments(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        bootstrap_intervals(mean_statistic, np.zeros(5), rng=np.random.default_rng(0), **kwargs)


def test_prdc_terms_reproduce_prdc():
    rng = np.random.default_rng(9)
    real, fake = rng.normal(size=(120, 3)), rng.normal(0.3, 1.1, size=(90, 3))
    assert prdc_from_terms(*prdc_per_record(real=real, fake=fake, k=5), k=5) == prdc(real=real, fake=fake, k=5)
