"""The density baseline learns what it should, and the mode metrics can tell good from bad."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture

import genlab
from genlab.metrics import mode_coverage
from genlab.models.gaussian import gaussian_log_prob


def correlated_points(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    cov = np.array([[2.0, 1.2], [1.2, 1.5]])
    return rng.multivariate_normal([3.0, -1.0], cov, size=n).astype(np.float32), cov


def test_single_gaussian_learns_mean_and_covariance():
    x, cov = correlated_points()
    model = genlab.fit(x, family="gaussian")
    samples = model.sample(200_000, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(samples.mean(0), x.mean(0), atol=0.02)
    np.testing.assert_allclose(np.cov(samples.T), np.cov(x.T, bias=True), atol=0.03)


def test_log_prob_is_the_gaussian_density_in_raw_units():
    x, _ = correlated_points()
    model = genlab.fit(x, family="gaussian", reg_covar=0.0)
    expected = multivariate_normal(x.mean(0), np.cov(x.T, bias=True)).logpdf(x[:50])
    np.testing.assert_allclose(model.log_prob(x[:50]), expected, rtol=1e-4, atol=1e-4)


def test_component_density_matches_scipy_full_and_diagonal():
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(7, 3)))
    means = torch.from_numpy(rng.normal(size=(2, 3)))
    a = torch.from_numpy(rng.normal(size=(2, 3, 3)))
    cov = a @ a.transpose(1, 2) + torch.eye(3)
    got = gaussian_log_prob(x, means, torch.linalg.cholesky(cov))
    for g in range(2):
        np.testing.assert_allclose(got[:, g], multivariate_normal(means[g], cov[g]).logpdf(x), rtol=1e-10)
    std = torch.from_numpy(rng.uniform(0.5, 2, size=(2, 3)))
    got = gaussian_log_prob(x, means, std)
    for g in range(2):
        np.testing.assert_allclose(got[:, g], multivariate_normal(means[g], np.diag(std[g] ** 2)).logpdf(x), rtol=1e-10)


def test_em_matches_scikit_learn_likelihood():
    data = genlab.datasets.load("moons")
    ours = genlab.fit(data.x_train, family="gaussian", n_components=6)
    peer = GaussianMixture(6, n_init=3, random_state=0).fit(data.x_train)
    ours_ll = ours.log_prob(data.x_test).mean()
    peer_ll = peer.score(data.x_test)
    assert ours_ll == pytest.approx(peer_ll, abs=0.05)


def test_mixture_of_eight_captures_ring8_and_single_gaussian_fails():
    data = genlab.datasets.load("ring8")
    mixture = genlab.fit(data, family="gaussian", n_components=8)
    single = genlab.fit(data, family="gaussian", n_components=1)
    g = torch.Generator().manual_seed(0)
    good = mode_coverage(fake=mixture.sample(2500, generator=g), modes=data.modes, std=data.mode_std)
    bad = mode_coverage(fake=single.sample(2500, generator=g), modes=data.modes, std=data.mode_std)
    assert good.modes_captured == 8 and good.high_quality >= 0.98 and good.reverse_kl <= 0.05
    assert bad.high_quality < 0.05
    assert mixture.log_prob(data.x_test).mean() > single.log_prob(data.x_test).mean() + 3


def test_adam_solver_approaches_the_em_likelihood():
    data = genlab.datasets.load("moons")
    em = genlab.fit(data, family="gaussian", n_components=4, conditional=False)
    adam = genlab.fit(data, family="gaussian", n_components=4, conditional=False, solver="adam",
                      train={"steps": 800})
    assert adam.log_prob(data.x_test).mean() == pytest.approx(em.log_prob(data.x_test).mean(), abs=0.15)


def test_class_conditional_samples_follow_their_class():
    data = genlab.datasets.load("digits")
    model = genlab.fit(data, family="gaussian")
    class_means = np.stack([data.x_train[data.y_train == c].mean(0).ravel() for c in range(10)])
    for c in (0, 3, 7):
        samples = model.sample(200, condition=c, generator=torch.Generator().manual_seed(c)).reshape(200, -1)
        nearest = np.linalg.norm(samples[:, None] - class_means[None], axis=-1).argmin(1)
        assert (nearest == c).mean() > 0.9
    conditional = model.log_prob(data.x_test[:50], condition=3)
    joint_ok = model.log_prob(data.x_test[:50])
    assert np.isfinite(conditional).all() and np.isfinite(joint_ok).all()


def test_periodic_validation_scores_held_out_records():
    data = genlab.datasets.load("moons")
    model = genlab.fit(data, family="gaussian", n_components=4, solver="adam",
                       train={"steps": 300, "eval_every": 100})
    curve = [(record["step"], record["eval/val_model"]) for record in model.history_ if "eval/val_model" in record]
    assert [step for step, _ in curve] == [100, 200, 300]
    assert curve[-1][1] < curve[0][1]
    final = -model.log_prob(data.x_test[:1024]).mean() + model.codec_.log_abs_det_jacobian()
    assert curve[-1][1] == pytest.approx(final, rel=1e-4)   # the validation loss is the held-out NLL in model space
