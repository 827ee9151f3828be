"""The density baseline on the VEEGAN/PacGAN mixtures, side by side with scikit-learn's GaussianMixture.

For each dataset (ring8, grid25) and seed: draw the data with that seed, fit genlab's Gaussian mixture
(EM) and scikit-learn's ``GaussianMixture`` with the same number of components and restarts, draw 2,500
samples from each, and score them with the PacGAN protocol (modes captured, high-quality share,
reverse KL) plus the held-out log-likelihood. A single Gaussian is included to show the metric failing.

    python benchmarks/gaussian_mixtures.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

import genlab
from genlab.metrics import mode_coverage

COMPONENTS = {"ring8": 8, "grid25": 25}
N_SAMPLES = 2500
N_INIT = 3
DEFAULT_OUT = Path(__file__).parent / "results" / "gaussian_mixtures.json"


def score(samples: np.ndarray, data) -> dict[str, float]:
    modes = mode_coverage(fake=samples, modes=data.modes, std=data.mode_std)
    return {"modes": modes.modes_captured, "high_quality": modes.high_quality, "reverse_kl": modes.reverse_kl}


def run(dataset: str, seed: int) -> dict[str, dict[str, float]]:
    """Fit every contender on one seeded draw of ``dataset``; returns contender -> metrics."""
    data = genlab.datasets.load(dataset, seed=seed)
    k = COMPONENTS[dataset]
    results = {}
    for name, components in (("genlab single Gaussian", 1), (f"genlab mixture K={k}", k)):
        start = time.perf_counter()
        model = genlab.fit(data, family="gaussian", n_components=components, n_init=N_INIT, train={"seed": seed})
        seconds = time.perf_counter() - start
        samples = model.sample(N_SAMPLES, generator=torch.Generator().manual_seed(seed))
        results[name] = {**score(samples, data), "test_log_lik": float(model.log_prob(data.x_test).mean()),
                         "fit_seconds": seconds}
    start = time.perf_counter()
    peer = GaussianMixture(k, n_init=N_INIT, random_state=seed).fit(data.x_train)
    seconds = time.perf_counter() - start
    samples = peer.sample(N_SAMPLES)[0]
    results[f"scikit-learn K={k}"] = {**score(samples, data), "test_log_lik": float(peer.score(data.x_test)),
                                      "fit_seconds": seconds}
    return results


def main(argv: list[str] | None = None) -> None:
    """Run every dataset and seed, print mean ± standard error, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    report: dict = {"seeds": args.seeds, "n_samples": N_SAMPLES, "machine": platform.platform(),
                    "torch_threads": torch.get_num_threads(), "datasets": {}}
    for dataset in COMPONENTS:
        per_seed = [run(dataset, seed) for seed in args.seeds]
        summary = {}
        print(f"\n{dataset} ({len(args.seeds)} seeds, {N_SAMPLES} samples each; mean ± s.e.)")
        print(f"{'model':<24} {'modes':>12} {'high quality':>14} {'reverse KL':>14} {'test log-lik':>14} {'fit s':>7}")
        for contender in per_seed[0]:
            stats = {}
            for metric in per_seed[0][contender]:
                values = np.array([seed_result[contender][metric] for seed_result in per_seed], dtype=float)
                stats[metric] = {"mean": float(values.mean()),
                                 "se": float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0}
            summary[contender] = stats
            cell = lambda m, f: f"{stats[m]['mean']:{f}} ± {stats[m]['se']:{f}}"  # noqa: E731
            print(f"{contender:<24} {cell('modes', '.1f'):>12} {cell('high_quality', '.3f'):>14} "
                  f"{cell('reverse_kl', '.3f'):>14} {cell('test_log_lik', '.3f'):>14} {stats['fit_seconds']['mean']:>7.2f}")
        genlab_time = summary[f"genlab mixture K={COMPONENTS[dataset]}"]["fit_seconds"]["mean"]
        peer_time = summary[f"scikit-learn K={COMPONENTS[dataset]}"]["fit_seconds"]["mean"]
        print(f"fit time genlab / scikit-learn: {genlab_time / peer_time:.2f}")
        report["datasets"][dataset] = {"summary": summary, "per_seed": per_seed}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
