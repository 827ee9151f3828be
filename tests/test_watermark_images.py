"""Tree-Ring for diffusion images: each marked image carries its own pattern of the key's family, the
best-of-N test finds it and its Bonferroni p-value is exact-or-conservative on Gaussian noise and on any
image over keys, DDIM inversion returns near the initial noise, marked samples are detected through the
model and unmarked ones are not, seeded marked sampling is reproducible, and families without an invertible
sampler refuse the mark with an error naming the one that has it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import binom

import genlab
from genlab.errors import NotSupportedError
from genlab.provenance import Watermark
from genlab.provenance.detect import detect
from genlab.provenance.image_watermark import (PATTERNS, best_patterns, invert_images, key_patterns, mark_noise,
                                               marked_noise, region, ring_test)


def flags_within(k: int, n: int, fpr: float) -> bool:
    """``k`` flags of ``n`` null tests at ``fpr``: at most the ``Binomial(n, fpr)`` upper 1e-3 quantile (the
    bound holds), at least the lower 1e-3 quantile at ``0.8 fpr`` (not so conservative the test is blind)."""
    return binom.ppf(1e-3, n, 0.8 * fpr) <= k <= binom.isf(1e-3, n, fpr)


@pytest.fixture(scope="module")
def digits():
    return genlab.datasets.load("digits")


@pytest.fixture(scope="module")
def model(digits):
    return genlab.fit(digits.x_train, family="diffusion", channels=(16, 32), timesteps=200,
                      train={"steps": 200, "batch_size": 32})


def test_detection_finds_the_drawn_pattern_of_directly_marked_noise():
    noise = torch.randn((24, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    nonces = np.random.default_rng(0).integers(0, PATTERNS, 24)
    marked = mark_noise(noise, key=5, nonces=nonces)
    cos, found = best_patterns(marked, key=5)
    assert np.array_equal(found, nonces) and np.allclose(cos, 1.0)
    assert all(d.watermarked and d.p_value < 1e-6 for d in ring_test(marked, key=5, fpr=1e-2))
    # only the region moves (its values and their conjugates); other channels stay the same noise
    spectrum = lambda x: torch.fft.fftshift(torch.fft.fft2(x[:, 0].double()), dim=(-2, -1))   # noqa: E731
    moved = (spectrum(marked) - spectrum(noise)).abs().amax(0) > 1e-3      # float32 rounding: ~1e-5
    keyed = torch.as_tensor(region(28, 28))
    assert torch.equal(moved, keyed | keyed.flip(0, 1).roll((1, 1), (0, 1)))
    assert torch.equal(marked[:, 1:], noise[:, 1:]) and torch.allclose(marked.std(), noise.std(), rtol=0.1)


def test_bonferroni_p_value_is_exact_or_conservative_on_gaussian_noise():
    # white noise against a fixed key (null a): every pattern's cosine is exactly Beta, so P(min(1, N p_best)
    # <= fpr) <= fpr by the union bound; the N cosines are nearly independent, so the rate is nearly fpr
    # (1 - (1 - fpr / N)^N). Counting N once too few, or squaring it, fails one side
    noise = torch.randn((4000, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    found = ring_test(noise, key=5, fpr=0.05)
    p = np.array([d.p_value for d in found])
    for fpr in (0.05, 0.01):
        assert flags_within(int((p <= fpr).sum()), len(p), fpr)
    # the score is Sidak's normal quantile of the best of N cosines: N(0, 1) under the null
    z = np.array([d.score for d in found])
    assert abs(z.mean()) < 0.1 and 0.9 < z.std() < 1.1


def test_a_wrong_key_flags_marked_noise_only_at_the_false_positive_rate():
    # images marked under one key are white noise to every other key's patterns: 100 wrong keys x 32 images at
    # FPR 1 % flag at most Binomial(3200, 0.01). Each image carries its own pattern, so one wrong key no longer
    # flags all of a key's images or none, as with the one-pattern scheme
    noise = torch.randn((32, 1, 28, 28), generator=torch.Generator().manual_seed(1))
    marked = mark_noise(noise, key=4242, nonces=np.random.default_rng(1).integers(0, PATTERNS, 32))
    assert all(d.watermarked for d in ring_test(marked, key=4242, fpr=1e-2))
    flags = sum(d.watermarked for k in range(1, 101) for d in ring_test(marked, key=k, fpr=1e-2))
    assert flags_within(flags, 3200, 1e-2)


def test_an_image_of_any_spectrum_is_flagged_at_the_false_positive_rate_over_keys():
    # the inverted noise of a real image keeps its mean and low frequencies; the distance test, which estimated
    # sigma^2 from the disc, flagged 33 % of real MNIST test digits at 1 %. The angle to each pattern of a key
    # drawn independently of the image is exactly Beta-distributed whatever the image (null b), and the N
    # angles are independent: 400 keys at FPR 0.05 flag Binomial(400, 1 - (1 - 0.05 / N)^N) / 400 (sd 0.011)
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
    marked = mark_noise(noise[:8], key=7, nonces=np.arange(8))
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
    assert detect(plain, key=3, model=model).combined.p_value > 1e-3     # measured 0.41 (marked: 15 of 16 flagged)
    assert detect(marked, key=4, model=model).combined.p_value > 1e-3    # measured 0.80


def test_images_of_one_batch_get_their_own_patterns_and_seeded_sampling_is_reproducible(model):
    # one pattern a key gave every image the same keyed coefficients (a Fréchet cost of +292 % on MNIST); now
    # each noise's nonce is drawn from the sampler's generator: 16 draws of 256 share about 0.5 pairs
    watermark = Watermark(key=3)
    x_T = marked_noise(model, 16, watermark, torch.Generator().manual_seed(0))
    cos, nonces = best_patterns(x_T, key=3)
    assert np.allclose(cos, 1.0) and len(set(nonces)) >= 14 and nonces[0] != nonces[1]
    spectrum = torch.fft.fft2(x_T[:, 0].double())
    assert not torch.allclose(spectrum[0], spectrum[1])
    assert np.array_equal(key_patterns(3, nonces[:1], *x_T.shape[-2:]),
                          key_patterns(3, nonces[:1], *x_T.shape[-2:]))
    assert torch.equal(marked_noise(model, 16, watermark, torch.Generator().manual_seed(0)), x_T)
    draw = lambda seed: model.sample(4, processors=[watermark], steps=5,   # noqa: E731
                                     generator=torch.Generator().manual_seed(seed))
    first = draw(7)
    assert np.array_equal(first, draw(7)) and not np.allclose(first, draw(8))


def test_gan_and_vae_images_refuse_the_mark(digits):
    vae = genlab.fit(digits.x_train[:64], family="vae", train={"steps": 1, "batch_size": 32})
    with pytest.raises(NotSupportedError, match="diffusion"):
        vae.sample(2, processors=[Watermark(key=1)])
    with pytest.raises(NotSupportedError, match="diffusion"):
        detect(digits.x_test[:4], key=1, model=vae)
