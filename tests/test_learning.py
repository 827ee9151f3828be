"""Does it learn: every family fits ring8 (8 Gaussians of std 0.01 on the unit circle) in seconds.

Scored by the VEEGAN/PacGAN protocol (``genlab.metrics.modes``): all 8 modes captured and a share of
high-quality samples (within 3 std = 0.03 of a mode) that suits the family. Each threshold keeps a
margin below the value measured at one CPU thread (in the comment beside it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import torch

import genlab
from genlab.metrics.modes import mode_coverage


@dataclass(frozen=True)
class Case:
    family: str
    options: dict[str, Any]
    train: dict[str, Any]
    min_high_quality: float


CASES = {
    # EM on the exact model family: measured 0.989 (a Gaussian's own share within 3 std in 2-D is 0.989).
    "gaussian": Case("gaussian", {"n_components": 8}, {}, 0.95),
    # PacGAN4 with a decaying learning rate, about a quarter of the benchmark's compute: measured 0.601.
    "gan": Case("gan", {"pack": 4, "latent_dim": 16, "hidden": 128, "depth": 3, "n_critic": 2},
                {"steps": 3000, "batch_size": 256, "lr": 2e-3, "min_lr_ratio": 0.005}, 0.4),
    # The defaults with the demo's budget. A continuous decoder of a Gaussian latent leaves prior mass
    # between the modes, and sampling adds the decoder's noise: measured 0.265 (0.003 before KL warm-up).
    "vae": Case("vae", {}, {"steps": 3000}, 0.15),
    # The defaults (v-prediction, cosine schedule, MLP) at 1,500 steps: measured 0.857.
    "diffusion": Case("diffusion", {}, {"steps": 1500}, 0.7),
    # Coordinates binned into 64 levels: bins 0.033 wide, so the centre of the bin holding a mode lies
    # within 0.023 of it, inside the 0.03 radius (17 levels would not): measured 0.977.
    "transformer": Case("transformer", {"levels": 64, "n_layer": 2, "n_embd": 64, "n_head": 4},
                        {"steps": 800, "batch_size": 64}, 0.9),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_every_family_learns_ring8(name, single_thread):
    case = CASES[name]
    data = genlab.datasets.load("ring8", seed=0)
    model = genlab.fit(data, family=case.family, train={**case.train, "seed": 0}, **case.options)
    fake = model.sample(2500, generator=torch.Generator().manual_seed(0))
    score = mode_coverage(fake=fake, modes=data.modes, std=data.mode_std)
    print(f"{name}: modes {score.modes_captured}, high quality {score.high_quality:.3f}, KL {score.reverse_kl:.3f}")
    assert score.modes_captured == 8
    assert score.high_quality >= case.min_high_quality
