"""The VAE's ex-post mixture prior: the mixture it fits, how sampling uses it, and its place in a run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genlab
from genlab.errors import ConfigError
from genlab.models.vae.ex_post import FittedPrior


def two_groups(n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Group 0: one Gaussian at (-3, 0) with std (1, 0.25); group 1: two at (+3, +-3), std 0.5."""
    rng = np.random.default_rng(0)
    a = rng.normal([-3.0, 0.0], [1.0, 0.25], size=(n, 2))
    b = rng.normal([3.0, 0.0], 0.5, size=(n, 2)) + np.where(rng.random(n) < 0.5, 3.0, -3.0)[:, None] * [0, 1]
    return np.concatenate([a, b]), np.repeat([0, 1], n)


def test_the_fitted_mixture_draws_each_group_from_its_own_encodings():
    z, groups = two_groups()
    prior = FittedPrior(groups=2, components=2, latent_dim=2)
    prior.fit(z, groups, seed=0)
    assert prior.is_fitted
    n = 20_000
    draws = {g: prior.sample(torch.full((n,), g), torch.Generator().manual_seed(g)).numpy() for g in (0, 1)}
    # Moments of n draws: the standard error of a mean is std / sqrt(n) <= 3.2 / 141 ~ 0.023; 0.1 is > 4 SE.
    np.testing.assert_allclose(draws[0].mean(0), z[groups == 0].mean(0), atol=0.1)
    np.testing.assert_allclose(draws[0].std(0), z[groups == 0].std(0), rtol=0.05)
    np.testing.assert_allclose(draws[1].mean(0), z[groups == 1].mean(0), atol=0.1)
    assert np.mean(np.abs(draws[1][:, 1]) > 1.5) > 0.99        # both of group 1's modes, nothing between them
    assert np.mean(draws[1][:, 1] > 0) == pytest.approx(0.5, abs=0.02)


def test_temperature_shrinks_each_component_towards_its_mean():
    z, groups = two_groups()
    prior = FittedPrior(groups=2, components=1, latent_dim=2)
    prior.fit(z, groups, seed=0)
    index = torch.zeros(10_000, dtype=torch.long)
    full = prior.sample(index, torch.Generator().manual_seed(0)).numpy()
    half = prior.sample(index, torch.Generator().manual_seed(0), temperature=0.5).numpy()
    mean = prior.means[0, 0].numpy()
    # float32 draws of magnitude ~4: each side carries rounding of a few ulp of 4 (~1e-6), so 1e-5 holds anywhere
    np.testing.assert_allclose(half - mean, 0.5 * (full - mean), rtol=1e-5, atol=1e-5)


def test_a_group_too_small_for_a_covariance_falls_back_to_the_pooled_encodings():
    z, groups = two_groups(200)
    groups[:] = 0
    groups[:3] = 1                                              # 3 records cannot give a 2x2 covariance
    prior = FittedPrior(groups=2, components=2, latent_dim=2)
    prior.fit(z, groups, seed=0)
    draws = prior.sample(torch.ones(5000, dtype=torch.long), torch.Generator().manual_seed(0)).numpy()
    assert np.isfinite(draws).all() and draws[:, 0].std() > 1.5   # the spread of both groups together


@pytest.fixture(scope="module")
def digits_vae(tmp_path_factory):
    model = genlab.fit("digits", family="vae", latent_dim=4, hidden=32, channels=8, prior="gmm",
                       prior_components=3, train={"steps": 30, "batch_size": 64})
    path = tmp_path_factory.mktemp("runs") / "vae"
    model.save_pretrained(path)
    return model, path


def test_a_gmm_run_samples_from_its_mixture_by_default_and_from_n01_when_asked(digits_vae):
    model, _ = digits_vae
    assert model.network_.fitted_prior.is_fitted
    assert model.sampling_options()["prior"].default == "gmm"
    seed = lambda: torch.Generator().manual_seed(0)              # noqa: E731
    default = model.sample(8, condition=3, generator=seed())
    np.testing.assert_array_equal(default, model.sample(8, condition=3, generator=seed(), prior="gmm"))
    standard = model.sample(8, condition=3, generator=seed(), prior="standard")
    assert default.shape == standard.shape == (8, 1, 8, 8) and not np.allclose(default, standard)


def test_the_mixture_travels_with_the_run(digits_vae):
    model, path = digits_vae
    loaded = genlab.load(path)
    assert loaded.sampling_options()["prior"].default == "gmm"
    np.testing.assert_array_equal(loaded.sample(6, condition=1, generator=torch.Generator().manual_seed(2)),
                                  model.sample(6, condition=1, generator=torch.Generator().manual_seed(2)))


def test_prior_gmm_on_a_run_without_a_mixture_is_a_clear_error():
    model = genlab.fit("digits", family="vae", latent_dim=2, hidden=16, channels=4, prior="standard",
                       train={"steps": 2, "batch_size": 32})
    assert model.network_.fitted_prior is None
    with pytest.raises(ConfigError, match="prior='gmm' needs a VAE fitted with prior='gmm'"):
        model.sample(2, condition=0, prior="gmm")
    with pytest.raises(ConfigError, match="prior='sideways' is not one of: gmm, standard"):
        model.check_declared_options({"prior": "sideways"})


def test_the_servers_micro_batcher_never_treats_mixture_latents_as_scaled_noise(digits_vae):
    model, _ = digits_vae
    assert model.latent_noise_scale(3, {"mean": True}) is None
    assert model.latent_noise_scale(3, {"mean": True, "prior": "standard", "temperature": 0.5}) == 0.5
