"""The VAE family: ELBO terms against torch.distributions, the IWAE bound, encode/decode, and learning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

import genlab
from genlab.errors import ConfigError, DataError
from genlab.models.base import DataInfo
from genlab.models.vae import VAEModel
from genlab.models.vae.networks import iwae_bound
from genlab.train import Batch

from contract import unfitted


def built(info: DataInfo, **options) -> VAEModel:
    return unfitted(VAEModel, info, **options)


def test_gaussian_elbo_terms_match_torch_distributions():
    network = built(DataInfo("points", (3,)), latent_dim=2, hidden=8).network_
    x, eps = torch.randn(5, 3), torch.randn(5, 2)
    log_px, kl = network(x, None, eps)

    mu, logvar = network.encode(x)
    q = Normal(mu, (0.5 * logvar).exp())
    params = network.decode(mu + q.scale * eps)
    mean, raw = params.chunk(2, dim=1)
    expected_log_px = Normal(mean, 1e-3 + torch.nn.functional.softplus(raw)).log_prob(x).sum(1)
    expected_kl = kl_divergence(q, Normal(torch.zeros(2), torch.ones(2)))   # (5, 2): per latent dimension
    torch.testing.assert_close(log_px, expected_log_px)
    torch.testing.assert_close(kl, expected_kl)


def test_kl_warmup_ramps_the_weight_with_the_trainers_step_count():
    x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    model = genlab.fit(x, family="vae", latent_dim=2, hidden=8, beta=2.0, kl_warmup=2 / 3,
                       train={"steps": 6, "batch_size": 16, "log_every": 1})
    weights = [record["model/kl_weight"] for record in model.history_]
    assert weights == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0, 2.0])        # beta * min(1, step / (2/3 * 6))
    (phase,) = model._phases()                                            # calling the loss moves no clock
    for _ in range(2):
        losses = phase.loss(phase.module, Batch(torch.randn(16, 2)), torch.Generator().manual_seed(0))
        assert losses.parts["kl_weight"] == 2.0
    assert "kl_steps" not in model.network_.state_dict()                  # no extra state in the weights


def test_free_bits_stop_penalising_a_dimension_below_lambda():
    # The loss is recon + sum_j max(lambda, mean KL_j); the logged KL and ELBO stay the true ones.
    model = built(DataInfo("points", (2,)), latent_dim=3, hidden=8, free_bits=0.5, kl_warmup=0)
    (phase,) = model._phases()
    batch = Batch(torch.randn(16, 2))
    losses = phase.loss(phase.module, batch, torch.Generator().manual_seed(0))
    log_px, kl_dims = phase.module(batch.x, None, torch.randn(16, 3, generator=torch.Generator().manual_seed(0)))
    expected = -log_px.mean() + kl_dims.mean(0).clamp(min=0.5).sum()
    assert losses.total.item() == pytest.approx(expected.item(), rel=1e-5)
    assert losses.parts["kl"] == pytest.approx(kl_dims.mean(0).sum().item(), rel=1e-5)
    assert losses.parts["elbo"] == pytest.approx(-(losses.parts["recon"] + losses.parts["kl"]), rel=1e-5)


def test_bernoulli_likelihood_reads_images_as_intensities_and_reports_model_space():
    network = built(DataInfo("images", (1, 8, 8)), latent_dim=2, hidden=8, channels=4).network_
    x = torch.rand(3, 1, 8, 8) * 2 - 1                                    # model space [-1, 1]
    logits = torch.randn(3, 1, 8, 8)
    t = (x + 1) / 2
    # Bernoulli log-mass of the intensities, minus D log 2 (the codec's Jacobian, added back by log_prob)
    expected = (t * Bernoulli(logits=logits).log_prob(torch.ones_like(t))
                + (1 - t) * Bernoulli(logits=logits).log_prob(torch.zeros_like(t))).flatten(1).sum(1) - 64 * math.log(2)
    torch.testing.assert_close(network.log_likelihood(x, logits), expected)


def test_loss_is_reconstruction_plus_beta_times_kl():
    for beta in (0.0, 1.0, 4.0):
        model = built(DataInfo("points", (2,)), latent_dim=2, hidden=8, beta=beta, kl_warmup=0)
        (phase,) = model._phases()
        losses = phase.loss(phase.module, Batch(torch.randn(16, 2)), torch.Generator().manual_seed(0))
        expected = losses.parts["recon"] + beta * losses.parts["kl"]
        assert losses.total.item() == pytest.approx(expected, rel=1e-5)
        assert losses.parts["elbo"] == pytest.approx(-(losses.parts["recon"] + losses.parts["kl"]), rel=1e-5)


@pytest.fixture(scope="module")
def moons_vae(single_thread_module):
    return genlab.fit("moons", family="vae", latent_dim=2, hidden=64, depth=2, kl_warmup=0.25, conditional=False,
                      train={"steps": 800, "batch_size": 128})


def test_iwae_bound_is_above_the_elbo_and_rises_with_k(moons_vae):
    network = moons_vae.network_
    x = moons_vae.codec_.encode(genlab.datasets.load("moons").x_test[:1000])
    with torch.no_grad():
        log_px, kl = network(x, None, torch.randn(x.shape[0], 2, generator=torch.Generator().manual_seed(0)))
        elbo = float((log_px - kl.sum(1)).mean())
        bounds = [float(iwae_bound(network, x, None, k, torch.Generator().manual_seed(1)).mean()) for k in (1, 10, 100)]
    assert bounds[0] == pytest.approx(elbo, abs=0.15)                    # k = 1: a one-sample ELBO estimate
    assert bounds[0] < bounds[1] < bounds[2]
    assert bounds[2] > elbo


def test_log_prob_is_seeded_takes_k_and_rejects_bad_k(moons_vae):
    x = genlab.datasets.load("moons").x_test[:50]
    np.testing.assert_array_equal(moons_vae.log_prob(x), moons_vae.log_prob(x))
    other = moons_vae.log_prob(x, generator=torch.Generator().manual_seed(9))
    assert not np.array_equal(other, moons_vae.log_prob(x))
    assert moons_vae.log_prob(x, samples=200).mean() > moons_vae.log_prob(x, samples=1).mean()
    for bad in (0, 2.5, True):
        with pytest.raises(ConfigError, match="samples"):
            moons_vae.log_prob(x, samples=bad)


def test_vae_learns_moons_better_than_one_gaussian(moons_vae):
    data = genlab.datasets.load("moons")
    gaussian = genlab.fit(data, family="gaussian", n_components=1, conditional=False)
    vae_ll = moons_vae.log_prob(data.x_test[:500], samples=64).mean()
    assert vae_ll > gaussian.log_prob(data.x_test[:500]).mean() + 0.3
    x = data.x_test[:200]
    error = np.abs(moons_vae.decode(moons_vae.encode(x)) - x).mean()
    assert error < 0.7 * np.abs(x - x.mean(0)).mean()                     # reconstructs better than the mean


def test_sampling_draws_decoder_noise_unless_asked_for_the_mean(moons_vae):
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    noisy, mean = moons_vae.sample(50, generator=g()), moons_vae.sample(50, generator=g(), mean=True)
    z = torch.randn(50, 2, generator=g()).numpy()
    np.testing.assert_allclose(mean, moons_vae.decode(z), rtol=1e-5, atol=1e-5)
    assert not np.allclose(noisy, mean)
    with pytest.raises(ConfigError, match="mean"):
        moons_vae.sample(3, mean="yes")


def test_temperature_scales_the_prior_draw(moons_vae):
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    cooled = moons_vae.sample(50, generator=g(), mean=True, temperature=0.5)
    z = 0.5 * torch.randn(50, 2, generator=g()).numpy()
    np.testing.assert_allclose(cooled, moons_vae.decode(z), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(moons_vae.sample(5, generator=g(), temperature=1.0),
                                  moons_vae.sample(5, generator=g()))
    with pytest.raises(ConfigError, match="temperature"):
        moons_vae.sample(3, temperature=-1.0)


def test_conditional_vae_encodes_and_decodes_with_a_class():
    model = genlab.fit("digits", family="vae", latent_dim=4, hidden=32, channels=8,
                       train={"steps": 3, "batch_size": 16})
    x = genlab.datasets.load("digits").x_test[:5]
    z = model.encode(x, condition=3)
    assert z.shape == (5, 4) and model.latent_shape == (4,)
    assert model.decode(z, condition="7").shape == (5, 1, 8, 8)
    with pytest.raises(ConfigError, match="condition"):
        model.encode(x)
    with pytest.raises(ConfigError, match="condition"):
        model.decode(z)
    with pytest.raises(DataError, match=r"\(4,\)"):
        model.decode(np.zeros((2, 3)), condition=0)
    # without a condition log_prob marginalises the class: log sum_c pi_c p(x|c) >= max_c log pi_c p(x|c)
    marginal = model.log_prob(x, samples=4)
    per_class = np.stack([model.log_prob(x, condition=c, samples=4) + math.log(0.1) for c in range(10)])
    assert (marginal >= per_class.max(0) - 0.2).all()
    assert model.log_prob(x[:0], condition=0, samples=2).shape == (0,)        # an empty class scores nothing


def test_bernoulli_likelihood_on_points_is_refused():
    with pytest.raises(ConfigError, match="bernoulli"):
        genlab.fit("moons", family="vae", likelihood="bernoulli", train={"steps": 1})
