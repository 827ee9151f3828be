"""CPU sampling speed of genlab's diffusion UNet against diffusers' UNet2DModel + DDIMScheduler.

Both sample ``--n`` 28x28 images with 50 DDIM steps from a UNet of about 1M parameters (genlab:
channels (32, 64, 64), one block per level; diffusers: ``block_out_channels=(32, 64, 64)``, one layer
per block, no attention, the configuration of BENCHMARKS.md §7). Weights are random: speed does not
depend on them. Timing is the best of ``--repeats`` interleaved runs, one thread, on a machine shared
with other jobs (pessimistic). Issue #4's bar: genlab at least as fast (ratio >= 1.0).

    OMP_NUM_THREADS=1 python benchmarks/diffusion_speed.py
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from genlab.models.diffusion import DiffusionModel
from genlab.train import TrainConfig

DEFAULT_OUT = Path(__file__).parent / "results" / "diffusion_speed.json"


def best_time(fn, repeats: int) -> float:
    """Shortest wall-clock seconds of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def genlab_sampler(n: int, steps: int):
    """A 28x28 genlab diffusion model (one training step, so weights are near-initial) and its sampling call."""
    images = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
    model = DiffusionModel(conditional=False).fit(images, train=TrainConfig(steps=1, batch_size=8, device="cpu"))
    params = sum(p.numel() for p in model.network_.parameters())
    return params, lambda: model.sample(n, steps=steps, sampler="ddim", generator=torch.Generator().manual_seed(0))


def diffusers_sampler(n: int, steps: int):
    """diffusers' UNet2DModel of the same widths with its DDIM loop (as DDIMPipeline runs it)."""
    from diffusers import DDIMScheduler, UNet2DModel

    unet = UNet2DModel(sample_size=28, in_channels=1, out_channels=1, block_out_channels=(32, 64, 64),
                       layers_per_block=1, down_block_types=("DownBlock2D",) * 3,
                       up_block_types=("UpBlock2D",) * 3, norm_num_groups=8, add_attention=False).eval()
    scheduler = DDIMScheduler(beta_schedule="squaredcos_cap_v2")
    params = sum(p.numel() for p in unet.parameters())

    @torch.no_grad()
    def sample() -> torch.Tensor:
        x = torch.randn((n, 1, 28, 28), generator=torch.Generator().manual_seed(0))
        scheduler.set_timesteps(steps)
        for t in scheduler.timesteps:
            x = scheduler.step(unet(x, t).sample, t, x).prev_sample
        return x

    return params, sample


def main(argv: list[str] | None = None) -> None:
    """Time both, print the table and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="images per sampling call")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    samplers = {"genlab": genlab_sampler(args.n, args.steps), "diffusers": diffusers_sampler(args.n, args.steps)}
    times: dict[str, list[float]] = {name: [] for name in samplers}
    for _, sample in samplers.values():
        sample()   # warm-up
    for _ in range(args.repeats):   # interleaved, so a change in the machine's load hits both alike
        for name, (_, sample) in samplers.items():
            times[name].append(best_time(sample, 1))
    rows = {name: {"parameters": params, "seconds": min(times[name]),
                   "images_per_second": args.n / min(times[name])} for name, (params, _) in samplers.items()}
    ratio = rows["diffusers"]["seconds"] / rows["genlab"]["seconds"]
    print(f"{'':<10} {'params':>10} {'seconds':>8} {'images/s':>9}   ({args.n} images, DDIM {args.steps} steps, 1 thread)")
    for name, row in rows.items():
        print(f"{name:<10} {row['parameters']:>10,} {row['seconds']:>8.2f} {row['images_per_second']:>9.1f}")
    print(f"speed-up of genlab over diffusers: {ratio:.2f}x (bar: >= 1.0)")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    settings = vars(args) | {"out": str(args.out)}
    args.out.write_text(json.dumps({"benchmark": "diffusion sampling speed (CPU)", "settings": settings,
                                    "machine": platform.platform(), "torch": torch.__version__,
                                    "results": rows, "speedup": ratio}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
