"""PRDC on the prdc package's README check, over several seeds: does genlab land on the reference?

Real and fake are independent draws of ``n`` points from N(0, I) in ``dim`` dimensions, ``k = 5``.
The reference values come from one unseeded draw in the README of Naeem et al.'s package
(https://github.com/clovaai/generative-evaluation-prdc), so expect seed-to-seed noise of about
0.01 on precision, recall and coverage and 0.05 on density.

    python benchmarks/prdc_reference.py --seeds 0 1 2 3 4 5 6 7 8 9 --peer
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from genlab.metrics import prdc

REFERENCE = {"precision": 0.4772, "recall": 0.4705, "density": 1.0555, "coverage": 0.9735}
DEFAULT_OUT = Path(__file__).parent / "results" / "prdc_reference.json"


def run_seed(seed: int, n: int, dim: int, k: int, peer: bool) -> dict[str, float]:
    """Score one seeded pair of Gaussian draws: the four metrics, genlab's seconds and, with ``peer``,
    the prdc package's seconds and its largest absolute difference from genlab on the same data."""
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((n, dim))
    fake = rng.standard_normal((n, dim))
    start = time.perf_counter()
    score = prdc(real=real, fake=fake, k=k)
    seconds = time.perf_counter() - start
    result = {name: getattr(score, name) for name in REFERENCE} | {"seconds": seconds}
    if peer:
        from prdc import compute_prdc  # the reference implementation, a benchmark/test extra

        start = time.perf_counter()
        expected = compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
        result["peer_seconds"] = time.perf_counter() - start
        result["peer_max_abs_diff"] = max(abs(expected[name] - result[name]) for name in REFERENCE)
    return result


def main(argv: list[str] | None = None) -> None:
    """Run the seeds, print a table and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n", type=int, default=10_000, help="points in each of real and fake")
    parser.add_argument("--dim", type=int, default=1_000)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--peer", action="store_true", help="also run the prdc package on the same data")
    args = parser.parse_args(argv)

    runs = []
    for seed in args.seeds:
        runs.append({"seed": seed} | run_seed(seed, args.n, args.dim, args.k, args.peer))
        print(f"seed {seed}: " + ", ".join(f"{key} {value:.4f}" for key, value in runs[-1].items() if key != "seed"))

    summary = {}
    print(f"\n{'metric':<10} {'reference':>9} {'genlab mean':>11} {'sd':>7} {'abs diff':>8}")
    for name, reference in REFERENCE.items():
        values = np.array([run[name] for run in runs])
        mean, sd = float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0
        summary[name] = {"reference": reference, "mean": mean, "sd": sd, "abs_diff": abs(mean - reference)}
        print(f"{name:<10} {reference:>9.4f} {mean:>11.4f} {sd:>7.4f} {abs(mean - reference):>8.4f}")
    seconds = [run["seconds"] for run in runs]
    print(f"{'seconds':<10} {'':>9} {np.mean(seconds):>11.2f}  (per seed, PRDC only, {torch.get_num_threads()} threads)")
    if args.peer:
        peer_seconds = float(np.mean([run["peer_seconds"] for run in runs]))
        largest = max(run["peer_max_abs_diff"] for run in runs)
        print(f"prdc package on the same data: largest |difference| {largest:.2e}, "
              f"{peer_seconds:.2f} s per seed (genlab {peer_seconds / np.mean(seconds):.1f}x faster)")

    report = {
        "config": {"n": args.n, "dim": args.dim, "k": args.k, "seeds": args.seeds},
        "machine": {"platform": platform.platform(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__},
        "runs": runs,
        "summary": summary,
        "seconds_mean": float(np.mean(seconds)),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
