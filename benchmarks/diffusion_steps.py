"""Sample quality against sampling steps on 8x8 digits, for the DDPM, DDIM and DPM-Solver++ samplers.

The shape of DDIM 2021 Table 1 (BENCHMARKS.md §3) at our scale: one class-conditional diffusion model
trained on scikit-learn's digits for ``--max-time`` CPU seconds (one thread, ``clock="cpu"``), then
``--n`` unconditional samples (the null class) per sampler and step count, scored by the Fréchet
distance to the training images in the feature space of genlab's digits classifier
(:mod:`genlab.metrics.features`; FID's formula with that network in place of Inception). The held-out
test images (359) give the floor a perfect model would reach at that sample size, hence the default
``--n``. The UNet has two levels (8x8, 4x4; channels 32, 64) to keep 3,500 network calls cheap.
Issue #4's bar: DPM-Solver++ at 20 steps within 10 % of the 1000-step DDPM figure.

    OMP_NUM_THREADS=1 python benchmarks/diffusion_steps.py
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import genlab
from genlab.config import to_dict
from genlab.metrics import frechet_distance
from genlab.metrics.features import feature_classifier

DEFAULT_OUT = Path(__file__).parent / "results" / "diffusion_steps.json"


def main(argv: list[str] | None = None) -> None:
    """Train once, sample at every setting, print the table and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-time", type=float, default=300.0, help="training CPU seconds")
    parser.add_argument("--n", type=int, default=359, help="samples per setting (default: as many as the test set)")
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50, 100, 1000])
    parser.add_argument("--samplers", nargs="+", default=["ddpm", "ddim", "dpm++"])
    parser.add_argument("--channels", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    data = genlab.datasets.load("digits")
    classifier = feature_classifier(data)
    real = classifier.features(data.x_train)
    floor = frechet_distance(real=real, fake=classifier.features(data.x_test))
    start = time.process_time()
    model = genlab.fit(data, family="diffusion", channels=args.channels,
                       train={"steps": None, "max_time": args.max_time, "clock": "cpu", "batch_size": 128,
                              "lr": 1e-3, "ema_decay": 0.999, "warmup_steps": 100, "device": "cpu"})
    train_seconds = time.process_time() - start
    print(f"trained {model.history_[-1]['step']} steps in {train_seconds:.0f} CPU s; test-vs-train floor "
          f"{floor:.3f} (Fréchet distance, classifier features, test acc {classifier.test_accuracy:.1%})", flush=True)

    rows = []
    for sampler in args.samplers:
        for steps in args.steps:
            start = time.perf_counter()
            x = model.sample(args.n, steps=steps, sampler=sampler, generator=torch.Generator().manual_seed(0))
            seconds = time.perf_counter() - start
            distance = frechet_distance(real=real, fake=classifier.features(x))
            rows.append({"sampler": sampler, "steps": steps, "frechet": distance, "seconds": seconds})
            print(f"{sampler:<6} {steps:>5} steps: Fréchet {distance:.3f} ({seconds:.1f} s)", flush=True)

    print(f"\n{'sampler':<8}" + "".join(f"{steps:>9}" for steps in args.steps) + "   (Fréchet distance, classifier features)")
    for sampler in args.samplers:
        values = [row["frechet"] for row in rows if row["sampler"] == sampler]
        print(f"{sampler:<8}" + "".join(f"{value:>9.3f}" for value in values))
    print(f"{'test set':<8}{floor:>9.3f}  (real held-out images: the floor at this sample size)")
    reference = next(row["frechet"] for row in rows if row["sampler"] == "ddpm" and row["steps"] == 1000) \
        if "ddpm" in args.samplers and 1000 in args.steps else None
    fast = next((row["frechet"] for row in rows if row["sampler"] == "dpm++" and row["steps"] == 20), None)
    if reference is not None and fast is not None:
        print(f"DPM-Solver++ 20 steps / DDPM 1000 steps: {fast / reference:.3f} (bar: <= 1.10)")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "diffusion steps vs quality on digits", "settings": vars(args) | {"out": str(args.out)},
        "machine": platform.platform(), "torch_threads": 1, "train_steps": model.history_[-1]["step"],
        "train_cpu_seconds": train_seconds, "model": to_dict(model.config), "floor": floor, "results": rows,
        "classifier_test_accuracy": classifier.test_accuracy,
    }, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
