"""Diffusion maths against diffusers' schedulers, the sampling options, and a tiny "does it learn" check."""

from __future__ import annotations

import diffusers
import numpy as np
import pytest
import torch

import genlab
from genlab.errors import ConfigError
from genlab.metrics import mode_coverage
from genlab.models.diffusion import DiffusionModel
from genlab.models.diffusion.config import equal_chunks
from genlab.nn.embeddings import sinusoidal_embedding
from genlab.nn.unet import UNet
from genlab.sampling.ddim import DDIMSampler
from genlab.sampling.ddpm import DDPMSampler
from genlab.sampling.dpm_solver import DPMSolverSampler
from genlab.sampling.schedules import NoiseSchedule, spaced_timesteps, split_prediction
from genlab.train import Batch, TrainConfig

DIFFUSERS_SCHEDULE = {"linear": "linear", "cosine": "squaredcos_cap_v2"}
DIFFUSERS_VARIANCE = {"fixed_small": "fixed_small", "fixed_large": "fixed_large", "learned": "learned_range"}
DIFFUSERS_PREDICTION = {"eps": "epsilon", "x0": "sample", "v": "v_prediction"}
HQ_BAR = 0.9   # share of ring8 samples within 3 std of a mode after 2,000 steps (measured 0.955-0.994)


def tensors(*shapes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator) for shape in shapes]


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("timesteps", [1000, 200])
def test_schedule_tables_equal_diffusers(schedule, timesteps):
    ours = NoiseSchedule.create(schedule, timesteps)
    theirs = diffusers.DDPMScheduler(num_train_timesteps=timesteps, beta_schedule=DIFFUSERS_SCHEDULE[schedule])
    np.testing.assert_allclose(ours.betas.numpy(), theirs.betas.double().numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.alpha_bar.numpy(), theirs.alphas_cumprod.double().numpy(), rtol=1e-5, atol=1e-9)


def test_unknown_schedule_lists_the_choices():
    with pytest.raises(ConfigError, match="cosine, linear"):
        NoiseSchedule.create("sigmoid", 100)


@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize("steps", [10, 50, 1000])
def test_visited_timesteps_equal_diffusers(spacing, steps):
    theirs = diffusers.DDIMScheduler(timestep_spacing=spacing)
    theirs.set_timesteps(steps)
    assert spaced_timesteps(1000, steps, spacing).tolist() == theirs.timesteps.tolist()


def test_closed_form_marginal_matches_the_markov_chain():
    """Iterating q(x_t | x_{t-1}) reaches N(sqrt(abar_t) x0, (1 - abar_t) I) (Ho et al. 2020, eq. 4)."""
    schedule = NoiseSchedule.create("linear", 1000)
    generator = torch.Generator().manual_seed(0)
    x0 = torch.full((200_000,), 1.5, dtype=torch.float64)
    x = x0.clone()
    for t in range(300):
        beta = schedule.betas[t]
        x = (1 - beta).sqrt() * x + beta.sqrt() * torch.randn(x.shape, generator=generator, dtype=torch.float64)
    abar = schedule.alpha_bar[299]
    assert abs(float(x.mean() - abar.sqrt() * 1.5)) < 0.01
    assert abs(float(x.var() - (1 - abar))) < 0.01
    eps = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
    closed = schedule.add_noise(x0, eps, torch.full(x0.shape, 299))
    assert abs(float(closed.mean() - x.mean())) < 0.01 and abs(float(closed.var() - x.var())) < 0.01


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_prediction_types_round_trip(prediction):
    schedule = NoiseSchedule.create("cosine", 1000)
    x0, eps = tensors((4, 3), (4, 3))
    t = torch.tensor([0, 10, 500, 999])
    x_t = schedule.add_noise(x0, eps, t)
    target = schedule.target(prediction, x0, eps, t)
    x0_hat, eps_hat = split_prediction(prediction, target, x_t, schedule.gather(schedule.alpha_bar, t, x_t))
    np.testing.assert_allclose(x0_hat[:3].numpy(), x0[:3].numpy(), atol=1e-4)   # t = 999 has abar ~ 0
    np.testing.assert_allclose(eps_hat.numpy(), eps.numpy(), atol=1e-4)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
@pytest.mark.parametrize("variance", ["fixed_small", "fixed_large", "learned"])
@pytest.mark.parametrize("steps", [1000, 50])
def test_ddpm_step_equals_diffusers(prediction, variance, steps):
    schedule_name = "linear"
    theirs = diffusers.DDPMScheduler(beta_schedule=DIFFUSERS_SCHEDULE[schedule_name], clip_sample=False,
                                     prediction_type=DIFFUSERS_PREDICTION[prediction],
                                     variance_type=DIFFUSERS_VARIANCE[variance], timestep_spacing="trailing")
    theirs.set_timesteps(steps)
    schedule = NoiseSchedule.create(schedule_name, 1000)
    # diffusers forms beta_t = 1 - abar_t / abar_{t-1} from float32 tables, which loses three digits
    # where beta_t ~ 1e-4; give both the same float64 table (itself checked above) to compare the step.
    theirs.alphas_cumprod = schedule.alpha_bar.clone()
    ours = DDPMSampler(schedule, prediction=prediction, variance=variance)
    ours.set_timesteps(steps)
    channels = 6 if variance == "learned" else 3
    output, x_t = tensors((2, channels, 4, 4), (2, 3, 4, 4))
    if variance == "learned":
        output[:, 3:] = output[:, 3:].tanh()
    for t in theirs.timesteps.tolist()[:-1:7]:   # not the final step, where diffusers adds ~0 noise
        expected = theirs.step(output, t, x_t, generator=torch.Generator().manual_seed(t)).prev_sample
        got = ours.step(output, t, x_t, generator=torch.Generator().manual_seed(t))
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_ddpm_final_step_is_the_posterior_mean():
    ours = DDPMSampler(NoiseSchedule.create("cosine", 100))
    ours.set_timesteps(10)
    output, x_t = tensors((5, 2), (5, 2))
    t = ours.timesteps[-1].item()
    np.testing.assert_array_equal(ours.step(output, t, x_t, noise=torch.ones(5, 2)).numpy(),
                                  ours.step(output, t, x_t, noise=torch.zeros(5, 2)).numpy())


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("clip", [None, 1.0])
def test_ddim_step_equals_diffusers(prediction, eta, clip):
    theirs = diffusers.DDIMScheduler(beta_schedule="squaredcos_cap_v2", clip_sample=clip is not None,
                                     prediction_type=DIFFUSERS_PREDICTION[prediction])
    theirs.set_timesteps(20)
    schedule = NoiseSchedule.create("cosine", 1000)
    theirs.alphas_cumprod = schedule.alpha_bar.clone()   # float64 on both sides, as for DDPM
    ours = DDIMSampler(schedule, prediction=prediction, eta=eta, clip=clip)
    ours.set_timesteps(20, spacing="leading")
    output, x_t, noise = tensors((3, 1, 5, 5), (3, 1, 5, 5), (3, 1, 5, 5))
    for t in theirs.timesteps.tolist():
        expected = theirs.step(output, t, x_t, eta=eta, variance_noise=noise,
                               use_clipped_model_output=True).prev_sample
        got = ours.step(output, t, x_t, noise=noise)
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("steps", [10, 20])
def test_dpm_solver_trajectory_equals_diffusers(prediction, steps):
    theirs = diffusers.DPMSolverMultistepScheduler(
        beta_schedule="squaredcos_cap_v2", prediction_type=DIFFUSERS_PREDICTION[prediction],
        algorithm_type="dpmsolver++", solver_order=2, solver_type="midpoint", final_sigmas_type="zero",
        timestep_spacing="trailing")
    theirs.set_timesteps(steps)
    ours = DPMSolverSampler(NoiseSchedule.create("cosine", 1000), prediction=prediction)
    ours.set_timesteps(steps)
    assert ours.timesteps.tolist() == theirs.timesteps.tolist()
    (start,) = tensors((4, 2, 3, 3))

    def network(x, t):   # a fixed, smooth stand-in for a denoiser
        return torch.tanh(x) * (0.5 + t / 1000)

    x_ours, x_theirs = start.clone(), start.clone()
    for t in ours.timesteps.tolist():
        x_ours = ours.step(network(x_ours, t), t, x_ours)
        x_theirs = theirs.step(network(x_theirs, t), t, x_theirs).prev_sample
    np.testing.assert_allclose(x_ours.numpy(), x_theirs.numpy(), rtol=1e-4, atol=1e-4)


def test_sinusoidal_embedding_equals_diffusers():
    from diffusers.models.embeddings import get_timestep_embedding

    t = torch.tensor([0, 1, 17, 500, 999])
    expected = get_timestep_embedding(t, 64, flip_sin_to_cos=True, downscale_freq_shift=0)
    np.testing.assert_allclose(sinusoidal_embedding(t, 64).numpy(), expected.numpy(), atol=1e-6)


@pytest.mark.parametrize("size", [8, 28])
def test_unet_keeps_the_image_shape_and_has_about_a_million_parameters(size):
    network = UNet(1, 2, n_classes=10)
    x = torch.randn(3, 1, size, size)
    out = network(x, torch.tensor([0, 10, 999]), torch.tensor([0, 9, 10]))   # 10 is the null class
    assert out.shape == (3, 2, size, size)
    assert 0.9e6 < sum(p.numel() for p in network.parameters()) < 1.2e6


# ---------------------------------------------------------------------------- the model family
@pytest.fixture(scope="module")
def ring_model(single_thread_module):
    """A class-conditional model of ring8, each point labelled by its mode (about 20 s on one thread)."""
    data = genlab.datasets.load("ring8")
    labels = ((data.x_train[:, None, :] - data.modes[None]) ** 2).sum(-1).argmin(1)
    model = DiffusionModel(hidden=128, depth=3).fit(
        data.x_train, labels=labels,
        train=TrainConfig(steps=2000, batch_size=256, lr=1e-3, warmup_steps=100, ema_decay=0.995, device="cpu"))
    return data, model


@pytest.mark.slow
@pytest.mark.parametrize("sampler, steps", [("ddim", 50), ("dpm++", 20), ("ddpm", 100)])
def test_diffusion_learns_a_ring_of_gaussians(ring_model, sampler, steps):
    data, model = ring_model
    generator = torch.Generator().manual_seed(0)
    x = np.concatenate([model.sample(313, condition=c, steps=steps, sampler=sampler, generator=generator)
                        for c in range(8)])   # 2,504 points, every class alike: the whole mixture
    scores = mode_coverage(fake=x, modes=data.modes, std=data.mode_std)
    assert scores.modes_captured == 8 and scores.high_quality > HQ_BAR and scores.reverse_kl < 0.01, scores


@pytest.mark.slow
def test_guidance_moves_samples_towards_the_condition(ring_model):
    data, model = ring_model
    share = {}
    for guidance in (0.0, 1.0, 3.0):   # guidance 0 is the unconditional model
        x = model.sample(1000, condition=2, guidance=guidance, generator=torch.Generator().manual_seed(1))
        nearest = ((x[:, None, :] - data.modes[None]) ** 2).sum(-1).argmin(1)
        share[guidance] = (nearest == 2).mean()
    assert share[0.0] < 0.3 and share[1.0] > 0.9 and share[3.0] >= share[1.0], share


@pytest.mark.parametrize("options, message", [
    ({"sampler": "euler"}, "ddim, ddpm, dpm"),
    ({"sampler": "ddpm", "eta": 0.5}, "ddim sampler only"),
    ({"steps": 0}, "steps must be an integer in 1..50"),
    ({"steps": 51}, "steps must be an integer in 1..50"),
    ({"eta": -1.0}, "eta must be"),
    ({"guidance": "strong"}, "guidance must be"),
    ({"temperature": 0.5}, "steps"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
])
def test_bad_sampling_options_are_clear_errors(options, message):
    data = genlab.datasets.load("moons")
    model = genlab.fit(data.x_train[:100], family="diffusion", timesteps=50, hidden=8, depth=1,
                       train={"steps": 2, "batch_size": 8})
    with pytest.raises(ConfigError, match=message):
        model.sample(4, **options)


def test_guidance_of_one_is_plain_conditional_sampling():
    data = genlab.datasets.load("moons")
    model = DiffusionModel(timesteps=50, hidden=16, depth=1).fit(
        data.x_train[:200], labels=data.y_train[:200], train=TrainConfig(steps=5, batch_size=16))
    a = model.sample(8, condition=1, guidance=1.0, generator=torch.Generator().manual_seed(0))
    b = model.sample(8, condition=1, guidance=2.0, generator=torch.Generator().manual_seed(0))
    c = model.sample(8, condition=1, generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(a, c)
    assert not np.allclose(a, b)


def test_denoising_in_chunks_gives_the_same_deterministic_samples():
    images = np.random.default_rng(0).random((32, 1, 8, 8), dtype=np.float32)
    model = genlab.fit(images, family="diffusion", channels=(8, 16), timesteps=50,
                       train={"steps": 2, "batch_size": 8})
    whole, chunked = (model.sample(10, steps=5, sampler="ddim", batch_size=size,
                                   generator=torch.Generator().manual_seed(3)) for size in (10, 3))
    np.testing.assert_allclose(chunked, whole, atol=1e-5)   # DDIM with eta 0 is a function of x_T alone


@pytest.mark.parametrize("n, cap, size", [(64, 20, 16), (256, 20, 20), (20, 20, 20), (21, 20, 11), (5, 0, 1),
                                           (1, 20, 1)])
def test_equal_chunks_are_the_fewest_chunks_under_the_cap_and_as_equal_as_can_be(n, cap, size):
    assert equal_chunks(n, cap) == size
    chunks = -(-n // size)
    assert chunks == -(-n // max(1, cap)) and size <= max(1, cap) and n - (chunks - 1) * size > 0


def test_a_large_cpu_batch_is_denoised_in_equal_chunks(monkeypatch):
    images = np.random.default_rng(0).random((16, 1, 28, 28), dtype=np.float32)
    model = genlab.fit(images, family="diffusion", channels=(4, 8), timesteps=20, train={"steps": 1, "batch_size": 8})
    sizes = []
    reverse = model._reverse
    monkeypatch.setattr(model, "_reverse", lambda x, *args: sizes.append(len(x)) or reverse(x, *args))
    model.sample(64, steps=1, sampler="ddim", backend="eager")
    assert sizes == [16, 16, 16, 16]   # 2^14 values a chunk at most: 20 images, so four equal chunks


def test_learned_variance_hybrid_loss_trains_the_variance_output_only_through_the_bound():
    data = genlab.datasets.load("moons")
    model = genlab.fit(data.x_train[:200], family="diffusion", timesteps=100, hidden=16, depth=1,
                       variance="learned", train={"steps": 2, "batch_size": 16})
    (phase,) = model._phases()
    batch = Batch(model.codec_.encode(data.x_train[:64]))
    with torch.no_grad():
        losses = phase.loss(phase.module, batch, torch.Generator().manual_seed(0))
    assert set(losses.parts) == {"mse", "vlb"} and np.isfinite(losses.parts["vlb"])
    assert float(losses.total) == pytest.approx(losses.parts["mse"] + 0.001 * losses.parts["vlb"], rel=1e-5)
