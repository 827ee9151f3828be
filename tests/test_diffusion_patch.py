"""The UNet's space-to-depth option (``patch``): shapes, what it computes, errors, and the saved config."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

import genlab
from genlab.errors import ConfigError
from genlab.nn.unet import UNet


@pytest.mark.parametrize("size, channels", [(8, (8, 16)), (28, (32, 64))])
def test_patched_unet_keeps_the_image_shape(size, channels):
    network = UNet(1, 2, channels=channels, n_classes=10, patch=2)
    out = network(torch.randn(3, 1, size, size), torch.tensor([0, 10, 999]), torch.tensor([0, 9, 10]))
    assert out.shape == (3, 2, size, size)
    assert network.conv_in.in_channels == 4 and network.conv_out.out_channels == 8


def test_patched_unet_is_an_unpatched_unet_between_pixel_unshuffle_and_pixel_shuffle():
    torch.manual_seed(0)
    patched = UNet(1, 1, channels=(8, 16), n_classes=3, patch=2)
    inner = UNet(4, 4, channels=(8, 16), n_classes=3)
    inner.load_state_dict(patched.state_dict(), strict=True)   # same weights: only the stem differs
    x, t, y = torch.randn(2, 1, 8, 8), torch.tensor([3, 700]), torch.tensor([0, 3])
    expected = F.pixel_shuffle(inner(F.pixel_unshuffle(x, 2), t, y), 2)
    torch.testing.assert_close(patched(x, t, y), expected)


def test_patch_too_large_for_the_levels_is_a_clear_error():
    images = np.random.default_rng(0).random((16, 1, 8, 8), dtype=np.float32)
    with pytest.raises(ConfigError, match="patches"):
        genlab.fit(images, family="diffusion", channels=(8, 16, 16, 16), patch=2,
                   train={"steps": 1, "batch_size": 8})
    with pytest.raises(ConfigError, match="patch must be at least 1, got 128, 3, 1 and 0"):
        genlab.fit(images, family="diffusion", patch=0, train={"steps": 1})


def test_patched_model_saves_its_patch_and_reloads_identically(tmp_path):
    images = np.random.default_rng(0).random((32, 1, 8, 8), dtype=np.float32)
    model = genlab.fit(images, family="diffusion", channels=(8, 16), patch=2, timesteps=50,
                       train={"steps": 2, "batch_size": 8})
    model.save_pretrained(tmp_path / "run")
    loaded = genlab.load(tmp_path / "run")
    assert loaded.config.patch == 2 and loaded.network_.patch == 2
    samples = [m.sample(6, steps=4, generator=torch.Generator().manual_seed(1)) for m in (loaded, model)]
    np.testing.assert_array_equal(*samples)
