"""The GAN family: losses against hand values, packing, penalties, truncation, decode, and that it learns."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import genlab
from genlab.errors import ConfigError, DataError, NotSupportedError
from genlab.models.base import DataInfo
from genlab.models.gan import GANModel
from genlab.models.gan.losses import input_gradient_norm_sq, pack
from genlab.train import Batch

from contract import unfitted

POINTS = DataInfo("points", (2,))
DIGITS = DataInfo("images", (1, 8, 8), tuple(str(i) for i in range(10)))


def built(info: DataInfo, **options) -> GANModel:
    return unfitted(GANModel, info, **options)


def test_pack_groups_consecutive_records_along_coordinates_or_channels():
    x = torch.arange(20.0).reshape(10, 2)
    y = torch.arange(10)
    packed, labels = pack(x, y, 4)
    assert packed.shape == (2, 8) and labels.shape == (2, 4)              # the last 10 mod 4 are dropped
    assert torch.equal(packed[1], torch.cat([x[4], x[5], x[6], x[7]]))
    assert torch.equal(labels[1], torch.tensor([4, 5, 6, 7]))
    images = torch.randn(8, 1, 8, 8)
    packed, labels = pack(images, None, 2)
    assert packed.shape == (4, 2, 8, 8) and labels is None
    assert torch.equal(packed[3, 1], images[7, 0])


@pytest.mark.parametrize("info", [POINTS, DIGITS], ids=["points", "images"])
def test_packed_discriminator_scores_one_value_per_group(info):
    model = built(info, pack=4, hidden=16, channels=8)
    x = torch.randn(12, *info.shape)
    y = torch.randint(10, (12,)) if info.n_classes else None
    packed, labels = pack(x, y, 4)
    assert model.network_.discriminator(packed, labels).shape == (3,)


@pytest.mark.parametrize("loss, d_loss, g_loss", [("ns", 2 * math.log(2), math.log(2)), ("hinge", 2.0, 0.0)])
def test_losses_match_their_values_for_an_undecided_discriminator(loss, d_loss, g_loss):
    # With w = 0 (and no class embedding) D(x) = 0 everywhere: ns gives L_D = 2 log 2, L_G = log 2
    # (Goodfellow 2014: D = 1/2); hinge gives L_D = relu(1) + relu(1) = 2, L_G = 0.
    model = built(POINTS, loss=loss, hidden=16, conditional=False)
    with torch.no_grad():
        model.network_.discriminator.head.weight.zero_()
    batch = Batch(torch.randn(32, 2))
    d_phase, g_phase = model._phases()
    assert d_phase.name == "discriminator" and g_phase.name == "generator"
    rng = torch.Generator().manual_seed(0)
    assert d_phase.loss(d_phase.module, batch, rng).total.item() == pytest.approx(d_loss, abs=1e-6)
    assert g_phase.loss(g_phase.module, batch, rng).total.item() == pytest.approx(g_loss, abs=1e-6)


def test_phases_carry_critic_steps_and_adam_betas():
    d_phase, g_phase = built(POINTS, n_critic=5, betas=(0.0, 0.9), hidden=8)._phases()
    assert d_phase.repeats == 5 and g_phase.repeats == 1
    assert d_phase.betas == g_phase.betas == (0.0, 0.9)
    assert d_phase.lr is None and g_phase.lr is None                     # both take TrainConfig.lr


def test_two_time_scale_learning_rates_reach_each_optimiser():
    d_phase, g_phase = built(POINTS, lr_d=4e-4, lr_g=1e-4, hidden=8)._phases()
    assert (d_phase.lr, g_phase.lr) == (4e-4, 1e-4)
    with pytest.raises(ConfigError, match="lr_d"):
        GANModel(lr_d=0.0)


def test_r1_penalty_is_positive_and_differentiable_in_the_discriminator_weights():
    model = built(DIGITS, hidden=16, channels=8, pack=2)
    discriminator = model.network_.discriminator
    x = torch.randn(8, 2, 8, 8, requires_grad=True)
    y = torch.randint(10, (8, 2))
    penalty = input_gradient_norm_sq(discriminator(x, y), x)
    assert penalty.shape == (8,) and (penalty > 0).all()
    penalty.mean().backward()
    # grad_x D depends on the weights; biases move it only through the (piecewise constant) slopes.
    for name, parameter in discriminator.named_parameters():
        if not name.endswith("bias"):
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_r1_penalty_matches_a_hand_gradient_for_a_linear_critic():
    # D(x) = w^T leaky_relu(A x + b) has grad_x D = A^T (w * slope); check against autograd-free maths.
    model = built(POINTS, hidden=4, depth=1, conditional=False)
    discriminator = model.network_.discriminator
    linear = discriminator.body[0]
    x = torch.randn(5, 2, requires_grad=True)
    pre = linear(x)
    slope = torch.where(pre > 0, 1.0, 0.2)
    grad = (slope * discriminator.head.weight) @ linear.weight           # (5, 2)
    expected = grad.pow(2).sum(1)
    torch.testing.assert_close(input_gradient_norm_sq(discriminator(x), x), expected)


def test_wgan_gp_penalty_is_logged_positive_and_reaches_the_critic():
    model = built(POINTS, loss="wgan-gp", hidden=16, conditional=False)
    d_phase, _ = model._phases()
    losses = d_phase.loss(d_phase.module, Batch(torch.randn(32, 2)), torch.Generator().manual_seed(0))
    assert losses.parts["gp"] > 0
    losses.total.backward()
    assert all(p.grad is not None for p in d_phase.module.parameters())


def test_spectral_norm_keeps_every_discriminator_layer_at_unit_norm():
    model = built(POINTS, spectral_norm=True, hidden=32)
    discriminator = model.network_.discriminator.train()
    for _ in range(30):                                                    # power iterations converge
        discriminator(torch.randn(4, 2))
    for module in discriminator.modules():
        if isinstance(module, torch.nn.Linear):
            assert torch.linalg.matrix_norm(module.weight, ord=2).item() == pytest.approx(1.0, abs=0.02)


@pytest.fixture(scope="module")
def moons_gan():
    # a plain GAN: drs=False overrides the rejection critic that points get by default
    return genlab.fit("moons", family="gan", latent_dim=4, hidden=32, depth=2, pack=2, drs=False,
                      train={"steps": 20, "batch_size": 64})


def test_decode_is_the_generator_on_the_latents_that_sample_draws(moons_gan):
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(5)).numpy()
    for c in (0, 1):
        np.testing.assert_allclose(moons_gan.decode(z, condition=c),
                                   moons_gan.sample(6, condition=c, generator=torch.Generator().manual_seed(5)),
                                   rtol=1e-6, atol=1e-6)


def test_truncation_shrinks_the_latents_and_zero_gives_the_mean_latent(moons_gan):
    rng = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    half = moons_gan.sample(5, condition=0, generator=rng(), truncation=0.5)
    z = 0.5 * torch.randn(5, 4, generator=rng()).numpy()
    np.testing.assert_allclose(half, moons_gan.decode(z, condition=0), rtol=1e-6, atol=1e-6)
    collapsed = moons_gan.sample(5, condition=1, generator=rng(), truncation=0)
    assert np.allclose(collapsed, collapsed[0])
    for bad in (-0.5, float("nan"), "0.5", True):
        with pytest.raises(ConfigError, match="truncation"):
            moons_gan.sample(3, truncation=bad)


def test_conditional_decode_needs_a_class_and_latents_need_the_right_shape(moons_gan):
    with pytest.raises(ConfigError, match="condition"):
        moons_gan.decode(np.zeros((2, 4)))
    with pytest.raises(DataError, match=r"\(4,\)"):
        moons_gan.decode(np.zeros((2, 3)), condition=0)
    with pytest.raises(NotSupportedError):
        moons_gan.encode(np.zeros((2, 2)))
    assert moons_gan.latent_shape == (4,)


def test_batch_smaller_than_the_pack_is_refused():
    with pytest.raises(ConfigError, match="pack"):
        genlab.fit(np.random.default_rng(0).normal(size=(64, 2)), family="gan", pack=8,
                   train={"steps": 1, "batch_size": 4})


def test_unknown_loss_lists_the_choices():
    with pytest.raises(ConfigError, match="ns, hinge, wgan-gp"):
        GANModel(loss="wasserstein")


def test_gan_learns_a_shifted_gaussian_in_seconds(single_thread):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(4000, 2)) * [0.5, 2.0] + [3.0, -1.0]).astype(np.float32)
    model = genlab.fit(x, family="gan", latent_dim=4, hidden=64, depth=2, n_critic=2, pack=1, drs=False,
                       train={"steps": 600, "batch_size": 128, "lr": 1e-3, "min_lr_ratio": 0.01})
    fake = model.sample(4000, generator=torch.Generator().manual_seed(0))
    # within 0.15 standard deviations in the mean and 15% in the spread (measured: 0.03 and 4%)
    np.testing.assert_allclose((fake.mean(0) - [3.0, -1.0]) / [0.5, 2.0], 0.0, atol=0.15)
    np.testing.assert_allclose(fake.std(0), [0.5, 2.0], rtol=0.15)


@pytest.mark.parametrize("side", [8, 28])
def test_dcgan_networks_fit_8x8_and_28x28_images(side):
    info = DataInfo("images", (1, side, side), ("a", "b"))
    model = built(info, pack=2, hidden=16, channels=8, latent_dim=5)
    z, y = torch.randn(6, 5), torch.tensor([0, 1, 0, 1, 0, 1])
    x = model.network_.generator(z, y)
    assert x.shape == (6, 1, side, side) and x.abs().max() <= 1
    packed, labels = pack(x, y, 2)
    assert model.network_.discriminator(packed, labels).shape == (3,)


def test_odd_or_tiny_images_are_refused_with_the_sizes_that_work():
    with pytest.raises(NotSupportedError, match="8, 28"):
        built(DataInfo("images", (1, 7, 7)))


@pytest.fixture(scope="module")
def two_spike_gan(single_thread_module):
    """A briefly trained GAN with a rejection critic on two narrow spikes: it bridges them."""
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(2000, 2)) * 0.05 + rng.choice([-2.0, 2.0], size=(2000, 1)) * [1.0, 0.0]).astype(np.float32)
    return genlab.fit(x, family="gan", latent_dim=2, hidden=64, depth=2, drs=True, drs_fourier_features=8,
                      train={"steps": 600, "batch_size": 128, "lr": 1e-3, "seed": 0})


def spike_share(points: np.ndarray) -> float:
    """Share of points within 3 standard deviations (0.15) of a spike."""
    return float(np.mean(np.min(np.abs(points[:, None, 0] - [-2.0, 2.0]), axis=1) ** 2 + points[:, 1] ** 2 < 0.15 ** 2))


def test_rejection_sampling_keeps_draws_on_the_spikes_and_is_seeded(two_spike_gan):
    rng = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    plain = two_spike_gan.sample(2000, generator=rng(), rejection=False)
    kept = two_spike_gan.sample(2000, generator=rng())           # rejection by default with a critic
    assert kept.shape == (2000, 2)
    np.testing.assert_array_equal(kept, two_spike_gan.sample(2000, generator=rng(), rejection=True))
    # measured: plain 0.47, rejection 0.98
    assert spike_share(kept) > spike_share(plain) + 0.3, (spike_share(plain), spike_share(kept))


def test_rejection_needs_a_critic_and_a_boolean(moons_gan, two_spike_gan):
    with pytest.raises(ConfigError, match="drs=True"):
        moons_gan.sample(3, rejection=True)
    assert moons_gan.sample(3, rejection=False).shape == (3, 2)
    with pytest.raises(ConfigError, match="rejection"):
        two_spike_gan.sample(3, rejection="yes")
    with pytest.raises(ConfigError, match="points and images"):
        genlab.fit(pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0] * 8, "b": list("xyxy") * 8}), family="gan", drs=True,
                   train={"steps": 1, "batch_size": 8})
