"""Mode coverage of the diffusion family on ring8 and grid25 (PacGAN protocol, BENCHMARKS.md §1).

Per dataset and seed: train on the 10,000 training points for at most ``--max-time`` seconds of CPU
(one thread), draw 2,500 samples with ``--sampler`` over ``--sample-steps`` steps, and score modes
captured, high-quality share and reverse KL. Prints mean ± standard error over seeds and writes JSON.
Bar (issue #4): all modes, >= 95% high quality, reverse KL <= 0.05. Timings use one thread on a
machine shared with other jobs, so they are pessimistic.

    OMP_NUM_THREADS=1 python benchmarks/diffusion_points.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import genlab
from genlab.config import to_dict
from genlab.metrics import mode_coverage

DEFAULT_OUT = Path(__file__).parent / "results" / "diffusion_points.json"
PACGAN = {"ring8": "PacGAN4 7.8 modes / 95.9% / KL 0.07", "grid25": "PacGAN4 24.8 modes / 93.6% / KL 0.04"}


def run(dataset: str, seed: int, args: argparse.Namespace) -> dict[str, float]:
    """Train one seeded model on ``dataset`` and score 2,500 samples."""
    data = genlab.datasets.load(dataset)
    train = {"steps": args.steps, "max_time": args.max_time, "batch_size": args.batch_size, "lr": args.lr,
             "ema_decay": args.ema_decay or None, "warmup_steps": 100, "seed": seed, "device": "cpu"}
    start = time.perf_counter()
    model = genlab.fit(data, family="diffusion", train=train, hidden=args.hidden, depth=args.depth,
                       prediction=args.prediction, schedule=args.schedule, fourier_scale=args.fourier_scale)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    x = model.sample(args.n, steps=args.sample_steps, sampler=args.sampler,
                     generator=torch.Generator().manual_seed(10_000 + seed))
    sample_seconds = time.perf_counter() - start
    score = mode_coverage(fake=x, modes=data.modes, std=data.mode_std)
    return {"seed": seed, "modes": score.modes_captured, "n_modes": score.n_modes,
            "high_quality": score.high_quality, "reverse_kl": score.reverse_kl,
            "train_steps": model.history_[-1]["step"], "train_seconds": train_seconds,
            "sample_seconds": sample_seconds, "model": to_dict(model.config)}


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (0 for one value)."""
    array = np.asarray(values, dtype=np.float64)
    se = float(array.std(ddof=1) / np.sqrt(len(array))) if len(array) > 1 else 0.0
    return float(array.mean()), se


def main(argv: list[str] | None = None) -> None:
    """Run every dataset and seed, print the table and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["ring8", "grid25"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--max-time", type=float, default=120.0, help="training seconds per seed")
    parser.add_argument("--steps", type=int, default=20_000, help="training steps per seed (whichever ends first)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--ema-decay", type=float, default=0.995, help="0 for no EMA")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--fourier-scale", type=float, default=30.0)
    parser.add_argument("--prediction", default="v", choices=["eps", "x0", "v"])
    parser.add_argument("--schedule", default="cosine", choices=["linear", "cosine"])
    parser.add_argument("--sampler", default="ddim", choices=["ddpm", "ddim", "dpm++"])
    parser.add_argument("--sample-steps", type=int, default=50)
    parser.add_argument("--n", type=int, default=2500, help="samples per model")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    results: dict[str, list[dict[str, float]]] = {}
    for dataset in args.datasets:
        results[dataset] = []
        for seed in args.seeds:
            row = run(dataset, seed, args)
            results[dataset].append(row)
            print(f"{dataset} seed {seed}: {row['modes']}/{row['n_modes']} modes, "
                  f"{100 * row['high_quality']:.1f}% HQ, KL {row['reverse_kl']:.4f}, "
                  f"{row['train_steps']} steps in {row['train_seconds']:.0f} s", flush=True)

    summary = {}
    print(f"\n{'dataset':<8} {'modes':>12} {'high quality %':>15} {'reverse KL':>16} {'steps':>7}  reference")
    for dataset, rows in results.items():
        modes, hq, kl = (mean_se([row[key] for row in rows]) for key in ("modes", "high_quality", "reverse_kl"))
        steps = int(np.mean([row["train_steps"] for row in rows]))
        summary[dataset] = {"modes": modes, "high_quality": hq, "reverse_kl": kl, "mean_train_steps": steps}
        print(f"{dataset:<8} {modes[0]:>6.1f} ± {modes[1]:<4.1f} {100 * hq[0]:>8.1f} ± {100 * hq[1]:<4.1f} "
              f"{kl[0]:>8.4f} ± {kl[1]:<6.4f} {steps:>7}  {PACGAN[dataset]}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "diffusion mode coverage (PacGAN protocol)", "settings": vars(args) | {"out": str(args.out)},
              "torch_threads": 1, "machine": platform.platform(), "summary": summary, "runs": results}
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
