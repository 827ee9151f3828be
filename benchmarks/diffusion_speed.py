"""CPU sampling speed of genlab's diffusion sampler, by its default path, against diffusers' UNet2DModel +
DDIMScheduler.

Both sample ``--n`` (256) 28x28 images with 50 DDIM steps from a UNet of about 1M parameters (genlab:
channels (32, 64, 64), one block per level; diffusers: ``block_out_channels=(32, 64, 64)``, one layer
per block, no attention, the configuration of BENCHMARKS.md §7). Weights are random: speed does not
depend on them. Timing is the best of ``--repeats`` interleaved runs, one thread, on a machine shared
with other jobs (pessimistic); CPU seconds of the process are reported beside wall seconds because
they are less exposed to the other jobs. Issue #4's bar: genlab at least as fast (ratio >= 1.0).

genlab's row is ``model.sample`` as a user calls it: ``backend="auto"`` (``--backend``) picks onnxruntime
for the network call where it can run and pays (:mod:`genlab.models.diffusion.backends`; at the default
sizes it does), else eager PyTorch; the row names the backend that ran. Its graph is exported by an
untimed first call, into a fresh cache folder, and that call's seconds (export, session and sampling) are
reported apart. A second row forces the eager path for comparison.

genlab's sampler denoises equal cache-sized chunks of records on CPU (at most 20 images here: 16 for 64
images, 20 for 256; see ``genlab.models.diffusion.CPU_SAMPLE_VALUES``); diffusers' pipelines denoise the
whole batch at once.
For transparency a further row runs diffusers' UNet and scheduler over the same chunks: it shows how much
of the difference is the chunking and how much the network.

    OMP_NUM_THREADS=1 python benchmarks/diffusion_speed.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from genlab.models.diffusion import CPU_SAMPLE_VALUES, DiffusionModel
from genlab.models.diffusion.config import equal_chunks
from genlab.train import TrainConfig

DEFAULT_OUT = Path(__file__).parent / "results" / "diffusion_speed.json"


def timed(fn) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of one call of ``fn``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def genlab_model() -> DiffusionModel:
    """A 28x28 genlab diffusion model (one training step, so weights are near-initial)."""
    images = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
    return DiffusionModel(conditional=False).fit(images, train=TrainConfig(steps=1, batch_size=8, device="cpu"))


def genlab_sampler(model: DiffusionModel, n: int, steps: int, backend: str):
    """``model.sample`` of ``n`` images with ``steps`` DDIM steps on ``backend``: the backend that runs, the
    seconds of a first, untimed call (the one that exports a graph) and the sampling call."""
    def sample() -> np.ndarray:
        return model.sample(n, steps=steps, sampler="ddim", backend=backend, generator=torch.Generator().manual_seed(0))

    ran = model.sampling_backend(n, steps=steps, backend=backend)
    first, _ = timed(sample)
    params = sum(p.numel() for p in model.network_.parameters())
    return ran, first, (params, sample)


def diffusers_peer():
    """diffusers' UNet2DModel of genlab's widths (random weights, eval mode, CPU) and its DDIMScheduler."""
    from diffusers import DDIMScheduler, UNet2DModel

    unet = UNet2DModel(sample_size=28, in_channels=1, out_channels=1, block_out_channels=(32, 64, 64),
                       layers_per_block=1, down_block_types=("DownBlock2D",) * 3,
                       up_block_types=("UpBlock2D",) * 3, norm_num_groups=8, add_attention=False).eval()
    return unet, DDIMScheduler(beta_schedule="squaredcos_cap_v2")


def diffusers_sampler(n: int, steps: int, chunk: int | None = None):
    """diffusers' UNet2DModel of the same widths with its DDIM loop (as DDIMPipeline runs it)."""
    unet, scheduler = diffusers_peer()
    params = sum(p.numel() for p in unet.parameters())

    @torch.no_grad()
    def denoise(x: torch.Tensor) -> torch.Tensor:
        scheduler.set_timesteps(steps)
        for t in scheduler.timesteps:
            x = scheduler.step(unet(x, t).sample, t, x).prev_sample
        return x

    def sample() -> torch.Tensor:
        x = torch.randn((n, 1, 28, 28), generator=torch.Generator().manual_seed(0))
        return denoise(x) if chunk is None else torch.cat([denoise(part) for part in x.split(chunk)])

    return params, sample


def main(argv: list[str] | None = None) -> None:
    """Time both, print the table and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="images per sampling call")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--backend", default="auto", help="genlab's backend: auto (its default), onnxruntime, eager")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    os.environ["GENLAB_CACHE"] = tempfile.mkdtemp()   # a fresh cache: the first call pays the export

    chunk = equal_chunks(args.n, CPU_SAMPLE_VALUES // (28 * 28))   # genlab's own chunks
    model = genlab_model()
    backend, first_call, genlab = genlab_sampler(model, args.n, args.steps, args.backend)
    _, _, eager = genlab_sampler(model, args.n, args.steps, "eager")
    samplers = {"genlab": genlab, "genlab eager": eager, "diffusers": diffusers_sampler(args.n, args.steps),
                f"diffusers, chunks of {chunk}": diffusers_sampler(args.n, args.steps, chunk)}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in samplers}
    for _ in range(args.repeats):   # interleaved, so a change in the machine's load hits both alike
        for name, (_, sample) in samplers.items():
            times[name].append(timed(sample))
    rows = {name: {"parameters": params, "seconds": min(t[0] for t in times[name]),
                   "cpu_seconds": min(t[1] for t in times[name]),
                   "images_per_second": args.n / min(t[0] for t in times[name])}
            for name, (params, _) in samplers.items()}
    ratio = rows["diffusers"]["seconds"] / rows["genlab"]["seconds"]
    cpu_ratio = rows["diffusers"]["cpu_seconds"] / rows["genlab"]["cpu_seconds"]
    ratios = {f"{name} over {peer}": {"wall": rows[peer]["seconds"] / rows[name]["seconds"],
                                      "cpu": rows[peer]["cpu_seconds"] / rows[name]["cpu_seconds"]}
              for name in rows if name.startswith("genlab")
              for peer in ("diffusers", f"diffusers, chunks of {chunk}")}
    print(f"{'':<24} {'params':>10} {'seconds':>8} {'CPU s':>8} {'images/s':>9}   "
          f"({args.n} images, DDIM {args.steps} steps, 1 thread; genlab --backend {args.backend}: {backend} ran, "
          f"its first call took {first_call:.2f} s)")
    for name, row in rows.items():
        print(f"{name:<24} {row['parameters']:>10,} {row['seconds']:>8.2f} {row['cpu_seconds']:>8.2f} "
              f"{row['images_per_second']:>9.1f}")
    print(f"speed-up of genlab over diffusers: {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU (bar: >= 1.0)")
    for name, value in ratios.items():   # issue #16: >= 1.0x at equal chunks, >= 1.5x overall
        print(f"  {name}: {value['wall']:.2f}x wall, {value['cpu']:.2f}x CPU")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    settings = vars(args) | {"out": str(args.out)}
    args.out.write_text(json.dumps({"benchmark": "diffusion sampling speed (CPU)", "settings": settings,
                                    "machine": platform.platform(), "torch": torch.__version__,
                                    "genlab_backend": backend, "genlab_first_call_seconds": first_call,
                                    "results": rows, "speedup": ratio, "cpu_speedup": cpu_ratio,
                                    "ratios": ratios}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
