"""genlab's image feature classifier on sklearn digits and MNIST: parameters, training time, test accuracy.

The classifier (``genlab.metrics.features``) is what the image metrics measure with, so it must be good
(MNIST: at least 99 % test accuracy) and cheap enough to train on first use (one to two minutes on one CPU
thread). Each dataset is trained from scratch in a fresh temporary cache unless ``--cache-dir`` is given.

    OMP_NUM_THREADS=1 python benchmarks/image_classifier.py --data-dir /work/shared/data
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import torch

import genlab
from genlab.config import to_dict
from genlab.metrics import feature_classifier

#: Test accuracy each dataset's classifier must reach (None: no bar).
BARS = {"digits": None, "mnist": 0.99}
DEFAULT_OUT = Path(__file__).parent / "results" / "image_classifier.json"


def main(argv: list[str] | None = None) -> None:
    """Train on each dataset, print a table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/work/shared/data"), help="folder holding mnist.npz")
    parser.add_argument("--datasets", nargs="+", default=list(BARS), choices=list(BARS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="classifier cache (default: a fresh temporary one)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        cache = args.cache_dir if args.cache_dir is not None else Path(scratch)
        for name in args.datasets:
            data = genlab.datasets.load(name, data_dir=args.data_dir) if name == "mnist" else genlab.datasets.load(name)
            classifier = feature_classifier(data, cache_dir=cache, seed=args.seed)
            bar = BARS[name]
            rows.append({"dataset": name, "shape": list(data.shape), "n_train": len(data.x_train),
                         "n_test": len(data.x_test), "params": sum(p.numel() for p in classifier.network.parameters()),
                         "feature_dim": classifier.dim, "steps": classifier.config.steps(len(data.x_train)),
                         "train_seconds": classifier.train_seconds, "test_accuracy": classifier.test_accuracy,
                         "bar": bar, "passes": None if bar is None else classifier.test_accuracy >= bar})
    config = to_dict(classifier.config)

    print(f"\n{'dataset':<8} {'shape':>10} {'params':>8} {'features':>8} {'steps':>6} {'train s':>8} "
          f"{'test acc':>9} {'bar':>12}")
    for row in rows:
        bar = "-" if row["bar"] is None else f">= {row['bar']:.0%} {'ok' if row['passes'] else 'FAIL'}"
        print(f"{row['dataset']:<8} {'x'.join(map(str, row['shape'])):>10} {row['params']:>8,} {row['feature_dim']:>8} "
              f"{row['steps']:>6} {row['train_seconds']:>8.1f} {row['test_accuracy']:>9.2%} {bar:>12}")
    report = {"seed": args.seed, "config": config, "machine": platform.platform(),
              "torch_threads": torch.get_num_threads(), "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
