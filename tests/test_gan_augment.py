"""DiffAugment: translation and cutout against direct pixel loops, drawn per image, differentiable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genlab
from genlab.errors import ConfigError
from genlab.models.gan.augment import _integers, cutout, diff_augment, translate


def test_translation_moves_each_image_by_its_own_shift_and_pads_with_zeros():
    x = torch.randn(6, 2, 8, 8)
    out = translate(x, torch.Generator().manual_seed(0), ratio=0.25)
    shifts = _integers(6, (2, 2), torch.Generator().manual_seed(0), x.device)     # the same draws
    for b, (dy, dx) in enumerate(shifts.tolist()):
        expected = torch.zeros_like(x[b])
        for i in range(8):
            for j in range(8):
                if 0 <= i - dy < 8 and 0 <= j - dx < 8:
                    expected[:, i, j] = x[b, :, i - dy, j - dx]
        torch.testing.assert_close(out[b], expected, rtol=0, atol=0)
    assert len({tuple(s) for s in shifts.tolist()}) > 1


def test_cutout_zeroes_one_square_per_image_and_keeps_the_rest():
    x = torch.rand(32, 1, 8, 8) + 1                                  # no zero before the cutout
    out = cutout(x, torch.Generator().manual_seed(1), ratio=0.5)
    for b in range(32):
        zeroed = out[b, 0] == 0
        rows, cols = zeroed.any(1).nonzero().flatten(), zeroed.any(0).nonzero().flatten()
        assert zeroed.sum() == len(rows) * len(cols) and 1 <= len(rows) <= 4 and 1 <= len(cols) <= 4
        assert torch.equal(out[b, 0][~zeroed], x[b, 0][~zeroed])


def test_the_generator_gets_gradients_through_the_augmentation():
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    diff_augment(x, torch.Generator().manual_seed(0)).sum().backward()
    kept = x.grad != 0
    assert kept.any() and not kept.all()                            # gradient 1 where a pixel survived
    assert set(x.grad.unique().tolist()) <= {0.0, 1.0}


def test_a_gan_trains_with_diffaugment_on_images_and_refuses_it_elsewhere():
    model = genlab.fit("digits", family="gan", diffaugment=True, channels=8, hidden=16, latent_dim=8,
                       train={"steps": 3, "batch_size": 16})
    assert np.isfinite(model.sample(4, condition=0)).all()
    with pytest.raises(ConfigError, match="diffaugment translates and cuts out images; this is points data"):
        genlab.fit(np.random.default_rng(0).normal(size=(64, 2)), family="gan", diffaugment=True,
                   train={"steps": 1, "batch_size": 16})
