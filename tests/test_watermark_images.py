"""Tree-Ring for diffusion images: the ring test is exact on Gaussian noise, DDIM inversion returns
near the initial noise, marked samples are detected through the model and unmarked ones are not, and
families without an invertible sampler refuse the mark with an error naming the one that has it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genlab
from genlab.errors import NotSupportedError
from genlab.provenance import Watermark
from genlab.provenance.detect import detect
from genlab.provenance.image_watermark import invert_images, mark_noise, ring_test


@pytest.fixture(scope="module")
def digits():
    return genlab.datasets.load("digits")


@pytest.fixture(scope="module")
def model(digits):
    return genlab.fit(digits.x_train, family="diffusion", channels=(16, 32), timesteps=200,
                      train={"steps": 200, "batch_size": 32})


def test_a_wrong_key_flags_marked_noise_only_at_the_false_positive_rate():
    # images marked under one key are white noise to every other key's test: over 100 wrong keys at FPR 1e-3,
    # Binomial(100, 1e-3) keys flag (P(none) = 0.90; each flags all 32 images or none). The paper's rings
    # pattern, 5 numbers a key at 28x28, was flagged under 29 of these 100 keys.
    noise = torch.randn((32, 1, 28, 28), generator=torch.Generator().manual_seed(1))
    marked = mark_noise(noise, key=4242)
    assert all(d.watermarked for d in ring_test(marked, key=4242, fpr=1e-3))
    flagged = [np.mean([d.watermarked for d in ring_test(marked, key=k, fpr=1e-3)]) for k in range(1, 101)]
    assert sum(flagged) <= 1


def test_ring_test_is_exact_on_gaussian_noise_and_finds_the_key():
    noise = torch.randn((400, 1, 16, 16), generator=torch.Generator().manual_seed(0))
    p = np.array([d.p_value for d in ring_test(noise, key=5, fpr=0.05)])
    # 400 null p-values: the share below 0.05 is Binomial(400, 0.05) / 400 (sd 0.011) when the null is exact
    assert 0.015 < np.mean(p <= 0.05) < 0.09
    marked = mark_noise(noise[:20], key=5)
    assert all(d.p_value < 1e-6 for d in ring_test(marked, key=5, fpr=0.05))
    assert np.mean([d.p_value <= 0.05 for d in ring_test(marked, key=6, fpr=0.05)]) < 0.3
    # only the disc moves: the rest of the spectrum, and the other channels, are the same noise
    assert torch.allclose(mark_noise(noise, key=5).std(), noise.std(), rtol=0.1)


def test_an_image_of_any_spectrum_is_flagged_at_the_false_positive_rate_over_keys():
    # the inverted noise of a real image keeps its mean and low frequencies; the distance test, which estimated
    # sigma^2 from the disc, flagged 33 % of real MNIST test digits at 1 %. The angle to a key drawn
    # independently of the image is exactly Beta-distributed whatever the image: 400 keys at FPR 0.05 flag
    # Binomial(400, 0.05) / 400 (sd 0.011)
    smooth = torch.linspace(-1, 1, 28)
    image = 0.2 * torch.randn((1, 1, 28, 28), generator=torch.Generator().manual_seed(3)) + 5.0 + \
        3 * torch.outer(smooth, smooth.flip(0)) + 2 * torch.sin(3 * smooth)[None]
    flags = [ring_test(image, key=k, fpr=0.05)[0].watermarked for k in range(1, 401)]
    assert 0.015 < np.mean(flags) < 0.09
    # a bright offset (the centre of the spectrum) is not tested, and the angle ignores scale (a blur or a
    # brightness change that shrinks the spectrum)
    noise = torch.randn((400, 1, 28, 28), generator=torch.Generator().manual_seed(4))
    p = np.array([d.p_value for d in ring_test(noise + 10.0, key=7, fpr=0.05)])
    assert 0.015 < np.mean(p <= 0.05) < 0.09
    marked = mark_noise(noise[:8], key=7)
    assert np.allclose([d.p_value for d in ring_test(0.3 * marked, key=7, fpr=0.05)],
                       [d.p_value for d in ring_test(marked, key=7, fpr=0.05)])


def test_inversion_runs_in_chunks_of_bounded_size(model):
    # detecting 1,000+ images must not hold them all in one forward pass
    images = model.sample(10, steps=5, generator=torch.Generator().manual_seed(0))
    sizes = []
    handle = model.network_.register_forward_hook(lambda module, args, out: sizes.append(len(out)))
    try:
        chunked = model.invert(images, steps=3, batch=4)
    finally:
        handle.remove()
    assert max(sizes) == 4 and torch.allclose(chunked, model.invert(images, steps=3), atol=1e-5)


def test_ddim_inversion_returns_near_the_initial_noise(model):
    x_T = torch.randn((16, *model.data_.shape), generator=torch.Generator().manual_seed(0))
    images = model.sample(16, initial_noise=x_T, sampler="ddim", steps=50)
    back = invert_images(model, images)
    # measured 0.90 on this 200-step model; a wrong inversion (e.g. the forward step) gives ~0
    assert np.corrcoef(back.flatten().numpy(), x_T.flatten().numpy())[0, 1] > 0.8


def test_marked_samples_are_detected_and_unmarked_ones_are_not(model):
    marked = model.sample(16, processors=[Watermark(key=3)], steps=50, generator=torch.Generator().manual_seed(1))
    plain = model.sample(16, steps=50, generator=torch.Generator().manual_seed(2))
    report = detect(marked, key=3, model=model)
    assert report.method == "tree-ring" and report.fpr == 1e-2 and report.combined.p_value < 1e-6
    assert detect(plain, key=3, model=model).combined.p_value > 1e-3     # measured 0.02
    assert detect(marked, key=4, model=model).combined.p_value > 1e-3    # measured 0.5


def test_gan_and_vae_images_refuse_the_mark(digits):
    vae = genlab.fit(digits.x_train[:64], family="vae", train={"steps": 1, "batch_size": 32})
    with pytest.raises(NotSupportedError, match="diffusion"):
        vae.sample(2, processors=[Watermark(key=1)])
    with pytest.raises(NotSupportedError, match="diffusion"):
        detect(digits.x_test[:4], key=1, model=vae)
